// What each worker role gets from the config, and the pool calls that hand it over: the ESMTP
// listeners, the delivery engine's settings, the #mmove link and HTTP injection. Start-up (each new worker) and
// reload (every worker) go through here. Main thread; pure, except the pool calls it awaits.
import type { Config } from '../config/index.js';
import { mmoveSettings, type MmoveSettings } from '../mmove/settings.js';
import type { DedupTable } from '../mmove/dedup.js';
import type { WorkerPool } from '../workers/pool.js';
import type { DeliverySettings } from '../delivery/settings.js';
import type { ListenerSpec } from '../listener/spec.js';
import { newSessionCount, resetSessionSlot } from '../listener/session-count.js';
import { bodyMemoryStats, newBodyMemory, resetBodyMemorySlot, setBodyMemoryLimit, type BodyMemoryStats } from '../listener/body-memory.js';
import type { WorkerInit } from '../workers/protocol.js';
import { duravipAddresses, isDuravip } from './listen-check.js';
import { inboundSpecs, resetInboundSlots } from './inbound-limits.js';
import { drainFlagBuffer } from './drain.js';
import type { InjectSettings } from '../inject/settings.js';
import { newInjectCounters, readInjectCounters, type InjectCounts } from '../inject/counters.js';
import { newRequestCount, resetRequestSlot } from '../inject/limits.js';

export { mmoveSettings };

/** The pool's broadcast: every live worker, results in worker order, failures as rejected entries. */
export type Broadcast = WorkerPool['broadcast'];

export function deliverySettings(cfg: Config): DeliverySettings {
  const g = cfg.global;
  return { resolverServers: [...g.Resolver_Servers], connectTimeoutMs: g.Connect_Timeout, commandTimeoutMs: g.Command_Timeout, dataTimeoutMs: g.Data_Timeout };
}

/** Each ESMTP listener's session count across workers, by listener name: one buffer for the life
 *  of the process, so a reload or a replaced worker counts on the same one. */
const sessionCounts = new Map<string, SharedArrayBuffer>();

function sessionCount(name: string): SharedArrayBuffer {
  let b = sessionCounts.get(name);
  if (b === undefined) sessionCounts.set(name, (b = newSessionCount()));
  return b;
}

/** Memory for bodies in flight, one budget for every ESMTP listener and worker of the process. */
let bodyMemory: SharedArrayBuffer | null = null;
/** The config repository the ECCluster_Listeners serve to members catching up (issue 16; node/config-cluster.ts sets it). */
let configRepo: string | null = null;
export function serveConfigRepo(dir: string | null): void {
  configRepo = dir;
}

/** The process's body-memory buffer with cfg's Max_Body_Memory in force (start and every reload). */
export function bodyMemoryBuffer(cfg: Config): SharedArrayBuffer {
  if (bodyMemory === null) bodyMemory = newBodyMemory(cfg.global.Max_Body_Memory);
  else setBodyMemoryLimit(bodyMemory, cfg.global.Max_Body_Memory);
  return bodyMemory;
}

/** The listeners' shared counts for /metrics; null before the first listener spec was made. */
export function listenerAbuse(): BodyMemoryStats | null {
  return bodyMemory === null ? null : bodyMemoryStats(bodyMemory);
}

export function listenerSpecs(cfg: Config): ListenerSpec[] {
  const bodies = bodyMemoryBuffer(cfg);
  const dv = duravipAddresses(cfg);
  const inbound = inboundSpecs(cfg);
  return cfg.esmtpListeners.map((l) => ({ name: l.name, host: l.host, port: l.port, freeBind: isDuravip(dv, l.host), options: { ...l.options }, sessions: sessionCount(l.name), bodies, inbound, drained: drainFlagBuffer() }));
}

/** mmoveSettings, with IP_FREEBIND on the ECCluster_Listener addresses that are DuraVIPs. */
function mmoveListening(cfg: Config): MmoveSettings {
  const s = mmoveSettings(cfg);
  const dv = duravipAddresses(cfg);
  return { ...s, listeners: s.listeners.map((l) => ({ ...l, freeBind: isDuravip(dv, l.host) })), drained: drainFlagBuffer(), configRepo };
}

