// The cluster series' values as the node maps them (src/node/metrics.ts): from the manager's
// snapshot (view, members, quorum, the election's owners and tags), its events (elections,
// failovers timed from the owner's departure) and NodeStatus's counts (owner changes, #mmove per
// peer); and that only a node with a Cluster stanza shows them. Pure; an injected clock.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { addressOf, afterDeath, syntheticCluster } from '../../../bench/lib/status-state.js';
import type { Allocation } from '../../../src/cluster/election.js';
import type { ClusterManager, ClusterSnapshot } from '../../../src/cluster/manager.js';
import type { Config } from '../../../src/config/index.js';
import { FAILOVER_BOUNDS_S } from '../../../src/control/metrics.js';
import type { AcceptedMessage } from '../../../src/message/accepted.js';
import { ClusterEvents, clusterValuesOf, duravipState, NodeMetricSet } from '../../../src/node/metrics.js';
import { NodeStatus } from '../../../src/node/status.js';

/** A cluster manager as the node sees it: events, its allocation and its snapshot (as in status.test.ts). */
class FakeCluster extends EventEmitter {
  allocation: Allocation | null = null;
  constructor(public snap: ClusterSnapshot = syntheticCluster({ nodes: 3, addresses: 6, now: 0 })) {
    super();
  }
  snapshot() {
    return this.snap;
  }
}

const alloc = (members: string[]) => ({ members: members.map((node, i) => ({ node, nodeid: i + 1, seq: 1 })), addresses: [] }) as unknown as Allocation;
const change = (i: number, previous: string | null, owner: string | null) => ({ address: addressOf(i), previous, owner, local: owner === 'n01' });

/** Which bucket (index into FAILOVER_BOUNDS_S, or +Inf) holds each observation. */
function buckets(e: ClusterEvents): number[] {
  const out: number[] = [];
  e.failoverCounts.forEach((n, i) => { for (let k = 0; k < n; k++) out.push(i); });
  return out;
}
const bucketOf = (s: number) => FAILOVER_BOUNDS_S.findIndex((b) => s <= b);

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('cluster events for /metrics', () => {
  it('counts elections, and times a failover from the owner\'s departure to the election that gives its address away', () => {
    let t = 0;
    const e = new ClusterEvents(() => t);
    const c = new FakeCluster();
    e.watch(c as unknown as ClusterManager);
    const three = alloc(['n01', 'n02', 'n03']);
    c.allocation = three;
    // The first election: every address from nobody.
    c.emit('ownership', change(0, null, 'n01'));
    c.emit('ownership', change(1, null, 'n02'));
    c.emit('ownership', change(2, null, 'n03'));
    c.emit('allocation', three);
    expect(e.elections).toBe(1);
    // n02 leaves at 1000; the election at 1040 gives its address to n03: 0.04 s.
    t = 1000;
    c.emit('memberLeft', 'n02');
    t = 1040;
    const two = alloc(['n01', 'n03']);
    c.allocation = two;
    c.emit('ownership', change(1, 'n02', 'n03'));
    // A rebalancing move from a member still there is no failover.
    c.emit('ownership', change(0, 'n01', 'n03'));
    c.emit('allocation', two);
    expect(e.elections).toBe(2);
    expect(buckets(e)).toEqual([bucketOf(0.04)]);
    expect(e.failoverSum).toBeCloseTo(0.04, 9);
    // n03 leaves at 2000: its address first goes to nobody, then to n01 at 2700: 0.7 s.
    t = 2000;
    c.emit('memberLeft', 'n03');
    t = 2010;
    c.emit('ownership', change(2, 'n03', null));
    c.emit('allocation', alloc(['n01']));
    expect(buckets(e)).toHaveLength(1);
    t = 2700;
    c.emit('ownership', change(2, null, 'n01'));
    c.emit('allocation', alloc(['n01']));
    expect(buckets(e)).toEqual([bucketOf(0.04), bucketOf(0.7)]);
    expect(e.failoverSum).toBeCloseTo(0.74, 9);
    // n02 is back (an election had it as a member): a later move from it is no failover.
    c.emit('allocation', alloc(['n01', 'n02']));
    c.emit('ownership', change(3, 'n02', 'n01'));
    expect(buckets(e)).toHaveLength(2);
    expect(e.elections).toBe(5);
  });

  it('forgets departures when this node loses corosync: its own outage is no failover', () => {
    let t = 0;
    const e = new ClusterEvents(() => t);
    const c = new FakeCluster();
    e.watch(c as unknown as ClusterManager);
    c.emit('memberLeft', 'n02');
    c.allocation = null;
    c.emit('ownership', change(1, 'n02', null));
    t = 60_000;
    c.allocation = alloc(['n01']);
    c.emit('ownership', change(1, null, 'n01'));
    c.emit('ownership', change(2, 'n02', 'n01'));
    expect(buckets(e)).toEqual([]);
  });
});

