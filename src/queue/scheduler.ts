// The queue's scheduler (main thread): the per-queue FIFOs of ready parts over store.ts, the run
// list, the pump that hands out delivery batches within each queue's connection limits, the
// retry timer over the retry heap, and where a part waits (settle). It decides no outcome: a
// batch's results go to the manager (options.onResults). Never blocks; timers and setImmediate.
//
// Queues: one per (binding group, binding, domain), each a FIFO of ready parts; deferred parts of
// all queues wait in one retry heap ordered by next attempt. A queue holds at most
// Max_Outbound_Connections connections, its batches in flight and its idle connections together
// (the book, connections.ts); a batch is at most Max_Deliveries_Per_Connection messages delivered
// by one worker over one connection at a time, an idle one of the queue when it has one (on that
// worker), else a new one if the local and cluster-wide limits leave room. A queue with
// Outbound_Throttle_Messages (_Connections) hands out no more messages (opens no more connections)
// than its window allows (throttle.ts); held back, it waits for the scheduler's one throttle timer.
// The cluster-wide limits per destination (Cluster_*) are this node's leases (allowances.ts),
// read locally: no batch waits on the network. A #mmove queue (binding MMOVE_BINDING, domain =
// the peer node) holds parts that move to another node (never throttled here: the owner does);
// its batches are sent by mmove-queue.ts (options.dispatchMove).
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { Rate } from '../config/schema.js';
import type { MessageResult } from '../delivery/results.js';
import type { BatchOutcome, DeliveryBatch } from '../delivery/batch.js';
import { deliveryBatch } from './batch.js';
import type { Allowances } from './allowances.js';
import { ConnectionBook, type BookQueue, type DestState, type IdleConn } from './connections.js';
import { IdTable } from './id-table.js';
import { LOCAL_ROUTE, MMOVE_BINDING, type Route, type RouteTable } from './routes.js';
import { DEFERRED, FREE, HOLD, INFLIGHT, Interner, PartStore, READY, RetryHeap } from './store.js';
import { HeldQueues, stricterRate, throttleFor, type MessageThrottle } from './throttle.js';

export interface DestQueue extends BookQueue {
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
  /** Batches running now: connections in use (conns counts the idle ones too). */
  batches: number;
  conns: number;
  idle: IdleConn[];
  dest: DestState | null;
  /** Outbound_Throttle_Connections' window; null while the queue never had one. */
  opens: MessageThrottle | null;
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
  /** Outbound_Throttle_Messages' window; null while the queue never had one (no work then). */
  throttle: MessageThrottle | null;
  /** Held back by its window until then (ms since the epoch; Infinity: until a batch ends or a
   *  reload); 0 when not held back. */
  throttledUntil: number;
}

export const NONE = -1;
/** Longest wait of one timer (setTimeout's limit is 2^31-1 ms); the heap is looked at again then. */
const MAX_TIMER_MS = 3_600_000;
/** A batch whose worker died or timed out: its parts are tried again after this. */
const LOST_BATCH_RETRY_MS = 5_000;
/** Messages per batch at most, whatever Max_Deliveries_Per_Connection says: a batch is one worker
 *  call, and smaller batches spread a queue over more connections when it is short. */
const MAX_BATCH = 32;
/** Messages per #mmove batch: the client spreads one over Mmove_Connections pipelined connections. */
export const MAX_MOVE_BATCH = 256;

export interface SchedulerOptions {
  config: () => Config;
  /** This node is drained (`cluster drain`): held parts bound for another node move too, and
   *  stay held there (movingHeld). Default: never. */
  moveHeld?: () => boolean;
  logger: Logger;
  now: () => number;
  routes: RouteTable;
  /** Runs a batch on a worker (`worker`: the one holding the idle connection it names; null: any)
   *  and says which worker ran it and what it kept idle; a plain array (a test double): one result
   *  per message, in order, no connection kept. */
  deliver: (batch: DeliveryBatch, worker: number | null) => Promise<MessageResult[] | (BatchOutcome & { worker: number })>;
  /** Has `worker` close these idle connections; resolves with the ids it closed, once closed. */
  closeIdle?: (worker: number, ids: number[]) => Promise<number[]>;
  /** The cluster's shares of the Cluster_* limits; without it each limit is this node's alone. */
  allowances?: Allowances;
  /** The destination key of a domain (node/shaping.ts: its MX set with Mx_Rollup); default the domain. */
  destinationOf?: (domain: string) => string;
  /** A delivery batch's results, one per slot, in order (the manager applies them). */
  onResults: (slots: number[], results: MessageResult[]) => void;
  /** Sends one batch of a #mmove queue (mmove-queue.ts). */
  dispatchMove: (q: DestQueue) => void;
  /** Mmove_Connections: how many move batches may run per peer (twice this). */
  moveConnections?: () => number;
  /** What the cluster's shaping has in force for (binding, domain) (cluster/shaping): read with the
   *  config (its changes call configChanged()), never per batch. */
  restrictions?: (binding: string, domain: string) => QueueRestrictions | null;
}

