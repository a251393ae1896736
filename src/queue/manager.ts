// The queue manager (main thread): the facade over the queue's parts. It takes messages in (add),
// applies what delivery results mean (outcome.ts) to the parts the scheduler handed out
// (scheduler.ts), asks for DSNs (bounce.ts; a worker writes them), runs the operator's actions
// (hold, release, rebind) and saves each message's retry state to the spool so a restart resumes
// from it. It never reads a body. Never blocks: spool writes and worker calls are Promises.
//
// Files: scheduler.ts (FIFOs, run list, pump, retry timer; batch.ts builds a batch) over store.ts
// (the part slots; their strings in arena.ts, senders.ts, queue-id.ts) and id-table.ts (queue
// id -> part); outcome.ts (a result's meaning, pure); bounce.ts (DSN requests and their gate);
// done-marks.ts (done-marks in batches, retried while the spool refuses them); mmove-queue.ts
// (#mmove: parts of bindings another node owns); routes.ts (where each binding's mail goes);
// views.ts (mailq, show, Momentum's layout).
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { BounceRequest } from '../delivery/bounce.js';
import type { MessageResult, RecipientResult } from '../delivery/results.js';
import { describeClass, type BounceClass } from '../policy/bounce-class.js';
import { attemptOf } from '../events/build.js';
import { logEvents, type EventEmit } from '../events/emitter.js';
import type { MmoveItem, MmoveResult } from '../mmove/client.js';
import type { DeliveryBatch } from '../delivery/batch.js';
import { domainOf, splitByDomain } from '../message/recipients.js';
import { encodeState, type PersistedPart, type PersistedState } from '../message/retry-state.js';
import { Bounces, DSN_RETRY_MS } from './bounce.js';
import { DoneMarks } from './done-marks.js';
import { MmoveQueue } from './mmove-queue.js';
import { outcomeOf } from './outcome.js';
import { RouteTable, type Route } from './routes.js';
import { NONE, Scheduler, type DestQueue, type SchedulerOptions } from './scheduler.js';
import { DEFERRED, HOLD, READY } from './store.js';
import { bindingRows, mailqRows, messageList, messageView, queueUse, stateCounts, type MailqRow, type MessageListRow, type MessageView, type QueueState, type QueueUse } from './views.js';

export { backoff } from './outcome.js';
export { LOCAL_ROUTE, MMOVE_BINDING, type Route } from './routes.js';
export type { QueueUse } from './views.js';

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

/** What the manager writes to the spool: done-marks and retry state (never bodies). */
export interface QueueSpool {
  markDone(ids: string[]): Promise<void>;
  update(id: string, state: Buffer): Promise<void>;
}

