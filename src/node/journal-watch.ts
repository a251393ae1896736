// The event journal's health as the operator sees it: every JOURNAL_WATCH_MS it logs each range
// dropped at the cap once (ERROR, through EventJournal.logNewDrops), says when the journal passes
// its alarm size (WARN, with the subscribers furthest behind) and when it refuses events at its
// cap (ERROR once per episode: mail gets 452 4.3.1), and serves /health's problems and the
// metrics. Main thread; each tick reads the journal's counters and its subscribers' checkpoint
// files (a few small reads), never on a message's path.
import type { Logger } from 'pino';
import type { EventJournal, EventJournalStats } from '../spool/index.js';

export const JOURNAL_WATCH_MS = 5000;

export class JournalWatch {
  private timer: NodeJS.Timeout | null = null;
  private last: EventJournalStats | null = null;
  private alarm = false;
  private refusedSeen = -1;
  private refusing = false;

  constructor(
    private readonly journal: EventJournal,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), JOURNAL_WATCH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** The journal's figures as of the last tick (null before the first). */
  stats(): EventJournalStats | null {
    return this.last;
  }

  /** What /health lists while the journal needs the operator. */
  problems(): string[] {
    const out: string[] = [];
    if (this.refusing) out.push('event journal at its cap (Event_Journal_Max_Size): refusing messages with 452 4.3.1 until its subscribers catch up');
    else if (this.alarm) out.push(`event journal above its alarm size: ${behind(this.last)}`);
    return out;
  }

  tick(): void {
    let s: EventJournalStats;
    try {
      this.journal.logNewDrops();
      s = this.journal.stats();
    } catch (err) {
      this.logger.warn({ err }, 'event journal: could not read its figures');
      return;
    }
    this.last = s;
    if (s.alarm !== this.alarm) {
      this.alarm = s.alarm;
      if (s.alarm) this.logger.warn({ bytes: s.bytes, alarmBytes: s.alarmBytes, cap: s.cap, subscribers: s.subscribers }, `event journal above its alarm size: ${behind(s)}`);
      else this.logger.info({ bytes: s.bytes, alarmBytes: s.alarmBytes }, 'event journal back under its alarm size');
    }
    const refused = s.native?.refused ?? 0;
    if (this.refusedSeen >= 0) {
      const now = refused > this.refusedSeen && s.atCap === 'refuse';
      if (now && !this.refusing) this.logger.error({ bytes: s.bytes, cap: s.cap, subscribers: s.subscribers }, `event journal at its cap: refusing messages with 452 4.3.1 (Event_Journal_At_Cap = refuse) until subscribers catch up: ${behind(s)}`);
      else if (!now && this.refusing) this.logger.info({ bytes: s.bytes, cap: s.cap }, 'event journal has room again: accepting messages');
      this.refusing = now;
    }
    this.refusedSeen = refused;
  }
}

/** The subscribers furthest behind, for a log line: "exporter-a 120000 records behind, ...". */
function behind(s: EventJournalStats | null): string {
  if (s === null) return 'no figures yet';
  const subs = [...s.subscribers].sort((a, b) => b.lagRecords - a.lagRecords).slice(0, 3);
  if (subs.length === 0) return `${s.bytes} bytes, no subscriber (Event_Journal_Retention keeps the newest)`;
  return subs.map((x) => `${x.name} ${x.lagRecords} records behind`).join(', ');
}
