// Dispatch (src/node/dispatch.ts) over a scripted pool: the ready worker with the fewest batches
// running gets the next one, a failed batch frees its worker, moves go to the node's cluster link
// and a member that left has its move connections dropped; a batch from an address the election
// gave away comes back cut without a worker.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ClusterManager } from '../../../src/cluster/manager.js';
import { Dispatcher, type DispatchPool } from '../../../src/node/dispatch.js';
import type { PoolStatus } from '../../../src/workers/pool.js';
import type { DeliveryBatch } from '../../../src/delivery/batch.js';
import { config } from './helpers.js';

const logger = pino({ level: 'silent' });
const cfg = config('Connect_Timeout = 10s\nCommand_Timeout = 20s\nData_Timeout = 30s\n');

interface Call {
  workerId: number;
  method: string;
  params: unknown;
  timeoutMs: number | undefined;
  settle: (ok: boolean) => void;
}

/** Workers 0..n-1 (those in `notReady` are starting); every call waits until the test settles it. */
function scriptedPool(n: number, notReady: number[] = []): { pool: DispatchPool; calls: Call[]; broadcasts: [string, unknown][] } {
  const calls: Call[] = [];
  const broadcasts: [string, unknown][] = [];
  const pool = {
    status: (): PoolStatus[] => Array.from({ length: n }, (_, w) => ({ workerId: w, threadId: w + 10, ready: !notReady.includes(w), restarts: 0, uptimeMs: 0 })),
    call: (workerId: number, method: string, params: unknown, timeoutMs?: number) =>
      new Promise((resolve, reject) => {
        calls.push({ workerId, method, params, timeoutMs, settle: (ok) => (ok ? resolve([]) : reject(new Error('worker died'))) });
      }),
    broadcast: async (method: string, params: unknown) => {
      broadcasts.push([method, params]);
      return [{ status: 'fulfilled', value: { dropped: 1, aborted: 1 } }];
    },
  } as unknown as DispatchPool;
  return { pool, calls, broadcasts };
}

const batch = (n: number): DeliveryBatch => ({
  binding: { name: 'b', bindAddress: null, ehloHostname: 'h' },
  messages: Array.from({ length: n }, (_, i) => ({ id: `m${i}`, from: '', rcpt: ['a@x.test'] })),
}) as unknown as DeliveryBatch;