export interface QueueManagerOptions {
  config: () => Config;
  spool: QueueSpool;
  /** Runs a batch on a worker (SchedulerOptions.deliver: the worker named, or any when null). */
  deliver: SchedulerOptions['deliver'];
  /** Has a worker close idle connections (SchedulerOptions.closeIdle). */
  closeIdle?: SchedulerOptions['closeIdle'];
  /** The cluster's shares of the Cluster_* limits (SchedulerOptions.allowances). */
  allowances?: SchedulerOptions['allowances'];
  /** A domain's destination key (SchedulerOptions.destinationOf). */
  destinationOf?: SchedulerOptions['destinationOf'];
  /** Builds and spools a DSN (a worker's 'spoolBounce'); resolves with its queue id and size. */
  bounce: (req: BounceRequest) => Promise<{ id: string; size: number }>;
  /** Binding policy for `rebind` and for DSNs (BindingPolicy.assignStored). */
  assign: (m: { xBinding: string | null; listener: string | null; from: string }) => { bindingGroup: string; binding: string };
  logger: Logger;
  /** Where the event records go (delivery, failures, expiry, DSN, #mmove, hold/release/rebind);
   *  default: the log lines they gave before the journals. */
  events?: EventEmit;
  /** Per-recipient outcomes, for the metrics ('moved': handed to another node by #mmove). */
  onOutcome?: (status: 'delivered' | 'deferred' | 'bounced' | 'moved', count: number) => void;
  /** Per-recipient failures of a delivery by bounce class, counted as onOutcome counts them:
   *  'transient' for recipients retried, 'permanent' for 5xx refusals and expiries. */
  onFailure?: (kind: 'transient' | 'permanent', cls: BounceClass, count: number) => void;
  /** Response-driven shaping (Shaping_Rule): sees every recipient failure the receiver itself
   *  answered (origin remote), before its outcome is decided; true makes a deferral permanent now
   *  (a rule's Action = bounce). Failures only: a delivery pays nothing. */
  shaping?: (binding: string, domain: string, r: RecipientResult) => boolean;
  /** A batch's destination as it resolved (its MX or route hosts), once per batch: MX rollup. */
  onDestination?: (domain: string, mx: readonly string[]) => void;
  /** What the cluster's shaping has in force per queue (the scheduler's restrictions). */
  restrictions?: SchedulerOptions['restrictions'];
  /** Where a binding's mail goes (the cluster's owner of its Bind_Address). Default: local. */
  route?: (bindingGroup: string, binding: string) => Route;
  /** Moves messages to a node (#mmove); one result per item, in order; ok only after its 250. */
  move?: (node: string, items: MmoveItem[]) => Promise<MmoveResult[]>;
  /** This node is drained (`cluster drain`): its held mail moves too (SchedulerOptions.moveHeld). */
  drained?: () => boolean;
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

export interface QueueStats {
  delivered: number;
  deferred: number;
  bounced: number;
  dsn: number;
  dsnFailed: number;
  moved: number;
  moveFailed: number;
  parts: number;
  messages: number;
  queues: number;
  batches: number;
}

export class QueueManager {
  private readonly sched: Scheduler;
  private readonly moves: MmoveQueue;
  private readonly bounces: Bounces;
  private readonly doneMarks: DoneMarks;
  /** Body bytes of the queued messages (each message once). */
  private bytes = 0;
  private readonly now: () => number;
  private readonly counters = { delivered: 0, deferred: 0, bounced: 0, moved: 0, moveFailed: 0 };
  private readonly events: EventEmit;

  constructor(private readonly o: QueueManagerOptions) {
    this.now = o.now ?? Date.now;
    const events = (this.events = o.events ?? logEvents(o.logger));
    // The delivery and failure records of finished messages were emitted before they were done:
    // they are in the journal before the done-marks are (the record is as durable as the mail).
    this.doneMarks = new DoneMarks({ markDone: (ids) => o.spool.markDone(ids), flushEvents: () => events.flush?.(), logger: o.logger });
    const routes = new RouteTable(o.route);
    this.sched = new Scheduler({
      config: o.config, logger: o.logger, now: this.now, routes, deliver: o.deliver,
      onResults: (slots, results) => this.onResults(slots, results),
      dispatchMove: (q) => this.moves.dispatch(q),
      ...(o.drained !== undefined ? { moveHeld: o.drained } : {}),
      ...(o.moveConnections !== undefined ? { moveConnections: o.moveConnections } : {}),
      ...(o.restrictions !== undefined ? { restrictions: o.restrictions } : {}),
      ...(o.closeIdle !== undefined ? { closeIdle: o.closeIdle } : {}),
      ...(o.allowances !== undefined ? { allowances: o.allowances } : {}),
      ...(o.destinationOf !== undefined ? { destinationOf: o.destinationOf } : {}),
    });
    this.moves = new MmoveQueue({
      sched: this.sched, routes, logger: o.logger, events, now: this.now, counters: this.counters,
      ...(o.move !== undefined ? { move: o.move } : {}),
      ...(o.onOutcome !== undefined ? { onOutcome: o.onOutcome } : {}),
      bounce: (s, rcpts, now) => this.bounce(s, rcpts, now),
      finish: (s) => this.finish(s),
    });
    this.bounces = new Bounces({
      bounce: o.bounce, logger: o.logger, events,
      hostname: () => o.config().global.Hostname,
      spooled: (dsn) => {
        const a = o.assign({ xBinding: null, listener: null, from: '' });
        this.add({ id: dsn.id, size: dsn.size, arrival: dsn.arrival, from: '', rcpt: [dsn.to], xBinding: null, listener: null, ...a });
      },
    });
  }

  /** Messages (not parts) queued. */
  get size(): number {
    return this.sched.byId.size;
  }

  has(id: string): boolean {
    return this.sched.byId.has(id);
  }

