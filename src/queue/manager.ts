// The queue manager (main thread): every queued message of this node, split into delivery parts
// per (binding, destination domain); which part goes out next, over how many connections; what a
// delivery result means (done, retry with backoff, bounce with a DSN); and the retry state that
// must survive a restart, written to the spool. It never touches bodies except to copy a bounced
// message's header section into its DSN. Workers do the SMTP (workers/worker.ts 'deliver').
//
// Queues: one per (binding group, binding, domain), each a FIFO of ready parts; deferred parts of
// all queues wait in one retry heap ordered by next attempt. A queue runs at most
// Max_Outbound_Connections batches at once; a batch is at most Max_Deliveries_Per_Connection
// messages delivered over one pooled connection by one worker.
//
// #mmove (cluster): a part's home is its (group, binding, domain) queue. When another node owns
// the binding's Bind_Address (options.route), the part sits in the #mmove queue of that node
// instead (shown as default/#mmove, the node in the domain column) and is moved there; its home
// and retry state go along. reroute() re-places the parts of the bindings whose owner changed.
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { buildDsn, headerSection, type DsnRecipient } from '../delivery/dsn.js';
import type { MessageResult, RecipientResult } from '../delivery/results.js';
import { enhancedOf } from '../smtp/replies.js';
import type { SpoolWriter } from '../spool/index.js';
import type { MmoveItem, MmoveResult } from '../mmove/client.js';
import type { DeliveryBatch } from '../workers/protocol.js';
import { encodeEnvelope } from '../message/envelope.js';
import { domainOf, splitByDomain } from '../message/recipients.js';
import { encodeState, type PersistedPart, type PersistedState } from '../message/retry-state.js';
import type { MailqRow, QueueState } from './queue.js';
import { DEFERRED, FREE, HOLD, INFLIGHT, Interner, PartStore, READY, RetryHeap } from './store.js';

/** A message as the queue takes it: from a worker's accepted event or from spool recovery. */
export interface QueueInput {
  id: string;
  size: number;
  arrival: number;
  from: string;
  rcpt: string[];
  /** The X-Binding value when it came from a trusted injector (kept for `rebind`), else null. */
  xBinding: string | null;
  listener: string | null;
  bindingGroup: string;
  binding: string;
  /** #mmove hops it made before it came here (a moved message), and the node that first took it. */
  hops?: number;
  origin?: string | null;
}

/** Where a binding's mail goes now: delivered here, moved to the node that owns the binding's
 *  address, or kept here undelivered while no node owns it (no quorum, an election pending). */
export type Route = { readonly to: 'local' } | { readonly to: 'wait' } | { readonly to: 'node'; readonly node: string };
export const LOCAL_ROUTE: Route = { to: 'local' };
/** The virtual binding (in the default group) of mail waiting to move to another node. */
export const MMOVE_BINDING = '#mmove';

export interface QueueSpool {
  markDone(ids: string[]): Promise<void>;
  update(id: string, state: Buffer): Promise<void>;
  read(id: string): Buffer;
  writer(): SpoolWriter;
}

export interface QueueManagerOptions {
  config: () => Config;
  spool: QueueSpool;
  /** Runs a batch on a worker; resolves with one result per message, in order. */
  deliver: (batch: DeliveryBatch) => Promise<MessageResult[]>;
  /** Binding policy for `rebind` and for DSNs (BindingPolicy.assignStored). */
  assign: (m: { xBinding: string | null; listener: string | null; from: string }) => { bindingGroup: string; binding: string };
  logger: Logger;
  /** Per-recipient outcomes, for the metrics ('moved': handed to another node by #mmove). */
  onOutcome?: (status: 'delivered' | 'deferred' | 'bounced' | 'moved', count: number) => void;
  /** Where a binding's mail goes (the cluster's owner of its Bind_Address). Default: local. */
  route?: (bindingGroup: string, binding: string) => Route;
  /** Moves messages to a node (#mmove); one result per item, in order; ok only after its 250. */
  move?: (node: string, items: MmoveItem[]) => Promise<MmoveResult[]>;
  /** Mmove_Connections: how many move batches may run per peer (twice this). */
  moveConnections?: () => number;
  /** Clock, ms since the epoch (tests). */
  now?: () => number;
}

/** Which parts a console command applies to. */
export interface Selector {
  id?: string;
  binding?: string;
  domain?: string;
}

export interface PartView {
  /** The part's own binding and domain (its home queue). */
  bindingGroup: string;
  binding: string;
  domain: string;
  /** The node it waits to be moved to (it is in default/#mmove), or null. */
  via: string | null;
  state: QueueState | 'sending';
  attempts: number;
  nextAttempt: number | null;
  rcpt: string[];
}

interface DestQueue {
  readonly idx: number;
  readonly bindingGroup: string;
  readonly binding: string;
  readonly domain: string;
  head: number;
  tail: number;
  ready: number;
  inflight: number;
  deferred: number;
  hold: number;
  /** Batches running now: connections in use. */
  batches: number;
  gen: number;
  suspended: boolean;
  maxConnections: number;
  maxPerConnection: number;
  retryMs: number;
  expireMs: number;
  /** The peer node of a #mmove queue (binding MMOVE_BINDING, domain = the node); null otherwise. */
  readonly moveTo: string | null;
  /** A #mmove queue whose peer failed waits until then (ms since the epoch). */
  pausedUntil: number;
}

