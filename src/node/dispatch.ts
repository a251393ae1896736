// Dispatch: which worker runs a delivery batch or a #mmove batch (the one with the fewest batches
// running, or for a batch that reuses an idle connection the worker that holds it), the worker
// events the queue's connection book needs (connections closed, workers gone), where moves go, and the cuts an ownership change calls for: moves in
// flight to a member that left, deliveries from an address this node lost. Main thread; every
// call is a Promise on a worker call, nothing here blocks.
import type { Logger } from 'pino';
import { mmoveAddress, type ClusterManager } from '../cluster/manager.js';
import type { Config } from '../config/index.js';
import type { BounceRequest } from '../delivery/bounce.js';
import type { MessageResult } from '../delivery/index.js';
import type { MmoveItem, MmoveResult } from '../mmove/client.js';
import type { WorkerPool } from '../workers/pool.js';
import type { BatchOutcome, DeliveryBatch } from '../delivery/batch.js';
import { cutBatch } from '../delivery/results.js';

export type DispatchPool = Pick<WorkerPool, 'status' | 'call' | 'broadcast'> & Partial<Pick<WorkerPool, 'on'>>;

/** A batch's outcome and the worker that ran it (-1: none did). */
export type DispatchedBatch = BatchOutcome & { worker: number };

/** Who hears of connections that closed without a batch (the queue's connection book). */
export interface ConnectionEvents {
  /** Idle connections of `worker` closed on their own. */
  closed(worker: number, ids: readonly number[]): void;
  /** A worker's thread is gone, with every connection it had. */
  workerGone(worker: number): void;
}

export interface DispatchDeps {
  /** The worker pool; null before it is made. */
  pool: () => DispatchPool | null;
  config: () => Config;
  /** The DuraVIP manager; null without a Cluster stanza. */
  cluster: () => ClusterManager | null;
  logger: Logger;
}

export class Dispatcher {
  /** Batches running per worker, to hand the next one to the least busy. */
  private readonly batchesPerWorker: number[] = [];
  /** Where we last moved mail to each node: its connections are dropped when it leaves. */
  private readonly movePeers = new Map<string, { host: string; port: number }>();
  private events: ConnectionEvents | null = null;
  /** The pool whose events reach `events` (a pool is made after the queue). */
  private watched: DispatchPool | null = null;

  constructor(private readonly d: DispatchDeps) {}

  /** Where connections closed without a batch and workers gone are reported. */
  onConnections(events: ConnectionEvents): void {
    this.events = events;
    const pool = this.d.pool();
    if (pool !== null) this.watch(pool);
  }

  private watch(pool: DispatchPool): void {
    if (this.watched === pool || this.events === null || pool.on === undefined) return;
    this.watched = pool;
    const ev = this.events;
    pool.on('event', (workerId: number, name: string, data: unknown) => {
      if (name === 'connClosed') ev.closed(workerId, (data as { ids: number[] }).ids);
    });
    pool.on('exited', (workerId: number) => ev.workerGone(workerId));
  }

  /** Hands a delivery batch to `worker` when it names one of its idle connections, else to the
   *  worker with the fewest batches running (so does a named worker that is not ready: the
   *  connection died with it). */
  deliver(batch: DeliveryBatch, worker: number | null = null): Promise<DispatchedBatch> {
    const from = batch.binding.bindAddress;
    if (from !== null && this.gaveAway(from)) return Promise.resolve({ results: cutBatch(batch.messages, from), kept: null, opened: 0, worker: -1 });
    const pool = this.d.pool();
    if (pool !== null) this.watch(pool);
    // Each message may wait for a connect, the command replies and the data reply.
    const g = this.d.config().global;
    const timeout = g.Connect_Timeout + batch.messages.length * (4 * g.Command_Timeout + g.Data_Timeout) + 60_000;
    if (worker !== null && pool !== null && pool.status()[worker]?.ready === true) {
      return this.onWorker(pool, worker, (p, w) => p.call(w, 'deliver', batch, timeout).then((r) => ({ ...r, worker: w })));
    }
    if (batch.conn !== null) batch = { ...batch, conn: null };
    return this.onLeastBusyWorker((p, w) => p.call(w, 'deliver', batch, timeout).then((r) => ({ ...r, worker: w })));
  }

  /** Has `worker` close these idle connections; resolves with those it closed (after they are). */
  async closeIdle(worker: number, ids: number[]): Promise<number[]> {
    const pool = this.d.pool();
    if (pool === null || pool.status()[worker]?.ready !== true) return [];
    return (await pool.call(worker, 'closeIdle', { ids }, this.d.config().global.Command_Timeout + 10_000)).closed;
  }

