// The node's metric set as the rest of src/node/ uses it: what is counted where (received,
// per-recipient outcomes and failures by bounce class, #mmove moves and duplicates) and what is
// read at scrape time (queue sizes per binding, the spool, the cluster manager's snapshot and the
// counts NodeStatus keeps). The only file here that touches src/control/metrics.ts.
// Main thread; increments are cheap and never allocate, render() runs per scrape.
import type { AddressTag, Allocation } from '../cluster/election.js';
import type { ClusterManager, ClusterSnapshot, OwnershipChange } from '../cluster/manager.js';
import type { Config } from '../config/index.js';
import {
  buildMetrics, FAILOVER_BOUNDS_S, type BindingQueueSizes, type ClusterValues, type DuravipState, type ExporterValues, type JournalValues, type ShapingValues,
} from '../control/metrics.js';
import type { StatusPeer } from '../control/status.js';
import type { BounceClass } from '../policy/bounce-class.js';
import type { DedupTable } from '../mmove/dedup.js';
import type { QueueManager } from '../queue/manager.js';
import type { Spool } from '../spool/index.js';
import { injectCounts, listenerAbuse } from './worker-settings.js';
import { nodeDrained } from './drain.js';

export type Outcome = 'delivered' | 'deferred' | 'bounced' | 'moved';

export interface NodeMetricSources {
  config: () => Config;
  queue: Pick<QueueManager, 'byBinding'>;
  /** Null while the spool is not open. */
  spool: () => Pick<Spool, 'stats'> | null;
  dedup: Pick<DedupTable, 'stats'>;
  /** True while the spool refuses commits for lack of space (SpoolFullWatch). */
  spoolFull: () => boolean;
  /** Rule firings and restrictions in force (node/shaping.ts). */
  shaping?: () => ShapingValues;
  /** The event journal's figures (node/journal-watch.ts); null until the spool is open. */
  journal?: () => JournalValues | null;
}

/** What the cluster series read of NodeStatus (node/status.ts, which imports this file): owner
 *  changes and #mmove counts per peer, counted there once. */
export interface StatusCounts {
  readonly ownerChanges: number;
  peerCounts(): Iterable<Readonly<StatusPeer>>;
}

export class NodeMetricSet {
  /** Messages taken in: a worker's accepted batch, or a dead worker's commits found in the spool. */
  readonly received: (n: number) => void;
  /** Per-recipient outcomes of the queue manager (its onOutcome). */
  readonly outcome: (status: Outcome, n: number) => void;
  /** Per-recipient failures by bounce class (the queue manager's onFailure). */
  readonly failure: (kind: 'transient' | 'permanent', cls: BounceClass, n: number) => void;
  /** The exposition text for GET /metrics. */
  readonly render: () => Promise<string>;
  /** Where the cluster series read from; set by watchCluster (a node with a Cluster stanza). */
  private clusterSource: (() => ClusterValues) | null = null;
  /** The event exporters (node/exporters.ts); set by watchExporters once they are started. */
  private exportersSource: (() => readonly ExporterValues[]) | null = null;

  constructor(s: NodeMetricSources) {
    const m = buildMetrics({
      queues: () => queueSizes(s.config(), s.queue),
      spool: () => s.spool()?.stats() ?? null,
      mmoveDuplicates: () => s.dedup.stats().duplicates,
      spoolFull: s.spoolFull,
      listeners: listenerAbuse,
      drained: nodeDrained,
      // Decided at start: a node without Http_Injection then has no injection series.
      ...(s.config().httpInjection != null ? { inject: injectCounts } : {}),
      ...(s.shaping !== undefined ? { shaping: s.shaping } : {}),
      ...(s.journal !== undefined ? { journal: s.journal } : {}),
      // Decided at start, as the manager is (removing the stanza takes effect at the next restart).
      ...(s.config().cluster !== null ? { cluster: () => this.clusterSource?.() ?? null } : {}),
      // Decided at start too: a node without Event_Webhook or Event_Nats stanzas has no exporter
      // series (eventNats read with ?.: unit tests pass partial configs).
      ...(s.config().eventWebhooks.length + (s.config().eventNats?.length ?? 0) > 0 ? { exporters: () => this.exportersSource?.() ?? [] } : {}),
    });
    this.received = (n) => m.received.inc(n);
    this.outcome = (status, n) => {
      if (status === 'delivered') m.delivered.inc(n);
      else if (status === 'deferred') m.transientFailures.inc(n);
      else if (status === 'bounced') m.permanentFailures.inc(n);
      else m.mmoveMoved.inc(n);
    };
    this.failure = (kind, cls, n) => m.failures.inc(kind, cls, n);
    this.render = () => m.render();
  }

  /** Follows the manager's events (elections, failovers) from now on and reads its snapshot and
   *  NodeStatus's counts at scrape time. Call it as the manager is made, before it joins. */
  watchCluster(c: ClusterManager, status: StatusCounts): void {
    const events = new ClusterEvents();
    events.watch(c);
    this.clusterSource = clusterValuesOf(() => c.snapshot(), status, events);
  }

  /** Reads the exporters' values at scrape time from now on. */
  watchExporters(source: () => readonly ExporterValues[]): void {
    this.exportersSource = source;
  }
}

