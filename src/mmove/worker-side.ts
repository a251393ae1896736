// #mmove as one worker thread runs it: this worker's ECCluster_Listener sockets (SO_REUSEPORT +
// IP_FREEBIND from the addon, like the ESMTP listeners, so the kernel spreads peers' connections
// over the workers) and this worker's pooled client connections to peers. worker.ts forwards the
// setMmove / mmoveSend / mmoveStats requests here. Worker thread; never blocks.
import type { Logger } from 'pino';
import { closeFd, listenTcp } from '../native/index.js';
import type { SpoolReader } from '../spool/index.js';
import type { AcceptedMessage } from '../message/accepted.js';
import type { ListenerSpec, MmoveSettings } from '../workers/protocol.js';
import { MmoveClient, type MmoveClientStats, type MmoveItem, type MmovePeer, type MmoveResult } from './client.js';
import type { DedupStats, DedupTable } from './dedup.js';
import { MmoveReceiver, type MmoveReceiverStats, type ReceiverSink } from './receiver.js';

export interface MmoveWorkerStats {
  /** Per Listen name. */
  receivers: Record<string, MmoveReceiverStats>;
  client: MmoveClientStats | null;
  /** The process-wide duplicate table (the same numbers from every worker). */
  dedup: DedupStats;
}

export interface MmoveWorkerOptions {
  hostname: string;
  nodeName: string;
  logger: Logger;
  sink: ReceiverSink | null;
  reader: SpoolReader | null;
  dedup: DedupTable;
  onMessage: (m: AcceptedMessage) => void;
}

export class MmoveWorker {
  private readonly open = new Map<string, { key: string; receiver: MmoveReceiver }>();
  private settings: MmoveSettings | null = null;
  private client: MmoveClient | null = null;
  private clientKey = '';
  private draining = false;

  constructor(private readonly o: MmoveWorkerOptions) {}

  /** Makes the open receivers exactly settings.listeners (all or nothing, like ListenerSet). */
  async set(settings: MmoveSettings): Promise<string[]> {
    if (this.draining) return [];
    const next = new Map<string, { key: string; receiver: MmoveReceiver }>();
    const started: MmoveReceiver[] = [];
    try {
      for (const spec of settings.listeners) {
        const key = JSON.stringify([spec, settings.secret, settings.maxHops, settings.tls]);
        const cur = this.open.get(spec.name);
        if (cur !== undefined && cur.key === key) {
          next.set(spec.name, cur);
          continue;
        }
        const receiver = await this.start(spec, settings);
        started.push(receiver);
        next.set(spec.name, { key, receiver });
      }
    } catch (err) {
      for (const r of started) void r.close(0);
      throw err;
    }
    // The new sockets listen before the old ones close: a reload never refuses a peer.
    for (const [name, cur] of this.open) if (next.get(name) !== cur) void cur.receiver.close(30_000);
    this.open.clear();
    for (const [k, v] of next) this.open.set(k, v);
    this.settings = settings;
    const ck = JSON.stringify([settings.secret, settings.connectionsPerPeer, settings.tls]);
    if (ck !== this.clientKey) {
      void this.client?.close();
      this.client = null;
      this.clientKey = ck;
    }
    return [...this.open.keys()];
  }

  async send(peer: MmovePeer, items: MmoveItem[]): Promise<MmoveResult[]> {
    const s = this.settings;
    if (s === null || s.secret === null || this.o.reader === null || this.draining) {
      const why = this.draining ? 'mmove: worker draining' : 'mmove: not configured (Cluster_Secret and a spool are needed)';
      return items.map((it) => ({ id: it.id, ok: false, code: 0, text: why, duplicate: false }));
    }
    this.client ??= new MmoveClient({ nodeName: this.o.nodeName, secret: s.secret, reader: this.o.reader, connectionsPerPeer: s.connectionsPerPeer, tls: s.tls });
    return this.client.send(peer, items);
  }

  /** Drops this worker's connections to `peer`; returns how many were open. */
  drop(peer: MmovePeer, reason: string): number {
    return this.client?.drop(peer, reason) ?? 0;
  }

  stats(): MmoveWorkerStats {
    const receivers: Record<string, MmoveReceiverStats> = {};
    for (const [name, { receiver }] of this.open) receivers[name] = receiver.stats();
    return { receivers, client: this.client?.stats() ?? null, dedup: this.o.dedup.stats() };
  }

  /** Stops accepting; receivers finish commits in flight up to timeoutMs; client connections QUIT. */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    const cut = await Promise.all([...this.open.values()].map(({ receiver }) => receiver.close(timeoutMs)));
    this.open.clear();
    await this.client?.close();
    this.client = null;
    return cut.reduce((a, b) => a + b, 0);
  }

  private async start(spec: ListenerSpec, s: MmoveSettings): Promise<MmoveReceiver> {
    if (s.secret === null) this.o.logger.error({ listener: spec.name }, 'ECCluster_Listener without Cluster_Secret: every mmove will be refused (454 4.7.0)');
    const fd = listenTcp({ host: spec.host, port: spec.port, reusePort: true, freeBind: true });
    const receiver = new MmoveReceiver({
      name: spec.name,
      hostname: this.o.hostname,
      secret: s.secret,
      maxHops: s.maxHops,
      maxMessageSize: numberOption(spec, 'Max_Message_Size', 50 * 1024 * 1024),
      idleTimeoutMs: numberOption(spec, 'Timeout', 300_000),
      sink: this.o.sink,
      dedup: this.o.dedup,
      logger: this.o.logger,
      onMessage: this.o.onMessage,
      tls: s.tls,
    });
    try {
      await receiver.listenFd(fd);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return receiver;
  }
}

function numberOption(spec: ListenerSpec, name: string, fallback: number): number {
  const v = spec.options[name];
  return typeof v === 'number' && v > 0 ? v : fallback;
}
