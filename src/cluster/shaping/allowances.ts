// The cluster-wide allowances (queue/allowances.ts) over the shaping group's leases: per limit key,
// this node may use its lease; members change leases by claims multicast at most once per interval
// and applied by every member in agreed order (rounds.ts, leases.ts). Timers only decide when this
// member sends; what the table holds follows from the agreed messages alone. A single node (not
// clustered) may use the whole cap at once. Main thread; nothing blocks, no I/O but the multicast.

import type { Logger } from 'pino';
import { parseLimitKey, type AllowanceUse, type Allowances, type LimitKey } from '../../queue/allowances.js';
import type { LeaseClaim, LeaseEntry } from './leases.js';
import type { ShapingMessage } from './messages.js';
import { LeaseRounds, type SyncLeases } from './rounds.js';

/** At most one claims message per member per this interval. */
export const CLAIM_INTERVAL_MS = 100;
/** A changed use alone (for the console) rides at most this often. */
export const USE_INTERVAL_MS = 1000;
/**
 * A departed member's leases return to the others this long after the view without it (plus the
 * key's period for a rate key). It must be longer than a cut-off member needs to notice it lost
 * quorum and stop using them: corosync tells it at the same ring change the others see (token
 * timeout, ~1 s here), and its main thread acts on it within a turn of its event loop; a node so
 * loaded that it takes longer also misses its token and is declared dead later, not sooner.
 * 1000 ms + the claim interval keeps a dead member's share back in use within 2 s of the new view.
 */
export const DEPARTED_GRACE_MS = 1000;
/** A key with no demand and no use gives its lease back after this long (idle destinations do
 *  not hold budget; a queue that empties for a moment does not churn). */
export const IDLE_RELEASE_MS = 2000;
/** Out of the group this long after start (the join is a few ms when corosync runs), a node with
 *  cluster-wide limits says once that it is allowed nothing; a lost group is said at once. */
export const JOIN_PATIENCE_MS = 2000;
/** Claims per message at most (a message stays far below MAX_SHAPING_MESSAGE); more wait a tick. */
export const MAX_CLAIMS_PER_MESSAGE = 2000;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface ClusterAllowancesOptions {
  /** This node's name (Nodename), as its claims carry it. */
  readonly node: string;
  readonly logger: Logger;
  /** false: a single node, every allowance is the declared cap and nothing is sent. */
  readonly clustered: boolean;
  /** Whether this node's partition is quorate (the DuraVIP manager's view, a stalled corosync
   *  counting as not); read at start and at every tick (cheap), and `quorumChanged` says it at
   *  once. Default: always. */
  readonly quorate?: () => boolean;
  readonly now?: () => number;
  readonly timers?: Timers;
  readonly intervalMs?: number;
  readonly graceMs?: number;
  readonly idleMs?: number;
}

/** The period of a rate key (`...#msg/60000`), 0 for a count (connections, inbound). */
export function periodOf(key: string): number {
  return parseLimitKey(key)?.periodMs ?? 0;
}

interface Own {
  cap: number;
  demand: number;
  /** false after forget(): the lease goes back as the use allows, then the key is dropped. */
  declared: boolean;
  /** What this node may use (when usable): never above its lease in the agreed table. */
  held: number;
  /** The lease its latest claim asks for (the table's, once that claim is applied). */
  asked: number;
  /** The leases of its claims not yet delivered back, in send order. */
  readonly pending: number[];
  /** What the table was last told (null: nothing). */
  sent: { cap: number; lease: number; demand: number; use: number } | null;
  /** Since when demand and use are both 0. */
  idleSince: number | null;
  /** allowance and target as onChange last told. */
  told: string;
}

/** Per key, for Prometheus and `shaping show`. */
export interface AllowanceStats {
  readonly key: LimitKey;
  readonly allowance: number;
  readonly target: number;
  /** This node's use now. */
  readonly use: number;
  /** The cap in force cluster-wide (the lowest announced; this node's own single). */
  readonly cap: number;
  /** Sum of every member's lease (departed ones included until released). */
  readonly sum: number;
  /** Sum of the members' last reported use. */
  readonly clusterUse: number;
}

