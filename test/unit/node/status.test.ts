// The status document built from the node's parts (src/node/status.ts) and the delta between two
// documents (src/control/status.ts): rows, counts, the failover ring, #mmove counts per peer, and
// that applying the delta to the old document gives the new one. Pure; an injected clock.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { afterDeath, addressOf, syntheticCluster } from '../../../bench/lib/status-state.js';
import type { Allocation } from '../../../src/cluster/election.js';
import type { ClusterManager } from '../../../src/cluster/manager.js';
import { buildQueueSummary } from '../../../src/cluster/queue-summary.js';
import type { Restriction } from '../../../src/cluster/shaping/messages.js';
import type { Config } from '../../../src/config/index.js';
import { applyStatusDelta, diffStatus, same } from '../../../src/control/status.js';
import type { AcceptedMessage } from '../../../src/message/accepted.js';
import { addressRows, buildStatus, FAILOVER_RING, NodeStatus } from '../../../src/node/status.js';

const node = { name: 'n01', version: '0.0.0', startedAt: 1, pid: 1 };
// This node's queue summary as NodeStatus keeps it (its time is since when the sizes are so).
const input = { now: 1000, node, queues: [], mmove: [], failovers: [], restrictions: [], own: buildQueueSummary('n01', 500, false, []) };

describe('status builder', () => {
  it('makes one row per address with its owner, state, tags and this node\'s hold, and counts them', () => {
    const c = syntheticCluster({ nodes: 3, addresses: 1000, now: 0 });
    const s = buildStatus({ ...input, cluster: c });
    expect(s.version).toBe(1);
    expect(s.addresses).toHaveLength(1000);
    expect(s.addresses[0]).toEqual({ address: '10.0.0.1', binding: 'b0', owner: 'n01', state: 'owned', unsafe: false, conflict: false, reason: 'current owner n01 keeps it', preference: null, here: 'held' });
    expect(s.addresses[1]!.here).toBeNull();
    expect(s.addresses[5]).toMatchObject({ owner: null, state: 'BROKEN' });
    expect(s.addresses[102]).toMatchObject({ owner: null, state: 'orphan' });
    expect(s.addresses[7]).toMatchObject({ state: 'owned', unsafe: true });
    expect(s.addresses[11]).toMatchObject({ conflict: true });
    const n = s.cluster!.counts;
    expect(n.addresses).toBe(1000);
    expect(n.owned + n.orphan + n.broken).toBe(1000);
    expect(n.orphan).toBe(s.addresses.filter((a) => a.state === 'orphan').length);
    expect(n.broken).toBe(1);
    expect(n.unsafe).toBe(3); // 7, 338, 669
    expect(s.members.map((m) => [m.node, m.self, m.load])).toEqual([['n01', true, expect.any(Number)], ['n02', false, expect.any(Number)], ['n03', false, expect.any(Number)]]);
    expect(s.members[1]!.mmove).toBe('192.0.2.2:2525');
    expect(s.cluster).toMatchObject({ quorate: true, viewId: 1, mature: true, configConsistent: true, corosync: 'connected' });
  });

  it('shows a drained member (agreed drains override its announce) and this node\'s drain with what it has left to move', () => {
    const c = syntheticCluster({ nodes: 3, addresses: 6, now: 0 });
    const s = buildStatus({ ...input, cluster: { ...c, drained: true, queueLeft: 12, drains: new Map([['n01', true], ['n03', false]]) } });
    expect(s.members.map((m) => [m.node, m.drained])).toEqual([['n01', true], ['n02', false], ['n03', false]]);
    expect(s.cluster).toMatchObject({ drained: true, queueLeft: 12 });
    expect(buildStatus({ ...input, cluster: c }).cluster).toMatchObject({ drained: false, queueLeft: null });
  });

  it('marks releasing addresses and plumbing errors, and has no cluster part on a single node', () => {
    const c = syntheticCluster({ nodes: 2, addresses: 4, now: 0 });
    const rows = addressRows({ ...c, holds: [], releasing: ['10.0.0.1'], plumbErrors: new Map([['10.0.0.2', 'EPERM']]) });
    expect(rows[0]!.here).toBe('releasing');
    expect(rows[1]!.error).toBe('EPERM');
    const s = buildStatus({ ...input, cluster: null });
    expect(s.cluster).toBeNull();
    expect(s.members).toEqual([]);
    expect(s.addresses).toEqual([]);
  });

  it('lists restrictions in force with a key, and the queues with mail sorted by group and binding', () => {
    const r: Restriction = { action: 'throttle', binding: null, destination: 'mx:a.test', at: 1, until: 2, rate: { count: 5, periodMs: 60_000 }, connections: null, origin: 'n02', rule: 'slow', reason: '421 slow down' };
    const s = buildStatus({
      ...input, cluster: null, restrictions: [r],
      queues: [
        { bindingGroup: 'news', binding: 'a', active: 1, deferred: 2, hold: 3 }, { bindingGroup: 'default', binding: 'default', active: 0, deferred: 1, hold: 0 },
        { bindingGroup: 'default', binding: 'idle', active: 0, deferred: 0, hold: 0 },
      ],
    });
    expect(s.shaping).toEqual([{ key: 'throttle|*|mx:a.test', ...r }]);
    expect(s.queues.map((q) => `${q.bindingGroup}/${q.binding}`)).toEqual(['default/default', 'news/a']);
  });
});

