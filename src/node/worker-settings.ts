// What each worker role gets from the config, and the pool calls that hand it over: the ESMTP
// listeners, the delivery engine's settings and the #mmove link. Start-up (each new worker) and
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
}

/** Every worker opens `cfg`'s listening sockets (ESMTP, then ECCluster): the settings a worker may
 *  refuse (a port it cannot bind). One settled result per worker and call. */
export async function offerListeners(broadcast: Broadcast, cfg: Config): Promise<PromiseSettledResult<unknown>[]> {
  const esmtp = await broadcast('setListeners', { listeners: listenerSpecs(cfg) });
  const mmove = await broadcast('setMmove', mmoveListening(cfg));
  return [...esmtp, ...mmove];
}
