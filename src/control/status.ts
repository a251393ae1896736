// The status document of GET /api/cluster/v1/state (version 1; docs/cluster.md, "Live status
// page") and the delta between two of them that /api/cluster/v1/stream sends. Types and pure
// functions only: src/node/status.ts builds the document from the node's parts. Any thread; never
// blocks (a diff compares rows by identity first, then field by field).

/** Bumped on any incompatible change of the document; the URL carries the major version. */
export const STATUS_VERSION = 1;

export interface StatusNode {
  name: string;
  version: string;
  /** ms since the epoch. */
  startedAt: number;
  pid: number;
}

export interface StatusCluster {
  group: string;
  /** "connected", or "not connected (why)". */
  corosync: string;
  nodeId: number | null;
  quorate: boolean;
  /** corosync does not deliver our messages: this node holds nothing until it does. */
  stalled: boolean;
  leaving: boolean;
  /** This node is drained (`cluster drain`), and the parts it still has to move (null: unknown). */
  drained: boolean;
  queueLeft: number | null;
  viewId: number | null;
  viewArrivedAt: number | null;
  viewStableSince: number | null;
  /** Every member has announced in this view. */
  viewComplete: boolean;
  /** From the last election, null before one. */
  mature: boolean | null;
  configConsistent: boolean | null;
  problems: string[];
  /** Over `addresses`. */
  counts: { addresses: number; owned: number; orphan: number; broken: number; unsafe: number; conflict: number };
}

export interface StatusMember {
  /** "nodeId:pid" (two processes may announce one name by mistake). */
  key: string;
  /** Null until it has announced in this view. */
  node: string | null;
  nodeId: number;
  pid: number;
  self: boolean;
  quorate: boolean | null;
  leaving: boolean | null;
  /** Drained (`cluster drain`): it owns no address and takes no mail. Null until it announced. */
  drained: boolean | null;
  /** Addresses it announces holding. */
  load: number | null;
  /** Its ECCluster_Listener ("host:port"), or null. */
  mmove: string | null;
}

export type AddressState = 'owned' | 'orphan' | 'BROKEN';

export interface StatusAddress {
  address: string;
  binding: string | null;
  owner: string | null;
  state: AddressState;
  unsafe: boolean;
  conflict: boolean;
  /** The election's reason for this owner (or none). */
  reason: string;
  preference: string | null;
  /** This node's hold on it: plumbed here ("held"), being released ("releasing"), or null. */
  here: 'held' | 'releasing' | null;
  /** The last plumbing error on this node, if any. */
  error?: string;
}

/** This node's queue of one binding that has mail (idle bindings are left out); every member's,
 *  capped, is in `nodes`. */
export interface StatusQueue {
  bindingGroup: string;
  binding: string;
  active: number;
  deferred: number;
  hold: number;
}

/** Queue counts (parts: a message has one per binding/domain it goes to). */
export interface StatusCounts {
  active: number;
  deferred: number;
  hold: number;
}

/** One node's queue as the members multicast it (src/cluster/queue-summary.ts): this node's from
 *  its live sizes, the others' latest summary as received. Only members of this node's view. */
export interface StatusNodeQueues extends StatusCounts {
  node: string;
  self: boolean;
  /** When the node read these sizes (its clock); this node's: since when they are as they are. */
  at: number;
  /** Drained (`cluster drain`): its whole queue is what it still has to move. */
  drained: boolean;
  /** Its largest bindings with mail (at most 100), in bindingGroup/binding order. */
  bindings: (StatusCounts & { bindingGroup: string; binding: string })[];
  /** Its other bindings with mail: how many, and their sum. */
  other: StatusCounts & { bindings: number };
}

/** #mmove traffic with one peer since this node started. */
export interface StatusPeer {
  /** The peer's node name (or its address when no member announces it). */
  peer: string;
  /** Messages the peer took (its 250), their recipients, how many of them it had already, and messages it did not take. */
  sent: { messages: number; recipients: number; duplicates: number; failed: number };
  /** Messages this node spooled from the peer and their size in bytes. */
  received: { messages: number; bytes: number };
}

export interface StatusFailover {
  /** Increases by one per entry since start: the key. */
  id: number;
  at: number;
  address: string;
  from: string | null;
  to: string | null;
  reason: string;
}

