// The state a cluster member announces after every Corosync CPG view change, its wire encoding, and
// this node's #mmove address from its config. Main thread, pure: no I/O. Announces come from peers and
// are untrusted: decodeMemberState validates every field and returns an error result instead of
// throwing, so a malformed announce is logged and ignored by the caller rather than taking the node
// down. Addresses are canonicalised here so "2001:DB8::1" and "2001:db8:0::1" are one DuraVIP everywhere.

import { createHash } from 'node:crypto';
import type { Config } from '../config/types.js';
import { addressSortKey, canonicalAddress, compareAddresses } from '../net/address.js';

/** Bumped on any incompatible change; a peer announcing another version is rejected, not guessed at. */
export const STATE_VERSION = 1;
/** Upper bound of one encoded announce; far above any real config, low enough to bound a peer's cost. */
export const MAX_ANNOUNCE_BYTES = 512 * 1024;
export const MAX_ADDRESS_ENTRIES = 4096;
export const MAX_HOLDS = 4096;
export const MAX_BINDING_NAME = 255;

export type DuravipService = 'esmtp_listener' | 'binding' | 'eccluster';
/** In the canonical (sorted) order used everywhere a set of services is written down. */
export const DURAVIP_SERVICES: readonly DuravipService[] = ['binding', 'eccluster', 'esmtp_listener'];

/**
 * One DuraVIP as configured on the announcing node. A node may list the same address in several
 * entries when its stanzas disagree (two bindings on one Bind_Address, say): the election compares
 * all of them, so a local inconsistency is seen by the whole cluster, exactly like a cross-node one.
 */
export interface DuravipEntry {
  /** IPv4 or IPv6, canonical text (see canonicalAddress). */
  readonly address: string;
  /** Services on this address on this node; non-empty, sorted, no duplicates. */
  readonly services: readonly DuravipService[];
  /** Binding whose Bind_Address this is; null when only a listener is on it. */
  readonly binding: string | null;
  /** Duravip_Preference: the node that should own it; null when not configured. */
  readonly preference: string | null;
  /** Duravip_Follow: binding whose owner this listener address follows; null when not configured. */
  readonly follow: string | null;
}

export interface MemberState {
  /** Nodename (Cluster { Nodename } or the global one). */
  readonly node: string;
  /** Corosync nodeid, uint32. */
  readonly nodeid: number;
  /** Increases with every announce this process sends; tells a fresh announce from a stale one. */
  readonly seq: number;
  /** Quorate as this member saw it when announcing. A non-quorate member owns nothing. */
  readonly quorate: boolean;
  /** Planned shutdown under way: owns nothing, so its addresses go to their new owners before it leaves. */
  readonly leaving: boolean;
  /** `cluster drain`: owns nothing and takes no mail until `cluster undrain`; persisted by the node
   *  (drain.ts), announced so members that join later know it. Optional on the wire and here
   *  (absent: not drained); createMemberState and decodeMemberState always set it. */
  readonly drained?: boolean;
  /**
   * The agreed viewStableSince of the view in which this process joined the group (ms). When two
   * members both claim an address, the longer-standing one keeps it, so a rejoiner never steals.
   */
  readonly memberSince: number;
  /** Digest of this node's DuraVIP configuration (see duravipConfigDigest); shown by the console. */
  readonly configDigest: string;
  /** When this node's configuration last changed (ms, its clock); shown by the console. */
  readonly configSince: number;
  /** Its configured DuraVIPs, sorted by address. */
  readonly addresses: readonly DuravipEntry[];
  /** Addresses it owns now: its share of the last allocation it applied. Sorted, no duplicates. */
  readonly holds: readonly string[];
  /** holds.length, announced for the console. */
  readonly load: number;
  /** Where peers move mail to this node (#mmove): its ECCluster_Listener on the cluster link;
   *  null when it has none peers can reach. Optional on the wire (older members omit it). */
  readonly mmove: MmoveAddress | null;
}

