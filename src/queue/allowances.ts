// What the queue needs from the cluster to keep a cluster-wide limit (Cluster_Max_Outbound_Connections,
// Cluster_Outbound_Throttle_Messages / _Connections, and the listeners' Cluster_Max_Inbound_Connections):
// per limit key, the share this node may use now. The shaping group's leases provide it
// (cluster/shaping/allowances.ts); on a single node the share is the whole limit. Defined here, by
// its user, so the queue never imports the cluster. Main thread; every call is synchronous and cheap.

/**
 * Limit keys: `DEST#conn` (connections open, idle ones included), `DEST#msg/PERIOD_MS` (messages
 * per period), `DEST#open/PERIOD_MS` (connections opened per period), `in:CIDR` (inbound
 * connections); DEST is the destination key (the domain or `mx:host,...`). The period is part of
 * the key so that members agree on what a count means.
 */
export type LimitKey = string;

/** What the user of a key reports; read by the provider at the moment it sends a claim. */
export interface AllowanceUse {
  /** What this node uses on `key` now: connections open (idle ones included), or the count of its
   *  trailing window (events of the last period, those in flight included). */
  use(key: LimitKey): number;
}

export interface Allowances {
  /**
   * This node has work under `key`: the limit its config sets (`cap`) and what it would use if it
   * could (`demand`, e.g. connections its queued mail could keep busy). Call it whenever either
   * changes, as often as that happens: the provider only keeps the latest and sends at most one
   * claim message per interval for all keys. `demand` 0 with nothing used lets the lease go.
   */
  declare(key: LimitKey, cap: number, demand: number): void;
  /** The key is no longer configured here (a reload removed the limit): its lease is given back. */
  forget(key: LimitKey): void;
  /** The most this node may use on `key` now: its lease (never above the cap); 0 before it holds
   *  one, and 0 on a clustered node without quorum. */
  allowance(key: LimitKey): number;
  /** This node's fair share (water-filled over every member's demand): above it, the user gives
   *  back what it can (closes idle connections) so the provider can lower the lease for others. */
  target(key: LimitKey): number;
  /** Who reports the use (the queue's connection book, a listener's counters). */
  setUse(use: AllowanceUse): void;
  /** Calls `fn` whenever an allowance or target may have changed (the pump looks again). */
  onChange(fn: () => void): void;
}

/** The key of a cluster-wide limit on DEST. */
export function connectionsKey(dest: string): LimitKey {
  return `${dest}#conn`;
}
export function messagesKey(dest: string, periodMs: number): LimitKey {
  return `${dest}#msg/${periodMs}`;
}
export function opensKey(dest: string, periodMs: number): LimitKey {
  return `${dest}#open/${periodMs}`;
}
export function inboundKey(cidr: string): LimitKey {
  return `in:${cidr}`;
}

/** What a limit key names (the inverse of the four functions above); null for a key of no known form. */
export function parseLimitKey(key: LimitKey): { readonly what: 'conn' | 'msg' | 'open' | 'in'; readonly dest: string; readonly periodMs: number } | null {
  if (key.startsWith('in:')) return { what: 'in', dest: key.slice(3), periodMs: 0 };
  const m = /^(.*)#(conn|msg|open)(?:\/(\d{1,12}))?$/.exec(key);
  if (m === null || (m[2] === 'conn') !== (m[3] === undefined)) return null;
  return { what: m[2] as 'conn' | 'msg' | 'open', dest: m[1]!, periodMs: m[3] === undefined ? 0 : Number(m[3]) };
}