  /** Queues a message: one part per recipient domain, ready at once; or, when `state` is given
   *  (recovery), the parts, attempts and next attempts it records. False if already queued. */
  add(m: QueueInput, state: PersistedState | null = null): boolean {
    const sched = this.sched;
    if (sched.byId.has(m.id)) return false;
    const parts: PersistedPart[] =
      state !== null && state.p.length > 0
        ? state.p
        : splitByDomain(m.rcpt).map((r) => ({ g: m.bindingGroup, b: m.binding, r, a: 0, n: 0 }));
    const st = sched.store;
    let first = NONE;
    for (const p of parts) {
      if (p.r.length === 0) continue;
      const s = st.alloc();
      // Its home first: the store keeps the recipients relative to its domain.
      st.home[s] = sched.queueFor(p.g, p.b, domainOf(p.r[0] ?? '')).idx;
      if (first === NONE) st.setMessage((first = s), m.id, m.from);
      else st.join(first, s);
      st.setRcpts(s, p.r);
      st.size[s] = m.size;
      st.arrival[s] = m.arrival;
      st.attempts[s] = Math.min(p.a, 0xffff);
      st.next[s] = p.n;
      st.xBinding[s] = sched.names.id(m.xBinding);
      st.listener[s] = sched.names.id(m.listener);
      st.persisted[s] = state !== null ? 1 : 0;
      st.hops[s] = Math.min(m.hops ?? 0, 0xff);
      st.origin[s] = sched.names.id(m.origin ?? null);
      sched.settle(s, p.h === 1);
    }
    if (first === NONE) return false;
    sched.byId.insert(first);
    this.bytes += m.size;
    return true;
  }

  /** Marks done messages recovery did not queue: the journal records them delivered before the
   *  restart (a crash between the record and its done-mark). Written like any other done-mark. */
  markSettled(ids: readonly string[]): void {
    for (const id of ids) this.doneMarks.add(id);
  }

  /** Starts delivering (after recovery has queued what the spool holds). */
  start(): void {
    this.sched.start();
  }

  /** Stops handing out batches and waits (up to timeoutMs) for those in flight to report. */
  async stop(timeoutMs: number): Promise<void> {
    await this.sched.stop(timeoutMs);
    await this.bounces.settled();
    await this.doneMarks.stop();
  }

  /** The config changed: per-queue limits are looked up again, and waiting parts may go now. */
  configChanged(): void {
    this.sched.configChanged();
  }

  // --- views (views.ts) ----------------------------------------------------------------------------

  /** Rows per (group, binding, domain); mail waiting to move is in default/#mmove rows. */
  mailq(filter: { domain?: string; binding?: string } = {}): MailqRow[] {
    return mailqRows(this.sched, filter);
  }

  /** Totals: parts per state, messages, and the messages' body bytes. */
  counts(): Record<QueueState, number> & { messages: number; bytes: number } {
    return { ...stateCounts(this.sched), messages: this.sched.byId.size, bytes: this.bytes };
  }

  /** Parts per (group, binding) and state. */
  byBinding(): { bindingGroup: string; binding: string; active: number; deferred: number; hold: number }[] {
    return bindingRows(this.sched);
  }

  /** Queued messages, oldest first, at most `limit`, and how many more match (`message list`). */
  list(filter: { domain?: string; binding?: string } = {}, limit = 100): { rows: MessageListRow[]; more: number } {
    return messageList(this.sched, filter, limit);
  }

  /** One message's parts, or null. */
  show(id: string): MessageView | null {
    return messageView(this.sched, id);
  }

  stats(): QueueStats {
    const c = this.counters;
    const sched = this.sched;
    return {
      delivered: c.delivered, deferred: c.deferred, bounced: c.bounced, dsn: this.bounces.spooledCount, dsnFailed: this.bounces.failedCount,
      moved: c.moved, moveFailed: c.moveFailed,
      parts: sched.store.count, messages: sched.byId.size, queues: sched.queues.length, batches: sched.batchesInFlight,
    };
  }

  // --- operator actions ----------------------------------------------------------------------------

  /** Holds the selected parts that are not being sent right now; returns how many. */
  hold(sel: Selector): number {
    const sched = this.sched;
    const touched = new Set<number>();
    let n = 0;
    for (const s of this.select(sel)) {
      const state = sched.store.state[s]!;
      if ((state !== READY && state !== DEFERRED) || sched.isHeld(s)) continue;
      sched.leave(s);
      sched.enter(s, HOLD);
      touched.add(sched.byId.headOf(s));
      this.partEvent('hold', s);
      n++;
    }
    for (const head of touched) this.persist(head);
    return n;
  }

