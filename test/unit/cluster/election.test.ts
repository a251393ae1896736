// Unit tests of the deterministic DuraVIP election: the Momentum rules (preference, in conflict, UNSAFE,
// BROKEN, orphans, no flapping, maturity and hysteresis, quorum, Duravip_Follow, manual moves) and a
// seeded property test that every member computes the same safe allocation and re-running is a fixed point.
// Pure: no I/O, no clock.

import { describe, expect, it } from 'vitest';
import { checkMove, elect, ownerOf, planFor, type Allocation, type ElectionInput } from '../../../src/cluster/election.js';
import {
  createMemberState, decodeMemberState, encodeMemberState, type DuravipEntry, type DuravipService, type MemberState,
} from '../../../src/cluster/state.js';

const T0 = 1_000_000;
const MATURE = 10_000;
const A = (i: number): string => `198.51.100.${10 + i}`;

interface EntryOpts { services?: DuravipService[]; binding?: string | null; preference?: string | null; follow?: string | null }
function entry(address: string, o: EntryOpts = {}): DuravipEntry {
  return { address, services: o.services ?? ['binding'], binding: o.binding === undefined ? null : o.binding, preference: o.preference ?? null, follow: o.follow ?? null };
}
interface MemberOpts { holds?: string[]; seq?: number; quorate?: boolean; leaving?: boolean; memberSince?: number }
function member(node: string, nodeid: number, addresses: DuravipEntry[], o: MemberOpts = {}): MemberState {
  return createMemberState({
    node, nodeid, seq: o.seq ?? 1, quorate: o.quorate ?? true, leaving: o.leaving ?? false, memberSince: o.memberSince ?? 0,
    configSince: 0, addresses, holds: o.holds ?? [],
  });
}
function run(members: MemberState[], o: Partial<ElectionInput> = {}): Allocation {
  return elect({ members, quorate: true, previous: null, now: T0, viewStableSince: T0, viewMatureMs: MATURE, ...o });
}
const owners = (a: Allocation): Record<string, string | null> => Object.fromEntries(a.addresses.map((x) => [x.address, x.owner]));
const tagsOf = (a: Allocation, address: string): readonly string[] => a.addresses.find((x) => x.address === address)?.tags ?? [];
const reasonOf = (a: Allocation, address: string): string => a.addresses.find((x) => x.address === address)?.reason ?? '';
const loads = (a: Allocation): Record<string, number> => Object.fromEntries(a.plan.map((p) => [p.node, p.hold.length]));

/** Six binding addresses b1..b6 configured on every node; preferences two each when `prefer`. */
function sixOn(node: string, prefer: boolean): DuravipEntry[] {
  return [1, 2, 3, 4, 5, 6].map((i) => entry(A(i), { binding: `b${i}`, preference: prefer ? `node${Math.ceil(i / 2)}` : null }));
}
/** The members' holds set to an allocation's plan, re-announced (seq + 1), as after a handover. */
function applied(members: MemberState[], a: Allocation): MemberState[] {
  return members.map((m) => createMemberState({ ...m, seq: m.seq + 1, holds: [...planFor(a, m.node)] }));
}

