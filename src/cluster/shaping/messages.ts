// What members multicast on the shaping CPG group (its own group, apart from the DuraVIP election's,
// so neither waits on the other), and its wire form: one JSON object per message. Every message
// carries the sender's node name and clock; a firing's times are the origin's wall clock. Peers are
// untrusted: decode validates everything and returns an error instead of throwing. Pure.

import type { LeaseClaim } from './leases.js';
import type { DepartedLeases } from './rounds.js';

/** An action in force: a suspension, throttle or connection reduction, cluster-wide. */
export interface Restriction {
  readonly action: 'suspend' | 'throttle' | 'reduce_connections';
  /** null: every binding. */
  readonly binding: string | null;
  readonly destination: string;
  /** Wall-clock ms (the origin's) when it started and when it ends. */
  readonly at: number;
  readonly until: number;
  /** throttle: messages per period. */
  readonly rate: { readonly count: number; readonly periodMs: number } | null;
  /** reduce_connections: the connection limit. */
  readonly connections: number | null;
  readonly origin: string;
  /** The rule that fired, or "console" for an operator's. */
  readonly rule: string;
  readonly reason: string;
}

export type ShapingMessage =
  /** Leases: changed claims, at most one message per member per interval. */
  | { readonly type: 'claims'; readonly node: string; readonly now: number; readonly claims: readonly LeaseClaim[] }
  /** A restriction starts (a rule fired on the origin, or an operator's `shaping suspend`). */
  | { readonly type: 'restrict'; readonly node: string; readonly now: number; readonly restriction: Restriction }
  /** An operator ends a restriction early (`shaping resume`). */
  | { readonly type: 'lift'; readonly node: string; readonly now: number; readonly binding: string | null; readonly destination: string }
  /** After a view change, each member's whole state: the view it is for (memberKeys, sorted; null
   *  from a member that predates leases), its last completed lease round, its own leases, the
   *  departed members' leases it knows, and the restrictions it knows. */
  | {
    readonly type: 'sync'; readonly node: string; readonly now: number; readonly claims: readonly LeaseClaim[]; readonly restrictions: readonly Restriction[];
    readonly view: readonly string[] | null; readonly epoch: number; readonly departed: readonly DepartedLeases[];
  }
  /** A departed member's leases are given back (their grace ended): each (departed id, key). */
  | { readonly type: 'release'; readonly node: string; readonly now: number; readonly released: ReadonlyArray<{ readonly id: string; readonly key: string }> };

export const MAX_SHAPING_MESSAGE = 1024 * 1024;
const MAX_TEXT = 1024;

export function encodeShapingMessage(m: ShapingMessage): Buffer {
  return Buffer.from(JSON.stringify(m), 'utf8');
}

export type DecodedShaping = { readonly ok: true; readonly message: ShapingMessage } | { readonly ok: false; readonly error: string };

const MAX_ITEMS = 100_000;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_TEXT;
/** A node name as the config allows it (Nodename): the lease table tells departed members' ids
 *  (`name@epoch`) from names by the "@", so a peer must not send one as its name. */
const NODE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const DEPARTED_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}@\d{1,15}$/;
const MEMBER_KEY = /^\d{1,10}:\d{1,10}$/;

function claimsOf(v: unknown): LeaseClaim[] | null {
  if (!Array.isArray(v) || v.length > MAX_ITEMS) return null;
  const out: LeaseClaim[] = [];
  for (const c of v) {
    if (typeof c !== 'object' || c === null) return null;
    const x = c as Record<string, unknown>;
    if (!isText(x.key) || !isCount(x.cap) || !isCount(x.lease) || !isCount(x.demand) || !isCount(x.use)) return null;
    out.push({ key: x.key, cap: x.cap, lease: x.lease, demand: x.demand, use: x.use });
  }
  return out;
}

function departedOf(v: unknown): DepartedLeases[] | null {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > MAX_ITEMS) return null;
  const out: DepartedLeases[] = [];
  for (const d of v) {
    if (typeof d !== 'object' || d === null) return null;
    const x = d as Record<string, unknown>;
    const claims = claimsOf(x.claims);
    if (typeof x.id !== 'string' || !DEPARTED_ID.test(x.id) || claims === null) return null;
    out.push({ id: x.id, claims });
  }
  return out;
}

/** A sync's view: null (absent) from a member that predates leases. */
function viewOf(v: unknown): string[] | null | undefined {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length > 10_000 || !v.every((k) => typeof k === 'string' && MEMBER_KEY.test(k))) return undefined;
  return v as string[];
}

