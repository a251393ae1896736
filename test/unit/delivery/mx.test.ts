// MX logic against a fake resolver: preference order, the shuffle of equal preferences, the
// implicit MX, null MX, routes, and which DNS answers defer and which bounce. No real DNS.
import { describe, expect, it } from 'vitest';
import { byPreference, resolveDestination, type DnsResolver, type ResolveOptions } from '../../../src/delivery/mx.js';
import { DeliveryFailure } from '../../../src/delivery/results.js';

type Answer = string[] | { exchange: string; priority: number }[] | string;

/** A zone as a table: "MX name" / "A name" / "AAAA name" -> records, or an error code (ENODATA when absent). */
function fakeDns(zone: Record<string, Answer>): DnsResolver & { asked: string[] } {
  const asked: string[] = [];
  const look = async <T>(key: string): Promise<T> => {
    asked.push(key);
    const a = zone[key];
    if (a === undefined) throw Object.assign(new Error(`${key}: ENODATA`), { code: 'ENODATA' });
    if (typeof a === 'string') throw Object.assign(new Error(`${key}: ${a}`), { code: a });
    return a as T;
  };
  return {
    asked,
    resolveMx: (n) => look(`MX ${n}`),
    resolve4: (n) => look(`A ${n}`),
    resolve6: (n) => look(`AAAA ${n}`),
  };
}

const v4: ResolveOptions = { family: 4, port: 25, limit: 5, random: () => 0.99 };

async function failure(p: Promise<unknown>): Promise<DeliveryFailure> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(DeliveryFailure);
  return err as DeliveryFailure;
}

describe('MX resolution', () => {
  it('orders MX hosts by preference and resolves each to its addresses', async () => {
    const dns = fakeDns({
      'MX example.test': [{ exchange: 'mx2.example.test', priority: 20 }, { exchange: 'mx1.example.test', priority: 10 }],
      'A mx1.example.test': ['192.0.2.1', '192.0.2.2'],
      'A mx2.example.test': ['192.0.2.3'],
    });
    expect(await resolveDestination('Example.TEST.', undefined, dns, v4)).toEqual([
      { host: 'mx1.example.test', address: '192.0.2.1', port: 25 },
      { host: 'mx1.example.test', address: '192.0.2.2', port: 25 },
      { host: 'mx2.example.test', address: '192.0.2.3', port: 25 },
    ]);
    // Sending from an IPv4 address: AAAA is never asked.
    expect(dns.asked.some((q) => q.startsWith('AAAA'))).toBe(false);
  });

  it('shuffles hosts of equal preference but never ahead of a better preference', () => {
    const mx = [
      { exchange: 'a.test', priority: 10 }, { exchange: 'b.test', priority: 10 },
      { exchange: 'c.test', priority: 10 }, { exchange: 'z.test', priority: 5 },
    ];
    const firsts = new Set<string>();
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (let i = 0; i < 200; i++) {
      const groups = byPreference(mx.map((r) => ({ ...r })), random);
      expect(groups[0]).toEqual(['z.test']);
      expect([...groups[1]!].sort()).toEqual(['a.test', 'b.test', 'c.test']);
      firsts.add(groups[1]![0]!);
    }
    expect(firsts.size).toBe(3);
  });

  it('falls back to the domain\'s own A records when there is no MX (implicit MX)', async () => {
    const dns = fakeDns({ 'MX plain.test': 'ENODATA', 'A plain.test': ['192.0.2.9'] });
    expect(await resolveDestination('plain.test', undefined, dns, v4)).toEqual([{ host: 'plain.test', address: '192.0.2.9', port: 25 }]);
  });

  it('asks A and AAAA when the binding has no source address', async () => {
    const dns = fakeDns({ 'A plain.test': ['192.0.2.9'], 'AAAA plain.test': ['2001:db8::9'] });
    const c = await resolveDestination('plain.test', undefined, dns, { ...v4, family: 0 });
    expect(c.map((x) => x.address)).toEqual(['192.0.2.9', '2001:db8::9']);
  });

  it('bounces a null MX with 5.1.10 (RFC 7505)', async () => {
    const dns = fakeDns({ 'MX nomail.test': [{ exchange: '', priority: 0 }] });
    const f = await failure(resolveDestination('nomail.test', undefined, dns, v4));
    expect(f.failure).toBe('nullMx');
    expect(f.message).toMatch(/^5\.1\.10 /);
    expect(dns.asked).toEqual(['MX nomail.test']);
  });

  it('bounces a domain that does not exist, and one with neither MX nor address', async () => {
    expect((await failure(resolveDestination('gone.test', undefined, fakeDns({ 'MX gone.test': 'ENOTFOUND' }), v4))).failure).toBe('noSuchDomain');
    const empty = fakeDns({});
    expect((await failure(resolveDestination('empty.test', undefined, empty, { ...v4, family: 0 }))).failure).toBe('noSuchDomain');
  });

  it('defers on a DNS failure (SERVFAIL, timeout) of the MX or of the MX host', async () => {
    const f1 = await failure(resolveDestination('x.test', undefined, fakeDns({ 'MX x.test': 'ESERVFAIL' }), v4));
    expect(f1.failure).toBe('dnsTemporary');
    expect(f1.message).toBe('4.4.3 MX lookup for x.test failed: ESERVFAIL');
    const f2 = await failure(resolveDestination('x.test', undefined, fakeDns({
      'MX x.test': [{ exchange: 'mx.x.test', priority: 1 }], 'A mx.x.test': 'ETIMEOUT',
    }), v4));
    expect(f2.failure).toBe('dnsTemporary');
  });

  it('skips an MX host that does not resolve and uses the next one', async () => {
    const dns = fakeDns({
      'MX x.test': [{ exchange: 'dead.x.test', priority: 1 }, { exchange: 'live.x.test', priority: 2 }],
      'A dead.x.test': 'ENOTFOUND', 'A live.x.test': ['192.0.2.7'],
    });
    expect((await resolveDestination('x.test', undefined, dns, v4)).map((c) => c.host)).toEqual(['live.x.test']);
  });

  it('defers when no MX host has an address of the binding\'s family', async () => {
    const dns = fakeDns({ 'MX x.test': [{ exchange: 'mx.x.test', priority: 1 }], 'AAAA mx.x.test': ['2001:db8::1'] });
    expect((await failure(resolveDestination('x.test', undefined, dns, v4))).failure).toBe('noRoute');
  });

  it('caps the addresses tried', async () => {
    const dns = fakeDns({ 'MX x.test': [{ exchange: 'mx.x.test', priority: 1 }], 'A mx.x.test': ['192.0.2.1', '192.0.2.2', '192.0.2.3'] });
    expect(await resolveDestination('x.test', undefined, dns, { ...v4, limit: 2 })).toHaveLength(2);
  });

  it('uses routes instead of MX: IP literals as they are, names through A records', async () => {
    const dns = fakeDns({ 'A relay.test': ['192.0.2.5'] });
    const c = await resolveDestination('x.test', [{ host: '127.0.0.1', port: 2525 }, { host: 'relay.test', port: 587 }], dns, v4);
    expect(c).toEqual([
      { host: '127.0.0.1', address: '127.0.0.1', port: 2525 },
      { host: 'relay.test', address: '192.0.2.5', port: 587 },
    ]);
    expect(dns.asked).toEqual(['A relay.test']);
  });
});
