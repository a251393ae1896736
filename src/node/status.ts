// What the status page shows of this node (src/control/status.ts has the document's shape): the
// pure builder from the cluster manager's snapshot, the queue sizes, the #mmove counts and the
// failover ring; and NodeStatus, which keeps the counts and the ring from the node's events.
// Main thread; nothing blocks. A document is built only while the page or the API asks for it.
import { isDrained, type Allocation } from '../cluster/election.js';
import type { ClusterManager, ClusterSnapshot, OwnershipChange } from '../cluster/manager.js';
import { buildQueueSummary, sameSummary, type QueueSummary } from '../cluster/queue-summary.js';
import type { Restriction } from '../cluster/shaping/messages.js';
import type { Config } from '../config/index.js';
import type { BindingQueueSizes } from '../control/metrics.js';
import {
  STATUS_VERSION, type StatusAddress, type StatusCluster, type StatusFailover, type StatusMember, type StatusNode,
  type StatusNodeQueues, type StatusPeer, type StatusRestriction, type StatusState,
} from '../control/status.js';
import type { AcceptedMessage } from '../message/accepted.js';
import type { MmoveItem, MmoveResult } from '../mmove/client.js';
import type { QueueManager } from '../queue/manager.js';
import { VERSION } from '../version.js';
import type { Dispatcher } from './dispatch.js';
import { queueSizes } from './metrics.js';

/** What the queue calls on the dispatcher (queue-wiring.ts's `dispatch`). */
type QueueDispatch = Pick<Dispatcher, 'deliver' | 'move' | 'bounce' | 'closeIdle' | 'onConnections'>;

/** Recent owner changes kept for the page. */
export const FAILOVER_RING = 200;

export interface StatusInput {
  now: number;
  node: StatusNode;
  cluster: ClusterSnapshot | null;
  queues: readonly BindingQueueSizes[];
  mmove: readonly StatusPeer[];
  failovers: readonly StatusFailover[];
  restrictions: readonly Restriction[];
  /** The address rows of the same allocation and holds, when the caller kept them (addressRows is the costly part). */
  addresses?: StatusAddress[];
  /** The other members' latest queue summaries (the console group's). */
  summaries?: readonly QueueSummary[];
  /** This node's summary, when the caller kept it (its `at` says since when it is so); else made from `queues`. */
  own?: QueueSummary;
}

/** The document, from its inputs alone. */
export function buildStatus(i: StatusInput): StatusState {
  const c = i.cluster;
  const addresses = i.addresses ?? (c === null ? [] : addressRows(c));
  return {
    version: STATUS_VERSION,
    seq: 0,
    generatedAt: i.now,
    node: i.node,
    cluster: c === null ? null : clusterPart(c, addresses),
    members: c === null ? [] : memberRows(c),
    addresses,
    // Only bindings with mail: a node may have thousands of idle ones (one per DuraVIP).
    queues: i.queues.filter((q) => q.active + q.deferred + q.hold > 0)
      .map((q) => ({ bindingGroup: q.bindingGroup, binding: q.binding, active: q.active, deferred: q.deferred, hold: q.hold }))
      .sort((x, y) => cmp(x.bindingGroup, y.bindingGroup) || cmp(x.binding, y.binding)),
    nodes: nodeQueues(i),
    mmove: i.mmove.map((p) => ({ peer: p.peer, sent: { ...p.sent }, received: { ...p.received } })),
    failovers: [...i.failovers],
    shaping: i.restrictions.map(restrictionRow),
  };
}

/** This node's queue and the other members' (the console group keeps those of its view's members only). */
function nodeQueues(i: StatusInput): StatusNodeQueues[] {
  const me = i.node.name;
  const own = i.own ?? buildQueueSummary(me, i.now, i.cluster?.drained ?? false, i.queues);
  const out: StatusNodeQueues[] = [nodeRow(own, true)];
  for (const s of i.summaries ?? []) if (s.node !== me) out.push(nodeRow(s, false));
  return out.sort((a, b) => cmp(a.node, b.node));
}

/** The row of each summary object, made once: the next document shares it (its diff is one identity test). */
const nodeRows = new WeakMap<QueueSummary, StatusNodeQueues>();

function nodeRow(s: QueueSummary, self: boolean): StatusNodeQueues {
  const had = nodeRows.get(s);
  if (had !== undefined && had.self === self) return had;
  const row: StatusNodeQueues = {
    node: s.node, self, at: s.at, drained: s.drained, active: s.active, deferred: s.deferred, hold: s.hold,
    bindings: s.bindings.map((b) => ({ bindingGroup: b.bindingGroup, binding: b.binding, active: b.active, deferred: b.deferred, hold: b.hold })),
    other: { ...s.other },
  };
  nodeRows.set(s, row);
  return row;
}

