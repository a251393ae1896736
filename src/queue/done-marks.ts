// Done-marks of finished messages: batched per event-loop turn, written one batch after another,
// and kept while the spool refuses them. A refused done-mark is not harmless: until it is on disk
// the message's segment cannot be reclaimed (so a full disk stays full) and a restart delivers the
// message again. So a refused batch is retried, with back-off, until the spool takes it; a full
// disk usually frees itself exactly through these marks (they let delivered segments go).
import type { Logger } from 'pino';
import { ErrorCode, errorCode } from '../errors.js';

/** First retry after a refused batch; doubled per failure up to RETRY_MAX_MS. */
export const DONE_RETRY_MIN_MS = 250;
export const DONE_RETRY_MAX_MS = 10_000;

export interface DoneMarksOptions {
  markDone(ids: string[]): Promise<void>;
  /** Makes the delivery records emitted so far durable first (they precede their done-marks). */
  flushEvents(): Promise<void> | undefined;
  logger: Logger;
}

export class DoneMarks {
  private batch: string[] = [];
  /** Ids of refused batches, waiting for the retry timer. */
  private refused: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** Failures since the last batch the spool took (0: not failing); the back-off follows from it. */
  private failures = 0;
  private stopped = false;
  /** One write after another: stop() waits for one already writing, not only for its own. */
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly o: DoneMarksOptions) {}

  /** Done-marks waiting for a retry (refused by the spool, not yet on disk). */
  get pending(): number {
    return this.refused.length;
  }

  add(id: string): void {
    // While a retry is pending the timer takes this one too: no write per turn against a spool
    // that refuses them all.
    if (this.batch.length === 0 && this.timer === null && !this.stopped) setImmediate(() => void this.flush());
    this.batch.push(id);
  }

  flush(): Promise<void> {
    this.writing = this.writing.then(() => this.write());
    return this.writing;
  }

  /** A last write of everything waiting; no retry after it (refused marks are then delivered again
   *  after the restart: at least once, never lost). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }

  private async write(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const ids = this.refused.length === 0 ? this.batch : this.refused.concat(this.batch);
    this.batch = [];
    this.refused = [];
    if (ids.length === 0) return;
    try {
      await this.o.flushEvents();
      await this.o.markDone(ids);
    } catch (err) {
      this.refusedBatch(ids, err);
      return;
    }
    if (this.failures > 0) {
      this.o.logger.info({ messages: ids.length, failures: this.failures }, 'spool: done-marks written again after the spool refused them');
      this.failures = 0;
    }
  }

  private refusedBatch(ids: string[], err: unknown): void {
    this.refused = ids.concat(this.refused);
    // No retry after stop() or once the spool is closed: the last try.
    const last = this.stopped || errorCode(err) === ErrorCode.SPOOL_CLOSED;
    const delayMs = Math.min(DONE_RETRY_MIN_MS * 2 ** this.failures, DONE_RETRY_MAX_MS);
    if (this.failures++ === 0 || last) {
      // Once per failing stretch, and at the last try: the operator must know that these messages
      // would be delivered again after a restart and that their segments are held meanwhile.
      this.o.logger.error(
        { err, messages: ids.length, retryMs: last ? null : delayMs },
        last
          ? 'spool: could not mark delivered messages done; they are delivered again after a restart'
          : 'spool: could not mark delivered messages done; retrying until the spool takes them',
      );
    }
    if (last) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, delayMs);
    this.timer.unref();
  }
}
