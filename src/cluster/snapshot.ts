// The cluster manager's read-only face: ClusterSnapshot, everything the console, the status page
// and the metrics show, built from the manager's parts without changing any, and OwnershipChange,
// its 'ownership' event. Main thread, pure: reads in-memory state only, never blocks.

import type { CorosyncGroup } from '../native/index.js';
import type { NodeDrain } from './drain.js';
import type { Allocation } from './election.js';
import type { GroupLink } from './group-link.js';
import type { Holdings, HoldingsSnapshot } from './holdings.js';
import type { DuravipEntry, MemberState } from './state.js';
import type { View } from './view.js';

/**
 * An owner change in this member's latest election (the same on every member of the view):
 * `owner` null = nobody (orphan, BROKEN, no quorum, or this node lost corosync). It says who should
 * hold the address; `owns()` says whether this node has it plumbed right now (a handover takes a
 * round trip).
 */
export interface OwnershipChange {
  readonly address: string;
  readonly owner: string | null;
  readonly previous: string | null;
  /** The new owner is this node. */
  readonly local: boolean;
}

/** Everything the console shows (console.ts formats it); the holdings' part is HoldingsSnapshot. */
export interface ClusterSnapshot extends HoldingsSnapshot {
  readonly node: string;
  readonly nodeId: number | null;
  readonly group: string;
  readonly corosync: string;
  readonly quorate: boolean;
  readonly stalled: boolean;
  readonly leaving: boolean;
  // The drain's fields are optional so that snapshots made elsewhere (tests, benches) stay valid.
  /** This node is drained, since when (ms; 0 unknown). */
  readonly drained?: boolean;
  readonly drainedSince?: number;
  /** Parts still queued on this node (a drain's progress), null when unknown. */
  readonly queueLeft?: number | null;
  /** Agreed drain messages of this view (node -> drained): they override the members' announces. */
  readonly drains?: ReadonlyMap<string, boolean>;
  readonly viewId: number | null;
  readonly viewArrivedAt: number | null;
  readonly viewStableSince: number | null;
  readonly viewComplete: boolean;
  readonly members: readonly { nodeId: number; pid: number; state: MemberState | null }[];
  readonly allocation: Allocation | null;
  readonly configSince: number;
  readonly entries: readonly DuravipEntry[];
}

/** The manager's parts a snapshot reads (ClusterManager.snapshot() passes its own). */
export interface SnapshotParts {
  readonly node: string;
  /** The CPG group's name, and the group itself while joined. */
  readonly groupName: string;
  readonly group: CorosyncGroup | null;
  readonly link: GroupLink;
  /** This node's own quorum (corosync's word, before the stall and leaving checks). */
  readonly quorate: boolean;
  readonly stalled: boolean;
  readonly leaving: boolean;
  readonly drain: NodeDrain;
  readonly view: View | null;
  readonly allocation: Allocation | null;
  readonly configSince: number;
  readonly entries: readonly DuravipEntry[];
  readonly holdings: Holdings;
}

/** A snapshot of everything the console shows. */
export function clusterSnapshot(p: SnapshotParts): ClusterSnapshot {
  const v = p.view;
  const g = p.group;
  return {
    node: p.node,
    nodeId: g?.localNodeId ?? null,
    group: p.groupName,
    corosync: g === null ? `not connected (${p.link.joinError ?? (p.link.waiting ? 'waiting for corosync to answer' : 'starting')})` : 'connected',
    quorate: p.quorate,
    stalled: p.stalled,
    leaving: p.leaving,
    ...p.drain.snapshot(),
    drains: v === null ? new Map() : new Map(v.drains),
    viewId: v?.id ?? null,
    viewArrivedAt: v?.arrivedAt ?? null,
    viewStableSince: v?.stableSince ?? null,
    viewComplete: v?.complete ?? false,
    members: v === null ? [] : v.members.map((m) => ({ nodeId: m.nodeId, pid: m.pid, state: v.stateOf(m.nodeId, m.pid) ?? null })),
    allocation: p.allocation,
    configSince: p.configSince,
    entries: p.entries,
    ...p.holdings.snapshot(),
  };
}