/** Code-unit order: the same on every machine, whatever the locale. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function clusterPart(c: ClusterSnapshot, addresses: readonly StatusAddress[]): StatusCluster {
  const counts = { addresses: addresses.length, owned: 0, orphan: 0, broken: 0, unsafe: 0, conflict: 0 };
  for (const a of addresses) {
    if (a.state === 'owned') counts.owned++;
    else if (a.state === 'orphan') counts.orphan++;
    else counts.broken++;
    if (a.unsafe) counts.unsafe++;
    if (a.conflict) counts.conflict++;
  }
  const al = c.allocation;
  return {
    group: c.group, corosync: c.corosync, nodeId: c.nodeId, quorate: c.quorate, stalled: c.stalled, leaving: c.leaving,
    drained: c.drained ?? false, queueLeft: c.queueLeft ?? null,
    viewId: c.viewId, viewArrivedAt: c.viewArrivedAt, viewStableSince: c.viewStableSince, viewComplete: c.viewComplete,
    mature: al?.mature ?? null, configConsistent: al?.configConsistent ?? null, problems: [...(al?.problems ?? [])], counts,
  };
}

function memberRows(c: ClusterSnapshot): StatusMember[] {
  return c.members.map((m) => ({
    key: `${m.nodeId}:${m.pid}`,
    node: m.state?.node ?? null,
    nodeId: m.nodeId,
    pid: m.pid,
    self: m.nodeId === c.nodeId && m.pid === process.pid,
    quorate: m.state?.quorate ?? null,
    leaving: m.state?.leaving ?? null,
    drained: m.state == null ? null : isDrained(m.state, c.drains),
    load: m.state?.load ?? null,
    mmove: m.state?.mmove == null ? null : `${m.state.mmove.host.includes(':') ? `[${m.state.mmove.host}]` : m.state.mmove.host}:${m.state.mmove.port}`,
  }));
}

/** One row per address of the last election, with this node's hold on it. */
export function addressRows(c: Pick<ClusterSnapshot, 'allocation' | 'holds' | 'releasing' | 'plumbErrors'>): StatusAddress[] {
  const al = c.allocation;
  if (al === null) return [];
  const holds = new Set(c.holds);
  const releasing = new Set(c.releasing);
  return al.addresses.map((a) => {
    const row: StatusAddress = {
      address: a.address,
      binding: a.binding,
      owner: a.owner,
      state: a.tags.includes('BROKEN') ? 'BROKEN' : a.tags.includes('orphan') ? 'orphan' : 'owned',
      unsafe: a.tags.includes('UNSAFE'),
      conflict: a.tags.includes('in conflict'),
      reason: a.reason,
      preference: a.preference,
      here: holds.has(a.address) ? 'held' : releasing.has(a.address) ? 'releasing' : null,
    };
    const err = c.plumbErrors.get(a.address);
    if (err !== undefined) row.error = err;
    return row;
  });
}

function restrictionRow(r: Restriction): StatusRestriction {
  return {
    key: `${r.action}|${r.binding ?? '*'}|${r.destination}`,
    action: r.action, binding: r.binding, destination: r.destination, at: r.at, until: r.until,
    rate: r.rate === null ? null : { count: r.rate.count, periodMs: r.rate.periodMs },
    connections: r.connections, origin: r.origin, rule: r.rule, reason: r.reason,
  };
}

export interface NodeStatusSources {
  config: () => Config;
  queue: Pick<QueueManager, 'byBinding'>;
  cluster: () => ClusterManager | null;
  /** The restrictions in force (shaping). */
  restrictions: () => readonly Restriction[];
  startedAt: number;
  now?: () => number;
  /** The other members' latest queue summaries (node/cluster-console.ts); absent: none. */
  queueSummaries?: () => readonly QueueSummary[];
}

/** The node's status: the counts and the failover ring it keeps, and the document on request. */
export class NodeStatus {
  private readonly now: () => number;
  private readonly peers = new Map<string, StatusPeer>();
  private readonly ring: StatusFailover[] = [];
  private nextId = 1;
  /** Whether this node has had an allocation since start (or since it lost corosync): its first
   *  election's owners are not failovers. */
  private seenAllocation = false;
  private reasonsOf: Allocation | null = null;
  private reasons = new Map<string, string>();
  /** The last address rows and what they were made of. */
  private rowsKey: { alloc: Allocation | null; holds: string; releasing: string; errors: string } | null = null;
  private rows: StatusAddress[] = [];
  /** This node's last queue summary: kept while the sizes stay the same (its time with them). */
  private own: QueueSummary | null = null;

  constructor(private readonly s: NodeStatusSources) {
    this.now = s.now ?? Date.now;
  }

  /** Follows the manager's owner changes into the failover ring. */
  watch(c: Pick<ClusterManager, 'on' | 'allocation'>): void {
    c.on('ownership', (ch: OwnershipChange) => this.ownership(ch, c.allocation));
    c.on('allocation', () => (this.seenAllocation = true));
  }

