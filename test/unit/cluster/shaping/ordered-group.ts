// A test stand-in for the shaping CPG group: every multicast goes, in one agreed order, into the
// delivery queue of every member of the sender's partition (so members that share a partition see
// the same events in the same order, each at its own pace), with view changes as events in the
// same queues, partitions, merges and kills; a shared fake clock runs every member's timers. Each
// member hosts a ClusterAllowances as ShapingNode does (sync on a view change, the wire encoding
// both ways) and a test user that uses as much as it is allowed.
import pino from 'pino';
import { ClusterAllowances, type Timers } from '../../../../src/cluster/shaping/allowances.js';
import { decodeShapingMessage, encodeShapingMessage, type ShapingMessage } from '../../../../src/cluster/shaping/messages.js';
import type { AllowanceUse, LimitKey } from '../../../../src/queue/allowances.js';

export class FakeClock implements Timers {
  now = 1_000_000;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; seq: number; fn: () => void }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.now + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }

  /** When the next timer is due (Infinity: none). */
  next(): number {
    let at = Infinity;
    for (const t of this.timers.values()) at = Math.min(at, t.at);
    return at;
  }

  /** Runs the earliest timer (advancing the clock to it); false if none is due by `until`. */
  runOne(until = Infinity): boolean {
    let first: { id: number; at: number; seq: number; fn: () => void } | null = null;
    for (const [id, t] of this.timers) if (first === null || t.at < first.at || (t.at === first.at && t.seq < first.seq)) first = { id, ...t };
    if (first === null || first.at > until) return false;
    this.timers.delete(first.id);
    this.now = Math.max(this.now, first.at);
    first.fn();
    return true;
  }
}

/** A user of the allowances: per key, a demand; it uses min(allowance, demand) and gives back down
 *  to its target when above it (a connection user), or sends while its window allows (a rate user). */
export class TestUser implements AllowanceUse {
  readonly demand = new Map<LimitKey, number>();
  /** Connections open, per key. */
  readonly open = new Map<LimitKey, number>();
  /** Events (times) per rate key, kept for the whole test: the windows are checked over them. */
  readonly events = new Map<LimitKey, number[]>();
  /** Gives back above the target only when this says so (a lazy user: closes idle ones later). */
  givesBack: () => boolean = () => true;

  constructor(private readonly clock: FakeClock, private readonly periods: ReadonlyMap<LimitKey, number>) {}

  use(key: LimitKey): number {
    const p = this.periods.get(key);
    if (p === undefined) return this.open.get(key) ?? 0;
    return this.windowCount(key, p);
  }

  windowCount(key: LimitKey, period: number): number {
    const ev = this.events.get(key) ?? [];
    let n = 0;
    for (let i = ev.length - 1; i >= 0 && ev[i]! > this.clock.now - period; i--) n++;
    return n;
  }

  /** Acts on what it is allowed now. */
  adjust(a: ClusterAllowances, alive: boolean): void {
    for (const [key, d] of this.demand) {
      const allowed = alive ? a.allowance(key) : 0;
      if (this.periods.has(key)) {
        const ev = this.events.get(key) ?? [];
        this.events.set(key, ev);
        let n = this.use(key);
        while (alive && n < Math.min(allowed, d)) {
          ev.push(this.clock.now);
          n++;
        }
        continue;
      }
      const current = Math.min(this.open.get(key) ?? 0, allowed); // allowance dropped (quorum lost): closes at once
      // A cooperative user stays at its target (closes idle connections above it); a lazy one keeps
      // what it has; both open up to what they are allowed and need.
      const open = this.givesBack() ? Math.min(allowed, d, a.target(key)) : Math.max(current, Math.min(allowed, d));
      this.open.set(key, alive ? open : 0);
    }
  }
}

type Event = { readonly kind: 'view'; readonly members: string[] } | { readonly kind: 'msg'; readonly from: string; readonly data: Buffer };

export class Member {
  readonly queue: Event[] = [];
  alive = true;
  /** The members this one can reach (its partition), itself included. */
  partition: Set<Member>;
  readonly user: TestUser;
  readonly allowances: ClusterAllowances;
  readonly sent: ShapingMessage[] = [];