export interface StatusRestriction {
  /** "action|binding|destination" (binding "*" for every binding). */
  key: string;
  action: 'suspend' | 'throttle' | 'reduce_connections';
  binding: string | null;
  destination: string;
  at: number;
  until: number;
  rate: { count: number; periodMs: number } | null;
  connections: number | null;
  origin: string;
  rule: string;
  reason: string;
}

export interface StatusState {
  version: typeof STATUS_VERSION;
  /** The stream's event counter (0 in GET /state). */
  seq: number;
  generatedAt: number;
  node: StatusNode;
  /** Null without a Cluster stanza. */
  cluster: StatusCluster | null;
  members: StatusMember[];
  addresses: StatusAddress[];
  queues: StatusQueue[];
  /** Every member's queue (this node's included), in node-name order. */
  nodes: StatusNodeQueues[];
  mmove: StatusPeer[];
  failovers: StatusFailover[];
  shaping: StatusRestriction[];
}

/** The sections that are lists of rows, and each row's key. */
export const KEYED_SECTIONS = {
  members: (r: StatusMember) => r.key,
  addresses: (r: StatusAddress) => r.address,
  queues: (r: StatusQueue) => `${r.bindingGroup}/${r.binding}`,
  nodes: (r: StatusNodeQueues) => r.node,
  mmove: (r: StatusPeer) => r.peer,
  failovers: (r: StatusFailover) => String(r.id),
  shaping: (r: StatusRestriction) => r.key,
} as const;
export type KeyedSection = keyof typeof KEYED_SECTIONS;
const SECTIONS = Object.keys(KEYED_SECTIONS) as KeyedSection[];

/** What changed between two documents: whole small objects, and rows added/changed or removed by key. */
export interface StatusDelta {
  version: typeof STATUS_VERSION;
  seq: number;
  generatedAt: number;
  node?: StatusNode;
  /** Present when it changed (null: the cluster part went away). */
  cluster?: StatusCluster | null;
  /** Rows new or changed, per section, in the document's order. */
  upsert?: { [S in KeyedSection]?: StatusState[S] };
  /** Keys of rows gone, per section. */
  remove?: { [S in KeyedSection]?: string[] };
}

/** Structural equality of JSON values (a row is a flat object: a few comparisons, no serialising). */
export function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** The delta from `prev` to `next`, or null when nothing but the time changed. */
export function diffStatus(prev: StatusState, next: StatusState): StatusDelta | null {
  const d: StatusDelta = { version: STATUS_VERSION, seq: next.seq, generatedAt: next.generatedAt };
  let changed = false;
  if (!same(prev.node, next.node)) { d.node = next.node; changed = true; }
  if (!same(prev.cluster, next.cluster)) { d.cluster = next.cluster; changed = true; }
  for (const s of SECTIONS) {
    const a = prev[s] as readonly object[];
    const b = next[s] as readonly object[];
    if (a === b) continue;
    const key = KEYED_SECTIONS[s] as (r: object) => string;
    const before = new Map<string, object>();
    for (const r of a) before.set(key(r), r);
    const up: object[] = [];
    for (const r of b) {
      const k = key(r);
      const old = before.get(k);
      before.delete(k);
      if (old === undefined || !same(old, r)) up.push(r);
    }
    if (up.length > 0) { ((d.upsert ??= {}) as Record<string, object[]>)[s] = up; changed = true; }
    if (before.size > 0) { ((d.remove ??= {}) as Record<string, string[]>)[s] = [...before.keys()]; changed = true; }
  }
  return changed ? d : null;
}

/**
 * Applies a delta to a document (what the page does in its own script): changed rows replace
 * theirs in place, new rows go at the end, removed rows go. For tests and other consumers.
 */
export function applyStatusDelta(state: StatusState, d: StatusDelta): StatusState {
  const out: StatusState = { ...state, seq: d.seq, generatedAt: d.generatedAt };
  if (d.node !== undefined) out.node = d.node;
  if (d.cluster !== undefined) out.cluster = d.cluster;
  for (const s of SECTIONS) {
    const up = d.upsert?.[s] as object[] | undefined;
    const rm = d.remove?.[s];
    if (up === undefined && rm === undefined) continue;
    const key = KEYED_SECTIONS[s] as (r: object) => string;
    const rows = new Map<string, object>();
    for (const r of state[s] as object[]) rows.set(key(r), r);
    for (const k of rm ?? []) rows.delete(k);
    for (const r of up ?? []) rows.set(key(r), r);
    (out as unknown as Record<string, object[]>)[s] = [...rows.values()];
  }
  return out;
}