describe('dispatch', () => {
  it('sends a batch that names an idle connection to the worker holding it, else to the least busy', async () => {
    const { pool, calls } = scriptedPool(3);
    const d = new Dispatcher({ pool: () => pool, config: () => cfg, cluster: () => null, logger });
    void d.deliver(batch(1));
    void d.deliver({ ...batch(1), conn: 7, mayOpen: 1 }, 0);
    void d.deliver({ ...batch(1), conn: 9, mayOpen: 1 }, 2);
    expect(calls.map((c) => c.workerId)).toEqual([0, 0, 2]);
    expect((calls[1]!.params as DeliveryBatch).conn).toBe(7);
  });

  it('hands each batch to the ready worker with the fewest batches running', async () => {
    const { pool, calls } = scriptedPool(3, [2]);
    const d = new Dispatcher({ pool: () => pool, config: () => cfg, cluster: () => null, logger });
    const running = [d.deliver(batch(1)), d.deliver(batch(1)), d.deliver(batch(1))];
    // Ties go to the lowest id; worker 2 is starting and gets nothing.
    expect(calls.map((c) => c.workerId)).toEqual([0, 1, 0]);
    calls[1]!.settle(true);
    await running[1];
    void d.deliver(batch(1));
    expect(calls[3]!.workerId).toBe(1);
    // A batch that failed frees its worker as well.
    calls[0]!.settle(false);
    await expect(running[0]).rejects.toThrow('worker died');
    calls[2]!.settle(true);
    await running[2];
    void d.deliver(batch(1));
    expect(calls[4]!.workerId).toBe(0);
  });

  it('gives a delivery batch time for a connect and every message\'s commands and data', () => {
    const { pool, calls } = scriptedPool(1);
    const d = new Dispatcher({ pool: () => pool, config: () => cfg, cluster: () => null, logger });
    void d.deliver(batch(3));
    expect(calls[0]).toMatchObject({ method: 'deliver', timeoutMs: 10_000 + 3 * (4 * 20_000 + 30_000) + 60_000 });
  });

  it('refuses a batch when no worker is ready', async () => {
    const { pool } = scriptedPool(2, [0, 1]);
    const d = new Dispatcher({ pool: () => pool, config: () => cfg, cluster: () => null, logger });
    await expect(d.deliver(batch(1))).rejects.toMatchObject({ code: 'ERR_WORKER_DIED' });
    const none = new Dispatcher({ pool: () => null, config: () => cfg, cluster: () => null, logger });
    await expect(none.deliver(batch(1))).rejects.toThrow('no worker pool');
  });

  it('answers a move to a node without a known link at once, without a worker', async () => {
    const { pool, calls } = scriptedPool(1);
    const d = new Dispatcher({ pool: () => pool, config: () => cfg, cluster: () => null, logger });
    const res = await d.move('n2', [{ id: 'q1' }, { id: 'q2' }] as never);
    expect(res).toEqual(['q1', 'q2'].map((id) => ({ id, ok: false, code: 0, text: '4.4.0 no ECCluster_Listener address known for node n2', duplicate: false })));
    expect(calls).toEqual([]);
  });

  it('moves over the node\'s cluster link and drops those connections when the node leaves', async () => {
    const { pool, calls, broadcasts } = scriptedPool(2);
    const cluster = { peerLink: (node: string) => (node === 'n2' ? { host: '192.0.2.2', port: 2526 } : null) } as unknown as ClusterManager;
    const d = new Dispatcher({ pool: () => pool, config: () => cfg, cluster: () => cluster, logger });
    const items = [{ id: 'q1' }] as never;
    void d.move('n2', items);
    expect(calls[0]).toMatchObject({ workerId: 0, method: 'mmoveSend', params: { peer: { host: '192.0.2.2', port: 2526 }, items } });
    d.dropMovesTo('n3');
    expect(broadcasts).toEqual([]);
    d.dropMovesTo('n2');
    d.dropMovesTo('n2');
    expect(broadcasts).toEqual([['mmoveDrop', { peer: { host: '192.0.2.2', port: 2526 }, reason: 'node n2 left the cluster' }]]);
  });

  it('does not start a batch from an address the election gave away: it comes back cut at once', async () => {
    const { pool, calls } = scriptedPool(1);
    // 192.0.2.10 went to n2 and 192.0.2.11 to nobody (no quorum) in the election the queue has
    // not yet acted on; 192.0.2.12 is still this node's, but corosync stalled (route 'wait').
    const owners: Record<string, string | null> = { '192.0.2.10': 'n2', '192.0.2.11': null, '192.0.2.12': 'n1' };
    const cluster = {
      node: 'n1',
      routeFor: (a: string) => (a in owners ? (owners[a] === 'n1' || owners[a] === null ? { to: 'wait' } : { to: 'node', node: owners[a] }) : { to: 'local' }),
      ownerOf: (a: string) => owners[a] ?? null,
    } as unknown as ClusterManager;
    const d = new Dispatcher({ pool: () => pool, config: () => cfg, cluster: () => cluster, logger });
    const from = (bindAddress: string | null): DeliveryBatch => ({ ...batch(2), binding: { name: 'b', bindAddress, ehloHostname: 'h' } });
    for (const a of ['192.0.2.10', '192.0.2.11']) {
      const res = (await d.deliver(from(a))).results;
      expect(res.map((r) => [r.id, r.cut, r.results.map((x) => [x.rcpt, x.status, x.origin, x.reply])])).toEqual(['m0', 'm1'].map((id) => [
        id, true, [['a@x.test', 'deferred', 'local', `4.4.2 delivery cut: this node no longer holds ${a}`]],
      ]));
    }
    expect(calls).toEqual([]);
    // Still elected here (only stalled: the addresses come back), not a DuraVIP, or no address: to a worker.
    void d.deliver(from('192.0.2.12'));
    void d.deliver(from('192.0.2.99'));
    void d.deliver(from(null));
    expect(calls.map((c) => c.method)).toEqual(['deliver', 'deliver', 'deliver']);
  });

  it('cuts the deliveries from an address this node lost', () => {
    const { pool, broadcasts } = scriptedPool(2);
    const d = new Dispatcher({ pool: () => pool, config: () => cfg, cluster: () => null, logger });
    d.abortDeliveriesFrom('192.0.2.10');
    expect(broadcasts).toEqual([['abortDeliveries', { localAddress: '192.0.2.10' }]]);
  });
});
