// The connection book (main thread): every delivery connection a worker holds open, in use by a
// batch or idle, attributed to exactly one queue (the one whose batch last used it) and counted
// under its destination key, so that Max_Outbound_Connections and Cluster_Max_Outbound_Connections
// count idle connections too. It also keeps the cluster-wide windows per destination and talks to
// the Allowances provider (declare, use). Never blocks: closing idle connections is a worker call
// whose answer comes back later.
import type { Rate } from '../config/schema.js';
import { connectionsKey, messagesKey, opensKey, type Allowances, type AllowanceUse, type LimitKey } from './allowances.js';
import { MessageThrottle, stricterRate } from './throttle.js';

/** What the book needs of a queue (scheduler.ts's DestQueue). */
export interface BookQueue {
  readonly bindingGroup: string;
  readonly binding: string;
  /** Connections open for it: its batches in flight and the idle connections attributed to it. */
  conns: number;
  /** Its idle connections (few: at most its connection limit). */
  idle: IdleConn[];
  /** Its destination now (the domain, or with MX rollup its MX set). */
  dest: DestState | null;
  ready: number;
  maxConnections: number;
  maxPerConnection: number;
}

/** One idle connection, kept by a worker for the main thread to hand to a later batch. */
export interface IdleConn {
  readonly worker: number;
  readonly id: number;
  /** Transactions it has done (the next batch is sized to what it has left). */
  readonly deliveries: number;
  owner: BookQueue;
  /** Where it is counted (its owner's destination when it went idle). */
  readonly dest: DestState;
  /** closeIdle asked for it; counted until the worker says it is closed. */
  closing: boolean;
}

/** One destination key: what this node has open under it and its cluster-wide limits. */
export class DestState {
  /** Connections counted under it: batches in flight (each from its dispatch) and idle ones. */
  open = 0;
  readonly idle = new Set<IdleConn>();
  readonly queues = new Set<BookQueue>();
  /** Idle connections being closed to give room (closeIdle in progress). */
  closing = 0;
  /** Queues waiting for room under the cluster limit: a queue of another binding gives its
   *  connection up at its batch's end rather than keep it (no binding starves the others). */
  readonly starving = new Set<BookQueue>();
  /** Cluster_Max_Outbound_Connections (0: none) and its limit key. */
  connCap = 0;
  connKey: LimitKey | null = null;
  /** Cluster_Outbound_Throttle_Messages' window (limit: this node's lease) and its key. */
  msg: MessageThrottle | null = null;
  msgKey: LimitKey | null = null;
  msgCap = 0;
  /** Cluster_Outbound_Throttle_Connections' window and its key. */
  opens: MessageThrottle | null = null;
  opensKey: LimitKey | null = null;
  opensCap = 0;
  /** Demand and caps last declared, to declare only changes. */
  declared = { conn: -1, msg: -1, opens: -1 };
  /** What each of its queues' config sets (domains under one MX set may differ): the strictest
   *  that any of them sets is the destination's. */
  readonly wanted = new Map<BookQueue, ClusterLimits>();
  constructor(readonly key: string) {}

  get limited(): boolean {
    return this.connKey !== null || this.msgKey !== null || this.opensKey !== null;
  }
}

/** The cluster-wide limits one queue's config sets (0 / null: none). */
export interface ClusterLimits {
  readonly conn: number;
  readonly msg: Rate | null;
  readonly opens: Rate | null;
}

export interface BookOptions {
  now: () => number;
  /** The cluster's shares of the cluster-wide limits; null: each limit is this node's alone. */
  allowances: Allowances | null;
  /** Has `worker` close these idle connections; resolves with those it closed, once closed. */
  closeIdle: (worker: number, ids: number[]) => Promise<number[]>;
  /** Something changed that may let a queue go (the pump looks again). */
  changed: () => void;
  /** An allowance changed: a queue its cluster window held back looks again now. */
  wake: (q: BookQueue) => void;
  onError: (err: unknown) => void;
}

export class ConnectionBook implements AllowanceUse {
  private readonly dests = new Map<string, DestState>();
  private readonly byKey = new Map<LimitKey, DestState>();
  private readonly byWorker = new Map<number, Map<number, IdleConn>>();
  /** Destinations with cluster limits whose demand or use changed since the last declare. */
  private readonly dirty = new Set<DestState>();
  /** Connections open (in use or idle), idle ones, and closeIdle calls made: metrics. */
  openCount = 0;
  idleCount = 0;
  closeIdleCalls = 0;

