// One ESMTP listener as a worker needs it: the Listen address and its options, plain data that
// survives structured clone. The main thread builds it from the config; the worker's socket set
// opens the address and EsmtpListener reads the options. Pure types; any thread.

/** One ESMTP_Listener Listen stanza, options merged and validated by the config on the main thread. */
export interface ListenerSpec {
  /** "ip:port" as written in the config; the key for add/remove on reload. */
  name: string;
  host: string;
  port: number;
  /** IP_FREEBIND: the address is a DuraVIP (set by the main thread; workers/socket-set.ts). */
  freeBind?: boolean;
  /** Listener options (ESMTP_Listener merged under Listen), plain values, already validated. */
  options: Record<string, unknown>;
  /** Open sessions on this listener across all workers (session-count.ts); without it each worker
   *  counts its own (tests). The same buffer for the listener's name across reloads. */
  sessions?: SharedArrayBuffer;
  /** Memory for bodies in flight across every listener and worker (body-memory.ts, Max_Body_Memory);
   *  without it bodies are not bounded (tests). One buffer for the process. */
  bodies?: SharedArrayBuffer;
  /** ESMTP_Listener's Inbound_Cidr networks, each with its connection counter across workers and
   *  Listen addresses (inbound-count.ts); the same buffers on every Listen and across reloads. */
  inbound?: readonly InboundSpec[];
  /** The node's drained word (drain-flag.ts): while set, new sessions get 421 4.3.2. One buffer
   *  for the process; without it the listener never refuses for a drain (tests). */
  drained?: SharedArrayBuffer;
}

/** One client network whose connections this node limits (Cluster_Max_Inbound_Connections). */
export interface InboundSpec {
  /** The network, canonical ("203.0.113.0/24"). */
  cidr: string;
  count: SharedArrayBuffer;
}