const NONE = -1;
/** Longest wait of one timer (setTimeout's limit is 2^31-1 ms); the heap is looked at again then. */
const MAX_TIMER_MS = 3_600_000;
/** Backoff stops doubling here (or at Retry_Interval if that is longer). */
const MAX_BACKOFF_MS = 4 * 3_600_000;
/** A batch whose worker died or timed out: its parts are tried again after this. */
const LOST_BATCH_RETRY_MS = 5_000;
/** A DSN that could not be spooled (disk full): its recipients wait this long and bounce again. */
const DSN_RETRY_MS = 60_000;
/** Messages per batch at most, whatever Max_Deliveries_Per_Connection says: a batch is one worker
 *  call, and smaller batches spread a queue over more connections when it is short. */
const MAX_BATCH = 32;
/** Messages per #mmove batch: the client spreads one over Mmove_Connections pipelined connections. */
const MAX_MOVE_BATCH = 256;
/** A peer that did not take a move (gone, 4xx, no address known): its #mmove queue waits this
 *  long. An owner change re-places the mail sooner (reroute). */
const MOVE_RETRY_MS = 5_000;
/** A peer that refused our cluster credentials (5.7.x): a config problem, retried less often. */
const MOVE_AUTH_RETRY_MS = 60_000;

export class QueueManager {
  private readonly store = new PartStore();
  private readonly heap = new RetryHeap(this.store);
  private readonly names = new Interner();
  private readonly byId = new Map<string, number>();
  private readonly queues: DestQueue[] = [];
  private readonly queueIndex = new Map<string, number>();
  private readonly runnable = new Set<DestQueue>();
  /** DSNs being spooled, per original id: its done-mark waits for them. */
  private readonly dsnPending = new Map<string, Promise<void>>();
  private readonly doneBatch: string[] = [];
  private gen = 0;
  /** Body bytes of the queued messages (each message once). */
  private bytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private pumpQueued = false;
  private stopped = false;
  private batchesInFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly now: () => number;
  private readonly counters = { delivered: 0, deferred: 0, bounced: 0, dsn: 0, dsnFailed: 0, moved: 0, moveFailed: 0 };
  /** The route of each (group, binding) as last looked up; reroute() compares against it. */
  private readonly routes = new Map<string, Route>();