describe('DuraVIP election', () => {
  it('three nodes and six addresses: two each, from nothing held', () => {
    const ms = ['node1', 'node2', 'node3'].map((n, i) => member(n, i + 1, sixOn(n, false)));
    const a = run(ms);
    expect(loads(a)).toEqual({ node1: 2, node2: 2, node3: 2 });
    expect(owners(a)).toEqual({ [A(1)]: 'node1', [A(2)]: 'node2', [A(3)]: 'node3', [A(4)]: 'node1', [A(5)]: 'node2', [A(6)]: 'node3' });
    for (const x of a.addresses) expect(x.tags).toEqual(['owned', 'safe']);
    expect(reasonOf(a, A(1))).toMatch(/orphaned: claimed by node1, the least loaded/);
  });

  it('honours a preference: the preferred node owns its addresses', () => {
    const ms = ['node1', 'node2', 'node3'].map((n, i) => member(n, i + 1, sixOn(n, true)));
    const a = run(ms);
    expect(planFor(a, 'node1')).toEqual([A(1), A(2)]);
    expect(planFor(a, 'node2')).toEqual([A(3), A(4)]);
    expect(planFor(a, 'node3')).toEqual([A(5), A(6)]);
    expect(reasonOf(a, A(3))).toBe('owned by its preferred node node2');
    expect(a.addresses.find((x) => x.address === A(3))?.preference).toBe('node2');
  });

  it('a returning preferred node gets its address back only once the view is stable', () => {
    const cfg = (n: string): DuravipEntry[] => [entry(A(1), { binding: 'b1', preference: 'node1' })];
    // node1 was away; node2 took the address.
    const ms = [member('node1', 1, cfg('node1'), { memberSince: 5 }), member('node2', 2, cfg('node2'), { holds: [A(1)] })];
    const young = run(ms, { now: T0 + MATURE - 1 });
    expect(ownerOf(young, A(1))).toBe('node2');
    expect(young.rebalancePending).toBe(true);
    expect(reasonOf(young, A(1))).toMatch(/kept by node2 until the view is stable, then its preferred node node1/);
    const old = run(ms, { now: T0 + MATURE, previous: young });
    expect(ownerOf(old, A(1))).toBe('node1');
    expect(old.rebalancePending).toBe(false);
  });

  it('in conflict: two nodes each naming themselves preferred; normal election decides', () => {
    const ms = [
      member('node1', 1, [entry(A(1), { binding: 'b1', preference: 'node1' })]),
      member('node2', 2, [entry(A(1), { binding: 'b1', preference: 'node2' })], { holds: [A(1)] }),
    ];
    const a = run(ms, { now: T0 + MATURE });
    expect(tagsOf(a, A(1))).toEqual(['owned', 'safe', 'in conflict']);
    expect(ownerOf(a, A(1))).toBe('node2'); // current owner keeps it: the preference is ignored
    expect(a.addresses[0]?.preference).toBeNull();
    expect(reasonOf(a, A(1))).toMatch(/in conflict: different preferred owners \(node1 named on node1; node2 named on node2\)/);
    // A node naming no preference has no opinion: no conflict.
    const b = run([member('node1', 1, [entry(A(1), { preference: 'node1' })]), member('node2', 2, [entry(A(1))], { holds: [A(1)] })]);
    expect(tagsOf(b, A(1))).toEqual(['owned', 'safe']);
  });

  it('UNSAFE: a listener on the address on one node only; the election proceeds', () => {
    // Momentum's example: node1 has an ESMTP listener with Enable_Duravip and the binding, node2 only the binding.
    const ms = [
      member('node1', 1, [entry('192.168.0.51', { services: ['esmtp_listener'], binding: 'example' }), entry('192.168.0.51', { binding: 'example' })]),
      member('node2', 2, [entry('192.168.0.51', { binding: 'example' })]),
    ];
    const a = run(ms);
    expect(tagsOf(a, '192.168.0.51')).toEqual(['owned', 'UNSAFE']);
    expect(ownerOf(a, '192.168.0.51')).toBe('node1');
    expect(reasonOf(a, '192.168.0.51')).toMatch(/UNSAFE: services differ \(binding on node2; binding\+esmtp_listener on node1\)/);
    expect(a.addresses[0]?.services).toEqual(['binding', 'esmtp_listener']);
  });

  it('BROKEN: a binding name on different addresses on different nodes is not managed', () => {
    const ms = [
      member('node1', 1, [entry(A(1), { binding: 'example' }), entry(A(3), { binding: 'other' })], { holds: [A(1)] }),
      member('node2', 2, [entry(A(2), { binding: 'example' }), entry(A(3), { binding: 'other' })], { holds: [A(2)] }),
    ];
    const a = run(ms);
    for (const x of [A(1), A(2)]) {
      expect(tagsOf(a, x)).toEqual(['BROKEN', 'safe']); // each is on one node only: nothing to differ
      expect(ownerOf(a, x)).toBeNull();
      expect(reasonOf(a, x)).toMatch(/^BROKEN, not managed: binding "example" is on different addresses \(198\.51\.100\.11 on node1; 198\.51\.100\.12 on node2\)/);
    }
    expect(ownerOf(a, A(3))).not.toBeNull();
    expect([...planFor(a, 'node1'), ...planFor(a, 'node2')]).toEqual([A(3)]);
    expect(checkMove(a, A(1), 'node1')).toMatch(/BROKEN/);
  });

  it('BROKEN: one address under different binding names', () => {
    const ms = [
      member('node1', 1, [entry(A(1), { binding: 'b1' })], { holds: [A(1)] }),
      member('node2', 2, [entry(A(1), { binding: 'b2' })]),
    ];
    const a = run(ms);
    expect(tagsOf(a, A(1))).toEqual(['BROKEN', 'safe']);
    expect(ownerOf(a, A(1))).toBeNull();
    expect(planFor(a, 'node1')).toEqual([]);
    expect(reasonOf(a, A(1))).toMatch(/different binding names \("b1" on node1; "b2" on node2\)/);
    // The same mistake within one node is just as BROKEN.
    const b = run([member('node1', 1, [entry(A(1), { binding: 'b1' }), entry(A(1), { binding: 'b2' })])]);
    expect(tagsOf(b, A(1))[0]).toBe('BROKEN');
  });

  it('an orphan after a member leaves goes to the least loaded, ties broken by node name', () => {
    const six = (n: string): DuravipEntry[] => sixOn(n, false);
    const before = [
      member('node1', 1, six('node1'), { holds: [A(1), A(4)] }),
      member('node2', 2, six('node2'), { holds: [A(2), A(5)] }),
      member('node3', 3, six('node3'), { holds: [A(3), A(6)] }),
    ];
    const a0 = run(before);
    expect(loads(a0)).toEqual({ node1: 2, node2: 2, node3: 2 });
    // node2 goes; node3 announces first in the new view: the order of the view does not matter.
    const after = [before[2] as MemberState, before[0] as MemberState];
    const a = run(after, { viewStableSince: T0 + 1, now: T0 + 1, previous: a0 });
    expect(ownerOf(a, A(2))).toBe('node1'); // 2 vs 2: the lower name
    expect(ownerOf(a, A(5))).toBe('node3'); // now 3 vs 2: the less loaded
    expect(planFor(a, 'node1')).toEqual([A(1), A(2), A(4)]);
    expect(planFor(a, 'node3')).toEqual([A(3), A(5), A(6)]);
    // Claimed at once, not after the view matures.
    expect(a.mature).toBe(false);
    // Uneven loads: both orphans go to the emptier node.
    const c = run([member('node1', 1, six('node1'), { holds: [A(1), A(3), A(4)] }), member('node3', 3, six('node3'), { holds: [A(6)] })]);
    expect(ownerOf(c, A(2))).toBe('node3');
    expect(ownerOf(c, A(5))).toBe('node3');
  });

  it('no flapping when a member rejoins: a stale claim does not steal, nothing moves before maturity', () => {
    const six = (n: string): DuravipEntry[] => sixOn(n, false);
    // node2 rejoins (a younger member) still claiming A(2), which node1 took meanwhile.
    const ms = [
      member('node1', 1, six('node1'), { holds: [A(1), A(2), A(4)], memberSince: 100 }),
      member('node2', 2, six('node2'), { holds: [A(2)], memberSince: 900 }),
      member('node3', 3, six('node3'), { holds: [A(3), A(5), A(6)], memberSince: 100 }),
    ];
    const a = run(ms, { now: T0 + MATURE - 1 });
    expect(planFor(a, 'node1')).toEqual([A(1), A(2), A(4)]);
    expect(planFor(a, 'node2')).toEqual([]);
    expect(a.rebalancePending).toBe(true);
    // Re-running with the same input, or after the handover, changes nothing before maturity.
    expect(run(ms, { now: T0 + MATURE - 1, previous: a })).toEqual(a);
    const again = run(applied(ms, a), { now: T0 + MATURE - 1, previous: a });
    expect(owners(again)).toEqual(owners(a));
  });

  it('rebalances only after maturity, with hysteresis, one address per node per round', () => {
    const six = (n: string): DuravipEntry[] => sixOn(n, false);
    let ms = [
      member('node1', 1, six('node1'), { holds: [A(1), A(2), A(3), A(4)] }),
      member('node2', 2, six('node2'), { holds: [A(5), A(6)] }),
      member('node3', 3, six('node3')),
    ];
    const young = run(ms, { now: T0 + 1 });
    expect(loads(young)).toEqual({ node1: 4, node2: 2, node3: 0 });
    const r1 = run(ms, { now: T0 + MATURE, previous: young });
    // node1 gives one (4-0 >= 2) to node3; node2 (2) vs node3 (now 1): 1 apart, it keeps; node1 gave already.
    expect(loads(r1)).toEqual({ node1: 3, node2: 2, node3: 1 });
    expect(reasonOf(r1, A(1))).toBe('rebalanced from node1 (4 held) to node3 (0 held) once the view was stable');
    expect(r1.rebalancePending).toBe(true);
    // Same announces again: that round's moves are made already.
    expect(run(ms, { now: T0 + MATURE + 5, previous: r1 })).toEqual({ ...r1 });
    ms = applied(ms, r1);
    const r2 = run(ms, { now: T0 + MATURE + 10, previous: r1 });
    expect(loads(r2)).toEqual({ node1: 2, node2: 2, node3: 2 });
    expect(r2.rebalancePending).toBe(false);
    // Hysteresis: 3 2 2 stays as it is, however mature.
    const h = run([
      member('node1', 1, six('node1'), { holds: [A(1), A(2), A(3)] }),
      member('node2', 2, six('node2'), { holds: [A(4), A(5)] }),
      member('node3', 3, six('node3'), { holds: [A(6)] }),
    ], { now: T0 + 10 * MATURE });
    expect(loads(h)).toEqual({ node1: 2, node2: 2, node3: 2 }); // 3 vs 1: two apart, one moves
    const h2 = run([
      member('node1', 1, six('node1'), { holds: [A(1), A(2), A(3)] }),
      member('node2', 2, six('node2'), { holds: [A(4), A(5)] }),
      member('node3', 3, six('node3'), { holds: [A(6), '198.51.100.99'] }),
    ].map((m, i) => (i === 2 ? createMemberState({ ...m, addresses: [...m.addresses, entry('198.51.100.99')] }) : m)), { now: T0 + 10 * MATURE });
    expect(loads(h2)).toEqual({ node1: 3, node2: 2, node3: 2 });
    expect(h2.rebalancePending).toBe(false);
  });

  it('a partition without quorum releases everything', () => {
    const ms = ['node1', 'node2'].map((n, i) => member(n, i + 1, sixOn(n, true), { holds: i === 0 ? [A(1), A(2)] : [A(3)] }));
    const a = run(ms, { quorate: false, manualMoves: new Map([[A(1), 'node2']]) });
    for (const x of a.addresses) {
      expect(x.owner).toBeNull();
      expect(x.tags[0]).toBe('orphan');
      expect(x.reason).toMatch(/^no quorum/);
    }
    expect(a.plan.map((p) => p.hold)).toEqual([[], []]);
    expect(a.problems).toEqual(['moves ignored: no quorum']);
    expect(checkMove(a, A(1), 'node1')).toMatch(/quorum/);
    // A member that announced it is not quorate (or is leaving) owns nothing even in a quorate partition.
    const b = run([member('node1', 1, sixOn('node1', true), { quorate: false, holds: [A(1)] }), member('node2', 2, sixOn('node2', true), { leaving: true }), member('node3', 3, sixOn('node3', true))]);
    expect(loads(b)).toEqual({ node1: 0, node2: 0, node3: 6 });
  });

  it('Duravip_Follow: a listener address goes with its binding address', () => {
    const cfg = (extraFollow: boolean): DuravipEntry[] => [
      entry(A(1), { binding: 'b1', preference: 'node2' }),
      entry(A(2), { binding: 'b2' }),
      entry(A(7), { services: ['esmtp_listener'], follow: 'b1' }),
      ...(extraFollow ? [entry(A(8), { services: ['esmtp_listener'], follow: 'nosuch' })] : []),
    ];
    const ms = [member('node1', 1, cfg(true), { holds: [A(7)] }), member('node2', 2, cfg(true)), member('node3', 3, cfg(false))];
    const a = run(ms);
    expect(ownerOf(a, A(1))).toBe('node2');
    expect(ownerOf(a, A(7))).toBe('node2'); // follows, even though node1 holds it
    expect(reasonOf(a, A(7))).toBe('follows binding "b1": owned with 198.51.100.11 by node2');
    expect(a.addresses.find((x) => x.address === A(7))?.follows).toBe('b1');
    expect(reasonOf(a, A(8))).toMatch(/Duravip_Follow "nosuch" ignored/);
    expect(checkMove(a, A(7), 'node1')).toMatch(/follows binding "b1"/);
    // The binding's owner does not configure the listener address: elected on its own.
    const b = run([member('node1', 1, cfg(false).slice(0, 2), { holds: [] }), member('node2', 2, [entry(A(7), { services: ['esmtp_listener'], follow: 'b1' })])]);
    expect(ownerOf(b, A(1))).toBe('node1');
    expect(ownerOf(b, A(7))).toBe('node2');
    expect(reasonOf(b, A(7))).toMatch(/^cannot follow binding "b1" \(its owner node1 does not configure this address\)/);
  });

  it('manual move: the named node owns the address for this view, and re-running keeps it', () => {
    const ms = ['node1', 'node2', 'node3'].map((n, i) => member(n, i + 1, sixOn(n, true), { holds: [A(2 * i + 1), A(2 * i + 2)] }));
    const a0 = run(ms, { now: T0 + MATURE });
    expect(checkMove(a0, A(1), 'node3')).toBeNull();
    expect(checkMove(a0, A(1), 'node9')).toMatch(/node9 cannot own/);
    const moves = new Map([[A(1), 'node3'], ['198.51.100.99', 'node1'], [A(2), 'nodeX']]);
    const a = run(ms, { now: T0 + MATURE, previous: a0, manualMoves: moves });
    expect(ownerOf(a, A(1))).toBe('node3');
    expect(reasonOf(a, A(1))).toBe('moved to node3 by the operator (for this view)');
    expect(a.problems).toEqual([
      'move of 198.51.100.12 to nodeX ignored: nodeX cannot own it (not a member of this view)',
      'move of 198.51.100.99 to node1 ignored: no member configures it as a DuraVIP',
    ]);
    // Not undone by preference or rebalancing while the move stands.
    const again = run(applied(ms, a), { now: T0 + 2 * MATURE, previous: a, manualMoves: moves });
    expect(ownerOf(again, A(1))).toBe('node3');
    // After a view change the map is cleared: node3 keeps it until the view matures, then node1 (preferred) takes it back.
    const v2 = applied(ms, a);
    expect(ownerOf(run(v2, { viewStableSince: T0 + 5 * MATURE, now: T0 + 5 * MATURE, previous: again }), A(1))).toBe('node3');
    expect(ownerOf(run(v2, { viewStableSince: T0 + 5 * MATURE, now: T0 + 6 * MATURE, previous: again }), A(1))).toBe('node1');
  });

  it('two members with one node name take no part', () => {
    const a = run([member('node1', 1, sixOn('node1', false)), member('node1', 7, sixOn('node1', false)), member('node2', 2, sixOn('node2', false))]);
    expect(loads(a)).toEqual({ node1: 0, node2: 6 });
    expect(a.plan.map((p) => p.hold.length)).toEqual([0, 0, 6]);
    expect(a.problems).toEqual(['node name "node1" is announced by 2 members (nodeids 1, 7): none of them takes part until that is fixed']);
  });
});

