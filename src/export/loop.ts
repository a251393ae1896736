// The loop every event exporter shares (issue 15, docs/events.md "Exporters"): reads this node's
// event journal through its own subscriber, hands batches of records to a sender (webhook.ts: one
// HTTP POST; nats.ts: JetStream publishes) and acks the subscriber only after the receiver's
// acknowledgement; any failure retries the same batch with backoff, so every record arrives at
// least once. Main thread; never blocks beyond small synchronous journal reads (a few hundred
// records per turn of the event loop, then it yields) and the checkpoint's fsync inside ack.
import { decodeEvent } from '../events/codec.js';
import type { EventReadResult, EventRecord } from '../spool/events.js';

/** What the exporter uses of the journal (src/spool/events.ts EventJournal). */
export interface ExportJournal {
  subscribe(name: string, opts: { from?: 'start' | 'end' }): number;
  read(fromSeq: number, max: number): EventReadResult;
  ack(name: string, seq: number): Promise<void>;
  lastSeq(): number;
}

/** Time and timers, injected by tests. now(): ms since the epoch (compared with records' times). */
export interface ExportClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ExportLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** One record as every sender gets it: its journal seq, the node and type it names (`type` is
 *  "undecoded" for a record this version cannot decode) and its JSON text, record_id included. */
export interface ExportRecord {
  seq: number;
  node: string;
  type: string;
  json: string;
}

/** What a sender says of one attempt. A rejection (a connection error, a timeout) counts as a
 *  failure too: WARN once per error code. */
export type SendResult =
  | { ok: true }
  | { ok: false; key: string; level: 'warn' | 'error'; detail: object; reason: string; retryAfterMs?: number };

/** How one kind of exporter sends a batch. `prepare` runs once per batch (its result is what each
 *  retry sends again, byte for byte); `send` must settle soon after `signal` aborts. */
export interface BatchSender<P> {
  prepare(records: readonly ExportRecord[]): P;
  send(prepared: P, signal: AbortSignal): Promise<SendResult>;
}

/** What tells the kinds apart in the subscriber's name, the logs and the stats. */
export interface ExporterKind {
  kind: 'webhook' | 'nats';
  /** Log messages start with it ("event webhook"). */
  label: string;
}

export interface ExporterOptions {
  /** The stanza's name; its subscriber is `<kind>-<name>`. */
  name: string;
  /** This node's name: for records whose payload has none. */
  node: string;
  journal: ExportJournal;
  batchSize: number;
  batchBytes: number;
  maxDelayMs: number;
  minRetryMs: number;
  maxRetryMs: number;
  /** Record types sent; empty: all. */
  types: readonly string[];
  /** Where a new subscriber starts. */
  from: 'start' | 'end';
  logger: ExportLogger;
  clock?: ExportClock;
  /** In [0, 1): the retry delay's jitter. */
  random?: () => number;
  /** Records read per turn of the event loop. */
  readChunk?: number;
}

export type ExporterState = 'starting' | 'idle' | 'batching' | 'sending' | 'retrying' | 'stopped';

export interface ExporterStats {
  name: string;
  kind: ExporterKind['kind'];
  subscriber: string;
  state: ExporterState;
  /** The last seq acknowledged (its subscriber's checkpoint). */
  checkpoint: number;
  lastSeq: number;
  lagRecords: number;
  /** Age of the oldest record not acknowledged yet, from the batch being built or retried (0
   *  when caught up, and for the moment between two batches). */
  lagSeconds: number;
  batchesSent: number;
  recordsSent: number;
  /** Failed attempts since start. */
  retries: number;
  /** Failed attempts in a row now (0 when the last one succeeded). */
  failing: number;
  lastError: { at: number; reason: string } | null;
  lastSuccessAt: number | null;
  /** When the batch is tried again (retrying), ms since the epoch. */
  retryAt: number | null;
}

const realClock: ExportClock = {
  now: Date.now,
  // 0: yield to I/O (setImmediate) rather than a 1 ms timer.
  setTimeout: (fn, ms) => (ms <= 0 ? { immediate: setImmediate(fn) } : { timer: setTimeout(fn, ms) }),
  clearTimeout: (h) => {
    const x = h as { immediate?: NodeJS.Immediate; timer?: NodeJS.Timeout };
    if (x.immediate !== undefined) clearImmediate(x.immediate);
    if (x.timer !== undefined) clearTimeout(x.timer);
  },
};