  constructor(private readonly o: QueueManagerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Messages (not parts) queued. */
  get size(): number {
    return this.byId.size;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Queues a message: one part per recipient domain, ready at once; or, when `state` is given
   *  (recovery), the parts, attempts and next attempts it records. False if already queued. */
  add(m: QueueInput, state: PersistedState | null = null): boolean {
    if (this.byId.has(m.id)) return false;
    const parts: PersistedPart[] =
      state !== null && state.p.length > 0
        ? state.p
        : splitByDomain(m.rcpt).map((r) => ({ g: m.bindingGroup, b: m.binding, r, a: 0, n: 0 }));
    let first = NONE;
    for (const p of parts) {
      if (p.r.length === 0) continue;
      const s = this.store.alloc();
      const st = this.store;
      st.id[s] = m.id;
      st.from[s] = m.from;
      st.rcpts[s] = p.r.join('\n');
      st.size[s] = m.size;
      st.arrival[s] = m.arrival;
      st.attempts[s] = Math.min(p.a, 0xffff);
      st.next[s] = p.n;
      st.xBinding[s] = this.names.id(m.xBinding);
      st.listener[s] = this.names.id(m.listener);
      st.persisted[s] = state !== null ? 1 : 0;
      st.hops[s] = Math.min(m.hops ?? 0, 0xff);
      st.origin[s] = this.names.id(m.origin ?? null);
      st.home[s] = this.queueFor(p.g, p.b, domainOf(p.r[0] ?? '')).idx;
      if (first === NONE) first = s;
      else st.link(first, s);
      this.settle(s, p.h === 1);
    }
    if (first === NONE) return false;
    this.byId.set(m.id, first);
    this.bytes += m.size;
    return true;
  }

  /** Starts delivering (after recovery has queued what the spool holds). */
  start(): void {
    this.stopped = false;
    this.armTimer();
    this.schedulePump();
  }

  /** Stops handing out batches and waits (up to timeoutMs) for those in flight to report. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    if (this.batchesInFlight > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    await Promise.allSettled([...this.dsnPending.values()]);
    await this.flushDone();
  }

  /** The config changed: per-queue limits are looked up again, and waiting parts may go now. */
  configChanged(): void {
    this.gen++;
    for (const q of this.queues) if (q.ready > 0) this.runnable.add(q);
    this.schedulePump();
  }

  // --- views ---------------------------------------------------------------------------------------

  /** Rows per (group, binding, domain); parts count, so a message to two domains is in two rows.
   *  Mail waiting to move is in default/#mmove rows, one per destination node (the domain column). */
  mailq(filter: { domain?: string; binding?: string } = {}): MailqRow[] {
    const d = filter.domain?.toLowerCase();
    const rows: MailqRow[] = [];
    for (const q of this.queues) {
      if (q.ready + q.inflight + q.deferred + q.hold === 0) continue;
      if (filter.binding !== undefined && q.binding !== filter.binding) continue;
      if (d !== undefined && q.domain !== d) continue;
      rows.push({ bindingGroup: q.bindingGroup, binding: q.binding, domain: q.domain, active: q.ready + q.inflight, deferred: q.deferred, hold: q.hold });
    }
    return rows.sort((a, b) => a.bindingGroup.localeCompare(b.bindingGroup) || a.binding.localeCompare(b.binding) || a.domain.localeCompare(b.domain));
  }

  /** Totals: parts per state, messages, and the messages' body bytes. */
  counts(): Record<QueueState, number> & { messages: number; bytes: number } {
    const c = { active: 0, deferred: 0, hold: 0, messages: this.byId.size, bytes: this.bytes };
    for (const q of this.queues) {
      c.active += q.ready + q.inflight;
      c.deferred += q.deferred;
      c.hold += q.hold;
    }
    return c;
  }

  /** Parts per (group, binding) and state. */
  byBinding(): { bindingGroup: string; binding: string; active: number; deferred: number; hold: number }[] {
    const rows = new Map<string, { bindingGroup: string; binding: string; active: number; deferred: number; hold: number }>();
    for (const q of this.queues) {
      const key = `${q.bindingGroup}\0${q.binding}`;
      let r = rows.get(key);
      if (r === undefined) rows.set(key, (r = { bindingGroup: q.bindingGroup, binding: q.binding, active: 0, deferred: 0, hold: 0 }));
      r.active += q.ready + q.inflight;
      r.deferred += q.deferred;
      r.hold += q.hold;
    }
    return [...rows.values()];
  }

  /** One message's parts, or null. */
  show(id: string): { id: string; from: string; size: number; arrival: number; parts: PartView[] } | null {
    const first = this.byId.get(id);
    if (first === undefined) return null;
    const st = this.store;
    const parts = st.ringOf(first).map((s): PartView => {
      const q = this.queues[st.home[s]!]!;
      const state = st.state[s]!;
      return {
        bindingGroup: q.bindingGroup, binding: q.binding, domain: q.domain, via: this.queues[st.queue[s]!]!.moveTo,
        state: state === INFLIGHT ? 'sending' : state === READY ? 'active' : state === DEFERRED ? 'deferred' : 'hold',
        attempts: st.attempts[s]!,
        nextAttempt: state === DEFERRED ? st.next[s]! : null,
        rcpt: st.rcpts[s]!.split('\n'),
      };
    });
    return { id, from: st.from[first]!, size: st.size[first]!, arrival: st.arrival[first]!, parts };
  }

  stats(): typeof this.counters & { parts: number; messages: number; queues: number; batches: number } {
    return { ...this.counters, parts: this.store.count, messages: this.byId.size, queues: this.queues.length, batches: this.batchesInFlight };
  }

  // --- operator actions ----------------------------------------------------------------------------

  /** Holds the selected parts that are not being sent right now; returns how many. */
  hold(sel: Selector): number {
    const touched = new Set<string>();
    let n = 0;
    for (const s of this.select(sel)) {
      const state = this.store.state[s]!;
      if (state !== READY && state !== DEFERRED) continue;
      this.leave(s);
      this.enter(s, HOLD);
      touched.add(this.store.id[s]!);
      n++;
    }
    for (const id of touched) this.persist(id);
    return n;
  }

  /** Releases held parts for an attempt at once; returns how many. */
  release(sel: Selector): number {
    const touched = new Set<string>();
    let n = 0;
    for (const s of this.select(sel)) {
      if (this.store.state[s] !== HOLD) continue;
      this.leave(s);
      this.store.next[s] = 0;
      this.settle(s, false);
      touched.add(this.store.id[s]!);
      n++;
    }
    for (const id of touched) this.persist(id);
    this.schedulePump();
    return n;
  }

  /** Runs binding assignment again for queued parts of `binding` (or all) [in `domain`], e.g.
   *  after the config changed; parts being sent are left alone. Returns how many parts moved. */
  rebind(binding: string | 'all', domain?: string): number {
    const touched = new Set<string>();
    let moved = 0;
    const st = this.store;
    for (const s of this.queuedParts(binding === 'all' ? undefined : binding, domain)) {
      const q = this.queues[st.home[s]!]!;
      const a = this.o.assign({ xBinding: this.names.name(st.xBinding[s]!), listener: this.names.name(st.listener[s]!), from: st.from[s]! });
      if (a.bindingGroup === q.bindingGroup && a.binding === q.binding) continue;
      const held = st.state[s] === HOLD;
      this.leave(s);
      st.home[s] = this.queueFor(a.bindingGroup, a.binding, q.domain).idx;
      this.settle(s, held);
      moved++;
      if (st.persisted[s] === 1) touched.add(st.id[s]!);
    }
    for (const id of touched) this.persist(id);
    this.schedulePump();
    return moved;
  }

  // --- state transitions ---------------------------------------------------------------------------

  private enter(s: number, state: typeof READY | typeof INFLIGHT | typeof DEFERRED | typeof HOLD): void {
    const st = this.store;
    const q = this.queues[st.queue[s]!]!;
    st.state[s] = state;
    if (state === READY) {
      st.prevLink[s] = q.tail;
      st.nextLink[s] = NONE;
      if (q.tail === NONE) q.head = s;
      else st.nextLink[q.tail] = s;
      q.tail = s;
      q.ready++;
      if (!this.runnable.has(q)) {
        this.runnable.add(q);
        this.schedulePump();
      }
    } else if (state === INFLIGHT) q.inflight++;
    else if (state === DEFERRED) {
      q.deferred++;
      this.heap.push(s);
      if (st.next[s]! < this.timerAt) this.armTimer();
    } else q.hold++;
  }

  private leave(s: number): void {
    const st = this.store;
    const q = this.queues[st.queue[s]!]!;
    const state = st.state[s]!;
    if (state === READY) {
      const p = st.prevLink[s]!;
      const n = st.nextLink[s]!;
      if (p === NONE) q.head = n;
      else st.nextLink[p] = n;
      if (n === NONE) q.tail = p;
      else st.prevLink[n] = p;
      st.prevLink[s] = NONE;
      st.nextLink[s] = NONE;
      q.ready--;
    } else if (state === INFLIGHT) q.inflight--;
    else if (state === DEFERRED) {
      this.heap.remove(s);
      q.deferred--;
    } else if (state === HOLD) q.hold--;
    st.state[s] = FREE;
  }

  /** Takes a finished part out; the message is done when its last part is. */
  private finish(s: number): void {
    const st = this.store;
    const id = st.id[s]!;
    this.leave(s);
    const other = st.unlink(s);
    const size = st.size[s]!;
    st.free(s);
    if (other === NONE) {
      this.byId.delete(id);
      this.bytes -= size;
      this.done(id);
    } else {
      if (this.byId.get(id) === s) this.byId.set(id, other);
      // The finished recipients must not be sent again after a restart.
      this.persist(id);
    }
  }

  private done(id: string): void {
    const gate = this.dsnPending.get(id);
    if (gate !== undefined) {
      void gate.then(() => {
        if (!this.byId.has(id)) this.done(id);
      });
      return;
    }
    if (this.doneBatch.length === 0) setImmediate(() => void this.flushDone());
    this.doneBatch.push(id);
  }

  private async flushDone(): Promise<void> {
    if (this.doneBatch.length === 0) return;
    const ids = this.doneBatch.splice(0);
    try {
      await this.o.spool.markDone(ids);
    } catch (err) {
      // Not marked: the messages are delivered again after a restart (at least once, never lost).
      this.o.logger.error({ err, messages: ids.length }, 'spool: could not mark delivered messages done');
    }
  }

  /** Writes the message's parts to the spool's state record, so a restart resumes from here. */
  private persist(id: string): void {
    const first = this.byId.get(id);
    if (first === undefined) return;
    const st = this.store;
    const ring = st.ringOf(first);
    const p: PersistedPart[] = ring.map((s) => {
      const q = this.queues[st.home[s]!]!;
      const part: PersistedPart = { g: q.bindingGroup, b: q.binding, r: st.rcpts[s]!.split('\n'), a: st.attempts[s]!, n: st.next[s]! };
      if (st.state[s] === HOLD) part.h = 1;
      return part;
    });
    for (const s of ring) st.persisted[s] = 1;
    const state: PersistedState = { v: 1, p };
    this.o.spool.update(id, encodeState(state)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return; // done meanwhile
      this.o.logger.error({ err, id }, 'spool: could not save retry state');
    });
  }

  // --- scheduling ----------------------------------------------------------------------------------

  private queueFor(bindingGroup: string, binding: string, domain: string, moveTo: string | null = null): DestQueue {
    // A #mmove queue's key cannot collide with a binding's: names hold no control characters.
    const key = moveTo === null ? `${bindingGroup}\0${binding}\0${domain}` : `\u0001${moveTo}`;
    const i = this.queueIndex.get(key);
    if (i !== undefined) return this.queues[i]!;
    const q: DestQueue = {
      idx: this.queues.length, bindingGroup, binding, domain,
      head: NONE, tail: NONE, ready: 0, inflight: 0, deferred: 0, hold: 0, batches: 0,
      gen: -1, suspended: false, maxConnections: 1, maxPerConnection: 1, retryMs: 0, expireMs: 0,
      moveTo, pausedUntil: 0,
    };
    this.queues.push(q);
    this.queueIndex.set(key, q.idx);
    return q;
  }

  private settings(q: DestQueue): DestQueue {
    if (q.gen !== this.gen && q.moveTo !== null) {
      // A move is not a delivery: Suspend_Delivery does not keep mail on a node that cannot send it.
      q.suspended = false;
      q.maxConnections = 2 * Math.max(1, this.o.moveConnections?.() ?? 4);
      q.maxPerConnection = MAX_MOVE_BATCH;
      q.gen = this.gen;
    } else if (q.gen !== this.gen) {
      const cfg = this.o.config();
      const ctx = { bindingGroup: q.bindingGroup, binding: q.binding, domain: q.domain };
      q.suspended = cfg.lookup('Suspend_Delivery', ctx);
      q.maxConnections = cfg.lookup('Max_Outbound_Connections', ctx);
      q.maxPerConnection = cfg.lookup('Max_Deliveries_Per_Connection', ctx);
      q.retryMs = cfg.lookup('Retry_Interval', ctx);
      q.expireMs = cfg.lookup('Message_Expiration', ctx);
      q.gen = this.gen;
    }
    return q;
  }

  /** Queued (not in-flight) parts of the queues `match` accepts: one pass over the slots, however
   *  many queues match. A list, so callers may move parts between queues while they walk it. */
  private queuedParts(binding: string | undefined, domain: string | undefined): number[] {
    const d = domain?.toLowerCase();
    const match = this.queues.map((q) => (binding === undefined || q.binding === binding) && (d === undefined || q.domain === d));
    const st = this.store;
    const out: number[] = [];
    for (const s of st.slots()) {
      const state = st.state[s]!;
      const hit = match[st.home[s]!] === true || match[st.queue[s]!] === true;
      if (hit && (state === READY || state === DEFERRED || state === HOLD)) out.push(s);
    }
    return out;
  }

  private select(sel: Selector): number[] {
    if (sel.id === undefined) return this.queuedParts(sel.binding, sel.domain);
    const first = this.byId.get(sel.id);
    return first === undefined ? [] : this.store.ringOf(first);
  }

  private schedulePump(): void {
    if (this.pumpQueued || this.stopped) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.stopped) return;
    const now = this.now();
    for (const q of this.runnable) {
      this.settings(q);
      // A home queue runs only while its binding is local; a #mmove queue not while its peer waits.
      const blocked = q.suspended || (q.moveTo === null ? this.routeOf(q).to !== 'local' : q.pausedUntil > now);
      while (!blocked && q.ready > 0 && q.batches < q.maxConnections) {
        if (q.moveTo === null) this.dispatch(q);
        else this.dispatchMove(q);
      }
      // A blocked queue leaves the run list; configChanged(), reroute() or the pause's end put it back.
      if (q.ready === 0 || blocked) this.runnable.delete(q);
    }
  }

