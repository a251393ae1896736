// The typed message protocol between the main thread and the worker pool. Both directions use
// the same envelope: requests with an id, responses with the same id, and one-way events. Errors
// travel as SerializedError because structured clone drops an Error's class and `code`.
// Pure data and types: imported by the main thread and by workers; it never blocks. It speaks
// the engines' own types (each defined where its engine lives); no engine imports this file.
import type { SerializedError } from '../errors.js';
import type { MessageResult } from '../delivery/index.js';
import type { BounceRequest } from '../delivery/bounce.js';
import type { BatchOutcome, DeliveryBatch } from '../delivery/batch.js';
import type { DeliverySettings } from '../delivery/settings.js';
import type { ListenerSpec } from '../listener/spec.js';
import type { InjectSettings } from '../inject/settings.js';
import type { MmoveClientStats, MmoveItem, MmovePeer, MmoveResult } from '../mmove/client.js';
import type { DedupStats } from '../mmove/dedup.js';
import type { MmoveReceiverStats } from '../mmove/receiver.js';
import type { MmoveSettings } from '../mmove/settings.js';
import type { AcceptedMessage } from '../message/accepted.js';
import type { NewEvent } from '../events/records.js';


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

/** What a worker's #mmove counts (workers/mmove-host.ts). */
export interface MmoveWorkerStats {
  /** Per Listen name. */
  receivers: Record<string, MmoveReceiverStats>;
  client: MmoveClientStats | null;
  /** The process-wide duplicate table (the same numbers from every worker). */
  dedup: DedupStats;
}

/** Methods the main thread calls on a worker: name -> [params, result]. */
export interface WorkerMethods {
  ping: [Record<string, never>, { workerId: number; threadId: number }];
  /** Opens (or keeps) exactly these listeners; closes the ones not named. */
  setListeners: [{ listeners: ListenerSpec[] }, { listening: string[] }];
  setLogLevel: [{ level: string }, null];
  stats: [Record<string, never>, WorkerStats];
  setDelivery: [DeliverySettings, null];
  /** Delivers a batch; never rejects for a delivery problem (each recipient gets a result). It
   *  answers once every connection it closed is closed, and says which one it keeps idle. */
  deliver: [DeliveryBatch, BatchOutcome];
  /** Closes these idle connections now (ids from BatchOutcome.kept); answers once they are
   *  closed, with those it closed (the others were not idle here any more). */
  closeIdle: [{ ids: number[] }, { closed: number[] }];
  /** Builds a DSN from the spool (the original's headers are read here) and spools it. */
  spoolBounce: [BounceRequest, { id: string; size: number }];
  /** Ends every delivery from an address this node no longer holds (its DuraVIP moved), whatever
   *  its connection is doing, and closes the idle ones; `aborted`: deliveries and idle connections cut. */
  abortDeliveries: [{ localAddress: string }, { aborted: number }];
  /** Stops accepting; sessions finish under the drain policy (socket-set.ts) up to timeoutMs,
   *  the rest are cut off (closedEarly). */
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
  /** Serves exactly these Http_Injection addresses (none: null), all or nothing (issue 17). */
  setInject: [{ settings: InjectSettings | null }, { listening: string[] }];
}

/** Events a worker sends without being asked. */
export interface WorkerEvents {
  /** Messages acknowledged with 250 since the last event; batched to save postMessage calls. */
  accepted: AcceptedMessage[];
  /** Rejection records (src/events/) since the last event, batched as `accepted` is. */
  rejected: NewEvent[];
  /** A listener failed in the worker after it had started (e.g. the socket died). */
  listenerError: { name: string; error: SerializedError };
  /** Idle delivery connections that closed on their own (idle timeout, the peer, a cut, the engine
   *  replaced), sent after their sockets closed. */
  connClosed: { ids: number[] };
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