/**
 * The provider of cluster-wide allowances over the shaping group's leases.
 *
 * Why the sum of what the members use never exceeds the cap, at any instant:
 * 1. Locally, use <= allowance: a raise counts only once this member's claim comes back agreed
 *    (until then the old lease holds); a lower is taken locally at the moment the claim is sent,
 *    before the multicast, and only down to max(target, use) with `use` read at that moment. (A
 *    member that loses quorum or the group gets allowance 0 and must close what it uses; the
 *    departed grace below covers the time that takes.)
 * 2. For every member M, at every instant, M's allowance <= M's lease in the table as it will be
 *    once every claim M has sent so far is ordered: M's sent lowers already bound it, its raises
 *    only increase its lease, and M raises its allowance only to what the table says after its
 *    own raise. So sum(allowances) <= sum(leases of that table) <= cap, because a raise is admitted
 *    in agreed order only up to what the cap leaves free after every lease (leases.ts), and the
 *    table is the same on every member at the same point of the order.
 * 3. Across a view change the table is rebuilt from the members' syncs, each the sender's allowance
 *    when it sent it (>= any later one: no raise is admitted until every member of the view has
 *    synced), plus the departed members' leases, which stay until a 'release' sent after
 *    DEPARTED_GRACE_MS (+ the key's period for a rate): longer than a cut-off member needs to see
 *    that it lost quorum and stop, and for a rate until its last events have left every window.
 * Rates: `use` of `DEST#msg/PERIOD` is the trailing window's count, so (1) says that the member's
 * last PERIOD holds no more events than its allowance, and (2) that every window of the cluster's
 * events holds no more than the cap.
 */
export class ClusterAllowances implements Allowances {
  private readonly own = new Map<LimitKey, Own>();
  private readonly rounds = new LeaseRounds();
  private useSource: AllowanceUse | null = null;
  private readonly listeners: Array<() => void> = [];
  private send: ((m: ShapingMessage) => boolean) | null = null;
  private quorate: boolean;
  private timer: unknown = null;
  private lastSentAt = -Infinity;
  private useSentAt = -Infinity;
  /** Departed (id, key) -> when this member first knew it, and when it last asked to release it. */
  private readonly departedSeen = new Map<string, { seen: number; asked: number }>();
  private warnedAbsent = false;
  private startedAt = -Infinity;
  private stopped = false;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly interval: number;
  private readonly grace: number;
  private readonly idle: number;
  /** Counters for /metrics. */
  readonly stats = { claimMessagesSent: 0, releaseMessagesSent: 0, claimsApplied: 0, roundsCompleted: 0 };

  constructor(private readonly o: ClusterAllowancesOptions) {
    this.now = o.now ?? Date.now;
    this.timers = o.timers ?? realTimers;
    this.interval = o.intervalMs ?? CLAIM_INTERVAL_MS;
    this.grace = o.graceMs ?? DEPARTED_GRACE_MS;
    this.idle = o.idleMs ?? IDLE_RELEASE_MS;
    this.quorate = o.quorate?.() ?? true;
  }

  // --- Allowances (the queue and the listeners) ---

  declare(key: LimitKey, cap: number, demand: number): void {
    const c = Math.max(0, Math.floor(cap));
    const d = Math.max(0, Math.floor(demand));
    const s = this.own.get(key);
    if (s === undefined) {
      this.own.set(key, { cap: c, demand: d, declared: true, held: 0, asked: 0, pending: [], sent: null, idleSince: null, told: '' });
    } else {
      s.cap = c;
      s.demand = d;
      s.declared = true;
    }
    if (this.o.clustered) this.schedule();
    // A single node's allowance is the cap from this moment: its user looked (saw 0) before it
    // declared, so it is told, after this call returns (the user may be in the middle of a pass).
    else if (`${c}/${c}` !== this.own.get(key)!.told) queueMicrotask(() => this.notify());
  }

  forget(key: LimitKey): void {
    const s = this.own.get(key);
    if (s === undefined) return;
    if (!this.o.clustered) {
      this.own.delete(key);
      return;
    }
    s.declared = false;
    s.demand = 0;
    this.schedule();
  }

  allowance(key: LimitKey): number {
    const s = this.own.get(key);
    if (s === undefined || !s.declared) return 0;
    if (!this.o.clustered) return s.cap;
    return this.usable() ? s.held : 0;
  }

  target(key: LimitKey): number {
    const s = this.own.get(key);
    if (s === undefined || !s.declared) return 0;
    if (!this.o.clustered) return s.cap;
    return this.usable() ? this.aim(key, s) : 0;
  }