  constructor(private readonly o: BookOptions) {
    o.allowances?.setUse(this);
    o.allowances?.onChange(() => {
      for (const d of this.byKey.values()) {
        this.dirty.add(d);
        if (d.msg !== null || d.opens !== null) for (const q of d.queues) o.wake(q);
      }
      o.changed();
    });
  }

  // --- destinations ----------------------------------------------------------------------------

  /** Puts `q` under destination `key` (its connections stay counted where they were taken). */
  place(q: BookQueue, key: string): DestState {
    if (q.dest?.key === key) return q.dest;
    const was = q.dest;
    was?.queues.delete(q);
    if (was?.wanted.delete(q) === true) this.apply(was);
    let d = this.dests.get(key);
    if (d === undefined) {
      d = new DestState(key);
      this.dests.set(key, d);
    }
    d.queues.add(q);
    q.dest = d;
    return d;
  }

  /** The cluster-wide limits queue `q` (under `d`) has in its config now. */
  configure(d: DestState, q: BookQueue, limits: ClusterLimits): void {
    d.wanted.set(q, limits);
    this.apply(d);
  }

  /** Applies the strictest of the limits `d`'s queues want (a change of key gives the old back). */
  private apply(d: DestState): void {
    let connCap = 0;
    let msgRate: Rate | null = null;
    let opensRate: Rate | null = null;
    for (const w of d.wanted.values()) {
      if (w.conn > 0 && (connCap === 0 || w.conn < connCap)) connCap = w.conn;
      msgRate = stricterRate(msgRate, w.msg);
      opensRate = stricterRate(opensRate, w.opens);
    }
    const a = this.o.allowances;
    const connKey = connCap > 0 ? connectionsKey(d.key) : null;
    if (d.connKey !== null && d.connKey !== connKey) this.drop(d.connKey);
    d.connCap = connCap;
    d.connKey = connKey;
    const mk = msgRate === null ? null : messagesKey(d.key, msgRate.periodMs);
    if (d.msgKey !== null && d.msgKey !== mk) this.drop(d.msgKey);
    d.msgKey = mk;
    d.msgCap = msgRate?.count ?? 0;
    d.msg = mk === null ? null : d.msg !== null && d.msg.periodMs === msgRate!.periodMs ? d.msg : new MessageThrottle(msgRate!);
    if (d.msg !== null && a === null) d.msg.limit = d.msgCap;
    const ok = opensRate === null ? null : opensKey(d.key, opensRate.periodMs);
    if (d.opensKey !== null && d.opensKey !== ok) this.drop(d.opensKey);
    d.opensKey = ok;
    d.opensCap = opensRate?.count ?? 0;
    d.opens = ok === null ? null : d.opens !== null && d.opens.periodMs === opensRate!.periodMs ? d.opens : new MessageThrottle(opensRate!);
    if (d.opens !== null && a === null) d.opens.limit = d.opensCap;
    for (const k of [connKey, mk, ok]) if (k !== null) this.byKey.set(k, d);
    d.declared = { conn: -1, msg: -1, opens: -1 };
    if (d.limited) this.dirty.add(d);
  }

  private drop(key: LimitKey): void {
    this.byKey.delete(key);
    this.o.allowances?.forget(key);
  }

  /** Marks `d`'s demand as changed (new ready mail); cheap, no allocation. */
  touch(d: DestState | null): void {
    if (d !== null && d.limited) this.dirty.add(d);
  }

  private allowance(key: LimitKey, cap: number): number {
    const a = this.o.allowances;
    return a === null ? cap : Math.min(cap, a.allowance(key));
  }

  /** The connections this node may hold under `d` now: its lease, and no more than its fair
   *  share (above it, it gives back: the provider lowers a lease only once the use is under it). */
  private connShare(d: DestState): number {
    const a = this.o.allowances;
    const allowance = this.allowance(d.connKey!, d.connCap);
    return a === null ? allowance : Math.min(allowance, a.target(d.connKey!));
  }

  /** Connections `d` has room for under its cluster limit now (Infinity: no limit). */
  connRoom(d: DestState): number {
    if (d.connKey === null) return Infinity;
    return this.connShare(d) - d.open;
  }

  /** This node holds more under `d` than its share: idle connections close instead of serving. */
  overShare(d: DestState): boolean {
    return d.connKey !== null && d.open > this.connShare(d);
  }

  /** Messages `d`'s cluster window allows now (Infinity: no limit); its limit is the lease now. */
  msgAvailable(d: DestState, now: number): number {
    if (d.msg === null) return Infinity;
    d.msg.limit = this.allowance(d.msgKey!, d.msgCap);
    return d.msg.available(now);
  }