  constructor(readonly group: OrderedGroup, readonly name: string, readonly key: string, partition: Set<Member>) {
    this.partition = partition;
    partition.add(this);
    this.user = new TestUser(group.clock, group.periods);
    this.allowances = new ClusterAllowances({ node: name, logger: pino({ level: 'silent' }), clustered: true, now: () => group.clock.now, timers: group.clock, ...group.options });
    this.allowances.setUse(this.user);
    this.allowances.onChange(() => this.user.adjust(this.allowances, this.alive));
    this.allowances.start();
    this.attach();
  }

  /** The DuraVIP manager's quorum news reaches this member. */
  quorum(q: boolean): void {
    this.allowances.quorumChanged(q);
  }

  attach(): void {
    this.allowances.attach((m) => {
      if (!this.alive) return false;
      this.sent.push(m);
      const data = encodeShapingMessage(m);
      for (const to of this.partition) to.queue.push({ kind: 'msg', from: this.key, data });
      return true;
    });
  }

  /** Delivers the next event of its queue, as ShapingNode would; false if none. */
  deliverOne(): boolean {
    const e = this.queue.shift();
    if (e === undefined || !this.alive) return false;
    if (e.kind === 'view') {
      const leases = this.allowances.viewChanged(e.members);
      const m: ShapingMessage = { type: 'sync', node: this.name, now: this.group.clock.now, ...leases, restrictions: [] };
      this.sent.push(m);
      const data = encodeShapingMessage(m);
      for (const to of this.partition) to.queue.push({ kind: 'msg', from: this.key, data });
    } else {
      const d = decodeShapingMessage(e.data);
      if (!d.ok) throw new Error(`a member sent what does not decode: ${d.error}`);
      this.allowances.deliver(e.from, d.message);
    }
    return true;
  }
}

export class OrderedGroup {
  readonly clock = new FakeClock();
  readonly members: Member[] = [];
  private nextId = 1;

  /** Rate keys and their periods (the users count their windows over them). */
  constructor(readonly periods: ReadonlyMap<LimitKey, number> = new Map(), readonly options: { graceMs?: number } = {}) {}

  get alive(): Member[] {
    return this.members.filter((m) => m.alive);
  }

  /** A new member joins the partition of `with` (or a group of its own): a view change for all. */
  join(name: string, withMember?: Member): Member {
    const id = this.nextId++;
    const m = new Member(this, name, `${id}:${100 + id}`, withMember?.partition ?? new Set());
    this.members.push(m);
    this.viewChange(m.partition);
    return m;
  }

  private viewChange(partition: Set<Member>): void {
    const members = [...partition].map((x) => x.key);
    for (const x of partition) x.queue.push({ kind: 'view', members });
  }

  /** The member dies (its process ends): the others see it leave. */
  kill(m: Member): void {
    m.alive = false;
    m.allowances.stop();
    m.user.adjust(m.allowances, false);
    m.partition.delete(m);
    this.viewChange(m.partition);
  }

  /** The cluster splits: each side sees a view without the other. */
  split(side: Member[]): void {
    const a = new Set(side);
    const old = side[0]!.partition;
    const b = new Set([...old].filter((x) => !a.has(x)));
    for (const x of a) x.partition = a;
    for (const x of b) x.partition = b;
    this.viewChange(a);
    this.viewChange(b);
  }

  /** Two partitions become one: a view with every member of both. */
  merge(a: Member, b: Member): void {
    const all = new Set([...a.partition, ...b.partition]);
    for (const x of all) x.partition = all;
    this.viewChange(all);
  }

  /** Every user acts on what it is allowed now. */
  adjustAll(): void {
    for (const m of this.members) m.user.adjust(m.allowances, m.alive);
  }

  /** Delivers until every queue is empty (members may send while it runs). */
  deliverAll(check: () => void = () => undefined): void {
    for (let more = true; more;) {
      more = false;
      for (const m of this.alive) {
        if (m.deliverOne()) {
          more = true;
          this.adjustAll();
          check();
        }
      }
    }
  }

  /** Runs timers and delivers everything, for `ms` of fake time, checking after every event. */
  run(ms: number, check: () => void = () => undefined): void {
    const until = this.clock.now + ms;
    this.deliverAll(check);
    while (this.clock.runOne(until)) {
      this.adjustAll();
      check();
      this.deliverAll(check);
    }
    this.clock.now = until;
    this.adjustAll();
    check();
  }
}
