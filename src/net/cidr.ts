// CIDR networks ("192.0.2.0/24", "2001:db8::/32"): the config's normal form, whether an address lies
// inside one (the Topology a DuraVIP is plumbed on), and a set of them (Relay_Hosts, checked once
// per RCPT). The one CIDR matcher of vipmta, on src/net/address.ts's parser. Pure, any thread.

import { addressBits, unmapIPv4 } from './address.js';

/** "addr/len" (or a bare address = a host route), normalized to "addr/len"; the address as written. */
export function parseCidr(text: string): string | null {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const a = addressBits(addr);
  if (a === null) return null;
  const max = a.family === 4 ? 32 : 128;
  if (slash < 0) return `${addr}/${max}`;
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return null;
  const len = Number(lenText);
  return len <= max ? `${addr}/${len}` : null;
}

/** A parsed network: its family, prefix length and the address bits above the prefix. */
interface Network { family: 4 | 6; shift: bigint; prefix: bigint }

function network(cidr: string): Network | null {
  const slash = cidr.indexOf('/');
  const a = addressBits(slash < 0 ? cidr : cidr.slice(0, slash));
  if (a === null) return null;
  const bits = a.family === 4 ? 32 : 128;
  const len = slash < 0 ? bits : Number(cidr.slice(slash + 1));
  if (!Number.isInteger(len) || len < 0 || len > bits) return null;
  const shift = BigInt(bits - len);
  return { family: a.family, shift, prefix: a.n >> shift };
}

function inside(net: Network, a: { family: 4 | 6; n: bigint }): boolean {
  return net.family === a.family && a.n >> net.shift === net.prefix;
}

/** Whether `address` lies inside `cidr`; never across families (an IPv4-mapped IPv6 address is IPv6). */
export function cidrContains(cidr: string, address: string): boolean {
  const net = network(cidr);
  const a = addressBits(address);
  return net !== null && a !== null && inside(net, a);
}

/** The prefix length of a normalized "addr/len". */
export function cidrLength(cidr: string): number {
  return Number(cidr.slice(cidr.indexOf('/') + 1));
}

/** A list of networks, parsed once, asked about peer addresses. */
export class CidrSet {
  private readonly nets: Network[] = [];

  /** `cidrs` as parseCidr normalizes them; anything else is a programmer error. */
  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const n = network(c);
      if (n === null) throw new RangeError(`not a CIDR network: ${JSON.stringify(c)}`);
      this.nets.push(n);
    }
  }

  /** Whether a peer at `address` is inside one of the networks; "::ffff:a.b.c.d" counts as IPv4. */
  has(address: string): boolean {
    if (this.nets.length === 0) return false;
    const a = addressBits(unmapIPv4(address));
    if (a === null) return false;
    for (const n of this.nets) if (inside(n, a)) return true;
    return false;
  }
}