  /** Connections `d`'s cluster window allows to open now (Infinity: no limit). */
  opensAvailable(d: DestState, now: number): number {
    if (d.opens === null) return Infinity;
    d.opens.limit = this.allowance(d.opensKey!, d.opensCap);
    return d.opens.available(now);
  }

  // --- counting --------------------------------------------------------------------------------

  /** An idle connection `q`'s next batch may use: its own, else (`borrow`: MX rollup, and `q` is
   *  under its limit) one of another queue of the same binding under the same destination. */
  idleFor(q: BookQueue, borrow: boolean): IdleConn | null {
    for (let i = q.idle.length - 1; i >= 0; i--) if (!q.idle[i]!.closing) return q.idle[i]!;
    if (!borrow || q.dest === null) return null;
    for (const c of q.dest.idle) if (!c.closing && c.owner.binding === q.binding && c.owner.bindingGroup === q.bindingGroup) return c;
    return null;
  }

  /** A batch of `q` takes idle connection `c` (now in use, attributed to `q`). Returns where the
   *  batch's connection is counted. */
  useIdle(c: IdleConn, q: BookQueue): DestState {
    this.unidle(c);
    c.dest.starving.delete(q);
    c.owner.conns--;
    q.conns++;
    this.dirty.add(c.dest);
    return c.dest;
  }

  /** Whether `q` should give its idle connection under `d` up: another binding waits for room. */
  othersWait(q: BookQueue, d: DestState): boolean {
    if (d.starving.size === 0) return false;
    for (const w of d.starving) {
      if (w.ready === 0 || w.dest !== d) d.starving.delete(w);
      else if (w.binding !== q.binding || w.bindingGroup !== q.bindingGroup) return true;
    }
    return false;
  }

  /** A batch of `q` that may open a connection is dispatched: counted from now on. */
  openSlot(q: BookQueue): DestState {
    const d = q.dest!;
    d.starving.delete(q);
    q.conns++;
    d.open++;
    this.openCount++;
    this.touch(d);
    return d;
  }

  /** A batch of `q` ended: its connection is closed, or `kept` idle on `worker`. */
  endSlot(q: BookQueue, d: DestState, worker: number, kept: { id: number; deliveries: number } | null): void {
    q.conns--;
    d.open--;
    this.openCount--;
    if (kept !== null && worker >= 0) {
      const dest = q.dest ?? d;
      const c: IdleConn = { worker, id: kept.id, deliveries: kept.deliveries, owner: q, dest, closing: false };
      q.conns++;
      dest.open++;
      this.openCount++;
      this.idleCount++;
      q.idle.push(c);
      dest.idle.add(c);
      let w = this.byWorker.get(worker);
      if (w === undefined) this.byWorker.set(worker, (w = new Map()));
      w.set(kept.id, c);
      this.touch(dest);
    }
    this.touch(d);
  }

  /** Takes `c` out of the idle lists (its count stays with whoever holds it next). */
  private unidle(c: IdleConn): void {
    const l = c.owner.idle;
    const k = l.indexOf(c);
    if (k >= 0) l.splice(k, 1);
    c.dest.idle.delete(c);
    this.byWorker.get(c.worker)?.delete(c.id);
    this.idleCount--;
    if (c.closing) {
      c.closing = false;
      c.dest.closing--;
    }
  }

  /** An idle connection is gone: no longer counted anywhere. */
  private gone(c: IdleConn): void {
    this.unidle(c);
    c.owner.conns--;
    c.dest.open--;
    this.openCount--;
    this.touch(c.dest);
  }

  /** Idle connections of `worker` closed on their own (the worker's connClosed event). */
  closed(worker: number, ids: readonly number[]): void {
    const w = this.byWorker.get(worker);
    if (w === undefined) return;
    let any = false;
    for (const id of ids) {
      const c = w.get(id);
      if (c === undefined) continue; // taken by a batch meanwhile: the batch counts it
      this.gone(c);
      any = true;
    }
    if (any) this.o.changed();
  }

  /** A worker died or was replaced: its idle connections died with it. */
  workerGone(worker: number): void {
    const w = this.byWorker.get(worker);
    if (w === undefined) return;
    for (const c of [...w.values()]) this.gone(c);
    this.byWorker.delete(worker);
    this.o.changed();
  }

