// Log_Aggregator (issue 15): pulls every member's event journal over the cluster link and writes
// it to files laid out by date, log and node. Per member one loop: read from the mark (store.ts),
// write and sync, move the mark, then ack the member's subscriber "aggregator-<this node>" so it
// may trim. Errors back off (1 s doubling to 30 s) and are logged once per distinct failure: WARN,
// ERROR once a member that is in the view stayed unreachable for UNREACHABLE_ERROR_MS. Main thread;
// asynchronous socket and file I/O only.
import type { Logger } from 'pino';
import type { JournalBatch } from '../mmove/journal.js';
import { JournalLink, type LinkOptions } from './link.js';
import { MemberStore } from './store.js';

/** Where a member's ECCluster_Listener is, or null (not known now: not in the view). */
export interface MemberAddress {
  host: string;
  port: number;
}

export interface AggregatorOptions {
  /** This node's Nodename: the subscriber is "aggregator-<nodeName>". */
  nodeName: string;
  directory: string;
  logfile: string;
  members: readonly string[];
  /** The member's address now (a fixed one, or the live view's). */
  address(member: string): MemberAddress | null;
  /** Whether the member is in the cluster's view now (an unreachable one out of it is expected). */
  inView(member: string): boolean;
  secret: string | null;
  tls: boolean;
  /** Source address of the connections (this node's cluster link), if any. */
  localAddress?: string;
  logger: Logger;
  now?: () => number;
  /** Records per read. Default 500. */
  batch?: number;
  /** Wait between reads when a member has nothing new. Default 500 ms. */
  pollMs?: number;
  /** Backoff after a failure: first and longest wait. Default 1 s doubling to 30 s. */
  retryMs?: readonly [number, number];
  /** Connects and reads (tests give a fake); default JournalLink.open. */
  connect?: (o: LinkOptions) => Promise<Pick<JournalLink, 'read' | 'ack' | 'close' | 'alive'>>;
}

/** The log name (%{l}) of the event journal: the one log there is so far. */
export const EVENTS_LOG = 'events';
/** A member in the view unreachable this long is logged at ERROR (once). */
export const UNREACHABLE_ERROR_MS = 5 * 60_000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;

/** One member's aggregation, for the console and metrics. */
export interface MemberStatus {
  node: string;
  /** Highest seq durably aggregated (the mark). */
  seq: number;
  /** The member's newest seq at the last read; null before the first. */
  last: number | null;
  /** Records the member has that are not aggregated yet (null: not known). */
  lagRecords: number | null;
  /** Seconds since the newest aggregated record was written while records are behind; 0 when caught up. */
  lagSeconds: number | null;
  connected: boolean;
  /** The failure now, if the loop is backing off. */
  error: string | null;
  /** Records written since start. */
  written: number;
}

export class Aggregator {
  private readonly loops: MemberLoop[];
  private stopped = false;

  constructor(private readonly o: AggregatorOptions) {
    this.loops = [...new Set(o.members)].map((m) => new MemberLoop(o, m, () => this.stopped));
  }

  get subscriber(): string {
    return `aggregator-${this.o.nodeName}`;
  }

  start(): void {
    if (this.o.secret === null) this.o.logger.error('Log_Aggregator: no Cluster_Secret; members refuse to serve their journals, nothing is aggregated');
    for (const l of this.loops) l.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops.map((l) => l.stop()));
  }

  status(): MemberStatus[] {
    return this.loops.map((l) => l.status());
  }

  /** `log aggregator`: one line per member. */
  report(): string {
    const rows = this.status();
    const out = [`log aggregator: ${this.o.directory} (subscriber ${this.subscriber})`];
    out.push('member            mark        member-last   lag-records   lag-seconds  state');
    for (const s of rows) {
      const v = (n: number | null): string => (n === null ? '-' : String(n));
      out.push(`${s.node.padEnd(16)}  ${v(s.seq).padStart(10)}  ${v(s.last).padStart(11)}  ${v(s.lagRecords).padStart(12)}  ${v(s.lagSeconds).padStart(12)}  ${s.error !== null ? `retrying: ${s.error}` : s.connected ? 'connected' : 'connecting'}`);
    }
    return out.join('\n') + '\n';
  }
}

class MemberLoop {
  private store: MemberStore | null = null;
  private link: Awaited<ReturnType<NonNullable<AggregatorOptions['connect']>>> | null = null;
  private last: number | null = null;
  private error: string | null = null;
  /** The failure last logged, so a repeated one is not logged again. */
  private logged: string | null = null;
  private failingSince: number | null = null;
  private escalated = false;
  private written = 0;
  /** The seq this member last confirmed an ack for in this run (-1: none yet, so a mark from the
   *  last run is acked once again: its ack may have been lost). */
  private acked = -1;
  private timer: NodeJS.Timeout | null = null;
  private sleeper: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private readonly now: () => number;