export interface MmoveAddress {
  /** Canonical IP address. */
  readonly host: string;
  readonly port: number;
}

/** This node's #mmove address for peers: the first ECCluster_Listener on a specific address (a
 *  wildcard listener cannot tell peers which address of ours is on the cluster link). */
export function mmoveAddress(config: Config): MmoveAddress | null {
  for (const l of config.ecclusterListeners) {
    const host = canonicalAddress(l.host);
    if (host !== null && host !== '0.0.0.0' && host !== '::') return { host, port: l.port };
  }
  return null;
}

export type DecodeResult = { readonly ok: true; readonly state: MemberState } | { readonly ok: false; readonly error: string };

const NODENAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
// Config names are "no whitespace"; control characters are refused too so console output stays sane.
const BINDING_RE = /^[^\s\u0000-\u001f\u007f]+$/u;
const DIGEST_RE = /^[0-9a-f]{1,128}$/;

/** Code-unit order: unlike localeCompare it is the same on every node whatever its locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isNodeName(s: unknown): s is string {
  return typeof s === 'string' && NODENAME_RE.test(s);
}

export function isBindingName(s: unknown): s is string {
  return typeof s === 'string' && s.length <= MAX_BINDING_NAME && BINDING_RE.test(s);
}

function entryKey(e: DuravipEntry): string {
  return JSON.stringify([addressSortKey(e.address), e.binding, e.preference, e.follow]);
}

/**
 * Canonical form of a node's entries: addresses canonical, entries that differ only in services merged
 * (a Listen and a Binding on one address with the same settings are one entry), sorted. Throws on an
 * address that is not IPv4/IPv6: the local config has already been validated, so that is a bug.
 */
export function normalizeEntries(entries: readonly DuravipEntry[]): DuravipEntry[] {
  const merged = new Map<string, { e: DuravipEntry; services: Set<DuravipService> }>();
  for (const raw of entries) {
    const address = canonicalAddress(raw.address);
    if (address === null) throw new RangeError(`not an IP address: ${JSON.stringify(raw.address)}`);
    const e: DuravipEntry = { address, services: [], binding: raw.binding, preference: raw.preference, follow: raw.follow };
    const key = entryKey(e);
    const have = merged.get(key);
    if (have === undefined) merged.set(key, { e, services: new Set(raw.services) });
    else for (const s of raw.services) have.services.add(s);
  }
  return [...merged.entries()]
    .sort((x, y) => compareStrings(x[0], y[0]))
    .map(([, { e, services }]) => ({ ...e, services: DURAVIP_SERVICES.filter((s) => services.has(s)) }));
}

function normalizeHolds(holds: readonly string[]): string[] {
  const out = new Set<string>();
  for (const h of holds) {
    const a = canonicalAddress(h);
    if (a === null) throw new RangeError(`not an IP address: ${JSON.stringify(h)}`);
    out.add(a);
  }
  return [...out].sort(compareAddresses);
}

/** Digest of a node's DuraVIP configuration, for "configuration stable since" and spotting drift. */
export function duravipConfigDigest(entries: readonly DuravipEntry[]): string {
  return createHash('sha256').update(JSON.stringify(normalizeEntries(entries))).digest('hex').slice(0, 32);
}

export interface MemberStateFields {
  node: string;
  nodeid: number;
  seq: number;
  quorate: boolean;
  leaving?: boolean;
  drained?: boolean;
  memberSince: number;
  configDigest?: string;
  configSince: number;
  addresses: readonly DuravipEntry[];
  holds: readonly string[];
  mmove?: MmoveAddress | null;
}