/** A restriction's effect on one queue: stricter of it and the config wins. */
export interface QueueRestrictions {
  /** Delivery suspended (a rule fired, or `shaping suspend`). */
  readonly suspended: boolean;
  /** A message rate lower than the configured one, or null. */
  readonly rate: Rate | null;
  /** A connection limit lower than the configured one, or null. */
  readonly connections: number | null;
}

export class Scheduler {
  // A part's recipients are stored without their domain when it is its home queue's (store.ts).
  readonly store: PartStore = new PartStore((s: number): string => this.queues[this.store.home[s]!]!.domain);
  readonly heap = new RetryHeap(this.store);
  readonly names = new Interner();
  /** Queue id -> the first slot of the message's ring of parts. */
  readonly byId = new IdTable(this.store);
  /** Held parts that are READY in a #mmove queue because this node is drained (settle): they move
   *  with their hold. Empty unless drained. */
  readonly movingHeld = new Set<number>();
  readonly queues: DestQueue[] = [];
  private readonly queueIndex = new Map<string, number>();
  /** Queues with ready parts the pump looks at. */
  readonly runnable = new Set<DestQueue>();
  private gen = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private pumpQueued = false;
  // Until start(): recovery queues the spool's mail before the workers that deliver it are ready,
  // and a batch handed out then fails ('no worker is ready') and waits out the lost-batch retry.
  private stopped = true;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  /** Queues their throttle holds back, and the one timer that wakes them. */
  private readonly held: HeldQueues<DestQueue>;
  /** Every connection open, in use or idle, per queue and destination. */
  readonly book: ConnectionBook;
  /** Home queues per domain: a destination learned moves them all. */
  private readonly byDomain = new Map<string, DestQueue[]>();

  constructor(private readonly o: SchedulerOptions) {
    this.held = new HeldQueues(o.now, (q) => {
      if (q.ready > 0) {
        this.runnable.add(q);
        this.schedulePump();
      }
    });
    this.book = new ConnectionBook({
      now: o.now,
      allowances: o.allowances ?? null,
      closeIdle: o.closeIdle ?? (() => Promise.resolve([])),
      // Queues waiting for a connection stay on the run list: the pump looks at them again.
      changed: () => this.schedulePump(),
      wake: (q) => {
        const dq = q as DestQueue;
        this.held.release(dq);
        if (dq.ready > 0) this.runnable.add(dq);
      },
      onError: (err) => o.logger.warn({ err }, 'queue: closing idle delivery connections failed'),
    });
  }

  /** Idle connections of `worker` closed on their own (its connClosed event). */
  connectionsClosed(worker: number, ids: readonly number[]): void {
    this.book.closed(worker, ids);
  }

  /** A worker's thread is gone: its connections with it. */
  workerGone(worker: number): void {
    this.book.workerGone(worker);
  }

  /** A batch resolved `domain`'s destination: its queues count under the new key from now on. */
  destinationLearned(domain: string): void {
    const f = this.o.destinationOf;
    if (f === undefined) return;
    const key = f(domain);
    for (const q of this.byDomain.get(domain) ?? []) {
      if (q.dest === null || q.dest.key === key) continue;
      this.book.place(q, key);
      q.gen = -1; // the cluster limits of the new key are looked up at its next batch
    }
  }

  /** Batches (delivery and move) running now. */
  get batchesInFlight(): number {
    return this.inFlight;
  }

  /** Starts handing out batches and arms the retry timer. */
  start(): void {
    this.stopped = false;
    this.armTimer();
    this.held.start();
    this.schedulePump();
  }

  /** Stops handing out batches and waits (up to timeoutMs) for those in flight to report. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    this.held.stop();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The config changed: per-queue limits are looked up again, and waiting parts may go now. */
  configChanged(): void {
    this.gen++;
    for (const q of this.queues) if (q.ready > 0) this.runnable.add(q);
    this.schedulePump();
  }

  // --- queues --------------------------------------------------------------------------------------

