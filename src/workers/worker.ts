// Entry point of a worker thread. It answers the main thread's requests (protocol.ts) and hosts
// what the design gives workers: the ESMTP listeners and #mmove receivers on this worker's own
// SO_REUSEPORT sockets (esmtp-host.ts, mmove-host.ts), and delivery. It decides no policy. Its
// event loop must never block: everything here is asynchronous.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { serializeError } from '../errors.js';
import { createLogger } from '../log.js';
import { DeliveryEngine, type MessageResult, type OutboundMessage } from '../delivery/index.js';
import type { BatchOutcome, DeliveryBatch } from '../delivery/batch.js';
import { localResult } from '../delivery/results.js';
import { spoolBounce } from '../delivery/bounce.js';
import type { DeliverySettings } from '../delivery/settings.js';
import { attachSpool, attachSpoolReader, EventJournal, type SpoolReader } from '../spool/index.js';
import { DedupTable } from '../mmove/dedup.js';
import type { AcceptedMessage } from '../message/accepted.js';
import type { NewEvent } from '../events/records.js';
import { EsmtpHost } from './esmtp-host.js';
import { MmoveHost } from './mmove-host.js';
import { InjectHost } from './inject-host.js';
import { SpoolJournalSource } from '../mmove/journal.js';
import type { ProtocolMessage, WorkerInit } from './protocol.js';
import { type Handlers, serveRequests } from './serve.js';

if (parentPort === null) throw new Error('workers/worker.js must run as a worker_thread');
const port = parentPort;
const init = workerData as WorkerInit;
const log = createLogger(init.logLevel, { workerId: init.workerId });

// Records go to the main thread in batches: one postMessage per turn of the event loop still cost
// about 50 µs a message under load (bench/inject.ts profile), and each batch wakes the main thread
// (a cross-CPU wake-up, dear on a VM). A batch goes when it holds 16 records or is 10 ms old. With
// one connection per message a 2 ms batch held 3-4 messages, and 10 ms gave 1.01-1.09x msg/s at
// 0.89-0.98x CPU per message; with reused connections 16 messages go every 3 ms or so, as before,
// where batches of 50 every 10 ms measured no better (docs/performance.md, "Issue 18: closing
// figures"). A message is durable before its 250: this only delays when the queue sees it.
const BATCH_FLUSH_MS = 10;
const BATCH_MAX = 16;
class PostBatch<T> {
  private items: T[] = [];
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly event: string) {}

  add(item: T): void {
    this.items.push(item);
    if (this.items.length >= BATCH_MAX) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_FLUSH_MS);
  }

  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.items;
    this.items = [];
    if (batch.length > 0) emit(this.event, batch);
  }
}
const accepted = new PostBatch<AcceptedMessage>('accepted');
const onMessage = (m: AcceptedMessage): void => accepted.add(m);
// Rejection records go the same way, in their own batch (the lead makes them durable).
const rejected = new PostBatch<NewEvent>('rejected');
const onRejection = (r: NewEvent): void => rejected.add(r);

// One writer of the process-wide spool for both kinds of listener and the DSNs; null without a spool.
const spoolWriter = init.spoolDirectory === null ? null : attachSpool(init.spoolDirectory);

const listeners = new EsmtpHost({
  workerId: init.workerId,
  hostname: init.hostname,
  logger: log,
  sink: spoolWriter,
  onMessage,
  onRejection,
  onError: (name, err) => emit('listenerError', { name, error: serializeError(err) }),
});

// --- delivery -----------------------------------------------------------------------------------
// The engine pools connections per (binding, host) across batches; one engine per worker, replaced
// when the global delivery settings change (the old one's idle connections are closed).
let engine: DeliveryEngine | null = null;
let engineSettings = '';
/** Replaced engines that still run batches: a handover's cut must reach those too. */
const retired = new Set<DeliveryEngine>();
let spoolForDelivery: SpoolReader | null = null;

function setDelivery(d: DeliverySettings): void {
  const key = JSON.stringify(d);
  if (engine !== null && key === engineSettings) return;
  const old = engine;
  engine = new DeliveryEngine({
    onIdleClosed,
    resolver: { servers: d.resolverServers },
    connectTimeoutMs: d.connectTimeoutMs,
    commandTimeoutMs: d.commandTimeoutMs,
    dataTimeoutMs: d.dataTimeoutMs,
    // Per batch (Max_Deliveries_Per_Connection of the binding and domain); this is the fallback.
    maxDeliveriesPerConnection: 100,
    ...(d.mxPort !== undefined ? { mxPort: d.mxPort } : {}),
    logger: log,
  });
  engineSettings = key;
  for (const e of retired) if (e.busy === 0) retired.delete(e);
  if (old !== null) {
    void old.close();
    if (old.busy > 0) retired.add(old);
  }
}

// Idle connections that closed on their own go to the main thread's book in one event per turn.
let closedIds: number[] = [];
function onIdleClosed(id: number): void {
  if (closedIds.length === 0) setImmediate(flushClosed);
  closedIds.push(id);
}
function flushClosed(): void {
  const ids = closedIds;
  closedIds = [];
  if (ids.length > 0) emit('connClosed', { ids });
}

/** Closes idle connections the main thread names, in whichever engine holds them. */
async function closeIdle(ids: number[]): Promise<number[]> {
  const engines = engine === null ? [...retired] : [engine, ...retired];
  const done = await Promise.all(engines.map((e) => e.closeIdle(ids)));
  return done.flat();
}

