// InboundLimits, the node's side of Cluster_Max_Inbound_Connections: it declares each Inbound_Cidr
// on `in:CIDR` with the documented demand, answers use from the shared counters, writes the
// allowance into the limit word whenever the provider says it changed, and shows it all in
// `shaping inbound`. Allowances here are in-test: a single node (allowance = cap) and a provider
// whose allowance the test sets. Pure: buffers and a config text, no sockets, no timers.
import { describe, expect, it } from 'vitest';
import { loadConfigText, type Config } from '../../../src/config/index.js';
import { InboundCount, inboundState } from '../../../src/listener/inbound-count.js';
import { demandOf, inboundCounts, inboundSpecs, InboundLimits, resetInboundSlots } from '../../../src/node/inbound-limits.js';
import type { AllowanceUse, Allowances, LimitKey } from '../../../src/queue/allowances.js';

function config(limits: Record<string, number>): Config {
  const nets = Object.entries(limits).map(([cidr, n]) => `  Inbound_Cidr "${cidr}" { Cluster_Max_Inbound_Connections = ${n} }`);
  const r = loadConfigText(['Nodename = "n1"', 'ESMTP_Listener {', ...nets, '  Listen "127.0.0.1:2525" { }', '}'].join('\n'), 'test.conf', { cwd: '/srv' });
  if (!r.ok) throw new Error('bad test config');
  return r.config;
}

/** An in-test provider: records declarations; the allowance is the cap (single node) unless set. */
class TestAllowances implements Allowances {
  readonly declared = new Map<LimitKey, { cap: number; demand: number }>();
  readonly forgotten: LimitKey[] = [];
  readonly granted = new Map<LimitKey, number>();
  users: AllowanceUse | null = null;
  private fns: (() => void)[] = [];
  declare(key: LimitKey, cap: number, demand: number): void { this.declared.set(key, { cap, demand }); }
  forget(key: LimitKey): void { this.declared.delete(key); this.forgotten.push(key); }
  allowance(key: LimitKey): number { return this.granted.get(key) ?? this.declared.get(key)?.cap ?? 0; }
  target(key: LimitKey): number { return this.allowance(key); }
  setUse(use: AllowanceUse): void { this.users = use; }
  onChange(fn: () => void): void { this.fns.push(fn); }
  grant(key: LimitKey, n: number): void { this.granted.set(key, n); for (const f of this.fns) f(); }
}

describe('demandOf', () => {
  it('is open + refused recently + headroom, never above the cap', () => {
    expect(demandOf(0, 0, 1, 50)).toBe(1);
    expect(demandOf(10, 3, 1, 50)).toBe(14);
    expect(demandOf(49, 5, 1, 50)).toBe(50);
    expect(demandOf(0, 0, 1, 0)).toBe(0);
  });
});

describe('InboundLimits', () => {
  it('before any governor, the specs carry the cap as the limit (a single node as it starts)', () => {
    const specs = inboundSpecs(config({ '192.0.2.0/24': 4 }));
    expect(specs.map((s) => s.cidr)).toEqual(['192.0.2.0/24']);
    expect(inboundState(specs[0]!.count).limit).toBe(4);
    // A reload that changes the cap writes it into the same buffer.
    const again = inboundSpecs(config({ '192.0.2.0/24': 6 }));
    expect(again[0]!.count).toBe(specs[0]!.count);
    expect(inboundState(specs[0]!.count).limit).toBe(6);
  });

  it('declares, answers use, writes allowances, follows demand, forgets removed networks', () => {
    let cfg = config({ '127.0.0.2/32': 3, '2001:db8::/32': 10 });
    const a = new TestAllowances();
    const limits = new InboundLimits({ allowances: a, config: () => cfg });
    a.setUse({ use: (k) => (InboundLimits.owns(k) ? limits.use(k) : 0) });
    // Single node: the allowance is the cap; an idle node asks for its headroom.
    expect(a.declared.get('in:127.0.0.2/32')).toEqual({ cap: 3, demand: 1 });
    expect(a.declared.get('in:2001:db8::/32')).toEqual({ cap: 10, demand: 1 });
    const [spec] = inboundSpecs(cfg);
    expect(inboundState(spec!.count).limit).toBe(3);

    // Two connections on worker 0, one refused under a lease of 2.
    a.grant('in:127.0.0.2/32', 2);
    expect(inboundState(spec!.count).limit).toBe(2);
    const w0 = new InboundCount(spec!.count, 0);
    expect([w0.tryOpen(), w0.tryOpen(), w0.tryOpen()]).toEqual([true, true, false]);
    expect(a.users!.use('in:127.0.0.2/32')).toBe(2);
    limits.tick();
    expect(a.declared.get('in:127.0.0.2/32')).toEqual({ cap: 3, demand: 3 }); // 2 open + 1 refused + 1, capped
    // Nothing refused since: demand falls back to open + headroom.
    limits.tick();
    expect(a.declared.get('in:127.0.0.2/32')).toEqual({ cap: 3, demand: 3 });
    w0.close();
    limits.tick();
    expect(a.declared.get('in:127.0.0.2/32')).toEqual({ cap: 3, demand: 2 });
    // The worker died: its connection leaves the count.
    resetInboundSlots(0);
    expect(limits.use('in:127.0.0.2/32')).toBe(0);

    // A lease above the cap is never written; a lease of 0 refuses everything.
    a.grant('in:127.0.0.2/32', 99);
    expect(inboundState(spec!.count).limit).toBe(3);
    a.grant('in:127.0.0.2/32', 0);
    expect(w0.tryOpen()).toBe(false);

    // A reload without the IPv6 network gives its lease back.
    cfg = config({ '127.0.0.2/32': 3 });
    limits.apply(cfg);
    expect(a.forgotten).toEqual(['in:2001:db8::/32']);
    // What /metrics reads: per configured network, open, limit in force, refusals since start.
    expect(inboundCounts()).toEqual([{ cidr: '127.0.0.2/32', open: 0, limit: 0, refused: 2 }]);
  });

  it('shows per network this node\'s count, allowance and refusals, and every node\'s share', () => {
    const cfg = config({ '198.51.100.0/24': 5 });
    const a = new TestAllowances();
    const limits = new InboundLimits({
      allowances: a, config: () => cfg,
      shares: (key) => (key === 'in:198.51.100.0/24' ? [{ node: 'n1', lease: 3 }, { node: 'n2', lease: 2, demand: 4, use: 2 }] : []),
    });
    a.grant('in:198.51.100.0/24', 3);
    const [spec] = inboundSpecs(cfg);
    const w = new InboundCount(spec!.count, 1);
    w.tryOpen();
    expect(limits.view()).toBe([
      'network 198.51.100.0/24 (Cluster_Max_Inbound_Connections = 5, every Listen of ESMTP_Listener)',
      '  n1 (this node): 1 open, allowance 3, target 3, refused 0 since start',
      '  n2: share 2, 2 in use, demand 4',
      '',
    ].join('\n'));
  });
});