  constructor(private readonly o: AggregatorOptions, readonly node: string, private readonly stopped: () => boolean) {
    this.now = o.now ?? Date.now;
  }

  start(): void {
    this.running = this.run();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.sleeper?.();
    this.link?.close();
    await this.running;
  }

  status(): MemberStatus {
    const seq = this.store?.seq ?? 0;
    const lag = this.last === null ? null : Math.max(0, this.last - seq);
    const lagSeconds = lag === null ? null : lag === 0 ? 0 : this.store !== null && this.store.time > 0 ? Math.max(0, Math.round((this.now() - this.store.time) / 1000)) : null;
    return { node: this.node, seq, last: this.last, lagRecords: lag, lagSeconds, connected: this.link?.alive === true, error: this.error, written: this.written };
  }

  private async run(): Promise<void> {
    const [min, max] = this.o.retryMs ?? [BACKOFF_MIN_MS, BACKOFF_MAX_MS];
    let backoff = min;
    while (!this.stopped()) {
      try {
        const more = await this.step();
        backoff = min;
        if (this.error !== null) {
          this.o.logger.info({ member: this.node, seq: this.store?.seq }, 'log aggregator: member reachable again, aggregation resumed');
          this.error = null;
          this.logged = null;
          this.failingSince = null;
          this.escalated = false;
        }
        if (!more) await this.sleep(this.o.pollMs ?? 500);
      } catch (err) {
        this.link?.close();
        this.link = null;
        if (this.stopped()) break;
        this.failed(err as Error);
        await this.sleep(backoff);
        backoff = Math.min(max, backoff * 2);
      }
    }
    this.link?.close();
    this.link = null;
  }

  /** One read and what follows it; true when the member had a full batch (read again at once). */
  private async step(): Promise<boolean> {
    this.store ??= await MemberStore.open({ directory: this.o.directory, logfile: this.o.logfile, log: EVENTS_LOG, node: this.node, logger: this.o.logger });
    const store = this.store;
    if (this.link === null || !this.link.alive) {
      const at = this.o.address(this.node);
      if (at === null) throw new Error(`no ECCluster_Listener address known for ${this.node} (not in the cluster's view?)`);
      if (this.o.secret === null) throw new Error('no Cluster_Secret configured on this node');
      const connect = this.o.connect ?? JournalLink.open;
      this.link = await connect({
        host: at.host, port: at.port, nodeName: this.o.nodeName, secret: this.o.secret, tls: this.o.tls,
        ...(this.o.localAddress !== undefined ? { localAddress: this.o.localAddress } : {}),
      });
    }
    const max = this.o.batch ?? 500;
    const from = store.seq + 1;
    const batch: JournalBatch = await this.link.read(from, max);
    this.last = batch.last;
    if (batch.last < store.seq) {
      throw new Error(`the member's journal ends at seq ${batch.last}, below this aggregator's mark ${store.seq} (its journal was reset?); nothing is read until it passes the mark`);
    }
    const firstSeq = batch.records[0]?.seq;
    if (firstSeq !== undefined && firstSeq > from) {
      if (store.seq > 0) this.o.logger.error({ member: this.node, from, first: firstSeq }, `log aggregator: records ${from} to ${firstSeq - 1} were removed from the member's journal before this aggregator read them`);
      else this.o.logger.info({ member: this.node, first: firstSeq }, 'log aggregator: first read of this member: starting at the oldest record its journal holds');
    }
    if (batch.records.length > 0) this.written += await store.write(batch.records);
    // Only now, with the records and the mark durable here, may the member forget them (an ack
    // lost with a cut link is sent again with the next read).
    if (store.seq > 0 && store.seq > this.acked) {
      await this.link.ack(`aggregator-${this.o.nodeName}`, store.seq);
      this.acked = store.seq;
    }
    return batch.records.length > 0 && batch.next <= batch.last;
  }

  private failed(err: Error): void {
    const now = this.now();
    this.failingSince ??= now;
    const msg = err.message;
    this.error = msg;
    if (msg !== this.logged) {
      this.logged = msg;
      this.o.logger.warn({ member: this.node, err: msg }, 'log aggregator: cannot read the member\'s journal; retrying');
    }
    if (!this.escalated && now - this.failingSince >= UNREACHABLE_ERROR_MS && this.o.inView(this.node)) {
      this.escalated = true;
      this.o.logger.error({ member: this.node, err: msg, sinceMs: now - this.failingSince }, 'log aggregator: a member in the view has been unreachable for long; its journal grows');
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped()) return Promise.resolve();
    return new Promise((resolve) => {
      this.sleeper = () => {
        this.sleeper = null;
        if (this.timer !== null) clearTimeout(this.timer);
        this.timer = null;
        resolve();
      };
      this.timer = setTimeout(this.sleeper, ms);
    });
  }
}