/** A DuraVIP's state from its election tags: the worst that applies. */
export function duravipState(tags: readonly AddressTag[]): DuravipState {
  if (tags.includes('BROKEN')) return 'broken';
  if (tags.includes('orphan')) return 'orphan';
  if (tags.includes('in conflict')) return 'conflict';
  if (tags.includes('UNSAFE')) return 'unsafe';
  return 'owned';
}

/**
 * What the manager only says in events, counted here: elections, and failovers with their
 * duration. A failover: an owner change from a member that left the group (memberLeft) since the
 * last election it was part of, to another member; timed from that departure to the election. An
 * address that went to nobody in between (no eligible member yet) completes its failover when an
 * election gives it to someone. Losing corosync here forgets everything (its own outage is no failover).
 */
export class ClusterEvents {
  elections = 0;
  /** Observations per FAILOVER_BOUNDS_S bucket, +Inf last, and their sum in seconds. */
  readonly failoverCounts: number[] = new Array<number>(FAILOVER_BOUNDS_S.length + 1).fill(0);
  failoverSum = 0;
  /** Node name -> when this node saw it leave the group. */
  private readonly leftAt = new Map<string, number>();
  /** Address whose departed owner it lost, waiting for a new one -> when that owner left. */
  private readonly pending = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  watch(c: Pick<ClusterManager, 'on' | 'allocation'>): void {
    c.on('memberLeft', (node: string) => this.memberLeft(node));
    c.on('ownership', (ch: OwnershipChange) => this.ownership(ch, c.allocation));
    c.on('allocation', (a: Allocation) => this.allocation(a));
  }

  memberLeft(node: string): void {
    // The first departure counts: an address may have waited since then.
    if (!this.leftAt.has(node)) this.leftAt.set(node, this.now());
  }

  /** One owner change; `alloc` the allocation it comes from (null: this node lost corosync). */
  ownership(ch: Pick<OwnershipChange, 'address' | 'owner' | 'previous'>, alloc: Allocation | null): void {
    if (alloc === null) {
      this.leftAt.clear();
      this.pending.clear();
      return;
    }
    const since = ch.previous === null ? this.pending.get(ch.address) : this.leftAt.get(ch.previous);
    this.pending.delete(ch.address);
    if (since === undefined) return;
    if (ch.owner === null) {
      this.pending.set(ch.address, since);
      return;
    }
    const s = Math.max(0, this.now() - since) / 1000;
    let i = 0;
    while (i < FAILOVER_BOUNDS_S.length && s > FAILOVER_BOUNDS_S[i]!) i++;
    this.failoverCounts[i]!++;
    this.failoverSum += s;
  }

  /** After the election's owner changes: its members are back (a later move from them is no failover). */
  allocation(a: Allocation): void {
    this.elections++;
    for (const m of a.members) this.leftAt.delete(m.node);
  }
}

/**
 * The cluster series' values from the manager's snapshot, NodeStatus's counts and the events.
 * The registry asks once per series in the same turn: one snapshot serves them all (dropped at the
 * next microtask); the address states are remade only when the allocation changed.
 */
export function clusterValuesOf(
  snapshot: () => Pick<ClusterSnapshot, 'viewId' | 'members' | 'quorate' | 'stalled' | 'corosync' | 'allocation'>,
  status: StatusCounts,
  events: ClusterEvents,
): () => ClusterValues {
  let cached: ClusterValues | null = null;
  let statesOf: Allocation | null = null;
  let states: ClusterValues['addresses'] = [];
  return () => {
    if (cached !== null) return cached;
    const c = snapshot();
    const al = c.allocation;
    if (al !== statesOf) {
      statesOf = al;
      states = al === null ? [] : al.addresses.map((a) => ({ address: a.address, state: duravipState(a.tags) }));
    }
    const held = new Map<string, number>((al?.members ?? []).map((m) => [m.node, 0]));
    for (const a of al?.addresses ?? []) if (a.owner !== null) held.set(a.owner, (held.get(a.owner) ?? 0) + 1);
    cached = {
      viewId: c.viewId ?? 0,
      members: c.members.map((m) => m.state?.node ?? `${m.nodeId}:${m.pid}`),
      quorate: c.quorate,
      corosyncUp: c.corosync === 'connected' && !c.stalled,
      held: [...held].map(([node, addresses]) => ({ node, addresses })),
      addresses: states,
      elections: events.elections,
      moves: status.ownerChanges,
      failovers: { counts: events.failoverCounts, sum: events.failoverSum },
      mmove: [...status.peerCounts()].map((p) => ({ peer: p.peer, sentMessages: p.sent.messages, receivedMessages: p.received.messages, receivedBytes: p.received.bytes })),
    };
    queueMicrotask(() => (cached = null));
    return cached;
  };
}

/** Queue sizes per binding over all domains; every configured binding appears, at 0 when idle. */
export function queueSizes(config: Config, queue: Pick<QueueManager, 'byBinding'>): BindingQueueSizes[] {
  const by = new Map<string, BindingQueueSizes>();
  const row = (bindingGroup: string, binding: string): BindingQueueSizes => {
    const key = `${bindingGroup}\0${binding}`;
    let r = by.get(key);
    if (r === undefined) by.set(key, (r = { bindingGroup, binding, active: 0, deferred: 0, hold: 0 }));
    return r;
  };
  for (const b of config.bindings.values()) row(b.group, b.name);
  for (const m of queue.byBinding()) {
    const r = row(m.bindingGroup, m.binding);
    r.active += m.active;
    r.deferred += m.deferred;
    r.hold += m.hold;
  }
  return [...by.values()];
}