// --- property test ---

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['a', 'b', 'c', 'd', 'e'];
const POOL = [A(1), A(2), A(3), A(4), A(5), A(6), A(7), A(8), '2001:db8::1', '2001:db8::2'];
const SERVICES: DuravipService[] = ['binding', 'eccluster', 'esmtp_listener'];

function randomCase(rnd: () => number): ElectionInput {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const chance = (p: number): boolean => rnd() < p;
  const n = 1 + Math.floor(rnd() * 5);
  const names = NAMES.filter(() => chance(0.7)).slice(0, n);
  if (names.length === 0) names.push('a');
  if (chance(0.03)) names.push(names[0] as string); // a duplicate node name now and then
  const members = names.map((node, i) => {
    const addresses: DuravipEntry[] = [];
    for (let j = 0; j < POOL.length; j++) {
      if (!chance(0.6)) continue;
      const binding = j < 6 ? (chance(0.03) ? `b${(j + 1) % 6}` : `b${j}`) : null;
      const services = SERVICES.filter(() => chance(0.5));
      addresses.push({
        address: POOL[j] as string,
        services: services.length > 0 ? services : ['binding'],
        binding,
        preference: chance(0.2) ? pick(NAMES) : null,
        follow: j >= 6 && chance(0.5) ? `b${Math.floor(rnd() * 7)}` : null,
      });
    }
    return createMemberState({
      node, nodeid: i + 1, seq: Math.floor(rnd() * 3), quorate: chance(0.9), leaving: chance(0.05), memberSince: Math.floor(rnd() * 4) * 100,
      configSince: 0, addresses, holds: POOL.filter(() => chance(0.25)),
    });
  });
  for (let i = members.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [members[i], members[j]] = [members[j] as MemberState, members[i] as MemberState];
  }
  const manualMoves = chance(0.2) ? new Map([[pick(POOL), pick(NAMES)]]) : undefined;
  const input: ElectionInput = {
    members, quorate: chance(0.85), previous: null, now: T0 + Math.floor(rnd() * 2 * MATURE), viewStableSince: T0, viewMatureMs: MATURE,
    ...(manualMoves !== undefined ? { manualMoves } : {}),
  };
  // Sometimes a previous allocation of an older view, which must not matter.
  return chance(0.3) ? { ...input, previous: elect({ ...input, viewStableSince: T0 - 1, now: T0 }) } : input;
}