/**
 * The wait before retry number `attempt` (1 for the first): Min doubled per failure, capped at
 * Max, less up to a quarter at random so exporters of several nodes do not retry in step.
 */
export function retryDelay(attempt: number, minMs: number, maxMs: number, random: number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(base * (1 - 0.25 * random));
}

interface Batch<P> {
  parts: ExportRecord[];
  bytes: number;
  /** The last seq the batch covers, records of other types passed over included. */
  lastSeq: number;
  /** Record time of its first record (for the lag), clock time it was opened (for Max_Delay). */
  firstTime: number;
  openedAt: number;
  prepared: P | null;
}

export class BatchExporter<P> {
  readonly subscriber: string;
  private readonly o: ExporterOptions;
  private readonly k: ExporterKind;
  private readonly sender: BatchSender<P>;
  private readonly clock: ExportClock;
  private readonly random: () => number;
  private readonly chunk: number;
  private readonly pollMs: number;
  private state: ExporterState = 'starting';
  private acked = 0;
  private next = 1;
  /** The last record passed over (another type) while no batch was open: acked on its own. */
  private skipped = 0;
  private batch: Batch<P> | null = null;
  /** Records read that did not fit in the batch (Batch_Bytes, or Batch_Size reached within a
   *  read): they open the next one. Kept rather than read again, which would cost the journal's
   *  reader its file position (a scan of the segment from its start). */
  private leftover: EventRecord[] = [];
  private timer: unknown = null;
  private abort: AbortController | null = null;
  private inflight: Promise<void> | null = null;
  private failing = 0;
  private failingSince = 0;
  private retryAt: number | null = null;
  private readonly reported = new Set<string>();
  private reportedText = false;
  private readonly counts = { batches: 0, records: 0, retries: 0 };
  private lastError: ExporterStats['lastError'] = null;
  private lastSuccessAt: number | null = null;

  constructor(o: ExporterOptions, k: ExporterKind, sender: BatchSender<P>) {
    this.o = o;
    this.k = k;
    this.sender = sender;
    this.subscriber = `${k.kind}-${o.name}`;
    this.clock = o.clock ?? realClock;
    this.random = o.random ?? Math.random;
    this.chunk = o.readChunk ?? 200;
    // Idle polling of the journal (it has no notification): a listing and a header read.
    this.pollMs = Math.max(20, Math.min(250, o.maxDelayMs));
  }

  /** Creates the subscriber if absent (fsync) and starts reading after its checkpoint. */
  start(): void {
    try {
      this.acked = this.o.journal.subscribe(this.subscriber, { from: this.o.from });
    } catch (err) {
      this.failed('subscribe', 'warn', { err: (err as Error).message }, `cannot subscribe to the event journal: ${(err as Error).message}`);
      this.schedule(() => this.start(), this.retryDelayNow());
      return;
    }
    this.next = this.acked + 1;
    this.state = 'idle';
    this.schedule(() => this.step(), 0);
  }