  /** Asks the workers to close these idle connections; they stay counted until they are. */
  close(conns: readonly IdleConn[]): void {
    const byWorker = new Map<number, IdleConn[]>();
    for (const c of conns) {
      if (c.closing) continue;
      c.closing = true;
      c.dest.closing++;
      const l = byWorker.get(c.worker);
      if (l === undefined) byWorker.set(c.worker, [c]);
      else l.push(c);
    }
    for (const [worker, list] of byWorker) {
      this.closeIdleCalls++;
      const done = () => {
        // Closed, or not idle there any more (closed on its own: gone either way).
        for (const c of list) if (this.byWorker.get(worker)?.get(c.id) === c) this.gone(c);
        this.o.changed();
      };
      this.o.closeIdle(worker, list.map((c) => c.id)).then(done, (err: unknown) => {
        this.o.onError(err);
        done();
      });
    }
  }

  /** `q` (binding B) waits for a connection under `d` and `d` is full: an idle connection of
   *  another binding (one `q` cannot use) is closed to make room, one at a time. */
  makeRoom(q: BookQueue, d: DestState): void {
    d.starving.add(q);
    if (d.closing > 0) return;
    for (const c of d.idle) {
      if (c.closing || (c.owner.binding === q.binding && c.owner.bindingGroup === q.bindingGroup)) continue;
      this.close([c]);
      return;
    }
  }

  // --- the cluster's view ----------------------------------------------------------------------

  /** AllowanceUse: what this node uses on `key` now. */
  use(key: LimitKey): number {
    const d = this.byKey.get(key);
    if (d === undefined) return 0;
    const now = this.o.now();
    if (key === d.connKey) return d.open;
    if (key === d.msgKey) return d.msg!.used(now);
    if (key === d.opensKey) return d.opens!.used(now);
    return 0;
  }

  /** Declares what changed to the provider and closes idle connections this node holds beyond
   *  its share, so the provider can give the room to others. Called after each pump. */
  settle(): void {
    if (this.dirty.size === 0) return;
    const a = this.o.allowances;
    for (const d of this.dirty) {
      if (!d.limited) continue;
      let ready = 0;
      let conns = 0;
      /** Connections the ready mail needs opened (a rate's demand is per period, not at once). */
      let toOpen = 0;
      for (const q of d.queues) {
        ready += q.ready;
        const need = Math.ceil(q.ready / Math.max(1, q.maxPerConnection));
        conns += Math.min(Math.max(q.maxConnections, q.conns), q.conns + need);
        toOpen += need;
      }
      // Connections open under `d` that a queue no longer under it holds count too.
      let held = 0;
      for (const q of d.queues) held += q.conns;
      const connDemand = conns + Math.max(0, d.open - held);
      if (a !== null) {
        if (d.connKey !== null && d.declared.conn !== connDemand) a.declare(d.connKey, d.connCap, (d.declared.conn = connDemand));
        // A rate's demand is what this node would send in a period: what its window already counts
        // (in flight included) and what waits.
        const now = this.o.now();
        const msgDemand = Math.min(d.msgCap, ready + (d.msg?.used(now) ?? 0));
        if (d.msgKey !== null && d.declared.msg !== msgDemand) a.declare(d.msgKey, d.msgCap, (d.declared.msg = msgDemand));
        const opensDemand = Math.min(d.opensCap, toOpen + (d.opens?.used(now) ?? 0));
        if (d.opensKey !== null && d.declared.opens !== opensDemand) a.declare(d.opensKey, d.opensCap, (d.declared.opens = opensDemand));
      }
      if (d.connKey !== null) {
        const share = this.connShare(d);
        let excess = d.open - d.closing - share;
        if (excess > 0) {
          const victims: IdleConn[] = [];
          for (const c of d.idle) {
            if (excess <= 0) break;
            if (c.closing) continue;
            victims.push(c);
            excess--;
          }
          if (victims.length > 0) this.close(victims);
        }
      }
    }
    this.dirty.clear();
  }

  /** This node's use, allowance and target on each cluster key of `d` (shaping show). */
  clusterUse(d: DestState): { key: LimitKey; use: number; allowance: number; target: number }[] {
    const a = this.o.allowances;
    const out: { key: LimitKey; use: number; allowance: number; target: number }[] = [];
    const caps: [LimitKey | null, number][] = [[d.connKey, d.connCap], [d.msgKey, d.msgCap], [d.opensKey, d.opensCap]];
    for (const [k, cap] of caps) {
      if (k === null) continue;
      out.push({ key: k, use: this.use(k), allowance: this.allowance(k, cap), target: a === null ? cap : a.target(k) });
    }
    return out;
  }
}