  /** The home queue of (bindingGroup, binding, domain) if it exists (never creates one). */
  findQueue(bindingGroup: string, binding: string, domain: string): DestQueue | null {
    const i = this.queueIndex.get(`${bindingGroup}\0${binding}\0${domain}`);
    return i === undefined ? null : this.queues[i]!;
  }

  queueFor(bindingGroup: string, binding: string, domain: string, moveTo: string | null = null): DestQueue {
    // A #mmove queue's key cannot collide with a binding's: names hold no control characters.
    const key = moveTo === null ? `${bindingGroup}\0${binding}\0${domain}` : `\u0001${moveTo}`;
    const i = this.queueIndex.get(key);
    if (i !== undefined) return this.queues[i]!;
    const q: DestQueue = {
      idx: this.queues.length, bindingGroup, binding, domain,
      head: NONE, tail: NONE, ready: 0, inflight: 0, deferred: 0, hold: 0, batches: 0,
      conns: 0, idle: [], dest: null, opens: null,
      gen: -1, suspended: false, maxConnections: 1, maxPerConnection: 1, retryMs: 0, expireMs: 0,
      moveTo, pausedUntil: 0, throttle: null, throttledUntil: 0,
    };
    this.queues.push(q);
    this.queueIndex.set(key, q.idx);
    if (moveTo === null) {
      const l = this.byDomain.get(domain);
      if (l === undefined) this.byDomain.set(domain, [q]);
      else l.push(q);
    }
    return q;
  }

  /** The queue with its per-queue settings current (looked up again after configChanged()). */
  settings(q: DestQueue): DestQueue {
    if (q.gen !== this.gen && q.moveTo !== null) {
      // A move is not a delivery: Suspend_Delivery does not keep mail on a node that cannot send it.
      q.suspended = false;
      q.maxConnections = 2 * Math.max(1, this.o.moveConnections?.() ?? 4);
      q.maxPerConnection = MAX_MOVE_BATCH;
      q.gen = this.gen;
    } else if (q.gen !== this.gen) {
      const cfg = this.o.config();
      const ctx = { bindingGroup: q.bindingGroup, binding: q.binding, domain: q.domain };
      const r = this.o.restrictions?.(q.binding, q.domain) ?? null;
      q.suspended = cfg.lookup('Suspend_Delivery', ctx) || r?.suspended === true;
      q.maxConnections = Math.min(cfg.lookup('Max_Outbound_Connections', ctx), r?.connections ?? Infinity);
      // A reduction to 0 connections holds the queue as a suspension does.
      if (q.maxConnections <= 0) q.suspended = true;
      q.maxPerConnection = cfg.lookup('Max_Deliveries_Per_Connection', ctx);
      q.retryMs = cfg.lookup('Retry_Interval', ctx);
      q.expireMs = cfg.lookup('Message_Expiration', ctx);
      const now = this.o.now();
      q.throttle = throttleFor(q.throttle, stricterRate(cfg.lookup('Outbound_Throttle_Messages', ctx), r?.rate ?? null), now);
      q.opens = throttleFor(q.opens, cfg.lookup('Outbound_Throttle_Connections', ctx), now);
      const d = this.book.place(q, this.o.destinationOf?.(q.domain) ?? q.domain);
      this.book.configure(d, q, {
        conn: cfg.lookup('Cluster_Max_Outbound_Connections', ctx),
        msg: cfg.lookup('Cluster_Outbound_Throttle_Messages', ctx),
        opens: cfg.lookup('Cluster_Outbound_Throttle_Connections', ctx),
      });
      q.gen = this.gen;
    }
    return q;
  }

  /** Where a home queue's binding sends its mail now; a #mmove queue is always local. */
  routeOf(q: DestQueue): Route {
    return q.moveTo !== null ? LOCAL_ROUTE : this.o.routes.of(q.bindingGroup, q.binding);
  }

  /** The queue a part of home queue `home` waits in now: its home, or the #mmove queue of the
   *  node that owns its binding. */
  place(home: DestQueue): DestQueue {
    const r = this.routeOf(home);
    return r.to === 'node' ? this.queueFor('default', MMOVE_BINDING, r.node, r.node) : home;
  }

