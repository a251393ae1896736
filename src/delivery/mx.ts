// Where mail for a domain goes: MX records by preference (RFC 5321 5.1), equal preferences in
// random order, the domain's own addresses when it has no MX, null MX (RFC 7505) as a permanent
// failure; or the configured Domain Routes instead of all of that. Runs on a delivery worker; it
// waits on DNS through the injected resolver (node:dns Resolver in production), never blocks.
import net from 'node:net';
import type { HostPort } from '../net/address.js';
import { DeliveryFailure } from './results.js';

/** The part of node:dns/promises' Resolver we use; tests inject a fake. */
export interface DnsResolver {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

/** One address to try, in order. */
export interface Candidate {
  /** MX or route host name as configured or published (an IP literal for IP routes). */
  host: string;
  address: string;
  port: number;
}

export interface ResolveOptions {
  /** 4 or 6: only addresses we can reach from the binding's address; 0: both (IPv4 first). */
  family: 0 | 4 | 6;
  /** Port of MX hosts (RFC 5321: 25; tests use another). */
  port: number;
  /** At most this many addresses in all (Postfix's smtp_mx_address_limit, 5 by default). */
  limit: number;
  /** For the shuffle of equal preferences; Math.random by default. */
  random?: () => number;
}

// c-ares codes (node:dns): NXDOMAIN and "no record of this type" are answers, not failures.
const NO_DOMAIN = 'ENOTFOUND';
const NO_DATA = 'ENODATA';

function dnsCode(err: unknown): string {
  return typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'EUNKNOWN';
}

const nowhere = { remoteHost: null, remoteAddress: null };

/** A domain's candidates. Throws DeliveryFailure: dnsTemporary, noSuchDomain, nullMx or noRoute. */
export async function resolveDestination(
  domain: string, routes: HostPort[] | undefined, dns: DnsResolver, o: ResolveOptions,
): Promise<Candidate[]> {
  const name = domain.toLowerCase().replace(/\.$/, '');
  if (routes !== undefined && routes.length > 0) return candidates(routes.map((r) => [r]), dns, o, name);

  let mx: { exchange: string; priority: number }[];
  try {
    mx = await dns.resolveMx(name);
  } catch (err) {
    const code = dnsCode(err);
    if (code === NO_DOMAIN) throw new DeliveryFailure('noSuchDomain', `domain ${name} does not exist (MX lookup: NXDOMAIN)`, nowhere);
    if (code !== NO_DATA) throw new DeliveryFailure('dnsTemporary', `MX lookup for ${name} failed: ${code}`, nowhere);
    mx = [];
  }
  // RFC 7505 3: a single MX with the root as exchange ("0 .") says: no mail for this domain.
  const isNull = (e: string) => e === '' || e === '.';
  if (mx.length === 1 && isNull(mx[0]!.exchange)) {
    throw new DeliveryFailure('nullMx', `domain ${name} does not accept mail (null MX, RFC 7505)`, nowhere);
  }
  mx = mx.filter((r) => !isNull(r.exchange));
  if (mx.length === 0) {
    // RFC 5321 5.1: no MX: the domain itself is the implicit MX with preference 0.
    return candidates([[{ host: name, port: o.port }]], dns, o, name, true);
  }
  return candidates(byPreference(mx, o.random ?? Math.random).map((g) => g.map((host) => ({ host, port: o.port }))), dns, o, name);
}

/** MX hosts grouped by preference, lowest first, each group shuffled (RFC 5321 5.1). */
export function byPreference(mx: { exchange: string; priority: number }[], random: () => number): string[][] {
  const groups = new Map<number, string[]>();
  for (const r of mx) {
    const g = groups.get(r.priority) ?? [];
    g.push(r.exchange.replace(/\.$/, '').toLowerCase());
    groups.set(r.priority, g);
  }
  return [...groups.keys()].sort((a, b) => a - b).map((p) => shuffle(groups.get(p)!, random));
}

function shuffle<T>(a: T[], random: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** The addresses of each host in order, up to the limit. An implicit MX that does not exist is a
 *  permanent failure; MX hosts that do not resolve are skipped, and if none is left we defer. */
async function candidates(
  groups: HostPort[][], dns: DnsResolver, o: ResolveOptions, domain: string, implicit = false,
): Promise<Candidate[]> {
  const out: Candidate[] = [];
  let temporary: string | null = null;
  let nonexistent = 0;
  let hosts = 0;
  for (const group of groups) {
    for (const { host, port } of group) {
      if (out.length >= o.limit) return out;
      hosts++;
      const ipFamily = net.isIP(host);
      if (ipFamily !== 0) {
        if (o.family === 0 || o.family === ipFamily) out.push({ host, address: host, port });
        continue;
      }
      const lookups: ('4' | '6')[] = o.family === 0 ? ['4', '6'] : [o.family === 4 ? '4' : '6'];
      for (const f of lookups) {
        try {
          const addresses = f === '4' ? await dns.resolve4(host) : await dns.resolve6(host);
          for (const address of addresses) {
            if (out.length < o.limit) out.push({ host, address, port });
          }
        } catch (err) {
          const code = dnsCode(err);
          if (code === NO_DOMAIN) { nonexistent++; break; }
          // NODATA: the name exists without addresses of this family.
          if (code !== NO_DATA) temporary = `address lookup for ${host} failed: ${code}`;
        }
      }
    }
  }
  if (out.length > 0) return out;
  if (temporary !== null) throw new DeliveryFailure('dnsTemporary', temporary, nowhere);
  // RFC 5321 5.1: no MX and no address record at all: the domain takes no mail. (With a family
  // restriction only that family was asked; the other may exist, so that case defers.)
  if (implicit && (nonexistent === hosts || o.family === 0)) {
    throw new DeliveryFailure('noSuchDomain', `domain ${domain} has no MX and no address record`, nowhere);
  }
  throw new DeliveryFailure('noRoute', `no usable address for ${domain}${o.family === 0 ? '' : ` (IPv${o.family} only)`}`, nowhere);
}
