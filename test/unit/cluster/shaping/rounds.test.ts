// The lease table across view changes: a round rebuilds it from the members' syncs so that a member
// that joins and the members that were there hold the same table; no raise is admitted while a
// round is open; only a sync for the current view completes it; departed members' leases stay
// (under name@epoch) until released, and a release never touches a live member's.
import { describe, expect, it } from 'vitest';
import type { LeaseClaim } from '../../../../src/cluster/shaping/leases.js';
import { LeaseRounds } from '../../../../src/cluster/shaping/rounds.js';

const K = 'webmail.test#conn';
const c = (lease: number, demand = 10, cap = 6): LeaseClaim => ({ key: K, cap, lease, demand, use: lease });

/** Two members settled in round 1 with n1=3, n2=2 on K (cap 6). */
function settled(): { a: LeaseRounds; b: LeaseRounds } {
  const a = new LeaseRounds();
  const b = new LeaseRounds();
  for (const r of [a, b]) {
    r.view(['1:1', '2:2']);
    r.sync('1:1', 'n1', { view: ['1:1', '2:2'], epoch: 0, claims: [], departed: [] });
    expect(r.sync('2:2', 'n2', { view: ['1:1', '2:2'], epoch: 0, claims: [], departed: [] })).toBe('completed');
    r.claims('1:1', 'n1', [c(3)]);
    r.claims('2:2', 'n2', [c(2)]);
  }
  expect(a.table.sum(K)).toBe(5);
  return { a, b };
}

describe('LeaseRounds', () => {
  it('rebuilds the same table on a member that joins as on those that were there', () => {
    const { a, b } = settled();
    const n = new LeaseRounds();
    const view = ['1:1', '2:2', '3:3'];
    const syncs = [a, b].map((r) => r.view(view));
    n.view(view);
    const msgs: Array<[string, string, LeaseClaim[]]> = [['1:1', 'n1', [c(3)]], ['2:2', 'n2', [c(2)]], ['3:3', 'n3', [c(0, 4)]]];
    for (const r of [a, b, n]) {
      for (const [i, [from, node, claims]] of msgs.entries()) {
        r.sync(from, node, { view, epoch: syncs[i]?.epoch ?? 0, claims, departed: syncs[i]?.departed ?? [] });
      }
    }
    expect(n.settled && a.settled && b.settled).toBe(true);
    expect(n.epoch).toBe(2);
    expect(n.table.entries()).toEqual(a.table.entries());
    expect(b.table.entries()).toEqual(a.table.entries());
    // The newcomer admits the same raise as the others: 1 unit free.
    for (const r of [a, b, n]) expect(r.claims('3:3', 'n3', [c(4, 4)])).toBe('applied');
    expect([a, b, n].map((r) => r.table.lease('n3', K))).toEqual([1, 1, 1]);
  });

  it('admits no raise while a round is open, and ignores a claim sent before its sender\'s sync', () => {
    const { a } = settled();
    const view = ['1:1', '2:2', '3:3'];
    a.view(view);
    expect(a.settled).toBe(false);
    expect(a.claims('1:1', 'n1', [c(1)])).toBe('ignored'); // n1 has not synced: its sync says more
    a.sync('1:1', 'n1', { view, epoch: 1, claims: [c(1)], departed: [] });
    // n2 (not synced yet) still holds 2: a raise now could take it. Cut to what n1 holds.
    expect(a.claims('1:1', 'n1', [c(5)])).toBe('held');
    expect(a.building!.lease('n1', K)).toBe(1);
    expect(a.claims('1:1', 'n1', [c(0)])).toBe('held');
    expect(a.building!.lease('n1', K)).toBe(0);
    a.sync('2:2', 'n2', { view, epoch: 1, claims: [c(2)], departed: [] });
    a.sync('3:3', 'n3', { view, epoch: 0, claims: [], departed: [] });
    expect(a.settled).toBe(true);
    expect(a.table.sum(K)).toBe(2);
  });

  it('completes a round only with syncs for its own view, though it takes what an older one says', () => {
    const { a } = settled();
    a.view(['1:1', '2:2', '3:3']);
    a.view(['1:1', '2:2']); // n3 went again before anyone synced
    a.sync('1:1', 'n1', { view: ['1:1', '2:2', '3:3'], epoch: 1, claims: [c(3)], departed: [] });
    a.sync('2:2', 'n2', { view: ['1:1', '2:2', '3:3'], epoch: 1, claims: [c(2)], departed: [] });
    expect(a.settled).toBe(false);
    expect(a.building!.sum(K)).toBe(5);
    a.sync('1:1', 'n1', { view: ['1:1', '2:2'], epoch: 1, claims: [c(3)], departed: [{ id: 'n9@1', claims: [c(1, 0)] }] });
    expect(a.sync('2:2', 'n2', { view: ['1:1', '2:2'], epoch: 1, claims: [c(2)], departed: [] })).toBe('completed');
    expect(a.table.entries()[0]!.holders.map((h) => h.member)).toEqual(['n1', 'n2', 'n9@1']);
  });

  it('keeps a departed member\'s leases under name@epoch (a restart under the same name too) until released', () => {
    const { a } = settled();
    // n2's process restarts: its old member key leaves, a new one joins under the same name.
    const s = a.view(['1:1', '2:7']);
    expect(s.departed).toEqual([{ id: 'n2@1', claims: [{ key: K, cap: 6, lease: 2, demand: 0, use: 2 }] }]);
    a.sync('1:1', 'n1', { view: ['1:1', '2:7'], epoch: 1, claims: [c(3)], departed: s.departed });
    a.sync('2:7', 'n2', { view: ['1:1', '2:7'], epoch: 0, claims: [c(0, 5)], departed: [] });
    expect(a.table.sum(K)).toBe(5);
    expect(a.table.target('n2', K)).toBe(3); // departed leases ask for nothing
    expect(a.release('n2', K)).toBe(false); // never a live member's
    expect(a.release('n2@1', K)).toBe(true);
    expect(a.table.sum(K)).toBe(3);
    expect(a.departed()).toEqual([]);
  });

  it('starts over as a new member after losing the group', () => {
    const { a } = settled();
    a.reset();
    expect(a.settled).toBe(false);
    expect(a.claims('1:1', 'n1', [c(1)])).toBe('ignored');
    expect(a.table.entries()).toEqual([]);
  });
});
