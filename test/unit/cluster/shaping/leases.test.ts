// The lease table of cluster-wide limits: raises admitted in agreed order never take the sum past the
// cap, decreases are taken as is, a departed member's leases return, every member computes the same
// table from the same messages, and members that follow their targets converge to a fair share.
import { describe, expect, it } from 'vitest';
import { LeaseTable, waterFill, type LeaseClaim } from '../../../../src/cluster/shaping/leases.js';

const K = 'webmail.test#connections';
const claim = (lease: number, demand: number, cap = 5, key = K): LeaseClaim => ({ key, cap, lease, demand, use: 0 });

describe('LeaseTable', () => {
  it('admits a raise only up to what the other leases leave free, and takes a decrease as is', () => {
    const t = new LeaseTable();
    expect(t.apply('n1', [claim(4, 10)])).toEqual([4]);
    expect(t.apply('n2', [claim(4, 10)])).toEqual([1]);
    expect(t.sum(K)).toBe(5);
    expect(t.apply('n3', [claim(2, 10)])).toEqual([0]);
    expect(t.apply('n1', [claim(2, 10)])).toEqual([2]);
    expect(t.apply('n3', [claim(2, 10)])).toEqual([2]);
    expect(t.sum(K)).toBe(5);
    expect(t.apply('n2', [claim(3, 10)])).toEqual([1]);
  });

  it('gives a departed member\'s leases back, and forgets a member with no lease and no demand', () => {
    const t = new LeaseTable();
    t.apply('n1', [claim(3, 3)]);
    t.apply('n2', [claim(2, 2)]);
    t.retain(new Set(['n2']));
    expect(t.lease('n1', K)).toBe(0);
    expect(t.apply('n2', [claim(5, 5)])).toEqual([5]);
    t.apply('n2', [claim(0, 0)]);
    expect(t.entries()).toEqual([]);
  });

  it('uses the lowest cap any member announces (a reload reaching members at different moments)', () => {
    const t = new LeaseTable();
    t.apply('n1', [claim(4, 4, 10)]);
    expect(t.apply('n2', [claim(4, 4, 6)])).toEqual([2]);
    expect(t.cap(K)).toBe(6);
    // The sum is at the lower cap; nobody raises until someone gives back.
    expect(t.apply('n1', [claim(5, 9, 10)])).toEqual([4]);
  });

  it('never lets the sum exceed the cap under any agreed sequence, and every member computes the same table', () => {
    let seed = 12345;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const members = ['n1', 'n2', 'n3', 'n4'];
    const a = new LeaseTable();
    const b = new LeaseTable();
    for (let i = 0; i < 5000; i++) {
      const m = members[rand(4)]!;
      const key = rand(3) === 0 ? 'other' : K;
      const c = claim(rand(9), rand(12), key === K ? 7 : 3, key);
      expect(a.apply(m, [c])).toEqual(b.apply(m, [c]));
      if (rand(200) === 0) { a.remove(m); b.remove(m); }
      expect(a.sum(K)).toBeLessThanOrEqual(7);
      expect(a.sum('other')).toBeLessThanOrEqual(3);
    }
    expect(a.entries()).toEqual(b.entries());
  });

  it('converges to the water-filled targets when members follow them (use equal to lease)', () => {
    const t = new LeaseTable();
    const demand: Record<string, number> = { n1: 10, n2: 10, n3: 1 };
    t.apply('n1', [claim(5, 10)]); // n1 came first and took everything
    for (let round = 0; round < 4; round++) {
      for (const m of ['n1', 'n2', 'n3']) {
        // Announce the target; a member above it lowers (its use follows at once here).
        t.apply(m, [claim(t.target(m, K), demand[m]!)]);
      }
    }
    expect(['n1', 'n2', 'n3'].map((m) => t.lease(m, K))).toEqual([2, 2, 1]);
    expect(t.sum(K)).toBe(5);
  });
});

describe('LeaseTable for view changes', () => {
  it('sets a member\'s leases as it says them, merges departed ones by the higher, releases one key', () => {
    const t = new LeaseTable();
    t.apply('n1', [claim(3, 3), claim(1, 1, 3, 'other')]);
    t.set('n1', [claim(2, 5)]);
    expect(t.claimsOf('n1')).toEqual([{ key: K, cap: 5, lease: 2, demand: 5, use: 0 }]);
    t.merge('n2@1', [claim(1, 0)]);
    t.merge('n2@1', [claim(2, 0, 6)]);
    expect(t.lease('n2@1', K)).toBe(2);
    expect(t.cap(K)).toBe(5);
    expect(t.free(K)).toBe(1);
    expect(t.release('n2@1', K)).toBe(true);
    expect(t.release('n2@1', K)).toBe(false);
    expect(t.holders()).toEqual(new Set(['n1']));
  });

  it('cuts a raise when raises are held (a view change being agreed), and aims with a member\'s own demand', () => {
    const t = new LeaseTable();
    t.apply('n1', [claim(2, 2)]);
    expect(t.apply('n1', [claim(4, 4)], false)).toEqual([2]);
    expect(t.apply('n1', [claim(1, 4)], false)).toEqual([1]);
    // n2 has not claimed yet: it aims with what it is about to announce.
    expect(t.target('n2', K)).toBe(0);
    expect(t.target('n2', K, { cap: 5, demand: 10 })).toBe(2); // the odd unit to n1, first by name
    expect(t.target('n1', K, { cap: 3, demand: 4 })).toBe(3);
  });
});

describe('waterFill', () => {
  it('gives nobody more than it asks, shares the rest equally, and hands rounding units out in name order', () => {
    expect(waterFill(10, [['a', 100], ['b', 100], ['c', 100]])).toEqual(new Map([['a', 4], ['b', 3], ['c', 3]]));
    expect(waterFill(10, [['a', 1], ['b', 100], ['c', 100]])).toEqual(new Map([['a', 1], ['b', 5], ['c', 4]]));
    expect(waterFill(10, [['a', 1], ['b', 2]])).toEqual(new Map([['a', 1], ['b', 2]]));
    expect(waterFill(0, [['a', 3]])).toEqual(new Map([['a', 0]]));
  });

  it('does not depend on the order of its input', () => {
    const d: Array<[string, number]> = [['n3', 7], ['n1', 2], ['n2', 9], ['n4', 9]];
    expect(waterFill(13, d)).toEqual(waterFill(13, [...d].reverse()));
  });
});
