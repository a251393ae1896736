// The worker pool, on the main thread: starts one worker_thread per slot, speaks the typed protocol
// of protocol.ts with each, and replaces a worker that dies (logged, counted, restarted with a
// backoff so a crash loop cannot spin a core). It never blocks; every call returns a Promise.
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { ErrorCode, VipError, deserializeError } from '../errors.js';
import { distFile } from '../paths.js';
import {
  isProtocolMessage,
  type MethodName,
  type Params,
  type ProtocolMessage,
  type Result,
  type WorkerInit,
} from './protocol.js';

export interface WorkerPoolOptions {
  size: number;
  logger: Logger;
  /** workerData for the worker in this slot; called again for each replacement. */
  init: (workerId: number) => WorkerInit;
  /** Runs after a worker (first or replacement) answers ping; e.g. tell it which listeners to open. */
  onStart?: (workerId: number) => Promise<void>;
  /** Compiled worker entry; defaults to dist/workers/worker.js. */
  script?: string;
  /** Per-call timeout when the caller gives none. */
  callTimeoutMs?: number;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  method: string;
}

interface Slot {
  workerId: number;
  worker: Worker | null;
  ready: boolean;
  startedAt: number;
  restarts: number;
  nextId: number;
  pending: Map<number, Pending>;
  restartTimer: NodeJS.Timeout | null;
}

export interface PoolStatus {
  workerId: number;
  threadId: number | null;
  ready: boolean;
  restarts: number;
  uptimeMs: number;
}

/** Emits 'event' (workerId, name, data) for worker events, 'exited' (workerId) when a worker's
 *  thread is gone, and 'replaced' (workerId) after a restart. */
export class WorkerPool extends EventEmitter {
  private readonly slots: Slot[] = [];
  private readonly opts: Required<Omit<WorkerPoolOptions, 'onStart'>> & Pick<WorkerPoolOptions, 'onStart'>;
  private stopping = false;
  /** Workers that died unexpectedly since start. */
  deaths = 0;

  constructor(opts: WorkerPoolOptions) {
    super();
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new RangeError(`pool size must be >= 1, got ${opts.size}`);
    this.opts = { script: distFile('workers/worker.js'), callTimeoutMs: 30_000, ...opts };
    for (let i = 0; i < opts.size; i++) {
      this.slots.push({ workerId: i, worker: null, ready: false, startedAt: 0, restarts: 0, nextId: 1, pending: new Map(), restartTimer: null });
    }
  }

  get size(): number {
    return this.slots.length;
  }

  /** Starts every worker and waits until each is ready (pinged and onStart done). */
  async start(): Promise<void> {
    await Promise.all(this.slots.map((s) => this.spawn(s)));
  }

  /** Calls a method on one worker. Rejects with ERR_WORKER_DIED if it dies first. */
  call<M extends MethodName>(workerId: number, method: M, params: Params<M>, timeoutMs?: number): Promise<Result<M>> {
    const slot = this.slots[workerId];
    if (slot === undefined) return Promise.reject(new RangeError(`no worker ${workerId}`));
    return this.request(slot, method, params, timeoutMs) as Promise<Result<M>>;
  }

  /** Calls a method on every live worker; results in worker order, failures as rejected entries. */
  broadcast<M extends MethodName>(method: M, params: Params<M>, timeoutMs?: number): Promise<PromiseSettledResult<Result<M>>[]> {
    return Promise.allSettled(
      this.slots.filter((s) => s.ready).map((s) => this.request(s, method, params, timeoutMs) as Promise<Result<M>>),
    );
  }

  status(): PoolStatus[] {
    const now = Date.now();
    return this.slots.map((s) => ({
      workerId: s.workerId,
      threadId: s.worker?.threadId ?? null,
      ready: s.ready,
      restarts: s.restarts,
      uptimeMs: s.ready ? now - s.startedAt : 0,
    }));
  }