/** Builds this node's announce in canonical form. Throws on invalid fields (local input: a bug). */
export function createMemberState(f: MemberStateFields): MemberState {
  const addresses = normalizeEntries(f.addresses);
  const holds = normalizeHolds(f.holds);
  const state: MemberState = {
    node: f.node, nodeid: f.nodeid, seq: f.seq, quorate: f.quorate, leaving: f.leaving ?? false, drained: f.drained ?? false,
    memberSince: f.memberSince, configDigest: f.configDigest ?? duravipConfigDigest(addresses),
    configSince: f.configSince, addresses, holds, load: holds.length, mmove: f.mmove ?? null,
  };
  const err = checkState(state);
  if (err !== null) throw new RangeError(`invalid member state: ${err}`);
  return state;
}

const STATE_KEYS = ['v', 'node', 'nodeid', 'seq', 'quorate', 'leaving', 'memberSince', 'configDigest', 'configSince', 'addresses', 'holds', 'load'];
/** Fields added after version 1 shipped: accepted when missing. */
const OPTIONAL_STATE_KEYS = ['mmove', 'drained'];
const ENTRY_KEYS = ['address', 'services', 'binding', 'preference', 'follow'];

/** Encodes an announce: JSON with a version field. Throws if over MAX_ANNOUNCE_BYTES (a bug or absurd config). */
export function encodeMemberState(s: MemberState): Buffer {
  const err = checkState(s);
  if (err !== null) throw new RangeError(`invalid member state: ${err}`);
  const wire = {
    v: STATE_VERSION, node: s.node, nodeid: s.nodeid, seq: s.seq, quorate: s.quorate, leaving: s.leaving,
    memberSince: s.memberSince, configDigest: s.configDigest, configSince: s.configSince,
    addresses: s.addresses.map((e) => ({ address: e.address, services: e.services, binding: e.binding, preference: e.preference, follow: e.follow })),
    holds: s.holds, load: s.load, mmove: s.mmove,
    // Only when set: a member that never drains announces what older members understand.
    ...(s.drained === true ? { drained: true } : {}),
  };
  const buf = Buffer.from(JSON.stringify(wire), 'utf8');
  if (buf.length > MAX_ANNOUNCE_BYTES) throw new RangeError(`member state is ${buf.length} bytes, more than ${MAX_ANNOUNCE_BYTES}`);
  return buf;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function exactKeys(o: Record<string, unknown>, keys: readonly string[], optional: readonly string[] = []): string | null {
  const have = Object.keys(o);
  for (const k of have) if (!keys.includes(k) && !optional.includes(k)) return `unknown field ${JSON.stringify(k.slice(0, 40))}`;
  for (const k of keys) if (!Object.prototype.hasOwnProperty.call(o, k)) return `missing field "${k}"`;
  return null;
}

const isCount = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

function checkEntry(e: unknown, i: number): string | null {
  const at = `addresses[${i}]`;
  if (!isPlainObject(e)) return `${at} is not an object`;
  const k = exactKeys(e, ENTRY_KEYS);
  if (k !== null) return `${at}: ${k}`;
  if (typeof e.address !== 'string' || canonicalAddress(e.address) !== e.address) return `${at}.address is not a canonical IP address`;
  const sv = e.services;
  if (!Array.isArray(sv) || sv.length === 0 || sv.length > DURAVIP_SERVICES.length) return `${at}.services must list 1 to ${DURAVIP_SERVICES.length} services`;
  for (const s of sv) if (!DURAVIP_SERVICES.includes(s as DuravipService)) return `${at}.services: unknown service`;
  if (new Set(sv).size !== sv.length) return `${at}.services has duplicates`;
  if (e.binding !== null && !isBindingName(e.binding)) return `${at}.binding is not a binding name`;
  if (e.preference !== null && !isNodeName(e.preference)) return `${at}.preference is not a node name`;
  if (e.follow !== null && !isBindingName(e.follow)) return `${at}.follow is not a binding name`;
  return null;
}

/** Why a state is invalid, or null. Shared by the encoder (our bugs) and the decoder (peers' input). */
function checkState(s: Record<string, unknown> | MemberState): string | null {
  const o = s as Record<string, unknown>;
  if (!isNodeName(o.node)) return 'node is not a node name';
  if (!isCount(o.nodeid, 0xffffffff)) return 'nodeid is not a uint32';
  if (!isCount(o.seq)) return 'seq is not a non-negative integer';
  if (typeof o.quorate !== 'boolean') return 'quorate is not a boolean';
  if (typeof o.leaving !== 'boolean') return 'leaving is not a boolean';
  if (o.drained !== undefined && typeof o.drained !== 'boolean') return 'drained is not a boolean';
  if (!isCount(o.memberSince)) return 'memberSince is not a non-negative integer';
  if (typeof o.configDigest !== 'string' || !DIGEST_RE.test(o.configDigest)) return 'configDigest is not a hex digest';
  if (!isCount(o.configSince)) return 'configSince is not a non-negative integer';
  if (!Array.isArray(o.addresses)) return 'addresses is not an array';
  if (o.addresses.length > MAX_ADDRESS_ENTRIES) return `more than ${MAX_ADDRESS_ENTRIES} addresses`;
  for (let i = 0; i < o.addresses.length; i++) {
    const err = checkEntry(o.addresses[i], i);
    if (err !== null) return err;
  }
  if (!Array.isArray(o.holds)) return 'holds is not an array';
  if (o.holds.length > MAX_HOLDS) return `more than ${MAX_HOLDS} held addresses`;
  for (const h of o.holds) if (typeof h !== 'string' || canonicalAddress(h) !== h) return 'holds has an entry that is not a canonical IP address';
  if (new Set(o.holds).size !== o.holds.length) return 'holds has duplicates';
  if (o.load !== o.holds.length) return 'load does not match holds';
  const m = o.mmove;
  if (m !== undefined && m !== null) {
    if (!isPlainObject(m) || exactKeys(m, ['host', 'port']) !== null) return 'mmove is not { host, port }';
    if (typeof m.host !== 'string' || canonicalAddress(m.host) !== m.host) return 'mmove.host is not a canonical IP address';
    if (!isCount(m.port, 65535) || m.port === 0) return 'mmove.port is not a port number';
  }
  return null;
}

/** Decodes a peer's announce. Never throws: malformed input yields { ok: false, error } for the log. */
export function decodeMemberState(buf: Uint8Array): DecodeResult {
  if (!(buf instanceof Uint8Array)) return { ok: false, error: 'announce is not a byte buffer' };
  if (buf.length > MAX_ANNOUNCE_BYTES) return { ok: false, error: `announce is ${buf.length} bytes, more than ${MAX_ANNOUNCE_BYTES}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf));
  } catch (e) {
    return { ok: false, error: `announce is not UTF-8 JSON: ${(e as Error).message.slice(0, 120)}` };
  }
  if (!isPlainObject(parsed)) return { ok: false, error: 'announce is not a JSON object' };
  if (parsed.v !== STATE_VERSION) return { ok: false, error: `announce version ${JSON.stringify(parsed.v)?.slice(0, 20)} is not ${STATE_VERSION}` };
  const k = exactKeys(parsed, STATE_KEYS, OPTIONAL_STATE_KEYS);
  if (k !== null) return { ok: false, error: `announce: ${k}` };
  const err = checkState(parsed);
  if (err !== null) return { ok: false, error: `announce from ${isNodeName(parsed.node) ? parsed.node : 'an unnamed member'}: ${err}` };
  const p = parsed as unknown as MemberState;
  // Checked above: only canonicalise order so decode(encode(s)) equals s for any s createMemberState made.
  const addresses = normalizeEntries(p.addresses);
  const holds = [...p.holds].sort(compareAddresses);
  return {
    ok: true,
    state: {
      node: p.node, nodeid: p.nodeid, seq: p.seq, quorate: p.quorate, leaving: p.leaving, drained: p.drained === true, memberSince: p.memberSince,
      configDigest: p.configDigest, configSince: p.configSince, addresses, holds, load: holds.length,
      mmove: p.mmove === undefined || p.mmove === null ? null : { host: p.mmove.host, port: p.mmove.port },
    },
  };
}