  /** Releases held parts for an attempt at once; returns how many. */
  release(sel: Selector): number {
    const sched = this.sched;
    const touched = new Set<number>();
    let n = 0;
    for (const s of this.select(sel)) {
      if (!sched.isHeld(s)) continue;
      sched.leave(s);
      sched.store.next[s] = 0;
      sched.settle(s, false);
      touched.add(sched.byId.headOf(s));
      this.partEvent('release', s);
      n++;
    }
    for (const head of touched) this.persist(head);
    sched.schedulePump();
    return n;
  }

  /** Runs binding assignment again for queued parts of `binding` (or all) [in `domain`], e.g.
   *  after the config changed; parts being sent are left alone. Returns how many parts moved. */
  rebind(binding: string | 'all', domain?: string): number {
    const sched = this.sched;
    const touched = new Set<number>();
    let moved = 0;
    const st = sched.store;
    for (const s of sched.queuedParts(binding === 'all' ? undefined : binding, domain)) {
      const q = sched.queues[st.home[s]!]!;
      const a = this.o.assign({ xBinding: sched.names.name(st.xBinding[s]!), listener: sched.names.name(st.listener[s]!), from: st.fromOf(s) });
      if (a.bindingGroup === q.bindingGroup && a.binding === q.binding) continue;
      const held = sched.isHeld(s);
      sched.leave(s);
      // The same domain: the recipients the store keeps relative to it stay valid.
      st.home[s] = sched.queueFor(a.bindingGroup, a.binding, q.domain).idx;
      sched.settle(s, held);
      this.events.emit({ type: 'rebind', id: st.idOf(s), binding: `${a.bindingGroup}/${a.binding}`, previous: `${q.bindingGroup}/${q.binding}`, rcpt: st.rcptsOf(s) });
      moved++;
      if (st.persisted[s] === 1) touched.add(sched.byId.headOf(s));
    }
    for (const head of touched) this.persist(head);
    sched.schedulePump();
    return moved;
  }

  /** The cluster's owners changed: re-places the queued parts of the bindings whose route changed
   *  (mmove-queue.ts). Returns how many parts moved between queues. */
  reroute(): number {
    return this.moves.reroute();
  }

  /** This node was drained or undrained (`cluster drain`): every binding's route is looked up
   *  again, and held parts bound for another node start (or stop) moving with their hold. */
  drainChanged(): void {
    this.moves.reroute();
    this.moves.resettleHeld();
  }

  /** Parts still queued here (not yet moved or delivered), for a drain's progress. */
  get parts(): number {
    return this.sched.store.count;
  }

  /** One queue (binding, domain) as the scheduler runs it now, for `shaping show`; null when it
   *  has never had mail. Its limits as currently in force (config and restrictions together). */
  queueUse(bindingGroup: string, binding: string, domain: string): QueueUse | null {
    return queueUse(this.sched, bindingGroup, binding, domain, this.now());
  }

  /** Idle delivery connections of `worker` that closed on their own (its connClosed event). */
  connectionsClosed(worker: number, ids: readonly number[]): void {
    this.sched.connectionsClosed(worker, ids);
  }

  /** A worker's thread is gone, and its connections with it. */
  workerGone(worker: number): void {
    this.sched.workerGone(worker);
  }

  /** Per queue with connections open: how many (idle ones included) and how many idle (metrics). */
  connectionsPerQueue(): { bindingGroup: string; binding: string; domain: string; open: number; idle: number }[] {
    const out: { bindingGroup: string; binding: string; domain: string; open: number; idle: number }[] = [];
    for (const q of this.sched.queues) {
      if (q.conns > 0) out.push({ bindingGroup: q.bindingGroup, binding: q.binding, domain: q.domain, open: q.conns, idle: q.idle.length });
    }
    return out;
  }

  /** Delivery connections open now (in use or idle), idle ones, and closeIdle calls made (metrics). */
  get connectionStats(): { open: number; idle: number; closeIdleCalls: number } {
    const b = this.sched.book;
    return { open: b.openCount, idle: b.idleCount, closeIdleCalls: b.closeIdleCalls };
  }

  private select(sel: Selector): number[] {
    if (sel.id === undefined) return this.sched.queuedParts(sel.binding, sel.domain);
    const first = this.sched.byId.find(sel.id);
    return first === NONE ? [] : this.sched.store.ringOf(first);
  }