  /** Stops: a request in flight is abandoned (its batch goes again at the next start); an ack in
   *  progress finishes. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    this.cancelTimer();
    this.abort?.abort();
    await this.inflight;
  }

  stats(): ExporterStats {
    const lastSeq = this.o.journal.lastSeq();
    const lagRecords = Math.max(0, lastSeq - this.acked);
    // The batch being built or retried starts right after the checkpoint. No journal read here:
    // it would move the reader's cursor and cost the next batch a scan of its segment.
    const oldest = this.batch?.firstTime ?? null;
    return {
      name: this.o.name,
      kind: this.k.kind,
      subscriber: this.subscriber,
      state: this.state,
      checkpoint: this.acked,
      lastSeq,
      lagRecords,
      lagSeconds: lagRecords === 0 || oldest === null ? 0 : Math.max(0, (this.clock.now() - oldest) / 1000),
      batchesSent: this.counts.batches,
      recordsSent: this.counts.records,
      retries: this.counts.retries,
      failing: this.failing,
      lastError: this.lastError,
      lastSuccessAt: this.lastSuccessAt,
      retryAt: this.state === 'retrying' ? this.retryAt : null,
    };
  }

  private schedule(fn: () => void, ms: number): void {
    this.cancelTimer();
    if (this.state === 'stopped') return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      if (this.state !== 'stopped') fn();
    }, ms);
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private full(b: Batch<P> | null): boolean {
    return b !== null && (b.parts.length >= this.o.batchSize || b.bytes >= this.o.batchBytes);
  }

  /** One turn: read a chunk into the batch; send it when full, or when the journal has no more
   *  and Max_Delay has passed; otherwise come back (at once while there is more to read). */
  private step(): void {
    if (this.full(this.batch)) return this.send();
    let records: EventRecord[];
    let more: boolean;
    if (this.leftover.length > 0) {
      records = this.leftover;
      this.leftover = [];
      more = true;
    } else {
      const want = Math.min(this.chunk, this.o.batchSize - (this.batch?.parts.length ?? 0));
      let r: EventReadResult;
      try {
        // Caught up: the spool's counter says so without listing the journal's directory.
        r = this.o.journal.lastSeq() < this.next ? { records: [], next: this.next } : this.o.journal.read(this.next, want);
      } catch (err) {
        this.failed('read', 'warn', { err: (err as Error).message }, `cannot read the event journal: ${(err as Error).message}`);
        return this.schedule(() => this.step(), this.retryDelayNow());
      }
      if (r.missing !== undefined) {
        this.o.logger.error(
          { exporter: this.o.name, subscriber: this.subscriber, fromSeq: r.missing[0], toSeq: r.missing[1] },
          `${this.k.label}: records lost before this exporter read them (dropped at the journal's cap, or damaged)`,
        );
      }
      // Always where the read stopped: the journal's reader keeps its file position for it.
      this.next = r.next;
      records = r.records;
      more = r.records.length >= want;
    }
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      const part = this.encode(rec);
      if (part !== null) {
        const bytes = Buffer.byteLength(part.json) + 1;
        const b = this.batch;
        if (b !== null && b.parts.length > 0 && b.bytes + bytes > this.o.batchBytes) {
          // Batch_Bytes reached: this record and the rest of the read open the next batch.
          this.leftover = records.slice(i);
          return this.send();
        }
        if (b === null) this.batch = { parts: [part], bytes: bytes + 1, lastSeq: rec.seq, firstTime: rec.time, openedAt: this.clock.now(), prepared: null };
        else {
          b.parts.push(part);
          b.bytes += bytes;
          b.lastSeq = rec.seq;
        }
      } else if (this.batch !== null) this.batch.lastSeq = rec.seq;
      else this.skipped = rec.seq;
      if (this.full(this.batch)) {
        this.leftover = records.slice(i + 1);
        return this.send();
      }
    }
    if (more) return this.schedule(() => this.step(), 0);
    // The journal has nothing more for now.
    const b = this.batch;
    if (b === null) {
      if (this.skipped > this.acked) return this.ackOnly(this.skipped);
      this.state = 'idle';
      return this.schedule(() => this.step(), this.pollMs);
    }
    this.state = 'batching';
    const wait = b.openedAt + this.o.maxDelayMs - this.clock.now();
    if (wait <= 0) return this.send();
    this.schedule(() => this.step(), Math.min(wait, this.pollMs));
  }


  private encode(rec: EventReadResult['records'][number]): ExportRecord | null {
    const ctx = { seq: rec.seq, time: rec.time, node: this.o.node, ...(rec.id !== null ? { id: rec.id } : {}) };
    try {
      const r = decodeEvent(rec.data, ctx) as unknown as Record<string, unknown>;
      if (this.o.types.length > 0 && !this.o.types.includes(r.type as string)) return null;
      const node = r.node as string;
      return { seq: rec.seq, node, type: r.type as string, json: JSON.stringify({ record_id: `${node}:${rec.seq}`, ...r }) };
    } catch (err) {
      // A newer schema's record or damaged bytes: passed on as text (never dropped silently).
      if (this.o.types.length > 0) return null;
      if (!this.reportedText) {
        this.reportedText = true;
        this.o.logger.warn({ exporter: this.o.name, seq: rec.seq, err: (err as Error).message }, `${this.k.label}: a record this version cannot decode is sent as record_text`);
      }
      return { seq: rec.seq, node: this.o.node, type: 'undecoded', json: JSON.stringify({ record_id: `${this.o.node}:${rec.seq}`, seq: rec.seq, time: rec.time, node: this.o.node, ...(rec.id !== null ? { id: rec.id } : {}), record_text: rec.data.toString('utf8') }) };
    }
  }

  private send(): void {
    const b = this.batch!;
    b.prepared ??= this.sender.prepare(b.parts);
    this.state = 'sending';
    const ac = (this.abort = new AbortController());
    this.inflight = this.sender.send(b.prepared, ac.signal).then(
      (result) => this.onResult(b, result),
      (err: NodeJS.ErrnoException) => {
        if (this.state === 'stopped') return;
        const reason = err.code ?? err.message;
        this.failed(`error ${reason}`, 'warn', { err: err.message, code: err.code }, `request failed: ${err.code === undefined ? err.message : `${err.code} ${err.message}`}`);
        this.retryLater(undefined);
      },
    );
  }

  private async onResult(b: Batch<P>, result: SendResult): Promise<void> {
    if (this.state === 'stopped') return;
    if (result.ok) {
      try {
        await this.o.journal.ack(this.subscriber, b.lastSeq);
      } catch (err) {
        // The receiver has the batch; it goes again (a duplicate the record ids identify).
        this.failed('ack', 'error', { err: (err as Error).message, seq: b.lastSeq }, `cannot write the subscriber's checkpoint: ${(err as Error).message}`);
        return this.retryLater(undefined);
      }
      this.counts.batches++;
      this.counts.records += b.parts.length;
      this.batch = null;
      this.succeeded(b.lastSeq);
      return this.schedule(() => this.step(), 0);
    }
    // A receiver that refuses (a wrong URL, a bad token, no stream) is a misconfiguration the
    // sender reports at ERROR, yet retried, since skipping the batch would lose its records.
    this.failed(result.key, result.level, result.detail, result.reason);
    this.retryLater(result.retryAfterMs);
  }

  private ackOnly(seq: number): void {
    this.state = 'sending';
    this.inflight = this.o.journal.ack(this.subscriber, seq).then(
      () => {
        this.acked = Math.max(this.acked, seq);
        this.schedule(() => this.step(), 0);
      },
      (err: Error) => {
        this.failed('ack', 'error', { err: err.message, seq }, `cannot write the subscriber's checkpoint: ${err.message}`);
        this.state = 'retrying';
        this.schedule(() => this.step(), this.retryDelayNow());
      },
    );
  }

  private succeeded(seq: number): void {
    this.acked = Math.max(this.acked, seq);
    this.lastSuccessAt = this.clock.now();
    if (this.failing > 0) {
      this.o.logger.info(
        { exporter: this.o.name, failedAttempts: this.failing, downMs: this.clock.now() - this.failingSince, checkpoint: seq },
        `${this.k.label}: the receiver accepts again; export resumed`,
      );
    }
    this.failing = 0;
    this.retryAt = null;
    this.reported.clear();
  }

  /** Counts a failure and logs it once per distinct reason until the next success. */
  private failed(key: string, level: 'warn' | 'error', detail: object, reason: string): void {
    const now = this.clock.now();
    if (this.failing === 0) this.failingSince = now;
    this.failing++;
    this.counts.retries++;
    this.lastError = { at: now, reason };
    if (this.reported.has(key)) return;
    this.reported.add(key);
    const b = this.batch;
    const obj = { exporter: this.o.name, ...detail, ...(b !== null ? { firstSeq: this.acked + 1, lastSeq: b.lastSeq, records: b.parts.length } : {}) };
    if (level === 'error') this.o.logger.error(obj, `${this.k.label}: ${reason}; the batch is retried with backoff (nothing is skipped)`);
    else this.o.logger.warn(obj, `${this.k.label}: ${reason}; the batch is retried with backoff`);
  }

  private retryDelayNow(): number {
    return retryDelay(Math.max(1, this.failing), this.o.minRetryMs, this.o.maxRetryMs, this.random());
  }

  private retryLater(retryAfterMs: number | undefined): void {
    let delay = this.retryDelayNow();
    if (retryAfterMs !== undefined) delay = Math.max(delay, Math.min(retryAfterMs, this.o.maxRetryMs));
    this.state = 'retrying';
    this.retryAt = this.clock.now() + delay;
    this.schedule(() => this.send(), delay);
  }
}
