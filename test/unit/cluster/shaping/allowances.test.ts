// The cluster-wide allowances over the shaping group's leases, driven through a fake in-order group
// (ordered-group.ts) with an injected clock: at every step the members' allowances sum to at most
// the cap and each member uses no more than its allowance (a rate key: no window of its period holds
// more than the cap across the cluster), through raise/lower races, a member dying (its share comes
// back only after the grace), a partition whose minority loses quorum, a member joining, caps that
// differ during a reload, and rate keys. A single node uses the whole cap at once.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ClusterAllowances, DEPARTED_GRACE_MS, IDLE_RELEASE_MS, JOIN_PATIENCE_MS, periodOf } from '../../../../src/cluster/shaping/allowances.js';
import type { ShapingMessage } from '../../../../src/cluster/shaping/messages.js';
import { FakeClock, OrderedGroup, type Member } from './ordered-group.js';

const K = 'mx:mx1.webmail.test#conn';

/** A seeded generator, so a failure replays. */
function random(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % n;
  };
}

/** Throws when, right now, the allowances of the live members exceed the cap or a quorate member
 *  uses more than its allowance. */
function invariant(g: OrderedGroup, caps: () => ReadonlyMap<string, number>, exempt: (m: Member) => boolean = () => false): () => void {
  return () => {
    for (const [key, cap] of caps()) {
      let sum = 0;
      for (const m of g.alive) {
        const a = m.allowances.allowance(key);
        sum += a;
        if (!exempt(m) && m.user.use(key) > a) throw new Error(`${m.name} uses ${m.user.use(key)} of ${key} with an allowance of ${a} at ${g.clock.now}`);
      }
      if (sum > cap) throw new Error(`allowances of ${key} sum to ${sum} > ${cap} at ${g.clock.now}: ${g.alive.map((m) => `${m.name}=${m.allowances.allowance(key)}`).join(' ')}`);
    }
  };
}

function declareAll(g: OrderedGroup, key: string, cap: number, demand: number): void {
  for (const m of g.alive) {
    m.user.demand.set(key, demand);
    m.allowances.declare(key, cap, demand);
  }
}

const allowances = (ms: Member[], key = K): number[] => ms.map((m) => m.allowances.allowance(key));
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

describe('ClusterAllowances on a single node', () => {
  it('allows the declared cap at once, aims at it, and sends nothing', () => {
    const a = new ClusterAllowances({ node: 'n1', logger: pino({ level: 'silent' }), clustered: false });
    expect(a.allowance(K)).toBe(0);
    a.declare(K, 5, 2);
    expect(a.allowance(K)).toBe(5);
    expect(a.target(K)).toBe(5);
    expect(a.keys()).toEqual([{ key: K, allowance: 5, target: 5, use: 0, cap: 5, sum: 5, clusterUse: 0 }]);
    a.forget(K);
    expect(a.allowance(K)).toBe(0);
    expect(a.stats.claimMessagesSent).toBe(0);
  });
});

