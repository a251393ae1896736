// IP addresses and "host:port" text: which family an address is, its canonical text (RFC 5952), a
// numeric sort order, and the endpoint forms the config writes ("ip:port", "[v6]:port", "host").
// The one address parser of vipmta; src/net/cidr.ts matches networks with it. Pure functions, any
// thread, no I/O.

import { isIP } from 'node:net';

/** A literal address and port ("ip:port", "[v6]:port"): what a listener binds. */
export interface Endpoint { host: string; port: number; family: 4 | 6 }
/** A host name or address and a port: a configured next hop (Domain Routes). */
export interface HostPort { host: string; port: number }

/** 4 or 6 for an address a socket can use (zone ids included, as node:net reports them), else 0. */
export function ipFamily(text: string): 0 | 4 | 6 {
  return isIP(text) as 0 | 4 | 6;
}

/** The four octets of a dotted quad; leading zeros are refused (octal to some parsers). */
export function parseIPv4(s: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null) return null;
  const out: number[] = [];
  for (let i = 1; i <= 4; i++) {
    const part = m[i] as string;
    if (part.length > 1 && part.startsWith('0')) return null;
    const n = Number(part);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/** The eight 16-bit groups of an IPv6 address (a dotted-quad tail allowed); no zone ids. */
export function parseIPv6(text: string): number[] | null {
  let s = text.toLowerCase();
  if (!/^[0-9a-f:.]+$/.test(s)) return null;
  const tail: number[] = [];
  if (s.includes('.')) {
    const at = s.lastIndexOf(':');
    const v4 = parseIPv4(s.slice(at + 1));
    if (v4 === null) return null;
    tail.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
    s = s.slice(0, at + 1);
    // Drop the separator before the dotted quad, unless it is part of a "::".
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = groups(halves[0] as string);
  const back = halves.length === 2 ? groups(halves[1] as string) : [];
  const parse = (g: string): number | null => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : null);
  const h: number[] = [];
  for (const g of head) { const n = parse(g); if (n === null) return null; h.push(n); }
  const b: number[] = [];
  for (const g of back) { const n = parse(g); if (n === null) return null; b.push(n); }
  b.push(...tail);
  const missing = 8 - h.length - b.length;
  if (halves.length === 1) return missing === 0 ? h.concat(b) : null;
  if (missing < 1) return null;
  return h.concat(new Array<number>(missing).fill(0), b);
}

/** Canonical text of an IPv4 or IPv6 address (RFC 5952 for IPv6), or null when it is not one. */
export function canonicalAddress(text: string): string | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) return null;
  const v4 = parseIPv4(text);
  if (v4 !== null) return v4.join('.');
  const v6 = parseIPv6(text);
  if (v6 === null) return null;
  // Longest run of two or more zero groups becomes "::", the first one on a tie (RFC 5952 4.2).
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (v6[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && v6[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = v6.map((n) => n.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

/** An address as a number with its family, for prefix arithmetic; null when not an address. */
export function addressBits(text: string): { family: 4 | 6; n: bigint } | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) return null;
  const v4 = parseIPv4(text);
  if (v4 !== null) return { family: 4, n: v4.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
  const v6 = parseIPv6(text);
  return v6 === null ? null : { family: 6, n: v6.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n) };
}

/** A dual-stack socket reports IPv4 peers as "::ffff:a.b.c.d": the IPv4 address inside, else the text. */
export function unmapIPv4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m === null ? address : m[1]!;
}

const sortKeys = new Map<string, string>();
/** A key that sorts addresses numerically, IPv4 before IPv6; input must be canonical. */
export function addressSortKey(address: string): string {
  let k = sortKeys.get(address);
  if (k !== undefined) return k;
  const v4 = parseIPv4(address);
  if (v4 !== null) k = `4${v4.map((n) => n.toString(16).padStart(2, '0')).join('')}`;
  else {
    const v6 = parseIPv6(address);
    k = v6 === null ? `9${address}` : `6${v6.map((n) => n.toString(16).padStart(4, '0')).join('')}`;
  }
  if (sortKeys.size > 65536) sortKeys.clear(); // a cache, never a leak
  sortKeys.set(address, k);
  return k;
}

/** Numeric order of canonical addresses (code-unit order of their keys: the same on every node). */
export function compareAddresses(a: string, b: string): number {
  const ka = addressSortKey(a);
  const kb = addressSortKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

// --- "host:port" text ----------------------------------------------------------------------------

/** A decimal port 1..65535, or null. */
export function parsePort(s: string): number | null {
  if (!/^\d{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

/** "ip:port" or "[v6]:port" with a literal address and a port 1..65535. */
export function parseEndpoint(text: string): Endpoint | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) return null;
  const host = m[1]!;
  const family = ipFamily(host);
  const port = parsePort(m[2]!);
  // IPv6 must be bracketed so the port cannot be mistaken for the last group.
  if (port === null || family === 0 || (family === 6) !== text.startsWith('[')) return null;
  return { host, port, family };
}

/** "host:port", "[v6]:port", or a bare host/IPv4 (port `defaultPort`, 25 by default: RFC 5321 4.5.4). */
export function parseHostPort(text: string, defaultPort = 25): HostPort | null {
  let m = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (m) { const p = parsePort(m[2]!); return p !== null && ipFamily(m[1]!) === 6 ? { host: m[1]!, port: p } : null; }
  m = /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(text);
  if (!m || m[1]!.startsWith('.') || m[1]!.startsWith('-')) return null;
  const p = m[2] === undefined ? defaultPort : parsePort(m[2]);
  return p === null ? null : { host: m[1]!, port: p };
}

/** "host:port", brackets around an IPv6 address: the inverse of parseEndpoint and parseHostPort. */
/** A delivery destination's host as shaping keys it (MX rollup): lower case, ":port" only off 25. */
export function destinationHost(host: string, port: number): string {
  return port === 25 ? host.toLowerCase() : `${host.toLowerCase()}:${port}`;
}

export function formatHostPort(host: string, port: number): string {
  return `${ipFamily(host) === 6 ? `[${host}]` : host}:${port}`;
}