describe('status delta', () => {
  it('is null when nothing changed, and carries only the moved addresses and changed members after a death', () => {
    const before = buildStatus({ ...input, cluster: syntheticCluster({ nodes: 32, addresses: 3200, now: 0 }) });
    expect(diffStatus(before, buildStatus({ ...input, now: 2000, cluster: syntheticCluster({ nodes: 32, addresses: 3200, now: 0 }) }))).toBeNull();
    const after = buildStatus({ ...input, now: 3000, cluster: afterDeath({ nodes: 32, addresses: 3200, now: 0 }, 4) });
    const d = diffStatus(before, after)!;
    // n05 owned every 32nd address but the orphans (every 97th).
    const moved = before.addresses.filter((a) => a.owner === 'n05').map((a) => a.address);
    expect(d.upsert!.addresses!.map((a) => a.address)).toEqual(moved);
    expect(d.upsert!.addresses!.every((a) => a.owner !== 'n05' && a.owner !== null)).toBe(true);
    expect(d.remove!.members).toEqual([`5:1004`]);
    expect(d.cluster!.viewId).toBe(2);
    expect(applyStatusDelta(before, d)).toEqual({ ...after, seq: d.seq });
  });

  it('compares rows structurally', () => {
    expect(same({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toBe(true);
    expect(same({ a: null }, { a: {} })).toBe(false);
    expect(same([1], { 0: 1 })).toBe(false);
    expect(same({ a: 1 }, { b: 1 })).toBe(false);
    expect(same({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(same({ rate: { count: 1, periodMs: 2 } }, { rate: { count: 1, periodMs: 3 } })).toBe(false);
  });

  it('removes and appends rows by key', () => {
    const a = buildStatus({ ...input, cluster: null, queues: [{ bindingGroup: 'g', binding: 'x', active: 1, deferred: 0, hold: 0 }] });
    const b = buildStatus({ ...input, cluster: null, queues: [{ bindingGroup: 'g', binding: 'y', active: 1, deferred: 0, hold: 0 }] });
    const d = diffStatus(a, b)!;
    expect(d.remove).toEqual({ queues: ['g/x'] });
    expect(d.upsert).toEqual({ queues: b.queues });
    expect(b.nodes).toEqual([expect.objectContaining({ node: 'n01', self: true })]);
    expect(applyStatusDelta(a, d).queues).toEqual(b.queues);
  });
});

/** A cluster manager as NodeStatus sees it: events, its allocation and its snapshot. */
class FakeCluster extends EventEmitter {
  allocation: Allocation | null = null;
  constructor(private snap = syntheticCluster({ nodes: 3, addresses: 6, now: 0 })) {
    super();
  }
  snapshot() {
    return this.snap;
  }
}

function nodeStatus(cluster: FakeCluster, now: () => number) {
  const config = { global: { Nodename: 'n01' }, bindings: new Map() } as unknown as Config;
  let restrictions: Restriction[] = [];
  const s = new NodeStatus({
    config: () => config, queue: { byBinding: () => [] }, cluster: () => cluster as unknown as ClusterManager,
    restrictions: () => restrictions, startedAt: 0, now,
  });
  s.watch(cluster as unknown as ClusterManager);
  return { s, setRestrictions: (r: Restriction[]) => (restrictions = r) };
}

describe('NodeStatus', () => {
  it('keeps owner changes after the first election as failovers, with the election\'s reason, bounded', () => {
    const c = new FakeCluster();
    let t = 100;
    const { s } = nodeStatus(c, () => t);
    const alloc = c.snapshot().allocation!;
    c.allocation = alloc;
    // The first election after start: every address from nobody; not failovers.
    c.emit('ownership', { address: addressOf(0), owner: 'n01', previous: null, local: true });
    c.emit('allocation', alloc);
    expect(s.state().failovers).toEqual([]);
    t = 200;
    c.emit('ownership', { address: addressOf(0), owner: 'n02', previous: 'n01', local: false });
    expect(s.state().failovers).toEqual([{ id: 1, at: 200, address: '10.0.0.1', from: 'n01', to: 'n02', reason: 'current owner n01 keeps it' }]);
    for (let i = 0; i < FAILOVER_RING + 10; i++) c.emit('ownership', { address: addressOf(1), owner: 'n03', previous: 'n02', local: false });
    const f = s.state().failovers;
    expect(f).toHaveLength(FAILOVER_RING);
    expect(f[f.length - 1]!.id).toBe(FAILOVER_RING + 11);
    // Corosync lost: the losses are recorded, and the next first election is not.
    c.allocation = null;
    c.emit('ownership', { address: addressOf(2), owner: null, previous: 'n03', local: false });
    expect(s.state().failovers.at(-1)).toMatchObject({ to: null, reason: 'this node lost corosync: no allocation' });
    c.allocation = alloc;
    c.emit('ownership', { address: addressOf(2), owner: 'n01', previous: null, local: true });
    expect(s.state().failovers.at(-1)!.to).toBeNull();
  });

  it('counts #mmove messages per peer: sent from the move results, received by the sender\'s address', async () => {
    const c = new FakeCluster();
    const { s } = nodeStatus(c, () => 0);
    const item = (id: string, n: number) => ({ id, from: 'a@b.test', rcpt: Array.from({ length: n }, (_, i) => `r${i}@c.test`), binding: 'b', bindingGroup: 'g', arrival: 0, attempts: 0, nextAttempt: 0, hops: 0 });
    const d = s.countMoves({
      deliver: async () => ({ results: [], kept: null, opened: 0, worker: 0 }), bounce: async () => ({ id: '', size: 0 }),
      closeIdle: async () => [], onConnections: () => undefined,
      move: async (_node, items) => items.map((it, i) => ({ id: it.id, ok: i < 2, code: i < 2 ? 250 : 451, text: '', duplicate: i === 1 })),
    });
    await d.move('n02', [item('1', 2), item('2', 1), item('3', 5)]);
    const moved = (client: string, size: number) => ({ client, size, moved: { originalId: 'x' } }) as unknown as AcceptedMessage;
    s.received([moved('192.0.2.3', 100), { client: '127.0.0.1', size: 5 } as AcceptedMessage, moved('192.0.2.3', 50), moved('198.51.100.9', 7)]);
    expect(s.state().mmove).toEqual([
      { peer: 'n02', sent: { messages: 2, recipients: 3, duplicates: 1, failed: 1 }, received: { messages: 0, bytes: 0 } },
      { peer: 'n03', sent: { messages: 0, recipients: 0, duplicates: 0, failed: 0 }, received: { messages: 2, bytes: 150 } },
      { peer: '198.51.100.9', sent: { messages: 0, recipients: 0, duplicates: 0, failed: 0 }, received: { messages: 1, bytes: 7 } },
    ]);
  });

  it('reuses the address rows while the allocation and the holds are the same', () => {
    const c = new FakeCluster();
    const { s, setRestrictions } = nodeStatus(c, () => 0);
    const a = s.state();
    setRestrictions([]);
    const b = s.state();
    expect(b.addresses).toBe(a.addresses);
    expect(diffStatus(a, b)).toBeNull();
  });
});

describe('queues of every node', () => {
  it('has this node\'s queue from its live sizes and the other members\' summaries, in node order', () => {
    const n03 = buildQueueSummary('n03', 700, true, [{ bindingGroup: 'g', binding: 'b1', active: 0, deferred: 4, hold: 2 }]);
    const n02 = buildQueueSummary('n02', 800, false, []);
    // A stale summary under this node's own name (another process of the same name) does not replace its live one.
    const stale = buildQueueSummary('n01', 1, false, [{ bindingGroup: 'g', binding: 'old', active: 9, deferred: 0, hold: 0 }]);
    const s = buildStatus({
      ...input, own: undefined, cluster: null, summaries: [n03, stale, n02],
      queues: [{ bindingGroup: 'g', binding: 'b1', active: 1, deferred: 0, hold: 3 }, { bindingGroup: 'g', binding: 'idle', active: 0, deferred: 0, hold: 0 }],
    });
    expect(s.nodes.map((n) => [n.node, n.self, n.drained, n.active + n.deferred + n.hold])).toEqual([['n01', true, false, 4], ['n02', false, false, 0], ['n03', false, true, 6]]);
    expect(s.nodes[0]!.bindings).toEqual([{ bindingGroup: 'g', binding: 'b1', active: 1, deferred: 0, hold: 3 }]);
    expect(s.nodes[0]!.at).toBe(input.now);
    expect(s.nodes[2]).toMatchObject({ at: 700, bindings: [{ binding: 'b1', deferred: 4, hold: 2 }], other: { bindings: 0, active: 0, deferred: 0, hold: 0 } });
  });

  it('keeps this node\'s entry (and its time) while the sizes stay, and follows the members\' summaries', () => {
    const c = new FakeCluster();
    let t = 100;
    let sizes = [{ bindingGroup: 'g', binding: 'b', active: 0, deferred: 1, hold: 0 }];
    let others = [buildQueueSummary('n02', 50, true, [{ bindingGroup: 'g', binding: 'b', active: 0, deferred: 0, hold: 412 }])];
    const config = { global: { Nodename: 'n01' }, bindings: new Map() } as unknown as Config;
    const s = new NodeStatus({
      config: () => config, queue: { byBinding: () => sizes }, cluster: () => c as unknown as ClusterManager,
      restrictions: () => [], startedAt: 0, now: () => t, queueSummaries: () => others,
    });
    const a = s.state();
    expect(a.nodes.map((n) => [n.node, n.at, n.hold + n.deferred + n.active])).toEqual([['n01', 100, 1], ['n02', 50, 412]]);
    t = 200;
    const b = s.state();
    expect(b.nodes[0]!.at).toBe(100);
    expect(diffStatus(a, b)).toBeNull();
    sizes = [{ bindingGroup: 'g', binding: 'b', active: 0, deferred: 0, hold: 0 }];
    others = [buildQueueSummary('n02', 300, true, [])];
    const d = diffStatus(b, s.state())!;
    expect(d.upsert!.nodes!.map((n) => [n.node, n.at, n.bindings.length])).toEqual([['n01', 200, 0], ['n02', 300, 0]]);
  });
});
