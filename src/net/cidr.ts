// CIDR networks ("192.0.2.0/24", "2001:db8::/32"): the config's normal form, whether an address lies
// inside one (the Topology a DuraVIP is plumbed on), a set of them (Relay_Hosts, checked once
// per RCPT), and a table that finds the most specific of several for a peer without allocating
// (Inbound_Cidr, checked at every connect). The one CIDR matcher of vipmta, on src/net/address.ts's
// parser. Pure, any thread.

import { addressBits, canonicalAddress, unmapIPv4 } from './address.js';

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

/**
 * The network of "addr/len" in canonical form: host bits cleared, the address as RFC 5952 writes it
 * ("2001:DB8::1/32" -> "2001:db8::/32"), so equal networks have one spelling on every node. Null
 * when it is not a CIDR.
 */
export function canonicalCidr(text: string): string | null {
  const cidr = parseCidr(text);
  if (cidr === null) return null;
  const net = network(cidr)!;
  const bits = net.family === 4 ? 32 : 128;
  const n = net.prefix << net.shift;
  let addr: string;
  if (net.family === 4) addr = [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
  else addr = Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
  return `${canonicalAddress(addr)!}/${bits - Number(net.shift)}`;
}

// --- the allocation-free table (a peer at every connect) --------------------------------------

/** Scratch of the parser: the eight 16-bit groups of the last IPv6 address read. One per thread. */
const G = new Uint16Array(8);

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** A dotted quad in s[start, end) as an unsigned 32-bit number, or -1. Leading zeros are accepted
 *  here: peers come from the kernel, which writes none. */
function quadAt(s: string, start: number, end: number): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
      continue;
    }
    if (c < 48 || c > 57 || digits === 3) return -1;
    part = part * 10 + (c - 48);
    digits++;
    if (part > 255) return -1;
  }
  return dots === 3 && digits > 0 ? n * 256 + part : -1;
}

/** Reads the IPv6 address s[0, end) into G; false when it is not one. */
function groupsOf(s: string, end: number): boolean {
  let i = 0;
  let n = 0;
  let gap = -1;
  if (end >= 2 && s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    if (n === 8) return false;
    let j = i;
    let v = 0;
    while (j < end && j - i < 5) {
      const d = hexDigit(s.charCodeAt(j));
      if (d < 0) break;
      v = v * 16 + d;
      j++;
    }
    if (j < end && s.charCodeAt(j) === 46) {
      // A dotted-quad tail: the last two groups.
      if (n > 6) return false;
      const q = quadAt(s, i, end);
      if (q < 0) return false;
      G[n++] = Math.floor(q / 65536);
      G[n++] = q % 65536;
      break;
    }
    if (j === i || j - i > 4) return false;
    G[n++] = v;
    i = j;
    if (i === end) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < end && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === end) return false;
  }
  if (gap < 0) return n === 8;
  if (n === 8) return false;
  // Move the groups after "::" to the end and zero the gap.
  const tail = n - gap;
  for (let k = tail - 1; k >= 0; k--) G[8 - tail + k] = G[gap + k]!;
  for (let k = gap; k < 8 - tail; k++) G[k] = 0;
  return true;
}

/**
 * Several networks, asked which one a peer belongs to: the most specific (longest prefix) that
 * contains it. Parsed and sorted once; `match` reads the peer's text with charCodeAt into scratch
 * words, so a connect costs no allocation. IPv4-mapped peers ("::ffff:a.b.c.d") count as IPv4.
 */
export class CidrTable {
  /** Per network, longest prefix first: family, original index, then 4 words of prefix and mask. */
  private readonly family: Uint8Array;
  private readonly index: Int32Array;
  private readonly prefix: Uint32Array;
  private readonly mask: Uint32Array;

  /** `cidrs` as parseCidr normalizes them; anything else is a programmer error. */
  constructor(cidrs: readonly string[]) {
    const nets = cidrs.map((c, i) => {
      const n = network(c);
      if (n === null) throw new RangeError(`not a CIDR network: ${JSON.stringify(c)}`);
      const bits = n.family === 4 ? 32 : 128;
      return { n, i, len: bits - Number(n.shift), bits };
    });
    // Longest prefix first; equal lengths keep the written order.
    nets.sort((a, b) => b.len - a.len || a.i - b.i);
    const k = nets.length;
    this.family = new Uint8Array(k);
    this.index = new Int32Array(k);
    this.prefix = new Uint32Array(4 * k);
    this.mask = new Uint32Array(4 * k);
    nets.forEach(({ n, i, len, bits }, at) => {
      this.family[at] = n.family;
      this.index[at] = i;
      const value = n.prefix << n.shift;
      const words = bits / 32;
      for (let w = 0; w < words; w++) {
        const shift = BigInt(bits - 32 * (w + 1));
        this.prefix[4 * at + w] = Number((value >> shift) & 0xffffffffn);
        const ones = Math.min(32, Math.max(0, len - 32 * w));
        this.mask[4 * at + w] = ones === 0 ? 0 : (0xffffffff << (32 - ones)) >>> 0;
      }
    });
  }

  get size(): number {
    return this.index.length;
  }

  /** The index (in the constructor's list) of the most specific network holding `address`, or -1. */
  match(address: string): number {
    const k = this.index.length;
    if (k === 0) return -1;
    let end = address.indexOf('%'); // a zone id ("fe80::1%eth0") is not part of the address
    if (end < 0) end = address.length;
    let family: number;
    let w0: number;
    let w1 = 0;
    let w2 = 0;
    let w3 = 0;
    if (address.indexOf(':') < 0) {
      w0 = quadAt(address, 0, end);
      if (w0 < 0) return -1;
      family = 4;
    } else {
      if (!groupsOf(address, end)) return -1;
      if (G[0] === 0 && G[1] === 0 && G[2] === 0 && G[3] === 0 && G[4] === 0 && G[5] === 0xffff) {
        family = 4;
        w0 = (G[6]! * 65536 + G[7]!) >>> 0;
      } else {
        family = 6;
        w0 = (G[0]! * 65536 + G[1]!) >>> 0;
        w1 = (G[2]! * 65536 + G[3]!) >>> 0;
        w2 = (G[4]! * 65536 + G[5]!) >>> 0;
        w3 = (G[6]! * 65536 + G[7]!) >>> 0;
      }
    }
    const p = this.prefix;
    const m = this.mask;
    for (let at = 0; at < k; at++) {
      if (this.family[at] !== family) continue;
      const b = 4 * at;
      if (((w0 & m[b]!) >>> 0) !== p[b]) continue;
      if (family === 6 && (((w1 & m[b + 1]!) >>> 0) !== p[b + 1] || ((w2 & m[b + 2]!) >>> 0) !== p[b + 2] || ((w3 & m[b + 3]!) >>> 0) !== p[b + 3])) continue;
      return this.index[at]!;
    }
    return -1;
  }
}