  /** One owner change; `alloc` is the allocation it comes from (null: this node has none now). */
  ownership(ch: Pick<OwnershipChange, 'address' | 'owner' | 'previous'>, alloc: Allocation | null): void {
    if (alloc === null) {
      // Lost corosync: every address goes to nobody here; the next election starts afresh.
      if (this.seenAllocation) this.push(ch, 'this node lost corosync: no allocation');
      this.seenAllocation = false;
      return;
    }
    if (!this.seenAllocation) return;
    if (alloc !== this.reasonsOf) {
      this.reasonsOf = alloc;
      this.reasons = new Map(alloc.addresses.map((a) => [a.address, a.reason]));
    }
    this.push(ch, this.reasons.get(ch.address) ?? 'no longer managed');
  }

  private push(ch: Pick<OwnershipChange, 'address' | 'owner' | 'previous'>, reason: string): void {
    this.ring.push({ id: this.nextId++, at: this.now(), address: ch.address, from: ch.previous, to: ch.owner, reason });
    if (this.ring.length > FAILOVER_RING) this.ring.splice(0, this.ring.length - FAILOVER_RING);
  }

  /** Owner changes recorded since start (the ring keeps the last FAILOVER_RING): /metrics' moves. */
  get ownerChanges(): number {
    return this.nextId - 1;
  }

  /** The #mmove counts per peer since start, live (not copies): read them, never change them. */
  peerCounts(): Iterable<Readonly<StatusPeer>> {
    return this.peers.values();
  }

  private peer(name: string): StatusPeer {
    let p = this.peers.get(name);
    if (p === undefined) this.peers.set(name, (p = { peer: name, sent: { messages: 0, recipients: 0, duplicates: 0, failed: 0 }, received: { messages: 0, bytes: 0 } }));
    return p;
  }

  /** The results of one #mmove batch to `node`. */
  moved(node: string, items: readonly MmoveItem[], results: readonly MmoveResult[]): void {
    const p = this.peer(node);
    for (let i = 0; i < items.length; i++) {
      const r = results[i];
      if (r?.ok === true) {
        p.sent.messages++;
        p.sent.recipients += items[i]!.rcpt.length;
        if (r.duplicate) p.sent.duplicates++;
      } else p.sent.failed++;
    }
  }

  /** A dispatcher whose moves are counted here (what the queue is given). */
  countMoves(d: QueueDispatch): QueueDispatch {
    return {
      deliver: (b, worker) => d.deliver(b, worker),
      bounce: (r) => d.bounce(r),
      closeIdle: (worker, ids) => d.closeIdle(worker, ids),
      onConnections: (events) => d.onConnections(events),
      move: async (node, items) => {
        const results = await d.move(node, items);
        this.moved(node, items, results);
        return results;
      },
    };
  }

  /** A worker's accepted batch: the messages that came over #mmove count for the peer that sent them. */
  received(batch: readonly AcceptedMessage[]): void {
    let names: Map<string, string> | null = null;
    for (const m of batch) {
      if (m.moved === undefined) continue;
      names ??= this.peerNames();
      const p = this.peer(names.get(m.client) ?? m.client);
      p.received.messages++;
      p.received.bytes += m.size;
    }
  }

  /** Member by the address of its ECCluster_Listener: a peer moves mail from there (dispatch.ts). */
  private peerNames(): Map<string, string> {
    const names = new Map<string, string>();
    const c = this.s.cluster();
    if (c === null) return names;
    for (const m of c.snapshot().members) if (m.state?.mmove != null) names.set(m.state.mmove.host, m.state.node);
    return names;
  }

  /** The document now. */
  state(): StatusState {
    const c = this.s.cluster()?.snapshot() ?? null;
    let addresses: StatusAddress[] | undefined;
    if (c !== null) {
      const key = { alloc: c.allocation, holds: [...c.holds].sort().join(), releasing: [...c.releasing].sort().join(), errors: JSON.stringify([...c.plumbErrors]) };
      const k = this.rowsKey;
      if (k === null || k.alloc !== key.alloc || k.holds !== key.holds || k.releasing !== key.releasing || k.errors !== key.errors) {
        this.rows = addressRows(c);
        this.rowsKey = key;
      }
      addresses = this.rows;
    }
    const now = this.now();
    const name = this.s.config().global.Nodename;
    const queues = queueSizes(this.s.config(), this.s.queue);
    const own = buildQueueSummary(name, now, c?.drained ?? false, queues);
    if (this.own === null || !sameSummary(this.own, own)) this.own = own;
    return buildStatus({
      now,
      node: { name, version: VERSION, startedAt: this.s.startedAt, pid: process.pid },
      cluster: c,
      queues,
      own: this.own,
      summaries: this.s.queueSummaries?.() ?? [],
      mmove: [...this.peers.values()],
      failovers: this.ring,
      restrictions: this.s.restrictions(),
      ...(addresses !== undefined ? { addresses } : {}),
    });
  }
}