describe('cluster values for /metrics', () => {
  function setUp() {
    const c = new FakeCluster();
    const config = { global: { Nodename: 'n01' }, bindings: new Map() } as unknown as Config;
    const status = new NodeStatus({ config: () => config, queue: { byBinding: () => [] }, cluster: () => c as unknown as ClusterManager, restrictions: () => [], startedAt: 0, now: () => 0 });
    status.watch(c as unknown as ClusterManager);
    const events = new ClusterEvents(() => 0);
    events.watch(c as unknown as ClusterManager);
    return { c, status, events, values: clusterValuesOf(() => c.snapshot(), status, events) };
  }

  it('maps the snapshot: view id, members by name, quorum, corosync, addresses per node of the election and each address\'s state', async () => {
    const { c, values } = setUp();
    c.snap = syntheticCluster({ nodes: 3, addresses: 1000, now: 0 });
    const v = values();
    expect(v.viewId).toBe(1);
    expect(v.members).toEqual(['n01', 'n02', 'n03']);
    expect(v.quorate).toBe(true);
    expect(v.corosyncUp).toBe(true);
    const owners = c.snap.allocation!.addresses.map((a) => a.owner);
    expect(v.held).toEqual(['n01', 'n02', 'n03'].map((node) => ({ node, addresses: owners.filter((o) => o === node).length })));
    expect(v.held.reduce((a, h) => a + h.addresses, 0)).toBe(1000 - owners.filter((o) => o === null).length);
    expect(v.addresses).toHaveLength(1000);
    expect(v.addresses[0]).toEqual({ address: '10.0.0.1', state: 'owned' });
    expect(v.addresses[5]!.state).toBe('broken');
    expect(v.addresses[102]!.state).toBe('orphan');
    expect(v.addresses[7]!.state).toBe('unsafe');
    expect(v.addresses[11]!.state).toBe('conflict');
    // One snapshot per scrape: the same values within the turn, fresh ones after.
    expect(values()).toBe(v);
    await Promise.resolve();
    const w = values();
    expect(w).not.toBe(v);
    expect(w.addresses).toBe(v.addresses); // the same election: the rows are not remade
    // A member died: a new view and election.
    c.snap = { ...afterDeath({ nodes: 3, addresses: 1000, now: 0 }, 1), stalled: true };
    await Promise.resolve();
    const x = values();
    expect(x.viewId).toBe(2);
    expect(x.members).toEqual(['n01', 'n03']);
    expect(x.held.map((h) => h.node)).toEqual(['n01', 'n03']);
    expect(x.addresses).not.toBe(v.addresses);
    expect(x.corosyncUp).toBe(false);
  });

  it('has no members, no addresses and view 0 before corosync; unannounced members by nodeid:pid', async () => {
    const { c, values } = setUp();
    const s = syntheticCluster({ nodes: 2, addresses: 4, now: 0 });
    c.snap = { ...s, corosync: 'not connected (starting)', quorate: false, viewId: null, members: [], allocation: null };
    expect(values()).toMatchObject({ viewId: 0, members: [], quorate: false, corosyncUp: false, held: [], addresses: [] });
    await Promise.resolve();
    c.snap = { ...s, members: [s.members[0]!, { nodeId: 2, pid: 1001, state: null }] };
    expect(values().members).toEqual(['n01', '2:1001']);
  });

  it('takes elections and failovers from the events, owner changes and #mmove per peer from NodeStatus', async () => {
    const { c, status, events, values } = setUp();
    const al = c.snap.allocation!;
    c.allocation = al;
    c.emit('ownership', change(0, null, 'n01'));
    c.emit('allocation', al);
    c.emit('ownership', change(0, 'n01', 'n02'));
    c.emit('allocation', al);
    c.emit('ownership', change(1, 'n02', 'n03'));
    const d = status.countMoves({
      deliver: async () => ({ results: [], kept: null, opened: 0, worker: 0 }), bounce: async () => ({ id: '', size: 0 }),
      closeIdle: async () => [], onConnections: () => undefined,
      move: async (_node, items) => items.map((it, i) => ({ id: it.id, ok: i === 0, code: 250, text: '', duplicate: false })),
    });
    const item = (id: string) => ({ id, from: 'a@b.test', rcpt: ['r@c.test'], binding: 'b', bindingGroup: 'g', arrival: 0, attempts: 0, nextAttempt: 0, hops: 0 });
    await d.move('n02', [item('1'), item('2')]);
    status.received([{ client: '192.0.2.3', size: 120, moved: { originalId: 'x' } } as unknown as AcceptedMessage]);
    await Promise.resolve();
    const v = values();
    expect(v.elections).toBe(2);
    expect(v.moves).toBe(2); // the first election's owners are not counted
    expect(v.failovers.counts).toBe(events.failoverCounts);
    expect(v.mmove).toEqual([
      { peer: 'n02', sentMessages: 1, receivedMessages: 0, receivedBytes: 0 },
      { peer: 'n03', sentMessages: 0, receivedMessages: 1, receivedBytes: 120 },
    ]);
    expect(duravipState(['owned', 'UNSAFE', 'in conflict'])).toBe('conflict');
  });
});

