// #mmove as one worker thread hosts it: this worker's ECCluster_Listener receivers (one SocketSet,
// so the kernel spreads peers' connections over the workers and a reload drains like ESMTP's) and
// this worker's pooled client connections to peers. worker.ts forwards the setMmove / mmoveSend /
// mmoveStats / mmoveDrop requests here. Worker thread; never blocks.
import type { Logger } from 'pino';
import type { SpoolReader } from '../spool/index.js';
import type { AcceptedMessage } from '../message/accepted.js';
import { MmoveClient, type MmoveItem, type MmovePeer, type MmoveResult } from '../mmove/client.js';
import type { DedupTable } from '../mmove/dedup.js';
import { MmoveReceiver, type MmoveReceiverStats, type ReceiverSink } from '../mmove/receiver.js';
import type { MmoveListenerSpec, MmoveSettings } from '../mmove/settings.js';
import type { JournalSource } from '../mmove/journal.js';
import { gitBundleSource } from '../mmove/config-fetch.js';
import { DrainFlag } from '../listener/drain-flag.js';
import type { MmoveWorkerStats } from './protocol.js';
import { SocketSet } from './socket-set.js';

export interface MmoveHostOptions {
  hostname: string;
  nodeName: string;
  logger: Logger;
  sink: ReceiverSink | null;
  reader: SpoolReader | null;
  dedup: DedupTable;
  onMessage: (m: AcceptedMessage) => void;
  /** The node's event journal, served to aggregators (XJOURNAL); null: none. */
  journal?: JournalSource | null;
}

/** A receiver serves one secret, hop limit and TLS mode: a change of any makes a new one. */
type ReceiverSpec = MmoveListenerSpec & Pick<MmoveSettings, 'secret' | 'maxHops' | 'tls' | 'configRepo'>;

export class MmoveHost {
  private readonly receivers: SocketSet<ReceiverSpec, MmoveReceiver>;
  private settings: MmoveSettings | null = null;
  private client: MmoveClient | null = null;
  private clientKey = '';
  private draining = false;
  /** The node's drained word, from the settings (the same buffer every time). */
  private drainFlag: DrainFlag | null = null;

  constructor(private readonly o: MmoveHostOptions) {
    this.receivers = new SocketSet<ReceiverSpec, MmoveReceiver>({
      create: (spec) => this.receiver(spec),
      onRetired: (name, cutOff) => {
        if (cutOff > 0) o.logger.warn({ listener: name, cutOff }, 'mmove: a retired ECCluster_Listener cut sessions that did not finish in time');
      },
    });
  }

  /** Makes the open receivers exactly settings.listeners (all or nothing, SocketSet). */
  async set(settings: MmoveSettings): Promise<string[]> {
    if (this.draining) return [];
    const { secret, maxHops, tls, configRepo } = settings;
    if (settings.drained !== undefined && this.drainFlag === null) this.drainFlag = new DrainFlag(settings.drained);
    const listening = await this.receivers.set(settings.listeners.map((l) => ({ ...l, secret, maxHops, tls, configRepo })));
    this.settings = settings;
    const ck = JSON.stringify([settings.secret, settings.connectionsPerPeer, settings.tls]);
    if (ck !== this.clientKey) {
      void this.client?.close();
      this.client = null;
      this.clientKey = ck;
    }
    return listening;
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
    for (const [name, receiver] of this.receivers.listeners()) receivers[name] = receiver.stats();
    return { receivers, client: this.client?.stats() ?? null, dedup: this.o.dedup.stats() };
  }

  /** Stops accepting; receivers finish commits in flight up to graceMs; client connections QUIT. */
  async drain(graceMs: number): Promise<number> {
    this.draining = true;
    const cut = await this.receivers.drain(graceMs);
    await this.client?.close();
    this.client = null;
    return cut;
  }

  private receiver(s: ReceiverSpec): MmoveReceiver {
    if (s.secret === null) this.o.logger.error({ listener: s.name }, 'ECCluster_Listener without Cluster_Secret: every mmove will be refused (454 4.7.0)');
    return new MmoveReceiver({
      name: s.name,
      hostname: this.o.hostname,
      secret: s.secret,
      maxHops: s.maxHops,
      maxMessageSize: s.maxMessageSize,
      idleTimeoutMs: s.idleTimeoutMs,
      sink: this.o.sink,
      dedup: this.o.dedup,
      logger: this.o.logger,
      onMessage: this.o.onMessage,
      drained: () => this.drainFlag?.drained === true,
      tls: s.tls,
      journal: this.o.journal ?? null,
      config: s.configRepo ? gitBundleSource(s.configRepo) : null,
    });
  }
}