describe('ClusterAllowances over the shaping group', () => {
  it('shares the cap out by demand, uses all of it, and raises only once the claim is agreed', () => {
    const g = new OrderedGroup();
    const n1 = g.join('n1');
    const n2 = g.join('n2', n1);
    const n3 = g.join('n3', n1);
    const check = invariant(g, () => new Map([[K, 5]]));
    g.run(0, check);
    declareAll(g, K, 5, 10);
    // The first tick sends the raises; none counts before it comes back in agreed order.
    g.clock.runOne();
    g.clock.runOne();
    g.clock.runOne();
    expect(allowances([n1, n2, n3])).toEqual([0, 0, 0]);
    expect(n1.sent.filter((m) => m.type === 'claims')).toHaveLength(1);
    g.run(2000, check);
    expect(allowances([n1, n2, n3])).toEqual([2, 2, 1]);
    expect([n1, n2, n3].map((m) => m.allowances.target(K))).toEqual([2, 2, 1]);
    // Every member holds the same table.
    expect(n2.allowances.entries()).toEqual(n1.allowances.entries());
    expect(n3.allowances.entries()).toEqual(n1.allowances.entries());
    // n3 needs less: its unit goes to the others (n1 first by name).
    n3.user.demand.set(K, 0);
    n3.allowances.declare(K, 5, 0);
    g.run(5000, check);
    expect(allowances([n1, n2, n3])).toEqual([3, 2, 0]);
  });

  it('never exceeds the cap through random raise/lower races, lazy users and delivery at different paces', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rand = random(seed);
      const g = new OrderedGroup();
      const first = g.join('n1');
      const ms = [first, g.join('n2', first), g.join('n3', first), g.join('n4', first)];
      const caps = new Map([[K, 7], ['other.test#conn', 3]]);
      const check = invariant(g, () => caps);
      for (const m of ms) m.user.givesBack = () => rand(3) === 0;
      for (let step = 0; step < 3000; step++) {
        const r = rand(10);
        if (r < 5) {
          const m = ms[rand(ms.length)]!;
          if (m.deliverOne()) g.adjustAll();
        } else if (r < 8) {
          g.clock.runOne();
          g.adjustAll();
        } else {
          const m = ms[rand(ms.length)]!;
          const key = rand(3) === 0 ? 'other.test#conn' : K;
          const d = rand(6);
          m.user.demand.set(key, d);
          m.allowances.declare(key, caps.get(key)!, d);
        }
        check();
      }
      // Quiet: the table is the same everywhere and the budget is used as far as demand goes.
      for (const m of ms) m.user.givesBack = () => true;
      g.run(10_000, check);
      for (const m of ms.slice(1)) expect(m.allowances.entries()).toEqual(first.allowances.entries());
      for (const [key, cap] of caps) {
        const demand = sum(ms.map((m) => m.user.demand.get(key) ?? 0));
        expect(sum(allowances(ms, key))).toBe(Math.min(cap, demand));
      }
    }
  });

  it('never exceeds the cap while members join, restart, die, split and merge at random moments', () => {
    for (const seed of [11, 12, 13, 14, 15, 16, 17, 18]) {
      const rand = random(seed);
      const g = new OrderedGroup();
      const caps = new Map([[K, 7]]);
      const check = invariant(g, () => caps);
      const first = g.join('n1');
      for (const n of ['n2', 'n3', 'n4']) g.join(n, first);
      let names = 5;
      const anyone = (): Member => g.alive[rand(g.alive.length)]!;
      let split = false;
      let splits = 0;
      for (let step = 0; step < 2500; step++) {
        const r = rand(100);
        if (r < 45) {
          if (anyone().deliverOne()) g.adjustAll();
        } else if (r < 75) {
          g.clock.runOne();
          g.adjustAll();
        } else if (r < 90) {
          const m = anyone();
          const d = rand(6);
          m.user.demand.set(K, d);
          m.allowances.declare(K, 7, d);
          m.user.givesBack = () => rand(2) === 0;
        } else if (r < 93 && g.alive.length < 6 && !split) {
          const m = g.join(`n${names++}`, first.alive ? first : g.alive[0]);
          m.user.demand.set(K, 5);
          m.allowances.declare(K, 7, 5);
        } else if (r < 95 && g.alive.length > 3 && !split) {
          // A restart: the process dies and the node comes back under the same name.
          const m = anyone();
          g.kill(m);
          if (rand(2) === 0) {
            const again = g.join(m.name, g.alive[0]);
            again.user.demand.set(K, 3);
            again.allowances.declare(K, 7, 3);
          }
        } else if (r < 97 && !split && g.alive.length >= 3) {
          // A minority is cut off; it hears it lost quorum well within the grace.
          const side = g.alive.slice(0, Math.floor((g.alive.length - 1) / 2));
          if (side.length > 0) {
            split = true;
            g.split(side);
            const gen = ++splits;
            g.clock.setTimeout(() => {
              if (gen !== splits || !split) return; // merged before it heard
              for (const m of side) if (m.alive) m.quorum(false);
              g.adjustAll();
            }, rand(DEPARTED_GRACE_MS / 2));
          }
        } else if (r < 99 && split) {
          const a = g.alive[0]!;
          const b = g.alive.find((m) => !a.partition.has(m));
          split = false;
          splits++;
          if (b !== undefined) {
            g.merge(a, b);
            for (const m of g.alive) m.quorum(true);
          }
        }
        check();
      }
      if (split) {
        split = false;
        splits++;
        const a = g.alive[0]!;
        const b = g.alive.find((m) => !a.partition.has(m));
        if (b !== undefined) g.merge(a, b);
        for (const m of g.alive) m.quorum(true);
      }
      for (const m of g.alive) m.user.givesBack = () => true;
      g.run(20_000, check);
      const ms = g.alive;
      for (const m of ms.slice(1)) expect(m.allowances.entries()).toEqual(ms[0]!.allowances.entries());
      const demand = sum(ms.map((m) => m.user.demand.get(K) ?? 0));
      if (sum(allowances(ms)) !== Math.min(7, demand)) console.log(seed, JSON.stringify(ms[0]!.allowances.entries()), ms.map((m) => `${m.name} ${m.key} a=${m.allowances.allowance(K)} t=${m.allowances.target(K)} u=${m.user.use(K)} d=${m.user.demand.get(K)} ${m.allowances.status()} ${[...m.partition].map((x) => x.name)}`));
      expect(sum(allowances(ms))).toBe(Math.min(7, demand));
    }
  });

  it('keeps every window of a rate key under the cap while members restart, die, split and merge at random moments', () => {
    const R = 'bulk.test#msg/10000';
    for (const seed of [21, 22, 23, 24]) {
      const rand = random(seed);
      const g = new OrderedGroup(new Map([[R, 10_000]]));
      const windows = (): void => {
        const inWindow = g.members.flatMap((m) => m.user.events.get(R) ?? []).filter((t) => t > g.clock.now - 10_000).length;
        if (inWindow > 20) throw new Error(`${inWindow} events in the window ending ${g.clock.now} (seed ${seed})`);
        let sumAllowed = 0;
        for (const m of g.alive) sumAllowed += m.allowances.allowance(R);
        if (sumAllowed > 20) throw new Error(`allowances sum to ${sumAllowed} at ${g.clock.now} (seed ${seed})`);
      };
      const first = g.join('n1');
      for (const n of ['n2', 'n3', 'n4']) g.join(n, first);
      const want = (m: Member): void => {
        const d = 1 + rand(12);
        m.user.demand.set(R, d);
        m.allowances.declare(R, 20, d);
      };
      for (const m of g.alive) want(m);
      let names = 5;
      let split: Member[] | null = null;
      for (let step = 0; step < 1500; step++) {
        const r = rand(100);
        const anyone = g.alive[rand(g.alive.length)]!;
        if (r < 40) {
          if (anyone.deliverOne()) g.adjustAll();
        } else if (r < 80) {
          g.clock.runOne();
          g.adjustAll();
        } else if (r < 90) {
          want(anyone);
        } else if (r < 93 && split === null && g.alive.length > 3) {
          g.kill(anyone);
          if (rand(2) === 0) want(g.join(anyone.name, g.alive[0]));
        } else if (r < 95 && split === null && g.alive.length < 6) {
          want(g.join(`n${names++}`, g.alive[0]));
        } else if (r < 97 && split === null) {
          const side = [g.alive.at(-1)!];
          split = side;
          g.split(side);
          const cut = split;
          g.clock.setTimeout(() => { if (split === cut) for (const m of cut) m.quorum(false); }, rand(DEPARTED_GRACE_MS / 2));
        } else if (split !== null) {
          const back = split;
          split = null;
          if (back[0]!.alive) g.merge(g.alive.find((m) => !back.includes(m))!, back[0]!);
          for (const m of g.alive) m.quorum(true);
        }
        windows();
      }
      if (split !== null) {
        const back = split;
        split = null;
        if (back[0]!.alive) g.merge(g.alive.find((m) => !back.includes(m))!, back[0]!);
        for (const m of g.alive) m.quorum(true);
      }
      g.run(60_000, windows);
      for (const m of g.alive.slice(1)) expect(m.allowances.entries()).toEqual(g.alive[0]!.allowances.entries());
    }
  });

  it('gives a dead member\'s share back only after the grace, and within 2 s of the new view', () => {
    const g = new OrderedGroup();
    const n1 = g.join('n1');
    const n2 = g.join('n2', n1);
    const n3 = g.join('n3', n1);
    const check = invariant(g, () => new Map([[K, 6]]));
    g.run(0, check);
    declareAll(g, K, 6, 10);
    g.run(3000, check);
    expect(allowances([n1, n2, n3])).toEqual([2, 2, 2]);
    g.kill(n3);
    const view = g.clock.now;
    g.run(DEPARTED_GRACE_MS - 1, check);
    // Its leases still count: the survivors aim at 3 each but cannot have more than 2 each.
    expect(n1.allowances.target(K)).toBe(3);
    expect(allowances([n1, n2])).toEqual([2, 2]);
    expect(n1.allowances.entries()[0]!.holders.map((h) => h.member)).toEqual(['n1', 'n2', 'n3@1']);
    g.run(view + 2000 - g.clock.now, check);
    expect(allowances([n1, n2])).toEqual([3, 3]);
    expect(n1.allowances.entries()).toEqual(n2.allowances.entries());
  });

  it('keeps a cut-off minority\'s leases out of use until it has stopped, and takes it back after the merge', () => {
    const g = new OrderedGroup();
    const n1 = g.join('n1');
    const n2 = g.join('n2', n1);
    const n3 = g.join('n3', n1);
    const check = invariant(g, () => new Map([[K, 6]]));
    g.run(0, check);
    declareAll(g, K, 6, 10);
    g.run(3000, check);
    g.split([n3]);
    // n3 keeps using its lease until it hears it lost quorum (well within the grace).
    g.run(DEPARTED_GRACE_MS / 2, check);
    expect(n3.allowances.allowance(K)).toBe(2);
    n3.quorum(false);
    expect(n3.allowances.allowance(K)).toBe(0);
    expect(n3.user.use(K)).toBe(0);
    g.run(2000, check);
    expect(allowances([n1, n2, n3])).toEqual([3, 3, 0]);
    // The partition heals: n3 is quorate again and claims from 0.
    g.merge(n1, n3);
    n3.quorum(true);
    g.run(5000, check);
    expect(allowances([n1, n2, n3])).toEqual([2, 2, 2]);
    for (const m of [n2, n3]) expect(m.allowances.entries()).toEqual(n1.allowances.entries());
  });

  it('would exceed the cap if the grace were shorter than the time a cut-off member takes to stop (the check bites)', () => {
    const g = new OrderedGroup(new Map(), { graceMs: 200 });
    const n1 = g.join('n1');
    const n2 = g.join('n2', n1);
    const n3 = g.join('n3', n1);
    const check = invariant(g, () => new Map([[K, 6]]));
    g.run(0, check);
    declareAll(g, K, 6, 10);
    g.run(3000, check);
    g.split([n3]);
    expect(() => g.run(500, check)).toThrow(/sum to 7 > 6|sum to 8 > 6/);
  });

  it('asks for no raise while a view change is being agreed', () => {
    const g = new OrderedGroup();
    const n1 = g.join('n1');
    const n2 = g.join('n2', n1);
    const check = invariant(g, () => new Map([[K, 6]]));
    g.run(0, check);
    declareAll(g, K, 6, 2);
    g.run(2000, check);
    expect(allowances([n1, n2])).toEqual([2, 2]);
    g.join('n3', n1);
    n1.deliverOne(); // n1 has the new view; the others have not said their sync yet
    expect(n1.allowances.status()).toMatch(/waiting for/);
    n1.user.demand.set(K, 10);
    n1.allowances.declare(K, 6, 10);
    const before = n1.sent.length;
    g.clock.runOne();
    g.clock.runOne();
    const asked = n1.sent.slice(before).flatMap((m) => (m.type === 'claims' ? m.claims.map((x) => x.lease) : []));
    expect(asked.every((l) => l <= 2)).toBe(true);
    g.run(2000, check);
    expect(allowances([n1, n2])).toEqual([4, 2]);
  });

  it('keeps a member cut off right after a join out of the others\' reach (its old sync does not count for the new view)', () => {
    const g = new OrderedGroup();
    const n1 = g.join('n1');
    const n2 = g.join('n2', n1);
    const n3 = g.join('n3', n1);
    const check = invariant(g, () => new Map([[K, 6]]));
    g.run(0, check);
    declareAll(g, K, 6, 10);
    g.run(3000, check);
    g.join('n4', n1);
    g.split([n3]); // before anyone has seen n4 join
    g.clock.setTimeout(() => n3.quorum(false), DEPARTED_GRACE_MS / 2);
    g.run(3000, check);
    expect(allowances([n1, n2, n3])).toEqual([3, 3, 0]);
  });

  it('lets a member join at 0 and claim its share as the others give back', () => {
    const g = new OrderedGroup();
    const n1 = g.join('n1');
    const n2 = g.join('n2', n1);
    const check = invariant(g, () => new Map([[K, 5]]));
    g.run(0, check);
    declareAll(g, K, 5, 10);
    g.run(2000, check);
    expect(allowances([n1, n2])).toEqual([3, 2]);
    const n3 = g.join('n3', n1);
    n3.user.demand.set(K, 10);
    n3.allowances.declare(K, 5, 10);
    // The others' users are lazy for a while: n3 gets only what they give back.
    n1.user.givesBack = () => false;
    g.run(1000, check);
    expect(n3.allowances.allowance(K)).toBe(0);
    n1.user.givesBack = () => true;
    g.run(2000, check);
    expect(allowances([n1, n2, n3])).toEqual([2, 2, 1]);
    for (const m of [n2, n3]) expect(m.allowances.entries()).toEqual(n1.allowances.entries());
  });

  it('holds to the lowest cap announced while a reload reaches the members one by one', () => {
    const g = new OrderedGroup();
    const n1 = g.join('n1');
    const n2 = g.join('n2', n1);
    let cap = 8;
    const check = invariant(g, () => new Map([[K, cap]]));
    g.run(0, check);
    declareAll(g, K, 8, 10);
    g.run(2000, check);
    expect(allowances([n1, n2])).toEqual([4, 4]);
    // n2 reads the new config first: its claim carries cap 4; n1 still says 8.
    n2.allowances.declare(K, 4, 10);
    g.run(2000, check);
    cap = 4;
    check();
    expect(n1.allowances.keys()[0]).toMatchObject({ cap: 4, sum: 4 });
    n1.allowances.declare(K, 4, 10);
    g.run(2000, check);
    expect(allowances([n1, n2])).toEqual([2, 2]);
    // A raise of the cap counts once every member announces it.
    n1.allowances.declare(K, 10, 10);
    g.run(2000, check);
    expect(sum(allowances([n1, n2]))).toBe(4);
    cap = 10;
    n2.allowances.declare(K, 10, 10);
    g.run(2000, check);
    expect(allowances([n1, n2])).toEqual([5, 5]);
  });

  it('reads a key\'s period from its form: a rate has one, a count and an inbound network (whose CIDR has a slash) none', () => {
    expect(periodOf('mx:mx1.bulk.test#msg/60000')).toBe(60_000);
    expect(periodOf('mx:mx1.bulk.test#open/1000')).toBe(1000);
    expect(periodOf('mx:mx1.bulk.test#conn')).toBe(0);
    // A prefix length is not a period (it once read 24 ms here).
    expect(periodOf('in:203.0.113.0/24')).toBe(0);
    expect(periodOf('in:2001:db8::/32')).toBe(0);
  });

  it('keeps every window of a rate key under the cap across the cluster, a member\'s death included', () => {
    const R = 'mx:mx1.bulk.test#msg/60000';
    expect(periodOf(R)).toBe(60_000);
    const g = new OrderedGroup(new Map([[R, 60_000]]));
    const n1 = g.join('n1');
    const ms = [n1, g.join('n2', n1), g.join('n3', n1)];
    const everyWindow = (): void => {
      const all = ms.flatMap((m) => m.user.events.get(R) ?? []);
      const inWindow = all.filter((t) => t > g.clock.now - 60_000).length;
      if (inWindow > 30) throw new Error(`${inWindow} events in the window ending ${g.clock.now}`);
    };
    const check = invariant(g, () => new Map([[R, 30]]));
    const both = (): void => { check(); everyWindow(); };
    g.run(0, both);
    declareAll(g, R, 30, 1000);
    g.run(5 * 60_000, both);
    const sent = (): number => sum(ms.map((m) => m.user.events.get(R)?.length ?? 0));
    // The budget is used: 30 per minute.
    expect(sent()).toBeGreaterThanOrEqual(5 * 30 - 30);
    const before = sent();
    g.kill(ms[2]!);
    g.run(3 * 60_000, both);
    expect(sent() - before).toBeGreaterThanOrEqual(2 * 30);
  });

  it('gives a lease back on forget, drops an idle key after a while, and sends nothing while nothing changes', () => {
    const g = new OrderedGroup();
    const n1 = g.join('n1');
    const n2 = g.join('n2', n1);
    const check = invariant(g, () => new Map([[K, 4]]));
    g.run(0, check);
    declareAll(g, K, 4, 10);
    g.run(2000, check);
    const claims = (): number => n1.allowances.stats.claimMessagesSent;
    const quiet = claims();
    g.run(10_000, check);
    expect(claims()).toBe(quiet);
    // No demand, connections closed: the lease stays a while, then goes.
    n1.user.demand.set(K, 0);
    n1.allowances.declare(K, 4, 0);
    g.run(IDLE_RELEASE_MS / 2, check);
    n1.user.open.set(K, 0);
    g.run(IDLE_RELEASE_MS + 500, check);
    expect(n1.allowances.allowance(K)).toBe(0);
    expect(n2.allowances.allowance(K)).toBe(4);
    n2.allowances.forget(K);
    n2.user.demand.delete(K);
    n2.user.open.set(K, 0);
    g.run(1000, check);
    expect(n1.allowances.entries()).toEqual([]);
    expect(n2.allowances.keys()).toEqual([]);
  });

  it('lets a changed use alone ride at most once a second', () => {
    const g = new OrderedGroup();
    const n1 = g.join('n1');
    g.run(0);
    n1.allowances.declare(K, 10, 3);
    n1.user.demand.set(K, 3);
    g.run(1000);
    const before = n1.allowances.stats.claimMessagesSent;
    for (let i = 0; i < 30; i++) {
      n1.user.open.set(K, i % 3);
      g.run(100);
    }
    const sent = n1.allowances.stats.claimMessagesSent - before;
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThanOrEqual(3);
    expect(n1.allowances.keys()[0]!.clusterUse).toBe(n1.sent.filter((m) => m.type === 'claims').at(-1)!.claims[0]!.use);
  });

  it('allows nothing without quorum or outside the group, says so once, and tells its user', () => {
    const lines: string[] = [];
    const a = new ClusterAllowances({ node: 'n1', logger: pino({ level: 'warn' }, { write: (s: string) => { lines.push(s); } }), clustered: true, timers: { setTimeout: () => 0, clearTimeout: () => undefined } });
    let told = 0;
    a.onChange(() => told++);
    a.declare(K, 5, 5);
    a.detach();
    a.detach();
    expect(a.allowance(K)).toBe(0);
    expect(lines.filter((l) => l.includes('not in the shaping group'))).toHaveLength(1);
    // At start the join gets a moment before it is said.
    const clock = new FakeClock();
    const late = new ClusterAllowances({ node: 'n1', logger: pino({ level: 'warn' }, { write: (s: string) => { lines.push(s); } }), clustered: true, now: () => clock.now, timers: clock });
    late.start();
    late.declare(K, 5, 5);
    while (clock.now < 1_000_000 + JOIN_PATIENCE_MS - 100) clock.runOne();
    expect(lines.filter((l) => l.includes('not in the shaping group'))).toHaveLength(1);
    while (clock.now < 1_000_000 + 2 * JOIN_PATIENCE_MS) clock.runOne();
    expect(lines.filter((l) => l.includes('not in the shaping group'))).toHaveLength(2);
    expect(late.allowance(K)).toBe(0);
    late.stop();
    const g = new OrderedGroup();
    const n1 = g.join('n1');
    g.run(0);
    n1.allowances.declare(K, 5, 5);
    n1.allowances.onChange(() => told++);
    n1.user.demand.set(K, 5);
    g.run(1000);
    expect(n1.allowances.allowance(K)).toBe(5);
    const t = told;
    n1.quorum(false);
    expect(n1.allowances.allowance(K)).toBe(0);
    expect(n1.allowances.target(K)).toBe(0);
    expect(told).toBe(t + 1);
    expect(n1.allowances.status()).toMatch(/NO QUORUM/);
  });

  it('reads quorate() at every tick, so a quorum the host only knows by polling still counts', () => {
    const clock = new FakeClock();
    let quorate = true;
    const sent: ShapingMessage[] = [];
    const a = new ClusterAllowances({ node: 'n1', logger: pino({ level: 'silent' }), clustered: true, quorate: () => quorate, now: () => clock.now, timers: clock });
    a.start();
    a.attach((m) => { sent.push(m); return true; });
    a.deliver('1:1', { type: 'sync', node: 'n1', now: clock.now, ...a.viewChanged(['1:1']), restrictions: [] });
    a.declare(K, 3, 3);
    clock.runOne();
    a.deliver('1:1', sent.at(-1)!);
    expect(a.allowance(K)).toBe(3);
    quorate = false;
    clock.runOne();
    expect(a.allowance(K)).toBe(0);
    expect(sent.at(-1)).toMatchObject({ type: 'claims', claims: [{ key: K, lease: 0 }] });
  });
});