/** HTTP injection's requests in progress across workers: one buffer for the life of the process. */
const injectRequests = newRequestCount();
/** HTTP injection's answers and recipients, counted by every worker (inject/counters.ts). */
const injectCounters = newInjectCounters();

/** What HTTP injection counted since start, for /metrics. */
export function injectCounts(): InjectCounts {
  return readInjectCounters(injectCounters);
}

/** Whether any config of this process had Http_Injection: until one has, the workers are not
 *  asked about it at all (a node without it makes the calls it always made). */
let injectEverOn = false;

/** The setInject call `cfg` needs: null when there is nothing to serve and nothing to take down. */
function injectCall(cfg: Config): { settings: InjectSettings | null } | null {
  const settings = injectSettings(cfg);
  if (settings !== null) injectEverOn = true;
  return settings === null && !injectEverOn ? null : { settings };
}

/** What the workers serve of Http_Injection (issue 17); null when the stanza is absent. */
export function injectSettings(cfg: Config): InjectSettings | null {
  const h = cfg.httpInjection;
  if (h === undefined || h === null) return null;
  const o = h.options;
  return {
    listens: h.listens.map((l) => ({ name: l.name, host: l.host, port: l.port, listener: l.listener })),
    tls: o.TLS_Certificate !== undefined && o.TLS_Key !== undefined ? { cert: o.TLS_Certificate, key: o.TLS_Key } : null,
    maxBodySize: o.Max_Body_Size,
    maxRecipients: o.Max_Recipients,
    maxConcurrent: o.Max_Concurrent_Requests,
    requestDeadlineMs: o.Request_Deadline,
    tokens: h.tokens.map((t) => ({ name: t.name, secret: t.secret, bindings: [...t.bindings] })),
    bindingNames: [...new Set([...cfg.bindings.keys(), ...cfg.bindingGroups.keys()])],
    requests: injectRequests,
    counters: injectCounters,
    hostname: cfg.global.Hostname,
    drained: drainFlagBuffer(),
  };
}

/** workerData of the worker in slot `workerId` (first start and every replacement). */
export function workerInit(cfg: Config, workerId: number, spoolDirectory: string, dedup: DedupTable): WorkerInit {
  return {
    workerId,
    logLevel: cfg.global.Log_Level,
    nodeName: cfg.global.Nodename,
    hostname: cfg.global.Hostname,
    spoolDirectory,
    mmoveDedup: dedup.buffer,
  };
}

/** A worker that just answered ping (first or replacement) gets its delivery engine, then its
 *  listeners, then its #mmove link; a refusal fails its start. */
export async function configureWorker(pool: Pick<WorkerPool, 'call'>, workerId: number, cfg: Config): Promise<void> {
  await pool.call(workerId, 'setDelivery', deliverySettings(cfg));
  // A replacement's predecessor died with its sessions: they no longer count against Concurrency.
  for (const b of sessionCounts.values()) resetSessionSlot(b, workerId);
  resetInboundSlots(workerId);
  if (bodyMemory !== null) resetBodyMemorySlot(bodyMemory, workerId);
  await pool.call(workerId, 'setListeners', { listeners: listenerSpecs(cfg) });
  await pool.call(workerId, 'setMmove', mmoveListening(cfg));
  resetRequestSlot(injectRequests, workerId);
  const inject = injectCall(cfg);
  if (inject !== null) await pool.call(workerId, 'setInject', inject);
}

/** Every worker opens `cfg`'s listening sockets (ESMTP, then ECCluster): the settings a worker may
 *  refuse (a port it cannot bind). One settled result per worker and call. */
export async function offerListeners(broadcast: Broadcast, cfg: Config): Promise<PromiseSettledResult<unknown>[]> {
  const esmtp = await broadcast('setListeners', { listeners: listenerSpecs(cfg) });
  const mmove = await broadcast('setMmove', mmoveListening(cfg));
  const call = injectCall(cfg);
  const inject = call === null ? [] : await broadcast('setInject', call);
  return [...esmtp, ...mmove, ...inject];
}
