// The replicated shaping state: restrictions added by agreed messages, the strictest in force per
// (binding, destination), domain-wide ones applying to every binding, lifts, expiry, and the same
// state on every member fed the same messages (the leases are allowances.test.ts's).
import { describe, expect, it } from 'vitest';
import type { Restriction, ShapingMessage } from '../../../../src/cluster/shaping/messages.js';
import { ShapingState } from '../../../../src/cluster/shaping/state.js';

function r(over: Partial<Restriction>): Restriction {
  return { action: 'suspend', binding: 'b1', destination: 'bulk.test', at: 0, until: 1000, rate: null, connections: null, origin: 'n1', rule: 'rule', reason: '421 ...', ...over };
}
const restrict = (x: Restriction): ShapingMessage => ({ type: 'restrict', node: x.origin, now: x.at, restriction: x });

describe('ShapingState', () => {
  it('applies the strictest restriction of each kind, domain-wide ones to every binding', () => {
    const s = new ShapingState();
    s.apply(restrict(r({ action: 'throttle', rate: { count: 60, periodMs: 60_000 }, until: 5000 })), 0);
    s.apply(restrict(r({ action: 'throttle', binding: null, rate: { count: 10, periodMs: 60_000 }, until: 3000 })), 0);
    s.apply(restrict(r({ action: 'reduce_connections', binding: null, connections: 2, until: 4000 })), 0);
    const f = s.inForce('b1', 'bulk.test', 100);
    expect(f.suspended).toBeNull();
    expect(f.throttle!.rate).toEqual({ count: 10, periodMs: 60_000 });
    expect(f.connections!.connections).toBe(2);
    expect(s.inForce('b2', 'bulk.test', 100).throttle!.binding).toBeNull();
    expect(s.inForce('b1', 'webmail.test', 100)).toEqual({ suspended: null, throttle: null, connections: null });
    // After the domain-wide throttle ends, the binding's own applies.
    expect(s.inForce('b1', 'bulk.test', 3000).throttle!.rate).toEqual({ count: 60, periodMs: 60_000 });
  });

  it('keeps the suspension that ends last, lifts on request, and expires the rest', () => {
    const s = new ShapingState();
    s.apply(restrict(r({ until: 2000 })), 0);
    s.apply(restrict(r({ until: 1500, at: 10 })), 10);
    expect(s.inForce('b1', 'bulk.test', 1600).suspended!.until).toBe(2000);
    s.apply(restrict(r({ binding: 'b2', until: 9000 })), 20);
    s.apply({ type: 'lift', node: 'n2', now: 30, binding: 'b1', destination: 'bulk.test' }, 30);
    expect(s.inForce('b1', 'bulk.test', 40).suspended).toBeNull();
    expect(s.inForce('b2', 'bulk.test', 40).suspended).not.toBeNull();
    expect(s.expire(8999)).toEqual([]);
    expect(s.expire(9000).map((x) => x.binding)).toEqual(['b2']);
    expect(s.restrictions(9000)).toEqual([]);
  });

  it('ignores a restriction that already ended, restores persisted ones, and merges a member\'s sync', () => {
    const s = new ShapingState();
    s.apply(restrict(r({ until: 50 })), 100);
    expect(s.restrictions(100)).toEqual([]);
    s.load([r({ until: 500 }), r({ until: 10 })], 100);
    expect(s.restrictions(100)).toHaveLength(1);
    s.apply({ type: 'sync', node: 'n2', now: 100, claims: [{ key: 'k', cap: 3, lease: 3, demand: 3, use: 1 }], restrictions: [r({ binding: null, until: 700 })], view: ['1:1', '2:2'], epoch: 1, departed: [] }, 100);
    expect(s.restrictions(100).map((x) => x.until)).toEqual([500, 700]);
  });

  it('is the same on every member fed the same messages', () => {
    const a = new ShapingState();
    const b = new ShapingState();
    const msgs: ShapingMessage[] = [
      restrict(r({ until: 2000 })), { type: 'claims', node: 'n1', now: 1, claims: [{ key: 'k', cap: 5, lease: 4, demand: 9, use: 0 }] },
      { type: 'claims', node: 'n2', now: 2, claims: [{ key: 'k', cap: 5, lease: 4, demand: 9, use: 0 }] },
      restrict(r({ action: 'throttle', binding: null, rate: { count: 1, periodMs: 1000 }, until: 3000 })),
      { type: 'lift', node: 'n3', now: 3, binding: null, destination: 'bulk.test' },
      restrict(r({ binding: 'b9', until: 4000 })),
    ];
    for (const m of msgs) { a.apply(m, 5); b.apply(m, 5); }
    expect(a.restrictions(5)).toEqual(b.restrictions(5));
    expect(a.restrictions(5).map((x) => x.binding)).toEqual(['b9']);
  });
});
