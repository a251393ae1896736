// A generated cluster for the status page: N members, M DuraVIPs owned round robin (a few UNSAFE,
// in conflict, orphan or BROKEN, as a real cluster has), as the manager's snapshot, and the same
// cluster after one member died (its addresses spread over the others). Used by bench/status-page.ts
// and the status builder's unit tests. Pure; any thread.
import type { AddressAllocation, Allocation, AddressTag } from '../../src/cluster/election.js';
import type { ClusterSnapshot } from '../../src/cluster/manager.js';
import type { MemberState } from '../../src/cluster/state.js';

export interface SyntheticOptions {
  nodes: number;
  addresses: number;
  /** The member this snapshot is taken on (index), default 0. */
  self?: number;
  now?: number;
}

export const nodeName = (i: number): string => `n${String(i + 1).padStart(2, '0')}`;
/** 10.0.0.1, 10.0.0.2, ... (IPv4, numeric order = index order). */
export const addressOf = (i: number): string => {
  const n = i + 1;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
};

function address(i: number, owner: string | null, nodes: readonly string[]): AddressAllocation {
  const tags: AddressTag[] = [owner === null ? (i % 997 === 5 ? 'BROKEN' : 'orphan') : 'owned', i % 331 === 7 ? 'UNSAFE' : 'safe'];
  if (i % 499 === 11) tags.push('in conflict');
  return {
    address: addressOf(i),
    owner,
    tags,
    reason: owner === null ? 'no eligible member configures it' : `current owner ${owner} keeps it`,
    configuredBy: nodes,
    eligible: nodes,
    binding: `b${i}`,
    services: ['binding', 'esmtp_listener'],
    preference: null,
    follows: null,
  };
}

function allocation(names: readonly string[], owners: (i: number) => string | null, count: number, now: number): Allocation {
  const addresses: AddressAllocation[] = [];
  for (let i = 0; i < count; i++) addresses.push(address(i, owners(i), names));
  return {
    quorate: true, mature: true, viewStableSince: now - 60_000,
    members: names.map((node, i) => ({ node, nodeid: i + 1, seq: 1 })),
    addresses,
    plan: names.map((node, i) => ({ node, nodeid: i + 1, hold: addresses.filter((a) => a.owner === node).map((a) => a.address) })),
    problems: [], rebalancePending: false, configStableSince: now - 120_000, configConsistent: true,
  };
}

function member(node: string, nodeid: number, load: number, now: number): MemberState {
  return {
    node, nodeid, seq: 1, quorate: true, leaving: false, memberSince: now - 60_000, configDigest: 'x', configSince: now - 120_000,
    addresses: [], holds: [], load, mmove: { host: `192.0.2.${nodeid}`, port: 2525 },
  };
}

function snapshot(names: readonly string[], alive: readonly number[], alloc: Allocation, self: number, viewId: number, now: number): ClusterSnapshot {
  const me = names[self]!;
  const load = new Map<string, number>();
  for (const a of alloc.addresses) if (a.owner !== null) load.set(a.owner, (load.get(a.owner) ?? 0) + 1);
  return {
    node: me, nodeId: self + 1, group: 'vipmta-duravip', corosync: 'connected', quorate: true, stalled: false, leaving: false,
    viewId, viewArrivedAt: now - 1000, viewStableSince: now - 1000, viewComplete: true,
    members: alive.map((i) => ({ nodeId: i + 1, pid: i === self ? process.pid : 1000 + i, state: member(names[i]!, i + 1, load.get(names[i]!) ?? 0, now) })),
    allocation: alloc, configSince: now - 120_000, entries: [],
    holds: alloc.addresses.filter((a) => a.owner === me).map((a) => a.address), releasing: [], arp: [],
    knownHosts: () => new Map(), plumbErrors: new Map(), lifetimeSec: 10, placement: () => null,
  };
}

/** Every member up; address i owned by member i mod N (every 97th an orphan). */
export function syntheticCluster(o: SyntheticOptions): ClusterSnapshot {
  const now = o.now ?? Date.now();
  const names = Array.from({ length: o.nodes }, (_, i) => nodeName(i));
  const owner = (i: number): string | null => (i % 97 === 5 ? null : names[i % o.nodes]!);
  return snapshot(names, names.map((_, i) => i), allocation(names, owner, o.addresses, now), o.self ?? 0, 1, now);
}

/** The same cluster after member `dead` left: its addresses go round robin to the others. */
export function afterDeath(o: SyntheticOptions, dead: number): ClusterSnapshot {
  const now = o.now ?? Date.now();
  const names = Array.from({ length: o.nodes }, (_, i) => nodeName(i));
  const alive = names.map((_, i) => i).filter((i) => i !== dead);
  const owner = (i: number): string | null => {
    if (i % 97 === 5) return null;
    const was = i % o.nodes;
    return was !== dead ? names[was]! : names[alive[Math.floor(i / o.nodes) % alive.length]!]!;
  };
  return snapshot(names, alive, allocation(names.filter((_, i) => i !== dead), owner, o.addresses, now), o.self ?? 0, 2, now);
}