  /**
   * Whether the last election gave `address` (a DuraVIP) to another node or to nobody. The queue
   * re-places its mail a turn of the event loop after the election; a batch it starts meanwhile
   * would reach the worker after the cut (abortDeliveriesFrom) and wait out a connect timeout, so
   * it comes back cut at once instead. Not while this node is still the elected owner (a stall of
   * corosync releases the addresses for a while, without an election: that is an attempt as before).
   */
  private gaveAway(address: string): boolean {
    const c = this.d.cluster();
    return c !== null && c.routeFor(address).to !== 'local' && c.ownerOf(address) !== c.node;
  }

  /** One #mmove batch to `node`'s ECCluster_Listener, from a worker's pooled connections. */
  async move(node: string, items: MmoveItem[]): Promise<MmoveResult[]> {
    const peer = this.d.cluster()?.peerLink(node) ?? null;
    if (peer === null) {
      const text = `4.4.0 no ECCluster_Listener address known for node ${node}`;
      return items.map((it) => ({ id: it.id, ok: false, code: 0, text, duplicate: false }));
    }
    this.movePeers.set(node, { host: peer.host, port: peer.port });
    const local = mmoveAddress(this.d.config());
    const target = { host: peer.host, port: peer.port, ...(local !== null ? { localAddress: local.host } : {}) };
    // The client's own timeouts (connect 10 s, 60 s without a reply) end a stuck move first.
    return this.onLeastBusyWorker((pool, w) => pool.call(w, 'mmoveSend', { peer: target, items }, 120_000 + items.length * 200));
  }

  /** Has a worker spool a DSN: it reads the original's headers itself (the main thread reads no body). */
  bounce(req: BounceRequest): Promise<{ id: string; size: number }> {
    return this.onLeastBusyWorker((pool, w) => pool.call(w, 'spoolBounce', req, 60_000));
  }

  /** Runs one batch call on the ready worker with the fewest batches running (the lowest id on a tie). */
  async onLeastBusyWorker<T>(call: (pool: DispatchPool, workerId: number) => Promise<T>): Promise<T> {
    const pool = this.d.pool();
    if (pool === null) throw new Error('no worker pool');
    const ready = pool.status().filter((p) => p.ready);
    if (ready.length === 0) throw Object.assign(new Error('no worker is ready'), { code: 'ERR_WORKER_DIED' });
    let best = ready[0]!.workerId;
    for (const p of ready) if ((this.batchesPerWorker[p.workerId] ?? 0) < (this.batchesPerWorker[best] ?? 0)) best = p.workerId;
    return this.onWorker(pool, best, call);
  }

  private async onWorker<T>(pool: DispatchPool, w: number, call: (pool: DispatchPool, workerId: number) => Promise<T>): Promise<T> {
    this.batchesPerWorker[w] = (this.batchesPerWorker[w] ?? 0) + 1;
    try {
      return await call(pool, w);
    } finally {
      this.batchesPerWorker[w]!--;
    }
  }

  /** A member left: moves in flight to it end now (a dead machine sends no RST) and go to the
   *  new owner once the election has placed its addresses. */
  dropMovesTo(node: string): void {
    const peer = this.movePeers.get(node);
    const pool = this.d.pool();
    if (peer === undefined || pool === null) return;
    this.movePeers.delete(node);
    void pool.broadcast('mmoveDrop', { peer, reason: `node ${node} left the cluster` }).then((rs) => {
      const dropped = rs.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value.dropped : 0), 0);
      if (dropped > 0) this.d.logger.warn({ node, connections: dropped }, 'mmove: node left the cluster; dropped the connections to it, its mail is moved again');
    });
  }

  /**
   * This node lost an address (moved, or no quorum): deliveries from it cannot complete, so every
   * one of them ends now, whatever its connection is doing (resolving, connecting, greeting,
   * EHLO/STARTTLS, a transaction, idle in the pool), rather than after a timeout (seconds to
   * minutes). Their mail comes back deferred without an attempt counted and goes where the
   * binding's route now says (#mmove to the new owner).
   */
  abortDeliveriesFrom(address: string): void {
    const pool = this.d.pool();
    if (pool === null) return;
    void pool.broadcast('abortDeliveries', { localAddress: address }).then((rs) => {
      const aborted = rs.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value.aborted : 0), 0);
      if (aborted > 0) this.d.logger.warn({ address, cut: aborted }, 'delivery: this node no longer holds the address; cut the deliveries from it');
    });
  }
}