  setUse(use: AllowanceUse): void {
    this.useSource = use;
  }

  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  // --- The host (ShapingNode): the group, the view, the agreed messages, quorum ---

  /** The DuraVIP manager's quorum changed: without it every allowance is 0 (the user closes what
   *  it can), and the leases go back as the use drops; with it again, claims start over. */
  quorumChanged(quorate: boolean): void {
    if (quorate === this.quorate) return;
    this.quorate = quorate;
    if (!this.o.clustered) return;
    if (!quorate) this.o.logger.warn('shaping: this node has no quorum: cluster-wide limits allow it nothing until it has');
    else this.o.logger.info('shaping: quorum regained: cluster-wide limits claim again');
    this.notify();
    this.schedule('now');
  }

  /** Joined the shaping group: claims go through `send` (false when it could not be sent). */
  attach(send: (m: ShapingMessage) => boolean): void {
    this.send = send;
    this.warnedAbsent = false;
    this.rounds.reset();
    for (const s of this.own.values()) s.pending.length = 0;
  }

  /** Lost the group (corosync went away): every allowance is 0 until it joins again. */
  detach(): void {
    this.send = null;
    this.rounds.reset();
    for (const s of this.own.values()) s.pending.length = 0;
    this.departedSeen.clear();
    this.warnAbsent();
    this.notify();
  }

  /** A view change (members as memberKeys): the lease part of this member's sync. */
  viewChanged(members: readonly string[]): SyncLeases {
    const { leaving, ...v } = this.rounds.view(members);
    // A departure's grace runs from now, whatever was known under the same id.
    const now = this.now();
    for (const d of v.departed) {
      if (!leaving.includes(d.id)) continue;
      for (const c of d.claims) this.departedSeen.set(`${d.id}\0${c.key}`, { seen: now, asked: -Infinity });
    }
    const use = this.uses();
    const claims: LeaseClaim[] = [];
    for (const [key, s] of this.own) {
      const demand = s.declared ? Math.min(s.demand, s.cap) : 0;
      s.asked = s.held;
      s.sent = { cap: s.cap, lease: s.held, demand, use: use.get(key)! };
      if (s.held > 0 || demand > 0) claims.push({ key, cap: s.cap, lease: s.held, demand, use: use.get(key)! });
    }
    this.schedule();
    return { ...v, claims };
  }

  /** An agreed message of the lease kinds, from memberKey `from`. */
  deliver(from: string, m: ShapingMessage): void {
    if (this.stopped || !this.o.clustered) return;
    if (m.type === 'claims') {
      const r = this.rounds.claims(from, m.node, m.claims);
      if (r !== 'ignored') this.stats.claimsApplied += m.claims.length;
      if (m.node === this.o.node) this.ownDelivered(m.claims, r === 'applied');
      // Only the claimed keys' targets can have moved.
      this.notify(m.claims);
      return;
    } else if (m.type === 'sync') {
      const r = this.rounds.sync(from, m.node, m.view === null ? null : { view: m.view, epoch: m.epoch, claims: m.claims, departed: m.departed });
      if (r === 'completed') this.completed();
    } else if (m.type === 'release') {
      for (const x of m.released) this.rounds.release(x.id, x.key);
    } else {
      return;
    }
    this.notify();
  }