  /** The hold or release record of one part (an operator's action, not a hot path). */
  private partEvent(type: 'hold' | 'release', s: number): void {
    const st = this.sched.store;
    const q = this.sched.queues[st.home[s]!]!;
    this.events.emit({ type, id: st.idOf(s), binding: `${q.bindingGroup}/${q.binding}`, rcpt: st.rcptsOf(s) });
  }

  // --- results -------------------------------------------------------------------------------------

  /** A delivery batch's results: each part's outcome (outcome.ts), logged, counted and applied. */
  private onResults(slots: number[], results: MessageResult[]): void {
    const sched = this.sched;
    const st = sched.store;
    const now = this.now();
    // A batch's parts all come from one queue, and parts in flight never change queues.
    const first = slots.length === 0 ? null : sched.queues[st.queue[slots[0]!]!]!;
    const local = first === null || sched.routeOf(first).to === 'local';
    const mx = results[0]?.mx;
    if (first !== null && mx !== undefined) {
      this.o.onDestination?.(first.domain, mx);
      sched.destinationLearned(first.domain);
    }
    slots.forEach((s, i) => {
      const q = sched.settings(sched.queues[st.queue[s]!]!);
      const id = st.idOf(s);
      const res = results[i];
      if (this.o.shaping !== undefined && res !== undefined) {
        for (const r of res.results) {
          if (r.status !== 'delivered' && r.origin === 'remote' && this.o.shaping(q.binding, q.domain, r) && r.status === 'deferred') r.status = 'bounced';
        }
      }
      const out = outcomeOf({ rcpts: st.rcptsOf(s), attempts: st.attempts[s]!, arrival: st.arrival[s]! }, res, { retryMs: q.retryMs, expireMs: q.expireMs, local }, now);
      const base = { time: now, id, from: st.fromOf(s), binding: `${q.bindingGroup}/${q.binding}`, source: res?.localAddress ?? null, size: st.size[s]!, attempt: out.attempt };
      for (const r of out.replies) {
        if (r.status === 'delivered') {
          this.counters.delivered++;
          this.events.emit(attemptOf('delivery', base, r));
        } else if (r.status === 'bounced') {
          this.counters.bounced++;
          this.events.emit(attemptOf('permanent_failure', base, r, r.bounceClass, className(r.bounceClass)));
          if (r.bounceClass !== undefined) this.o.onFailure?.('permanent', r.bounceClass, 1);
        } else {
          const e = attemptOf('transient_failure', base, r, r.bounceClass, className(r.bounceClass));
          if (out.retry !== null && e.type === 'transient_failure') e.next = out.retry.next;
          this.events.emit(e);
          // Counted when it is retried; one that expired now counts as the expiry below.
          if (r.bounceClass !== undefined && out.retry !== null) this.o.onFailure?.('transient', r.bounceClass, 1);
        }
      }
      if (out.delivered > 0) this.o.onOutcome?.('delivered', out.delivered);
      if (out.refused > 0) this.o.onOutcome?.('bounced', out.refused);
      if (out.expired.length > 0) {
        for (const e of out.expired) {
          this.events.emit({
            type: 'expiry', time: now, id, from: base.from, rcpt: e.rcpt, binding: base.binding, source: base.source, reply: e.reply, attempt: out.attempt,
            size: base.size, class: e.bounceClass, bounce_class: describeClass(e.bounceClass),
          });
          this.o.onFailure?.('permanent', e.bounceClass, 1);
        }
        this.counters.bounced += out.expired.length;
        this.o.onOutcome?.('bounced', out.expired.length);
      }
      if (out.bounced.length > 0) this.bounce(s, out.bounced, now);
      const retry = out.retry;
      if (retry === null) {
        this.finish(s);
        return;
      }
      this.counters.deferred += retry.rcpts.length;
      this.o.onOutcome?.('deferred', retry.rcpts.length);
      sched.leave(s);
      st.setRcpts(s, retry.rcpts);
      // What `message show` gives as the reason: the last reply of a recipient still to deliver
      // (none when the batch brought no result, e.g. a worker died: the earlier reply stays).
      for (let i = out.replies.length - 1; i >= 0; i--) {
        const r = out.replies[i]!;
        if (r.status !== 'delivered' && r.status !== 'bounced') {
          st.setReply(s, r.reply);
          break;
        }
      }
      st.attempts[s] = retry.attempts;
      st.next[s] = retry.next;
      // Its binding may have moved to another node meanwhile: then it goes there (#mmove).
      sched.settle(s, false);
      this.persist(s, id);
    });
  }