/** This node no longer holds `localAddress`: every delivery from it ends now (DeliveryEngine.abortFrom). */
function abortDeliveries(localAddress: string): number {
  let n = engine?.abortFrom(localAddress) ?? 0;
  for (const e of retired) {
    n += e.abortFrom(localAddress);
    if (e.busy === 0) retired.delete(e);
  }
  return n;
}

async function deliver(batch: DeliveryBatch): Promise<BatchOutcome> {
  if (engine === null) throw Object.assign(new Error('deliver before setDelivery'), { code: 'ERR_INVALID_STATE' });
  if (init.spoolDirectory === null) throw Object.assign(new Error('no spool'), { code: 'ERR_SPOOL_CLOSED' });
  spoolForDelivery ??= attachSpoolReader(init.spoolDirectory);
  const out: MessageResult[] = [];
  const messages: OutboundMessage[] = [];
  const index: number[] = [];
  batch.messages.forEach((m, i) => {
    try {
      // One pread of the wire form; the client writes it to the socket as is.
      messages.push({ id: m.id, from: m.from, rcpt: m.rcpt, body: spoolForDelivery!.read(m.id) });
      index.push(i);
    } catch (err) {
      const where = { remoteHost: null, remoteAddress: null };
      log.error({ err, id: m.id }, 'delivery: the body could not be read from the spool');
      out[i] = { id: m.id, localAddress: null, results: m.rcpt.map((r) => localResult(r, 'spoolRead', `spool read failed: ${(err as Error).message}`, where)) };
    }
  });
  if (messages.length > 0) {
    const r = await engine.run(batch.binding, batch.target, batch.tls, messages, { conn: batch.conn, mayOpen: batch.mayOpen });
    r.results.forEach((m, k) => (out[index[k]!] = m));
    return { results: out, kept: r.kept, opened: r.opened };
  }
  // No body could be read: the named connection was not used and stays idle, counted again.
  return { results: out, kept: batch.conn === null ? null : engine.idleConn(batch.conn), opened: 0 };
}
// ---- #mmove (issue 6): ECCluster_Listener receivers and the sender's pooled connections ----
// Without a table from the main thread (tests that start a bare worker) this worker keeps its own.
const mmove = new MmoveHost({
  hostname: init.hostname,
  nodeName: init.nodeName,
  logger: log,
  sink: spoolWriter,
  reader: init.spoolDirectory === null ? null : attachSpoolReader(init.spoolDirectory),
  dedup: new DedupTable(init.mmoveDedup !== undefined ? { buffer: init.mmoveDedup } : { entries: 65_536, windowMs: 3_600_000 }),
  onMessage,
  // Issue 15: the event journal of this node's spool, read by the Log_Aggregators over the cluster
  // link (XJOURNAL). EventJournal reads the files from this thread; the spool the main thread
  // opened gives it the durable head and trims after acks.
  journal: init.spoolDirectory === null ? null : new SpoolJournalSource(new EventJournal({ directory: init.spoolDirectory, logger: log })),
});

// ---- HTTP injection (issue 17): the same spool writer and accepted-message batches as ESMTP ----
const inject = new InjectHost({ workerId: init.workerId, logger: log, sink: spoolWriter, onMessage });

const handlers: Handlers = {
  ping: () => ({ workerId: init.workerId, threadId }),
  setListeners: async ({ listeners: specs }) => ({ listening: await listeners.set(specs) }),
  setLogLevel: ({ level }) => {
    log.level = level;
    return null;
  },
  stats: () => listeners.stats(threadId),
  setDelivery: (d) => {
    setDelivery(d);
    return null;
  },
  deliver: (batch) => deliver(batch),
  closeIdle: async ({ ids }) => ({ closed: await closeIdle(ids) }),
  spoolBounce: (req) => {
    if (init.spoolDirectory === null || spoolWriter === null) throw Object.assign(new Error('no spool'), { code: 'ERR_SPOOL_CLOSED' });
    spoolForDelivery ??= attachSpoolReader(init.spoolDirectory);
    return spoolBounce(req, { reader: spoolForDelivery, writer: spoolWriter }, log);
  },
  abortDeliveries: ({ localAddress }) => ({ aborted: abortDeliveries(localAddress) }),
  setMmove: async (settings) => ({ listening: await mmove.set(settings) }),
  mmoveSend: ({ peer, items }) => mmove.send(peer, items),
  mmoveStats: () => mmove.stats(),
  mmoveDrop: ({ peer, reason }) => ({ dropped: mmove.drop(peer, reason) }),
  setInject: async ({ settings }) => ({ listening: await inject.set(settings) }),
  drain: async ({ timeoutMs }) => {
    const [closedEarly, mmoveCut, injectCut] = await Promise.all([listeners.drain(timeoutMs), mmove.drain(timeoutMs), inject.drain(timeoutMs)]);
    // Before the port closes: a record still waiting for its batch's timer would be lost.
    accepted.flush();
    rejected.flush();
    if (engine !== null) await engine.close();
    // Nothing else keeps this thread alive once the listeners are closed and the port is closed.
    setImmediate(() => port.close());
    return { closedEarly: closedEarly + mmoveCut + injectCut };
  },
};

function emit(name: string, data: unknown): void {
  const m: ProtocolMessage = { kind: 'event', name, data };
  port.postMessage(m);
}

serveRequests(port, handlers);