describe('DuraVIP election properties', () => {
  it('every member computes the same safe allocation, and re-running is a fixed point', () => {
    const rnd = mulberry32(20240605);
    for (let c = 0; c < 2000; c++) {
      const input = randomCase(rnd);
      const a = elect(input);
      const ctx = `case ${c}`;

      // Members decode the agreed announces themselves: the same result everywhere.
      const wire = input.members.map(encodeMemberState);
      for (let k = 0; k < Math.min(2, input.members.length); k++) {
        const decoded = wire.map((b) => { const r = decodeMemberState(b); if (!r.ok) throw new Error(r.error); return r.state; });
        expect(elect({ ...input, members: decoded }), ctx).toEqual(a);
      }
      // Not even the member order matters, beyond the echoed order of members and plan.
      const rev = elect({ ...input, members: [...input.members].reverse() });
      expect(rev.addresses, ctx).toEqual(a.addresses);
      expect(rev.problems, ctx).toEqual(a.problems);
      expect(rev.rebalancePending, ctx).toBe(a.rebalancePending);

      const counts = new Map<string, number>();
      for (const m of input.members) counts.set(m.node, (counts.get(m.node) ?? 0) + 1);
      const canOwn = (node: string, address: string): boolean => {
        const m = input.members.find((x) => x.node === node);
        return m !== undefined && counts.get(node) === 1 && m.quorate && !m.leaving && m.addresses.some((e) => e.address === address);
      };
      const held = new Map<string, string>();
      for (const p of a.plan) {
        for (const h of p.hold) {
          expect(held.has(h), `${ctx}: ${h} in two plans`).toBe(false);
          held.set(h, p.node);
        }
      }
      for (const x of a.addresses) {
        if (x.owner !== null) {
          expect(canOwn(x.owner, x.address), `${ctx}: ${x.address} owned by ${x.owner}, which cannot own it`).toBe(true);
          expect(held.get(x.address), ctx).toBe(x.owner);
          expect(input.quorate, ctx).toBe(true);
          expect(x.tags.includes('BROKEN'), ctx).toBe(false);
        } else expect(held.has(x.address), ctx).toBe(false);
        if (input.quorate && !x.tags.includes('BROKEN') && input.members.some((m) => canOwn(m.node, x.address))) {
          expect(x.owner, `${ctx}: ${x.address} left unowned`).not.toBeNull();
        }
      }
      expect(held.size, ctx).toBe(a.addresses.filter((x) => x.owner !== null).length);

      // Fixed point: the same input with previous = the result gives the result.
      expect(elect({ ...input, previous: a }), ctx).toEqual(a);
    }
  });

  it('rounds of handover in a mature view converge without moving an address back and forth for ever', () => {
    const rnd = mulberry32(7);
    for (let c = 0; c < 500; c++) {
      const input = randomCase(rnd);
      let members = input.members;
      let prev = elect({ ...input, now: T0 + MATURE, quorate: true });
      let rounds = 0;
      for (; rounds < 30; rounds++) {
        members = members.map((m) => createMemberState({ ...m, seq: m.seq + 1, holds: [...planFor(prev, m.node)] }));
        const next = elect({ ...input, members, quorate: true, now: T0 + MATURE + rounds + 1, previous: prev });
        const same = JSON.stringify(owners(next)) === JSON.stringify(owners(prev));
        prev = next;
        if (same) break;
      }
      expect(rounds, `case ${c} did not settle`).toBeLessThan(30);
    }
  });
});