  /** Asks for a DSN about part `s`'s bounced recipients (bounce.ts); when it cannot be spooled,
   *  they come back as a deferred part that bounces again after DSN_RETRY_MS. */
  private bounce(s: number, rcpts: RecipientResult[], now: number): void {
    const st = this.sched.store;
    const id = st.idOf(s);
    const from = st.fromOf(s);
    const arrival = st.arrival[s]!;
    const qi = st.home[s]!;
    const names = this.sched.names;
    const meta = { xBinding: names.name(st.xBinding[s]!), listener: names.name(st.listener[s]!), size: st.size[s]! };
    this.bounces.request({ id, from, arrival }, rcpts, now, (rcpt) => this.addDeferred(id, from, arrival, meta, this.sched.queues[qi]!, rcpt, this.now() + DSN_RETRY_MS));
  }

  /** Adds a deferred part to a message (a new message entry if it is gone meanwhile). */
  private addDeferred(id: string, from: string, arrival: number, meta: { xBinding: string | null; listener: string | null; size: number }, q: DestQueue, rcpt: string[], next: number): void {
    const sched = this.sched;
    const first = sched.byId.find(id);
    if (first === NONE) {
      this.add({ id, size: meta.size, arrival, from, rcpt, xBinding: meta.xBinding, listener: meta.listener, bindingGroup: q.bindingGroup, binding: q.binding },
        { v: 1, p: [{ g: q.bindingGroup, b: q.binding, r: rcpt, a: 1, n: next }] });
    } else {
      const st = sched.store;
      const s = st.alloc();
      st.home[s] = q.idx;
      st.join(first, s);
      st.setRcpts(s, rcpt);
      st.size[s] = meta.size;
      st.arrival[s] = arrival;
      st.attempts[s] = 1;
      st.next[s] = next;
      st.xBinding[s] = sched.names.id(meta.xBinding);
      st.listener[s] = sched.names.id(meta.listener);
      sched.settle(s, false);
    }
    this.persist(sched.byId.find(id), id);
  }

  // --- finishing and the spool's records -----------------------------------------------------------

  /** Takes a finished part out; the message is done when its last part is. */
  private finish(s: number): void {
    const sched = this.sched;
    const st = sched.store;
    sched.leave(s);
    sched.movingHeld.delete(s);
    const size = st.size[s]!;
    // The table reads the message's id from part s: changed before s is freed.
    if (st.ring[s] === s) {
      const id = st.idOf(s);
      sched.byId.remove(s);
      st.free(s);
      this.bytes -= size;
      this.done(id);
    } else {
      sched.byId.replace(s, st.ring[s]!);
      // The finished recipients must not be sent again after a restart.
      this.persist(st.free(s));
    }
  }

  /** Marks a finished message done in the spool, once the DSNs about it are spooled. */
  private done(id: string): void {
    const gate = this.bounces.gate(id);
    if (gate !== undefined) {
      void gate.then(() => {
        if (!this.sched.byId.has(id)) this.done(id);
      });
      return;
    }
    this.doneMarks.add(id);
  }

  /** Writes the parts of the message of part `part` (its `id`) to the spool's state record
   *  (message/retry-state.ts), so a restart resumes from here. A part's home binding is saved,
   *  never #mmove; the parts in ring order from the message's entry (the order they were added). */
  private persist(part: number, known?: string): void {
    if (part === NONE) return;
    const sched = this.sched;
    const st = sched.store;
    const first = sched.byId.headOf(part);
    if (first === NONE) return;
    const id = known ?? st.idOf(first);
    const ring = st.ringOf(first);
    const p: PersistedPart[] = ring.map((s) => {
      const q = sched.queues[st.home[s]!]!;
      const part: PersistedPart = { g: q.bindingGroup, b: q.binding, r: st.rcptsOf(s), a: st.attempts[s]!, n: st.next[s]! };
      if (sched.isHeld(s)) part.h = 1;
      return part;
    });
    for (const s of ring) st.persisted[s] = 1;
    const state: PersistedState = { v: 1, p };
    this.o.spool.update(id, encodeState(state)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return; // done meanwhile
      this.o.logger.error({ err, id }, 'spool: could not save retry state');
    });
  }
}

/** A failure record's bounce class: `class` (10) and `bounce_class` ("10 Invalid Recipient"). */
function className(c: BounceClass | undefined): string | undefined {
  return c === undefined ? undefined : describeClass(c);
}