  private dispatch(q: DestQueue): void {
    const free = q.maxConnections - q.batches;
    const per = Math.max(1, Math.min(q.maxPerConnection, MAX_BATCH, Math.ceil(q.ready / free)));
    const slots = this.takeReady(q, per);
    q.batches++;
    this.batchesInFlight++;
    const batch = this.batchFor(q, slots);
    const t0 = this.now();
    this.o
      .deliver(batch)
      .then(
        (results) => this.onResults(slots, results),
        (err: unknown) => this.onLostBatch(q, slots, err),
      )
      .catch((err: unknown) => this.o.logger.error({ err }, 'queue manager: handling delivery results failed'))
      .finally(() => {
        q.batches--;
        this.batchesInFlight--;
        if (q.ready > 0) this.runnable.add(q);
        this.o.logger.trace({ binding: q.binding, domain: q.domain, messages: slots.length, ms: this.now() - t0 }, 'delivery batch done');
        if (this.batchesInFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
        this.schedulePump();
      });
  }

  /** Up to `n` parts from the head of the queue's FIFO, now in flight. */
  private takeReady(q: DestQueue, n: number): number[] {
    const slots: number[] = [];
    while (slots.length < n && q.head !== NONE) {
      const s = q.head;
      this.leave(s);
      this.enter(s, INFLIGHT);
      slots.push(s);
    }
    return slots;
  }

  private batchFor(q: DestQueue, slots: number[]): DeliveryBatch {
    const cfg = this.o.config();
    const ctx = { bindingGroup: q.bindingGroup, binding: q.binding, domain: q.domain };
    const bc = cfg.bindings.get(q.binding);
    const routes = cfg.lookup('Routes', ctx);
    const st = this.store;
    return {
      binding: {
        name: q.binding,
        bindAddress: bc?.options.Bind_Address ?? null,
        ehloHostname: cfg.lookup('Ehlo_Hostname', ctx) ?? cfg.global.Hostname,
      },
      target: { domain: q.domain, routes: routes.map((r) => ({ host: r.host, port: r.port })), maxDeliveriesPerConnection: q.maxPerConnection },
      tls: { mode: cfg.lookup('Outbound_TLS', ctx), verify: cfg.lookup('Outbound_TLS_Verify', ctx) },
      messages: slots.map((s) => ({ id: st.id[s]!, from: st.from[s]!, rcpt: st.rcpts[s]!.split('\n') })),
    };
  }

  /** The worker died or the call timed out: nothing is known, so every part is tried again. */
  private onLostBatch(q: DestQueue, slots: number[], err: unknown): void {
    this.o.logger.error({ err, binding: q.binding, domain: q.domain, messages: slots.length }, 'delivery batch lost (worker failed); retrying its messages');
    const st = this.store;
    for (const s of slots) {
      this.leave(s);
      st.next[s] = this.now() + LOST_BATCH_RETRY_MS;
      this.settle(s, false);
    }
  }

  private onResults(slots: number[], results: MessageResult[]): void {
    const st = this.store;
    const now = this.now();
    slots.forEach((s, i) => {
      const q = this.settings(this.queues[st.queue[s]!]!);
      const id = st.id[s]!;
      const rcpts = st.rcpts[s]!.split('\n');
      const res = results[i];
      const byRcpt = new Map<string, RecipientResult>();
      for (const r of res?.results ?? []) byRcpt.set(r.rcpt, r);
      const base = { id, binding: `${q.bindingGroup}/${q.binding}`, source: res?.localAddress ?? null };
      const deferred: string[] = [];
      const bounced: RecipientResult[] = [];
      let lastReply: RecipientResult | null = null;
      for (const rcpt of rcpts) {
        const r = byRcpt.get(rcpt);
        if (r === undefined) {
          deferred.push(rcpt);
          continue;
        }
        lastReply = r;
        const rec = { ...base, rcpt, destination: r.remoteAddress, host: r.remoteHost, reply: r.reply, origin: r.origin, attempt: st.attempts[s]! + 1 };
        if (r.status === 'delivered') {
          this.counters.delivered++;
          this.o.logger.info({ event: 'delivery', ...rec }, 'delivered');
        } else if (r.status === 'bounced') {
          this.counters.bounced++;
          bounced.push(r);
          this.o.logger.info({ event: 'permanent_failure', ...rec }, 'permanent failure');
        } else {
          deferred.push(rcpt);
          this.o.logger.info({ event: 'transient_failure', ...rec }, 'transient failure');
        }
      }
      const nDelivered = rcpts.length - deferred.length - bounced.length;
      if (nDelivered > 0) this.o.onOutcome?.('delivered', nDelivered);
      if (bounced.length > 0) this.o.onOutcome?.('bounced', bounced.length);

      const attempts = st.attempts[s]! + 1;
      if (deferred.length > 0 && now - st.arrival[s]! >= q.expireMs) {
        // Expired (Message_Expiration): what is left bounces with 4.4.7 and the last reply.
        for (const rcpt of deferred) {
          const r = byRcpt.get(rcpt) ?? lastReply;
          bounced.push({
            rcpt, status: 'bounced', code: r?.code ?? 0, enhanced: '4.4.7', reply: r?.reply ?? '', origin: r?.origin ?? 'local',
            remoteHost: r?.remoteHost ?? null, remoteAddress: r?.remoteAddress ?? null, expired: true,
          } as RecipientResult & { expired: true });
          this.o.logger.info({ event: 'permanent_failure', ...base, rcpt, reply: r?.reply ?? null, attempt: attempts, expired: true }, 'expired');
        }
        this.counters.bounced += deferred.length;
        this.o.onOutcome?.('bounced', deferred.length);
        deferred.length = 0;
      }
      if (bounced.length > 0) this.bounce(s, bounced, now);
      if (deferred.length > 0) {
        this.counters.deferred += deferred.length;
        this.o.onOutcome?.('deferred', deferred.length);
        this.leave(s);
        st.rcpts[s] = deferred.join('\n');
        // The binding left this node while the batch ran (its address moved; the connections
        // from it were cut). Our own failures then say nothing about the destination: no attempt
        // is counted and the part goes at once to where the binding is now.
        const away = this.routeOf(q).to !== 'local' && deferred.every((r) => (byRcpt.get(r)?.origin ?? 'local') === 'local');
        if (away) {
          st.next[s] = 0;
        } else {
          st.attempts[s] = Math.min(attempts, 0xffff);
          st.next[s] = now + backoff(q.retryMs, attempts);
        }
        // Its binding may have moved to another node meanwhile: then it goes there (#mmove).
        this.settle(s, false);
        this.persist(id);
      } else {
        this.finish(s);
      }
    });
  }

  /** Spools a DSN for bounced recipients (none for the null sender); the original's done-mark
   *  waits for it. A DSN that cannot be spooled puts its recipients back for a later bounce. */
  private bounce(s: number, rcpts: RecipientResult[], now: number): void {
    const st = this.store;
    const id = st.id[s]!;
    const from = st.from[s]!;
    if (from === '') {
      this.o.logger.info({ id, rcpt: rcpts.map((r) => r.rcpt) }, 'no DSN for a message from the null sender');
      return;
    }
    const arrival = st.arrival[s]!;
    const qi = st.home[s]!;
    const meta = { xBinding: this.names.name(st.xBinding[s]!), listener: this.names.name(st.listener[s]!), size: st.size[s]! };
    const gate = (this.dsnPending.get(id) ?? Promise.resolve())
      .then(() => this.spoolDsn(id, from, arrival, rcpts, now))
      .catch((err: unknown) => {
        this.counters.dsnFailed++;
        this.o.logger.error({ err, id }, 'could not spool a DSN; the recipients bounce again later');
        const q = this.queues[qi]!;
        this.add0(id, from, arrival, meta, q, rcpts.map((r) => r.rcpt), this.now() + DSN_RETRY_MS);
      })
      .finally(() => {
        if (this.dsnPending.get(id) === gate) this.dsnPending.delete(id);
      });
    this.dsnPending.set(id, gate);
  }

  /** Adds a deferred part to a message (a new message entry if it is gone meanwhile). */
  private add0(id: string, from: string, arrival: number, meta: { xBinding: string | null; listener: string | null; size: number }, q: DestQueue, rcpt: string[], next: number): void {
    const first = this.byId.get(id);
    if (first === undefined) {
      this.add({ id, size: meta.size, arrival, from, rcpt, xBinding: meta.xBinding, listener: meta.listener, bindingGroup: q.bindingGroup, binding: q.binding },
        { v: 1, p: [{ g: q.bindingGroup, b: q.binding, r: rcpt, a: 1, n: next }] });
    } else {
      const st = this.store;
      const s = st.alloc();
      st.id[s] = id;
      st.from[s] = from;
      st.rcpts[s] = rcpt.join('\n');
      st.size[s] = meta.size;
      st.arrival[s] = arrival;
      st.attempts[s] = 1;
      st.next[s] = next;
      st.xBinding[s] = this.names.id(meta.xBinding);
      st.listener[s] = this.names.id(meta.listener);
      st.home[s] = q.idx;
      st.link(first, s);
      this.settle(s, false);
    }
    this.persist(id);
  }

  private async spoolDsn(id: string, to: string, arrival: number, rcpts: RecipientResult[], now: number): Promise<void> {
    const cfg = this.o.config();
    let headers = '';
    try {
      headers = headerSection(this.o.spool.read(id));
    } catch (err) {
      this.o.logger.warn({ err, id }, 'DSN without the original headers: the body could not be read');
    }
    const recipients: DsnRecipient[] = rcpts.map((r) => ({
      rcpt: r.rcpt,
      action: 'failed',
      status: (r as RecipientResult & { expired?: boolean }).expired === true ? '4.4.7' : (r.enhanced ?? `${Math.floor(r.code / 100)}.0.0`),
      remoteReply: r.origin === 'remote' ? r.reply : null,
      remoteMta: r.remoteHost,
      lastAttempt: new Date(now),
    }));
    const dsn = buildDsn({ reportingMta: cfg.global.Hostname, queueId: id, to, arrival: new Date(arrival), recipients, originalHeaders: headers, now: new Date(now) });
    const w = this.o.spool.writer().begin();
    w.append(Buffer.from(dsn.message, 'utf8'));
    const { id: dsnId, size } = await w.commit(encodeEnvelope({ v: 1, from: '', rcpt: [to], arrival: now, client: '', helo: '', user: null, tls: false, listener: null, headers: {}, dsnFor: id }));
    this.counters.dsn++;
    const a = this.o.assign({ xBinding: null, listener: null, from: '' });
    this.add({ id: dsnId, size, arrival: now, from: '', rcpt: [to], xBinding: null, listener: null, ...a });
    this.o.logger.info({ event: 'dsn', id: dsnId, for: id, to, rcpt: rcpts.map((r) => r.rcpt) }, 'DSN queued');
  }

  // --- #mmove: placing parts by who owns their binding ---------------------------------------------

  /**
   * The cluster's owners changed (an election, a manual move): looks up every binding's route
   * again and re-places the queued parts of the bindings whose route changed; parts of other
   * bindings and parts being sent are not touched (those are placed when their result comes
   * back). Returns how many parts moved between queues.
   */
  reroute(): number {
    const route = this.o.route;
    if (route === undefined) return 0;
    const changed = new Set<string>();
    for (const [key, old] of this.routes) {
      const sep = key.indexOf('\0');
      const now = route(key.slice(0, sep), key.slice(sep + 1));
      if (sameRoute(old, now)) continue;
      this.routes.set(key, now);
      changed.add(key);
    }
    if (changed.size === 0) return 0;
    const homes = this.queues.map((q) => q.moveTo === null && changed.has(`${q.bindingGroup}\0${q.binding}`));
    const st = this.store;
    let moved = 0;
    for (const s of st.slots()) {
      const state = st.state[s]!;
      if (homes[st.home[s]!] !== true || (state !== READY && state !== DEFERRED && state !== HOLD)) continue;
      const target = this.place(this.queues[st.home[s]!]!);
      if (target.idx === st.queue[s]) continue;
      this.leave(s);
      this.settle(s, state === HOLD);
      moved++;
    }
    // Parts that stayed (wait -> local) are ready in a queue the pump had put aside; parts that
    // moved entered their new queue's run list already.
    for (const q of this.queues) if (homes[q.idx] === true && q.ready > 0) this.runnable.add(q);
    this.schedulePump();
    const routes = Object.fromEntries([...changed].map((k) => [k.replace('\0', '/'), describeRoute(this.routes.get(k)!)]));
    this.o.logger.info({ routes, parts: moved }, 'queue: bindings changed owner; their queued mail re-placed');
    return moved;
  }

  /** Puts part `s` (in no list) where its home routes now. A part bound for #mmove is ready at
   *  once (its next attempt travels with it); a local one waits for its next attempt. */
  private settle(s: number, hold: boolean): void {
    const st = this.store;
    const q = this.place(this.queues[st.home[s]!]!);
    st.queue[s] = q.idx;
    if (hold) this.enter(s, HOLD);
    else if (q.moveTo === null && st.next[s]! > this.now()) this.enter(s, DEFERRED);
    else this.enter(s, READY);
  }

  private place(home: DestQueue): DestQueue {
    const r = this.routeOf(home);
    return r.to === 'node' ? this.queueFor('default', MMOVE_BINDING, r.node, r.node) : home;
  }

  private routeOf(q: DestQueue): Route {
    const route = this.o.route;
    if (route === undefined || q.moveTo !== null) return LOCAL_ROUTE;
    const key = `${q.bindingGroup}\0${q.binding}`;
    let r = this.routes.get(key);
    if (r === undefined) this.routes.set(key, (r = route(q.bindingGroup, q.binding)));
    return r;
  }

  /** One #mmove batch to the queue's node. Parts of one message with the same binding and retry
   *  state go as one message with all their recipients (the receiver splits it again). */
  private dispatchMove(q: DestQueue): void {
    const st = this.store;
    const slots = this.takeReady(q, MAX_MOVE_BATCH);
    const groups: number[][] = [];
    const items: MmoveItem[] = [];
    const byKey = new Map<string, number>();
    for (const s of slots) {
      const home = this.queues[st.home[s]!]!;
      const key = `${st.id[s]!}\0${home.bindingGroup}\0${home.binding}\0${st.attempts[s]!}\0${st.next[s]!}`;
      const i = byKey.get(key);
      if (i !== undefined) {
        groups[i]!.push(s);
        items[i]!.rcpt.push(...st.rcpts[s]!.split('\n'));
        continue;
      }
      byKey.set(key, items.length);
      groups.push([s]);
      const origin = this.names.name(st.origin[s]!);
      items.push({
        id: st.id[s]!, from: st.from[s]!, rcpt: st.rcpts[s]!.split('\n'), binding: home.binding, bindingGroup: home.bindingGroup,
        arrival: st.arrival[s]!, attempts: st.attempts[s]!, nextAttempt: st.next[s]!, hops: st.hops[s]!,
        ...(origin !== null ? { originNode: origin } : {}),
      });
    }
    q.batches++;
    this.batchesInFlight++;
    const node = q.moveTo!;
    const lost = (err: unknown): MmoveResult[] =>
      items.map((it) => ({ id: it.id, ok: false, code: 0, text: `mmove to ${node} failed: ${(err as Error)?.message ?? String(err)}`, duplicate: false }));
    const move = this.o.move ?? (() => Promise.reject(new Error('this node cannot move mail (no cluster)')));
    move(node, items)
      .then((results) => results, lost)
      .then((results) => this.onMoveResults(q, groups, items, results))
      .catch((err: unknown) => this.o.logger.error({ err }, 'queue manager: handling move results failed'))
      .finally(() => {
        q.batches--;
        this.batchesInFlight--;
        if (q.ready > 0) this.runnable.add(q);
        if (this.batchesInFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
        this.schedulePump();
      });
  }

  /**
   * A move's results. 250: the receiver has it on disk, so our copy is done. A 5xx for one
   * message (hop limit, too big): it cannot go there, so it bounces. Anything else (no reply,
   * 4xx, refused credentials): the parts go back, placed anew, and the peer's queue waits.
   */
  private onMoveResults(q: DestQueue, groups: number[][], items: MmoveItem[], results: MmoveResult[]): void {
    const st = this.store;
    const now = this.now();
    let failed = 0;
    let authFailed = false;
    let why = '';
    groups.forEach((slots, i) => {
      const it = items[i]!;
      const r = results[i] ?? { id: it.id, ok: false, code: 0, text: 'no result', duplicate: false };
      if (r.ok) {
        this.counters.moved++;
        this.o.onOutcome?.('moved', it.rcpt.length);
        this.o.logger.info({ event: 'mmove', id: it.id, node: q.moveTo, binding: `${it.bindingGroup}/${it.binding}`, rcpt: it.rcpt, reply: `${r.code} ${r.text}`, duplicate: r.duplicate }, 'moved');
        for (const s of slots) this.finish(s);
        return;
      }
      const auth = r.code === 530 || r.code === 535 || /^5\.7\./.test(r.text);
      if (r.code >= 500 && r.code < 600 && !auth) {
        const enhanced = enhancedOf(r.code, r.text);
        const reply = `${r.code} ${r.text}`;
        this.o.logger.info({ event: 'permanent_failure', id: it.id, node: q.moveTo, binding: `${it.bindingGroup}/${it.binding}`, rcpt: it.rcpt, reply }, 'mmove refused');
        this.counters.bounced += it.rcpt.length;
        this.o.onOutcome?.('bounced', it.rcpt.length);
        for (const s of slots) {
          const rcpts = st.rcpts[s]!.split('\n').map((rcpt): RecipientResult => ({
            rcpt, status: 'bounced', code: r.code, enhanced, reply, origin: 'remote', remoteHost: q.moveTo, remoteAddress: null,
          }));
          this.bounce(s, rcpts, now);
          this.finish(s);
        }
        return;
      }
      failed += slots.length;
      authFailed ||= auth;
      why = `${r.code} ${r.text}`;
      for (const s of slots) {
        this.leave(s);
        this.settle(s, false);
      }
    });
    if (failed > 0) {
      this.counters.moveFailed += failed;
      const wait = authFailed ? MOVE_AUTH_RETRY_MS : MOVE_RETRY_MS;
      this.o.logger.warn({ node: q.moveTo, parts: failed, reply: why, retryInMs: wait }, authFailed ? 'mmove: the peer refused our cluster credentials (Cluster_Secret)' : 'mmove: the peer did not take the batch; retrying');
      this.pause(q, wait);
    }
  }

  private pause(q: DestQueue, ms: number): void {
    q.pausedUntil = this.now() + ms;
    const t = setTimeout(() => {
      if (q.ready > 0) this.runnable.add(q);
      this.schedulePump();
    }, ms);
    t.unref();
  }

  // --- the retry timer -----------------------------------------------------------------------------

  private armTimer(): void {
    if (this.stopped) return;
    const s = this.heap.peek();
    if (s === NONE) return;
    const at = this.store.next[s]!;
    if (this.timer !== null && this.timerAt <= at) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.onTimer(), Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())));
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.now();
    const st = this.store;
    for (let s = this.heap.peek(); s !== NONE && st.next[s]! <= now; s = this.heap.peek()) {
      this.leave(s);
      this.enter(s, READY);
    }
    this.armTimer();
  }
}

/** Retry_Interval doubled per attempt (1x, 2x, 4x, ...), capped at 4 h (or the interval if longer),
 *  plus up to 10% jitter so a queue deferred at once does not come back all at once. */
export function backoff(retryMs: number, attempts: number, random: () => number = Math.random): number {
  const base = Math.max(1, retryMs);
  const exp = base * 2 ** Math.min(30, Math.max(0, attempts - 1));
  const capped = Math.min(exp, Math.max(base, MAX_BACKOFF_MS));
  return Math.round(capped * (1 + 0.1 * random()));
}

function sameRoute(a: Route, b: Route): boolean {
  return a.to === b.to && (a.to !== 'node' || a.node === (b as { node: string }).node);
}

function describeRoute(r: Route): string {
  return r.to === 'node' ? `#mmove to ${r.node}` : r.to;
}