describe('NodeMetricSet and the cluster', () => {
  function metricSet(cluster: boolean) {
    const config = { global: { Nodename: 'n01' }, bindings: new Map(), cluster: cluster ? {} : null, eventWebhooks: [] } as unknown as Config;
    return new NodeMetricSet({ config: () => config, queue: { byBinding: () => [] }, spool: () => null, dedup: { stats: () => ({ duplicates: 0 }) } as never, spoolFull: () => false });
  }

  it('shows the cluster series only with a Cluster stanza, read from the manager it watches', async () => {
    expect(await metricSet(false).render()).not.toContain('vipmta_cluster_view_id');
    const m = metricSet(true);
    const c = new FakeCluster(syntheticCluster({ nodes: 3, addresses: 6, now: 0 }));
    const config = { global: { Nodename: 'n01' }, bindings: new Map() } as unknown as Config;
    const status = new NodeStatus({ config: () => config, queue: { byBinding: () => [] }, cluster: () => c as unknown as ClusterManager, restrictions: () => [], startedAt: 0 });
    m.watchCluster(c as unknown as ClusterManager, status);
    c.emit('allocation', c.snap.allocation!);
    const text = await m.render();
    expect(sample(text, 'vipmta_cluster_view_id')).toBe(1);
    expect(sample(text, 'vipmta_cluster_members')).toBe(3);
    expect(sample(text, 'vipmta_cluster_member{node="n02"}')).toBe(1);
    expect(sample(text, 'vipmta_cluster_elections_total')).toBe(1);
    expect(sample(text, 'vipmta_duravip_addresses_held{node="n01"}')).toBe(2);
    expect(sample(text, 'vipmta_duravip_address_state{address="10.0.0.6",state="broken"}')).toBe(1);
    expect(sample(text, 'vipmta_duravip_failover_seconds_count')).toBe(0);
  });
});
