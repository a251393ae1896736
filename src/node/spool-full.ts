// Whether the spool is full, from the native spool's process-wide counters (every writer on every
// thread counts there: listener commits, DSNs, #mmove receipts), and the few log lines that say so:
// one when refusals start, a summary per interval while they go on, one when a commit succeeds
// again. Main thread; observe() is a function of the counters and the injected clock, never blocks.
import type { Logger } from 'pino';

/** How often, while the spool stays full, one line sums up what was refused. */
export const SPOOL_FULL_SUMMARY_MS = 60_000;

/** The counters observe() reads (SpoolStats): commits refused for lack of space, commits done. */
export interface SpoolFullCounters {
  fullErrors: number;
  commits: number;
}

export interface SpoolFullState {
  full: boolean;
  /** When the current episode began (ms since the epoch); null when not full. */
  since: number | null;
  /** Commits refused in the current episode (each one a 452 4.3.1 or a failed DSN or #mmove receipt). */
  refused: number;
}

export class SpoolFullWatch {
  private last: SpoolFullCounters | null = null;
  private full = false;
  private since = 0;
  private refused = 0;
  private summaryAt = 0;
  private refusedAtSummary = 0;

  /**
   * `hasSpace` decides a window in which commits were both refused and made: the counters do not
   * say which came last, and without it a full spool that took its last message in such a window
   * would stay "full" until the next write. Default: such a window leaves the state as it was.
   */
  constructor(
    private readonly logger: Pick<Logger, 'error' | 'warn' | 'info'>,
    private readonly now: () => number = Date.now,
    private readonly summaryEveryMs = SPOOL_FULL_SUMMARY_MS,
    private readonly hasSpace: () => boolean = () => false,
  ) {}

  /**
   * Takes the counters now. Full begins when refusals grew; it ends when commits grew and
   * refusals did not (a commit found space), or when both grew and the file system has room again. With neither, the state stays as it was: a full spool
   * nobody writes to is still full as far as anyone knows.
   */
  observe(c: SpoolFullCounters): void {
    const prev = this.last;
    this.last = { fullErrors: c.fullErrors, commits: c.commits };
    if (prev === null) return; // the first reading is the baseline
    const refusedNow = c.fullErrors - prev.fullErrors;
    const committedNow = c.commits - prev.commits;
    const t = this.now();
    if (this.full && refusedNow > 0 && committedNow > 0 && this.hasSpace()) {
      this.refused += refusedNow;
      this.full = false;
      this.logger.info({ refused: this.refused, ms: t - this.since }, 'spool accepts messages again');
      return;
    }
    if (refusedNow > 0) {
      if (!this.full) {
        this.full = true;
        this.since = t;
        this.refused = 0;
        this.summaryAt = t;
        this.refusedAtSummary = 0;
        this.logger.error({ refused: refusedNow }, 'spool full: refusing messages with 452 4.3.1');
      }
      this.refused += refusedNow;
    } else if (this.full && committedNow > 0) {
      this.full = false;
      this.logger.info({ refused: this.refused, ms: t - this.since }, 'spool accepts messages again');
      return;
    }
    if (this.full && t - this.summaryAt >= this.summaryEveryMs) {
      this.logger.warn(
        { refused: this.refused - this.refusedAtSummary, total: this.refused, ms: t - this.since },
        'spool still full: refusing messages with 452 4.3.1',
      );
      this.summaryAt = t;
      this.refusedAtSummary = this.refused;
    }
  }

  state(): SpoolFullState {
    return { full: this.full, since: this.full ? this.since : null, refused: this.full ? this.refused : 0 };
  }
}