  /** Puts part `s` (in no list) where its home routes now. A part bound for #mmove is ready at
   *  once (its next attempt travels with it); a local one waits for its next attempt. */
  settle(s: number, hold: boolean): void {
    const st = this.store;
    const q = this.place(this.queues[st.home[s]!]!);
    st.queue[s] = q.idx;
    if (hold && q.moveTo !== null && this.o.moveHeld?.() === true) {
      // A drained node moves its held mail as well; the hold travels with it (mmove-queue.ts).
      this.movingHeld.add(s);
      this.enter(s, READY);
      return;
    }
    if (this.movingHeld.size > 0) this.movingHeld.delete(s);
    if (hold) this.enter(s, HOLD);
    else if (q.moveTo === null && st.next[s]! > this.o.now()) this.enter(s, DEFERRED);
    else this.enter(s, READY);
  }

  /** Held by the operator: in HOLD, or ready to move with its hold (a drained node's). */
  isHeld(s: number): boolean {
    return this.store.state[s] === HOLD || (this.movingHeld.size > 0 && this.movingHeld.has(s));
  }


  /** Queued (not in-flight) parts of the queues `match` accepts: one pass over the slots, however
   *  many queues match. A list, so callers may move parts between queues while they walk it. */
  queuedParts(binding: string | undefined, domain: string | undefined): number[] {
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

  // --- state transitions ---------------------------------------------------------------------------

  enter(s: number, state: typeof READY | typeof INFLIGHT | typeof DEFERRED | typeof HOLD): void {
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
      // Its destination's demand changed (declared to the cluster after the next pump).
      if (q.dest !== null && q.dest.limited) {
        this.book.touch(q.dest);
        this.schedulePump();
      }
      // A queue its throttle holds back waits for its timer (or a batch's end), not for new mail.
      if (q.throttledUntil === 0 && !this.runnable.has(q)) {
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

  leave(s: number): void {
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

  /** Up to `n` parts from the head of the queue's FIFO, now in flight. */
  takeReady(q: DestQueue, n: number): number[] {
    const slots: number[] = [];
    while (slots.length < n && q.head !== NONE) {
      const s = q.head;
      this.leave(s);
      this.enter(s, INFLIGHT);
      slots.push(s);
    }
    return slots;
  }

  // --- the pump ------------------------------------------------------------------------------------

  schedulePump(): void {
    if (this.pumpQueued || this.stopped) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.stopped) return;
    const now = this.o.now();
    for (const q of this.runnable) {
      this.settings(q);
      this.held.release(q);
      // A home queue runs only while its binding is local; a #mmove queue not while its peer waits.
      const blocked = q.suspended || (q.moveTo === null ? this.routeOf(q).to !== 'local' : q.pausedUntil > now);
      if (q.moveTo !== null) while (!blocked && q.ready > 0 && q.batches < q.maxConnections) this.o.dispatchMove(q);
      else while (!blocked && q.ready > 0 && this.dispatch(q, now));
      // A blocked or held-back queue leaves the run list; configChanged(), reroute(), the pause's
      // end, the throttle timer, a batch's end or a connection closed put it back.
      if (q.ready === 0 || blocked || q.throttledUntil !== 0) this.runnable.delete(q);
    }
    // Demand declared to the cluster, idle connections beyond this node's share closed.
    this.book.settle();
  }

  /** A batch of `q` starts (delivery or move): it holds one of the queue's connections. */
  beginBatch(q: DestQueue): void {
    q.batches++;
    this.inFlight++;
  }

  /** A batch of `q` reported: its connection is free, and the queue may run again. */
  endBatch(q: DestQueue): void {
    q.batches--;
    this.inFlight--;
    if (q.ready > 0) this.runnable.add(q);
    if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    this.schedulePump();
  }

  /** Hands out one batch of `q`; false when none may go now: its connections are all in use
   *  (a batch's end or a connection closed looks again), or a window holds it back (held). */
  private dispatch(q: DestQueue, now: number): boolean {
    const book = this.book;
    const d = q.dest!;
    let n = q.ready;
    const t = q.throttle;
    if (t !== null) {
      const allowed = t.available(now);
      if (allowed === 0) {
        this.held.hold(q, t.nextAt(now));
        return false;
      }
      if (allowed < n) n = allowed;
    }
    const cm = book.msgAvailable(d, now);
    if (cm === 0) {
      this.held.hold(q, d.msg!.nextAt(now));
      return false;
    }
    if (cm < n) n = cm;
    // Its own idle connection first (on the worker that holds it), else with MX rollup one of the
    // same binding under the same destination, else a new one if every limit leaves room.
    let c = book.idleFor(q, q.conns < q.maxConnections);
    if (c !== null && (book.overShare(c.dest) || c.deliveries >= q.maxPerConnection)) {
      // Above this node's cluster share it gives connections back rather than use them.
      book.close([c]);
      return true;
    }
    if (c !== null && book.othersWait(q, c.dest)) {
      // The cluster limit is full and another binding waits: its turn (connections, not batches,
      // are what the limit shares, so a busy binding would otherwise keep its own for ever). To
      // the end of the run list, so that the room the close makes goes to the one waiting first.
      book.close([c]);
      this.runnable.delete(q);
      this.runnable.add(q);
      return false;
    }
    const lo = q.opens;
    const co = d.opens;
    // Looked at last: a queue whose connections are all open waits without reading its windows.
    if (c === null && q.conns >= q.maxConnections) return false;
    const opensOk = (lo === null || lo.available(now) > 0) && book.opensAvailable(d, now) > 0;
    let mayOpen = 1;
    if (c === null) {
      if (book.connRoom(d) <= 0) {
        book.makeRoom(q, d);
        return false;
      }
      if (!opensOk) {
        this.held.hold(q, Math.max(lo?.nextAt(now) ?? now, co?.nextAt(now) ?? now));
        return false;
      }
    } else if (!opensOk) mayOpen = 0; // an idle connection never waits for the connection window
    let free = Math.max(1, q.maxConnections - q.conns + (c !== null && c.owner === q ? 1 : 0));
    // Under a cluster connection limit the connections this batch can run beside are what this
    // node's share leaves, not the local limit: split the ready mail over those, or each batch
    // carries a sliver and every turn between bindings costs a new connection.
    const room = book.connRoom(d);
    if (room !== Infinity) free = Math.max(1, Math.min(free, room + (c !== null ? 1 : 0)));
    const left = c === null ? q.maxPerConnection : Math.max(1, q.maxPerConnection - c.deliveries);
    const per = Math.max(1, Math.min(left, MAX_BATCH, Math.ceil(n / free)));
    const slots = this.takeReady(q, per);
    const dm = d.msg;
    if (t !== null) t.begin(slots.length);
    if (dm !== null) dm.begin(slots.length);
    if (lo !== null) lo.begin(mayOpen);
    if (co !== null) co.begin(mayOpen);
    const worker = c === null ? null : c.worker;
    const slotDest = c === null ? book.openSlot(q) : book.useIdle(c, q);
    this.beginBatch(q);
    const batch = deliveryBatch(this.o.config(), q, this.store, slots, c === null ? null : c.id, mayOpen);
    const t0 = this.o.now();
    let ran = -1;
    let kept: BatchOutcome['kept'] = null;
    let opened = mayOpen;
    this.o
      .deliver(batch, worker)
      .then(
        (out) => {
          if (Array.isArray(out)) return this.o.onResults(slots, out);
          ran = out.worker;
          kept = out.kept;
          opened = out.opened;
          this.o.onResults(slots, out.results);
        },
        (err: unknown) => this.onLostBatch(q, slots, err),
      )
      .catch((err: unknown) => this.o.logger.error({ err }, 'queue manager: handling delivery results failed'))
      .finally(() => {
        const end = this.o.now();
        this.o.logger.trace({ binding: q.binding, domain: q.domain, messages: slots.length, ms: end - t0 }, 'delivery batch done');
        // Counted from now on: the receiver saw these messages (connections) before the results came back.
        if (t !== null) t.end(end, slots.length);
        if (dm !== null) dm.end(end, slots.length);
        if (lo !== null) lo.end(end, mayOpen, opened);
        if (co !== null) co.end(end, mayOpen, opened);
        book.endSlot(q, slotDest, ran, kept);
        this.endBatch(q);
      });
    return true;
  }

  /** The worker died or the call timed out: nothing is known, so every part is tried again. */
  private onLostBatch(q: DestQueue, slots: number[], err: unknown): void {
    this.o.logger.error({ err, binding: q.binding, domain: q.domain, messages: slots.length }, 'delivery batch lost (worker failed); retrying its messages');
    const st = this.store;
    for (const s of slots) {
      this.leave(s);
      st.next[s] = this.o.now() + LOST_BATCH_RETRY_MS;
      this.settle(s, false);
    }
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
    this.timer = setTimeout(() => this.onTimer(), Math.min(MAX_TIMER_MS, Math.max(0, at - this.o.now())));
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.o.now();
    const st = this.store;
    for (let s = this.heap.peek(); s !== NONE && st.next[s]! <= now; s = this.heap.peek()) {
      this.leave(s);
      this.enter(s, READY);
    }
    this.armTimer();
  }
}
