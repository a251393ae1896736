// The main thread's event emitter: every emission point (queue outcomes, DSNs, #mmove, operator
// actions, shaping, DuraVIPs, intake, the listeners' rejections) hands it a record; what one turn
// of the event loop emitted goes to the sink (the node's event journal) as one batch; with
// `logLines` (Event_Log_Lines) each record is also written as the pino line it gave before the
// journal (text.ts logLine), and without a sink only that. Main thread; emit() only pushes onto an
// array (no encoding, no I/O on the caller's path); the flush runs in setImmediate.
import type { Logger } from 'pino';
import { decodeEvent, eventFrame } from './codec.js';
import { logLine } from './text.js';
import { EVENT_VERSION, type EventRecord, type NewEvent } from './records.js';

/** Where batches of encoded records go (the node's journal). A rejected append is logged and its
 *  records are written to the log instead: never silently dropped. */
export interface EventSink {
  append(records: Array<{ id?: string; data: Buffer }>): Promise<void>;
}

/** What an emission point needs: one call per event, cheap and synchronous. */
export interface EventEmit {
  emit(e: NewEvent): void;
  /** A record already in the journal (written by another thread): its log line only, if any. */
  journaled(e: NewEvent): void;
  /** Resolves when everything emitted so far is in the journal (absent: nothing to wait for). */
  flush?(): Promise<void>;
}

export interface EventsOptions {
  /** This node's Nodename, in every record. */
  node: string;
  logger: Logger;
  /** Where batches go; null or absent: the log (logLine). */
  sink?: EventSink | null;
  /** Clock for records that come without a time (tests). */
  now?: () => number;
  /** Beside the sink, write each record's log line too (Event_Log_Lines; default true). */
  logLines?: boolean;
}

export class Events implements EventEmit {
  private sink: EventSink | null;
  private pending: EventRecord[] = [];
  private scheduled = false;
  /** Appends in order: a batch is handed to the sink after the previous one settled. */
  private tail: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  private logLines: boolean;
  /** Records emitted, batches appended, and appends the sink refused (metrics). */
  readonly stats = { emitted: 0, batches: 0, failedAppends: 0 };

  constructor(private readonly o: EventsOptions) {
    this.sink = o.sink ?? null;
    this.now = o.now ?? Date.now;
    this.logLines = o.logLines ?? true;
  }

  /** Takes the record as it is (no copy): `v`, `node` and a missing `time` are set on it. */
  emit(e: NewEvent): void {
    const r = stamp(e, this.o.node, this.now);
    this.stats.emitted++;
    this.pending.push(r);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /** Connects the journal (or, with null, goes back to the log). Records not flushed yet go to the new sink. */
  connect(sink: EventSink | null): void {
    this.sink = sink;
  }

  /** Event_Log_Lines changed (a reload). */
  setLogLines(on: boolean): void {
    this.logLines = on;
  }

  /**
   * A record another thread already wrote to the journal (a listener's reception, in the commit of
   * its message): only its log line, when log lines are on or there is no journal.
   */
  journaled(e: NewEvent): void {
    if (this.sink !== null && !this.logLines) return;
    this.log([stamp(e, this.o.node, this.now)]);
  }

  /** Hands what is pending to the sink now; resolves when every batch so far is appended (or logged). */
  flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length > 0) {
      this.pending = [];
      this.stats.batches++;
      const sink = this.sink;
      if (sink === null || this.logLines) this.log(batch);
      if (sink !== null) this.tail = this.tail.then(() => this.append(sink, batch));
    }
    return this.tail;
  }

  private async append(sink: EventSink, batch: EventRecord[]): Promise<void> {
    try {
      await sink.append(batch.map(eventFrame));
    } catch (err) {
      this.stats.failedAppends++;
      this.o.logger.error({ err, records: batch.length }, 'events: the journal refused a batch; its records go to the log');
      if (!this.logLines) this.log(batch);
    }
  }

  private log(batch: EventRecord[]): void {
    for (const r of batch) {
      const { fields, msg } = logLine(r);
      this.o.logger.info(fields, msg);
    }
  }
}

/** A sink that writes each record's log line (for a journal-less node, or beside one in tests). */
export function logSink(logger: Logger, node?: string): EventSink {
  return {
    append(records): Promise<void> {
      for (const f of records) {
        const { fields, msg } = logLine(decodeEvent(f.data, { ...(f.id !== undefined ? { id: f.id } : {}), ...(node !== undefined ? { node } : {}) }));
        logger.info(fields, msg);
      }
      return Promise.resolve();
    },
  };
}

/** For parts run without a node's emitter (unit tests, tools): each record's log line, written at
 *  once (no batching), as the code wrote it before the journals. */
export function logEvents(logger: Logger, node = ''): EventEmit {
  const emit = (e: NewEvent): void => {
    const { fields, msg } = logLine(stamp(e, node, Date.now));
    logger.info(fields, msg);
  };
  return { emit, journaled: emit };
}

/** Makes an emitted event a record, in place (no copy): the schema version, this node, and the
 *  time when the emission point gave none. */
function stamp(e: NewEvent, node: string, now: () => number): EventRecord {
  const r = e as unknown as EventRecord;
  r.v = EVENT_VERSION;
  r.node = node;
  if (r.time === undefined) r.time = now();
  return r;
}