  start(): void {
    this.stopped = false;
    this.startedAt = this.now();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  // --- Observability ---

  /** Every key this node declared: its allowance, target, use, and the cluster's cap and sum. */
  keys(): AllowanceStats[] {
    return [...this.own.keys()].map((key) => this.stat(key)).filter((x) => x !== null);
  }

  /** One key's figures (`shaping show`), or null when this node has not declared it. */
  stat(key: LimitKey): AllowanceStats | null {
    const s = this.own.get(key);
    if (s === undefined || !s.declared) return null;
    const t = this.rounds.table;
    const use = Math.max(0, Math.floor(this.useSource?.use(key) ?? 0));
    return {
      key, allowance: this.allowance(key), target: this.target(key), use,
      cap: this.o.clustered ? Math.min(s.cap, t.cap(key)) : s.cap,
      sum: this.o.clustered ? t.sum(key) : this.allowance(key),
      clusterUse: this.o.clustered ? t.use(key) : use,
    };
  }

  /** The agreed lease table (departed members' ids are `name@epoch`), for the console. */
  entries(): LeaseEntry[] {
    if (!this.o.clustered) {
      const use = this.uses();
      return [...this.own].filter(([, s]) => s.declared).sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, s]) => ({
        key, cap: s.cap, sum: s.cap, holders: [{ member: this.o.node, lease: s.cap, demand: Math.min(s.demand, s.cap), use: use.get(key)! }],
      }));
    }
    return this.rounds.table.entries();
  }

  /** The lease state in a line: in the group, quorate, the round (for `shaping leases`). */
  status(): string {
    if (!this.o.clustered) return 'single node: every limit is this node\'s whole';
    if (this.send === null) return 'NOT in the shaping group: cluster-wide limits allow this node nothing';
    const parts = [`round ${this.rounds.epoch}`];
    const waiting = this.rounds.waitingFor();
    if (waiting.length > 0) parts.push(`view change: waiting for ${waiting.join(', ')} (no raise until then)`);
    if (!this.quorate) parts.push('NO QUORUM: this node is allowed nothing');
    return parts.join('; ');
  }

  // --- Inside ---

  private usable(): boolean {
    return this.send !== null && this.quorate && this.rounds.epoch > 0;
  }

  /** The lease this member aims for: its water-filled share of the cap over every demand. */
  private aim(key: LimitKey, s: Own): number {
    return this.rounds.table.target(this.o.node, key, { cap: s.cap, demand: Math.min(s.demand, s.cap) });
  }

  private uses(): Map<LimitKey, number> {
    const out = new Map<LimitKey, number>();
    for (const key of this.own.keys()) out.set(key, Math.max(0, Math.floor(this.useSource?.use(key) ?? 0)));
    return out;
  }

  /** This member's own claims came back in agreed order. */
  private ownDelivered(claims: readonly LeaseClaim[], applied: boolean): void {
    for (const c of claims) {
      const s = this.own.get(c.key);
      if (s === undefined) continue;
      s.pending.shift();
      if (!applied) {
        // Ignored (a view change's round was open): nothing changed in the table, so what this
        // member last asked for is its lease again, and the next tick claims anew. Without this a
        // raise ignored at a view change was never asked for again (the claim looked unchanged).
        if (s.pending.length === 0) {
          s.asked = s.held;
          if (s.sent !== null) s.sent.lease = s.held;
        }
        continue;
      }
      // A raise counts now; never above a lower sent since (still in flight).
      const lease = this.rounds.table.lease(this.o.node, c.key);
      s.held = Math.min(lease, ...s.pending);
      if (s.pending.length === 0) {
        s.asked = lease;
        if (s.sent !== null) s.sent.lease = lease;
      }
    }
    this.schedule();
  }

  /** A round completed: the table is the new view's. */
  private completed(): void {
    this.stats.roundsCompleted++;
    for (const [key, s] of this.own) {
      const lease = this.rounds.table.lease(this.o.node, key);
      s.held = Math.min(s.held, lease);
      if (s.pending.length === 0) {
        s.asked = lease;
        if (s.sent !== null) s.sent.lease = lease;
      }
    }
    this.o.logger.debug({ round: this.rounds.epoch }, 'shaping: lease round agreed');
    this.schedule();
  }

  private warnAbsent(): void {
    if (this.warnedAbsent || !this.o.clustered || this.stopped) return;
    this.warnedAbsent = true;
    this.o.logger.warn('shaping: not in the shaping group (corosync down?): cluster-wide limits allow this node nothing until it joins');
  }

  /** Tells the users when an allowance or target of theirs changed (of `keys`, default all). */
  private notify(keys?: readonly LeaseClaim[]): void {
    let changed = false;
    for (const [key, s] of keys === undefined ? this.own : keys.map((c) => [c.key, this.own.get(c.key)] as const)) {
      if (s === undefined) continue;
      const told = `${this.allowance(key)}/${this.target(key)}`;
      if (told !== s.told) {
        s.told = told;
        changed = true;
      }
    }
    if (changed) for (const fn of this.listeners) fn();
  }

  /**
   * Makes sure a tick comes: `poll` one interval from now (the tick's own follow-up, reading the
   * use again), else as soon as one interval after the last send allows (a new demand, a message
   * applied, quorum lost: `now` replaces a later tick).
   */
  private schedule(how: 'poll' | 'soon' | 'now' = 'soon'): void {
    if (this.stopped || !this.o.clustered) return;
    if (this.timer !== null) {
      if (how !== 'now') return;
      this.timers.clearTimeout(this.timer);
    }
    const delay = how === 'poll' ? this.interval : Math.max(0, this.lastSentAt + this.interval - this.now());
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.tick();
    }, delay);
  }

  /** Decides what this member claims now and sends it in one message; releases departed leases
   *  whose grace ended. Keeps ticking while it holds keys or knows departed leases. */
  private tick(): void {
    if (this.stopped) return;
    const now = this.now();
    const q = this.o.quorate?.();
    if (q !== undefined && q !== this.quorate) this.quorumChanged(q);
    const usable = this.usable();
    const table = this.rounds.table;
    const use = this.uses();
    const claims: LeaseClaim[] = [];
    const rideUse = now - this.useSentAt >= USE_INTERVAL_MS;
    let lowered = false;
    if (this.send === null && this.own.size > 0 && now - this.startedAt >= JOIN_PATIENCE_MS) this.warnAbsent();
    for (const [key, s] of this.own) {
      const u = use.get(key)!;
      let want: number;
      if (!usable || !s.declared) {
        want = 0;
      } else if (s.demand === 0 && u === 0) {
        if (s.idleSince === null) s.idleSince = now;
        want = now - s.idleSince >= this.idle ? 0 : s.held;
      } else {
        s.idleSince = null;
        want = this.aim(key, s);
      }
      if (want < s.held) {
        // Down to what is in use at most: the allowance drops now, before the claim is sent.
        const low = Math.max(want, Math.min(u, s.held));
        if (low < s.held) {
          s.held = low;
          s.asked = low;
          lowered = true;
        }
      } else if (want > s.held && this.rounds.settled && s.pending.length === 0 && Math.min(s.cap, table.cap(key)) - table.sum(key) > 0) {
        s.asked = want;
      }
      const demand = s.declared ? Math.min(s.demand, s.cap) : 0;
      const last = s.sent;
      const differs = last === null ? s.asked > 0 || demand > 0 : last.cap !== s.cap || last.lease !== s.asked || last.demand !== demand;
      if (this.send !== null && claims.length < MAX_CLAIMS_PER_MESSAGE && (differs || (last !== null && last.use !== u && rideUse))) {
        claims.push({ key, cap: s.cap, lease: s.asked, demand, use: u });
        s.sent = { cap: s.cap, lease: s.asked, demand, use: u };
      }
    }
    if (claims.length > 0 && this.send !== null) {
      if (this.send({ type: 'claims', node: this.o.node, now, claims })) {
        this.stats.claimMessagesSent++;
        this.lastSentAt = now;
        if (rideUse) this.useSentAt = now;
        for (const c of claims) this.own.get(c.key)!.pending.push(c.lease);
      } else {
        for (const c of claims) this.own.get(c.key)!.sent = null;
      }
    }
    for (const [key, s] of this.own) {
      if (!s.declared && s.held === 0 && s.asked === 0 && s.pending.length === 0 && (this.send === null || s.sent === null || s.sent.lease === 0)) this.own.delete(key);
    }
    this.releaseDeparted(now);
    if (lowered) this.notify();
    if (this.own.size > 0 || this.departedSeen.size > 0) this.schedule('poll');
  }

  /** Asks the group to give back the departed leases whose grace ended (every member asks; the
   *  first release in the order gives them back, the others find nothing). */
  private releaseDeparted(now: number): void {
    const known = new Set<string>();
    const due: Array<{ id: string; key: string }> = [];
    for (const d of this.rounds.departed()) {
      const k = `${d.id}\0${d.key}`;
      known.add(k);
      let seen = this.departedSeen.get(k);
      if (seen === undefined) this.departedSeen.set(k, (seen = { seen: now, asked: -Infinity }));
      if (now - seen.seen >= this.grace + periodOf(d.key) && now - seen.asked >= this.grace) {
        seen.asked = now;
        due.push(d);
      }
    }
    for (const k of this.departedSeen.keys()) if (!known.has(k)) this.departedSeen.delete(k);
    if (due.length > 0 && this.send !== null && this.send({ type: 'release', node: this.o.node, now, released: due })) {
      this.stats.releaseMessagesSent++;
      this.o.logger.debug({ released: due }, 'shaping: departed leases given back');
    }
  }
}

