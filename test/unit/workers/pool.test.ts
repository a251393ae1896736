// The worker pool: start, typed calls, errors that keep their code across the thread boundary, and
// a dead worker that is logged and replaced while the others keep serving.
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerPool } from '../../../src/workers/pool.js';
import { repoRoot } from '../../helpers/node-process.js';

const script = path.join(repoRoot, 'test', 'fixtures', 'workers', 'scripted-worker.mjs');
const pools: WorkerPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.stop(1000)));
});

function makePool(size: number, logs: object[] = [], onStart?: (id: number) => Promise<void>): WorkerPool {
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  const pool = new WorkerPool({
    size,
    logger,
    script,
    init: (workerId) => ({ workerId, logLevel: 'info', nodeName: 't', hostname: 't', spoolDirectory: null }),
    ...(onStart ? { onStart } : {}),
  });
  pools.push(pool);
  return pool;
}

describe('worker pool', () => {
  it('starts one thread per slot and calls each', async () => {
    const pool = makePool(3);
    await pool.start();
    const res = await pool.broadcast('ping', {});
    const ids = res.map((r) => (r.status === 'fulfilled' ? r.value.workerId : -1));
    expect(ids).toEqual([0, 1, 2]);
    const threads = new Set(pool.status().map((s) => s.threadId));
    expect(threads.size).toBe(3);
  });

  it('keeps an error code, errno and syscall across the thread boundary', async () => {
    const pool = makePool(1);
    await pool.start();
    const err = await pool.call(0, 'setListeners', { listeners: [{ name: 'taken', host: '127.0.0.1', port: 25, options: {} }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'EADDRINUSE', errno: 98, syscall: 'bind' });
  });

  it('logs and replaces a worker that dies, re-running its start hook', async () => {
    const logs: { msg?: string; workerId?: number }[] = [];
    const started: number[] = [];
    const pool = makePool(2, logs, async (id) => void started.push(id));
    await pool.start();
    expect(started.sort()).toEqual([0, 1]);
    const oldThread = pool.status()[1]!.threadId;
    const replaced = new Promise<number>((resolve) => pool.once('replaced', resolve));
    await pool.call(1, 'setLogLevel', { level: 'crash' });
    expect(await replaced).toBe(1);
    expect(pool.deaths).toBe(1);
    expect(pool.status()[1]).toMatchObject({ ready: true, restarts: 1 });
    expect(pool.status()[1]!.threadId).not.toBe(oldThread);
    expect(started.filter((id) => id === 1)).toHaveLength(2);
    expect(logs.some((l) => l.msg === 'worker died; replacing it' && l.workerId === 1)).toBe(true);
    // The other worker was never interrupted.
    expect(pool.status()[0]).toMatchObject({ ready: true, restarts: 0 });
  });

  it('rejects calls in flight to a worker that dies with ERR_WORKER_DIED', async () => {
    const pool = makePool(1);
    await pool.start();
    const replaced = new Promise<number>((resolve) => pool.once('replaced', resolve));
    await pool.call(0, 'setLogLevel', { level: 'crash' });
    // The crash happens on the next turn of the worker's loop; a call sent now may die with it.
    const r = await pool.call(0, 'stats', {}).then(() => 'answered', (e: { code?: string }) => e.code);
    expect(['answered', 'ERR_WORKER_DIED']).toContain(r);
    await replaced;
    await expect(pool.call(0, 'ping', {})).resolves.toMatchObject({ workerId: 0 });
  });

  it('stops without replacing anyone', async () => {
    const pool = makePool(2);
    await pool.start();
    await pool.stop(1000);
    expect(pool.deaths).toBe(0);
    expect(pool.status().every((s) => !s.ready)).toBe(true);
  });
});
