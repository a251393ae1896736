// What the main thread tells workers about #mmove, derived from the config: the ECCluster_Listener
// stanzas and the Cluster settings (secret, hop limit, connections per peer, TLS), and the duplicate
// table every worker shares. Main thread (the types: any thread); pure and synchronous.
import type { Config } from '../config/index.js';
import { DedupTable } from './dedup.js';

/** One ECCluster_Listener Listen stanza as a worker's receiver needs it. */
export interface MmoveListenerSpec {
  /** "ip:port" as written in the config; the key for add/remove on reload. */
  name: string;
  host: string;
  port: number;
  /** IP_FREEBIND: the address is a DuraVIP (set by the main thread; workers/socket-set.ts). */
  freeBind?: boolean;
  /** Max_Message_Size of the stanza. */
  maxMessageSize: number;
  /** Timeout of the stanza: an idle connection is closed after this long. */
  idleTimeoutMs: number;
}

/** What a worker needs for #mmove: plain data, structured-clone safe. */
export interface MmoveSettings {
  listeners: MmoveListenerSpec[];
  /** Cluster_Secret; null: announces are refused (454 4.7.0) and nothing is sent. */
  secret: string | null;
  /** Mmove_Max_Hops: a message arriving with hops >= this is refused with 554 5.4.6. */
  maxHops: number;
  /** Mmove_Connections: connections per peer a batch is spread over. */
  connectionsPerPeer: number;
  /** Mmove_TLS: every #mmove connection (both directions) is TLS-PSK keyed by the secret. */
  tls: boolean;
  /** The node's drained word (listener/drain-flag.ts, set by the main thread): while set, MAIL
   *  is answered 451 4.3.2 so the sender keeps the message until its route changes. */
  drained?: SharedArrayBuffer;
  /** The node's config repository (issue 16), served to members catching up with XCONFIG
   *  (config-fetch.ts); absent or null: none. */
  configRepo?: string | null;
}

export function mmoveSettings(cfg: Config): MmoveSettings {
  const c = cfg.cluster?.options;
  return {
    listeners: cfg.ecclusterListeners.map((l) => ({
      name: l.name,
      host: l.host,
      port: l.port,
      maxMessageSize: positive(l.options.Max_Message_Size, 50 * 1024 * 1024),
      idleTimeoutMs: positive(l.options.Timeout, 300_000),
    })),
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

function positive(v: unknown, fallback: number): number {
  return typeof v === 'number' && v > 0 ? v : fallback;
}