  /**
   * Stops the pool: asks each worker to drain (stop accepting, finish sessions up to drainMs),
   * then terminates it. No replacement happens after this is called.
   */
  async stop(drainMs = 10_000): Promise<void> {
    this.stopping = true;
    for (const s of this.slots) if (s.restartTimer) clearTimeout(s.restartTimer);
    await Promise.allSettled(
      this.slots.map(async (s) => {
        const w = s.worker;
        if (w === null) return;
        if (s.ready) {
          try {
            await this.request(s, 'drain', { timeoutMs: drainMs }, drainMs + 5_000);
          } catch (err) {
            this.opts.logger.warn({ workerId: s.workerId, err }, 'worker did not drain cleanly');
          }
        }
        await w.terminate();
      }),
    );
  }

  private spawn(slot: Slot): Promise<void> {
    const { logger } = this.opts;
    const worker = new Worker(this.opts.script, {
      workerData: this.opts.init(slot.workerId),
      // Workers share the process's stdout/stderr; pino in the worker writes to fd 1 itself.
      stdout: false,
      stderr: false,
    });
    slot.worker = worker;
    slot.ready = false;
    slot.startedAt = Date.now();
    slot.nextId = 1;

    worker.on('message', (m: unknown) => this.onMessage(slot, m));
    worker.on('error', (err) => {
      logger.error({ workerId: slot.workerId, err }, 'worker thread threw an uncaught exception');
    });
    worker.on('exit', (code) => this.onExit(slot, worker, code));

    return (async () => {
      await this.request(slot, 'ping', {}, 15_000);
      if (this.opts.onStart) await this.opts.onStart(slot.workerId);
      slot.ready = true;
      logger.debug({ workerId: slot.workerId, threadId: worker.threadId }, 'worker ready');
    })();
  }

  private onExit(slot: Slot, worker: Worker, code: number): void {
    if (slot.worker !== worker) return; // an older generation, already replaced
    slot.worker = null;
    slot.ready = false;
    const died = new VipError(ErrorCode.WORKER_DIED, `worker ${slot.workerId} exited with code ${code}`);
    for (const p of slot.pending.values()) {
      clearTimeout(p.timer);
      p.reject(died);
    }
    slot.pending.clear();
    // Its connections died with it: the queue's connection book drops them now.
    this.emit('exited', slot.workerId);
    if (this.stopping) return;

    this.deaths++;
    slot.restarts++;
    // A worker that dies soon after start is probably crash looping: back off up to 5 s.
    const lived = Date.now() - slot.startedAt;
    const delay = lived > 5_000 ? 0 : Math.min(5_000, 100 * 2 ** Math.min(slot.restarts, 6));
    this.opts.logger.error({ workerId: slot.workerId, exitCode: code, restartInMs: delay }, 'worker died; replacing it');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (this.stopping) return;
      this.spawn(slot).then(
        () => this.emit('replaced', slot.workerId),
        (err) => this.opts.logger.error({ workerId: slot.workerId, err }, 'replacement worker failed to start'),
      );
    }, delay);
  }

  // A worker that is still starting can be called (its start hook does so); broadcast() only
  // reaches ready workers, so a replacement gets its state from the hook, not from a broadcast.
  private request(slot: Slot, method: string, params: unknown, timeoutMs?: number): Promise<unknown> {
    const w = slot.worker;
    if (w === null) {
      return Promise.reject(new VipError(ErrorCode.WORKER_DIED, `worker ${slot.workerId} is not running`));
    }
    const id = slot.nextId++;
    const ms = timeoutMs ?? this.opts.callTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        slot.pending.delete(id);
        reject(new VipError(ErrorCode.WORKER_TIMEOUT, `worker ${slot.workerId} did not answer ${method} within ${ms} ms`));
      }, ms);
      slot.pending.set(id, { resolve, reject, timer, method });
      const msg: ProtocolMessage = { kind: 'req', id, method, params };
      w.postMessage(msg);
    });
  }

  private onMessage(slot: Slot, m: unknown): void {
    if (!isProtocolMessage(m)) {
      this.opts.logger.error({ workerId: slot.workerId }, 'worker sent a message outside the protocol');
      return;
    }
    if (m.kind === 'res') {
      const p = slot.pending.get(m.id);
      if (p === undefined) return; // timed out already
      slot.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result);
      else p.reject(deserializeError(m.error));
    } else if (m.kind === 'event') {
      this.emit('event', slot.workerId, m.name, m.data);
    }
  }
}
