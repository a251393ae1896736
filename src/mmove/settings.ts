// What the main thread tells workers about #mmove, derived from the config: the ECCluster_Listener
// stanzas and the Cluster settings (secret, hop limit, connections per peer, TLS), and the duplicate
// table every worker shares. Main thread; pure and synchronous.
import type { Config } from '../config/index.js';
import type { MmoveSettings } from '../workers/protocol.js';
import { DedupTable } from './dedup.js';

export function mmoveSettings(cfg: Config): MmoveSettings {
  const c = cfg.cluster?.options;
  return {
    listeners: cfg.ecclusterListeners.map((l) => ({ name: l.name, host: l.host, port: l.port, options: { ...l.options } })),
    secret: c?.Cluster_Secret ?? null,
    maxHops: c?.Mmove_Max_Hops ?? 8,
    connectionsPerPeer: c?.Mmove_Connections ?? 4,
    tls: c?.Mmove_TLS ?? false,
  };
}

/** The process-wide duplicate table, sized from the config at start (a reload keeps it). */
export function mmoveDedupTable(cfg: Config): DedupTable {
  const c = cfg.cluster?.options;
  return new DedupTable({ entries: c?.Mmove_Dedup_Entries ?? 1_000_000, windowMs: c?.Mmove_Dedup_Window ?? 3_600_000 });
}