function releasedOf(v: unknown): Array<{ id: string; key: string }> | null {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_ITEMS) return null;
  const out: Array<{ id: string; key: string }> = [];
  for (const r of v) {
    if (typeof r !== 'object' || r === null) return null;
    const x = r as Record<string, unknown>;
    if (typeof x.id !== 'string' || !DEPARTED_ID.test(x.id) || !isText(x.key)) return null;
    out.push({ id: x.id, key: x.key });
  }
  return out;
}

function restrictionOf(v: unknown): Restriction | null {
  if (typeof v !== 'object' || v === null) return null;
  const x = v as Record<string, unknown>;
  if (x.action !== 'suspend' && x.action !== 'throttle' && x.action !== 'reduce_connections') return null;
  if (!(x.binding === null || isText(x.binding)) || !isText(x.destination) || !isCount(x.at) || !isCount(x.until)) return null;
  if (!isText(x.origin) || !isText(x.rule) || typeof x.reason !== 'string') return null;
  let rate: Restriction['rate'] = null;
  if (x.rate !== null && x.rate !== undefined) {
    const r = x.rate as Record<string, unknown>;
    if (typeof r !== 'object' || !isCount(r.count) || !isCount(r.periodMs) || r.periodMs === 0) return null;
    rate = { count: r.count, periodMs: r.periodMs };
  }
  if (x.action === 'throttle' && rate === null) return null;
  const connections = x.connections === null || x.connections === undefined ? null : isCount(x.connections) ? x.connections : undefined;
  if (connections === undefined || (x.action === 'reduce_connections' && connections === null)) return null;
  return {
    action: x.action, binding: x.binding as string | null, destination: x.destination, at: x.at, until: x.until,
    rate, connections, origin: x.origin, rule: x.rule, reason: x.reason.slice(0, MAX_TEXT),
  };
}

/** A list of restrictions as a peer sent it or shaping.json holds it; null when any is invalid. */
export function restrictionsOf(v: unknown): Restriction[] | null {
  if (!Array.isArray(v)) return null;
  const out: Restriction[] = [];
  for (const x of v) {
    const r = restrictionOf(x);
    if (r === null) return null;
    out.push(r);
  }
  return out;
}

export function decodeShapingMessage(buf: Uint8Array): DecodedShaping {
  if (buf.length > MAX_SHAPING_MESSAGE) return { ok: false, error: `message of ${buf.length} bytes is too large` };
  let m: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset, buf.length).toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, error: 'not an object' };
    m = parsed as Record<string, unknown>;
  } catch {
    return { ok: false, error: 'not JSON' };
  }
  if (typeof m.node !== 'string' || !NODE.test(m.node) || !isCount(m.now)) return { ok: false, error: 'no valid "node" and "now"' };
  const node = m.node;
  const now = m.now;
  switch (m.type) {
    case 'claims': {
      const claims = claimsOf(m.claims);
      return claims ? { ok: true, message: { type: 'claims', node, now, claims } } : { ok: false, error: 'invalid claims' };
    }
    case 'restrict': {
      const restriction = restrictionOf(m.restriction);
      return restriction ? { ok: true, message: { type: 'restrict', node, now, restriction } } : { ok: false, error: 'invalid restriction' };
    }
    case 'lift':
      if (!(m.binding === null || isText(m.binding)) || !isText(m.destination)) return { ok: false, error: 'lift needs a destination' };
      return { ok: true, message: { type: 'lift', node, now, binding: m.binding as string | null, destination: m.destination } };
    case 'sync': {
      const claims = claimsOf(m.claims);
      const rs = restrictionsOf(m.restrictions);
      const view = viewOf(m.view);
      const departed = departedOf(m.departed);
      const epoch = m.epoch === undefined ? 0 : m.epoch;
      if (claims === null || rs === null || view === undefined || departed === null || !isCount(epoch)) return { ok: false, error: 'invalid sync' };
      return { ok: true, message: { type: 'sync', node, now, claims, restrictions: rs, view, epoch, departed } };
    }
    case 'release': {
      const released = releasedOf(m.released);
      return released ? { ok: true, message: { type: 'release', node, now, released } } : { ok: false, error: 'invalid release' };
    }
    default:
      return { ok: false, error: `unknown message type ${JSON.stringify(m.type)?.slice(0, 20)}` };
  }
}
