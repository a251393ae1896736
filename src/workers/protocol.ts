// The typed message protocol between the main thread and the worker pool. Both directions use
// the same envelope: requests with an id, responses with the same id, and one-way events. Errors
// travel as SerializedError because structured clone drops an Error's class and `code`.
// Pure data and types: imported by the main thread and by workers; it never blocks.
import type { SerializedError } from '../errors.js';
import type { BindingIdentity, MessageResult, TlsPolicy } from '../delivery/index.js';
import type { BounceRequest } from '../delivery/bounce.js';
import type { HostPort } from '../net/address.js';
import type { MmoveItem, MmovePeer, MmoveResult } from '../mmove/client.js';
import type { MmoveWorkerStats } from '../mmove/worker-side.js';
import type { AcceptedMessage } from '../message/accepted.js';

/** One ESMTP listener as a worker needs it: plain data, structured-clone safe. */
export interface ListenerSpec {
  /** "ip:port" as written in the config; the key for add/remove on reload. */
  name: string;
  host: string;
  port: number;
  /** Listener options (ESMTP_Listener merged under Listen), plain values, already validated. */
  options: Record<string, unknown>;
}

/** What a worker counts; summed by the main thread for the console and metrics. */
export interface WorkerStats {
  workerId: number;
  threadId: number;
  /** Connections accepted since the worker started, per listener name. */
  accepted: Record<string, number>;
  /** Sessions open right now. */
  active: number;
  listening: string[];
}

/** Messages for one (binding, domain) that one worker delivers over one connection at a time.
 *  Bodies are not in it: the worker reads each from the spool. */
export interface DeliveryBatch {
  binding: BindingIdentity;
  target: { domain: string; routes: HostPort[]; maxDeliveriesPerConnection: number };
  tls: TlsPolicy;
  messages: { id: string; from: string; rcpt: string[] }[];
}

/** The delivery engine's settings (global options); a change replaces the worker's engine. */
export interface DeliverySettings {
  resolverServers: string[];
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  dataTimeoutMs: number;
  /** Port of MX hosts (25; tests use another). */
  mxPort?: number;
}

/** Methods the main thread calls on a worker: name -> [params, result]. */
export interface WorkerMethods {
  ping: [Record<string, never>, { workerId: number; threadId: number }];
  /** Opens (or keeps) exactly these listeners; closes the ones not named. */
  setListeners: [{ listeners: ListenerSpec[] }, { listening: string[] }];
  setLogLevel: [{ level: string }, null];
  stats: [Record<string, never>, WorkerStats];
  setDelivery: [DeliverySettings, null];
  /** Delivers a batch; never rejects for a delivery problem (each recipient gets a result). */
  deliver: [DeliveryBatch, MessageResult[]];
  /** Builds a DSN from the spool (the original's headers are read here) and spools it. */
  spoolBounce: [BounceRequest, { id: string; size: number }];
  /** Cuts the delivery connections from an address this node no longer holds (its DuraVIP moved). */
  abortDeliveries: [{ localAddress: string }, { aborted: number }];
  /** Stops accepting, waits for open sessions up to timeoutMs, then closes them. */
  drain: [{ timeoutMs: number }, { closedEarly: number }];
  // ---- #mmove (src/mmove/, issue 6) ----
  /** Opens (or keeps) exactly these ECCluster_Listener sockets and sets the link settings. */
  setMmove: [MmoveSettings, { listening: string[] }];
  /** Moves a batch of queued messages to one node; one result per item, in order. A message
   *  may be marked done only when its result is ok (the receiver's 250 arrived). */
  mmoveSend: [{ peer: MmovePeer; items: MmoveItem[] }, MmoveResult[]];
  mmoveStats: [Record<string, never>, MmoveWorkerStats];
  /** Drops the connections to a peer that left the cluster: its moves in flight end at once
   *  (not sent, code 0) instead of waiting for a reply a dead machine never sends. */
  mmoveDrop: [{ peer: MmovePeer; reason: string }, { dropped: number }];
}

/** What a worker needs for #mmove: plain data, structured-clone safe. */
export interface MmoveSettings {
  /** ECCluster_Listener Listen stanzas; options hold Max_Message_Size and Timeout. */
  listeners: ListenerSpec[];
  /** Cluster_Secret; null: announces are refused (454 4.7.0) and nothing is sent. */
  secret: string | null;
  /** Mmove_Max_Hops: a message arriving with hops >= this is refused with 554 5.4.6. */
  maxHops: number;
  /** Mmove_Connections: connections per peer a batch is spread over. */
  connectionsPerPeer: number;
  /** Mmove_TLS: every #mmove connection (both directions) is TLS-PSK keyed by the secret. */
  tls: boolean;
}

/** Events a worker sends without being asked. */
export interface WorkerEvents {
  /** Messages acknowledged with 250 since the last event; batched to save postMessage calls. */
  accepted: AcceptedMessage[];
  /** A listener failed in the worker after it had started (e.g. the socket died). */
  listenerError: { name: string; error: SerializedError };
}

/** Data each worker gets at start (Worker's workerData). */
export interface WorkerInit {
  workerId: number;
  logLevel: string;
  nodeName: string;
  hostname: string;
  /** The spool directory the main thread opened; workers attach to it. Null until a spool exists. */
  spoolDirectory: string | null;
  /** #mmove duplicate table (mmove/dedup.ts) shared by every worker; made by the main thread. */
  mmoveDedup?: SharedArrayBuffer;
}

export type MethodName = keyof WorkerMethods & string;
export type Params<M extends MethodName> = WorkerMethods[M][0];
export type Result<M extends MethodName> = WorkerMethods[M][1];

export interface RequestMessage {
  kind: 'req';
  id: number;
  method: string;
  params: unknown;
}
export type ResponseMessage =
  | { kind: 'res'; id: number; ok: true; result: unknown }
  | { kind: 'res'; id: number; ok: false; error: SerializedError };
export interface EventMessage {
  kind: 'event';
  name: string;
  data: unknown;
}
export type ProtocolMessage = RequestMessage | ResponseMessage | EventMessage;

/** Narrows an unknown postMessage payload to our protocol; anything else is a programming error. */
export function isProtocolMessage(m: unknown): m is ProtocolMessage {
  if (m === null || typeof m !== 'object') return false;
  const k = (m as { kind?: unknown }).kind;
  return k === 'req' || k === 'res' || k === 'event';
}
