// The worker pool: start, typed calls, errors that keep their name, message and code across the
// thread boundary (thrown in the worker, through the real serializeError), and a dead worker that
// is logged and replaced while the others keep serving.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import ts from 'typescript';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WorkerPool } from '../../../src/workers/pool.js';
import type { DeliveryBatch } from '../../../src/delivery/batch.js';
import { repoRoot } from '../../helpers/node-process.js';
import { tempDir } from '../../helpers/tmp.js';

const script = path.join(repoRoot, 'test', 'fixtures', 'workers', 'scripted-worker.mjs');
const pools: WorkerPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.stop(1000)));
});

// A worker thread cannot import TypeScript: the worker-side dispatch and the error module it uses
// are transpiled (types dropped, nothing else) into a temp directory the scripted worker imports.
let urls: { serveUrl: string; errorsUrl: string };
beforeAll(() => {
  const out = tempDir('vipmta-pool-');
  fs.writeFileSync(path.join(out, 'package.json'), '{"type":"module"}');
  for (const rel of ['errors.ts', 'workers/protocol.ts', 'workers/serve.ts']) {
    const src = fs.readFileSync(path.join(repoRoot, 'src', rel), 'utf8');
    const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText;
    fs.mkdirSync(path.dirname(path.join(out, rel)), { recursive: true });
    fs.writeFileSync(path.join(out, rel.replace(/\.ts$/, '.js')), js);
  }
  urls = { serveUrl: pathToFileURL(path.join(out, 'workers', 'serve.js')).href, errorsUrl: pathToFileURL(path.join(out, 'errors.js')).href };
});

function makePool(size: number, logs: object[] = [], onStart?: (id: number) => Promise<void>): WorkerPool {
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  const pool = new WorkerPool({
    size,
    logger,
    script,
    init: (workerId) => ({ workerId, logLevel: 'info', nodeName: 't', hostname: 't', spoolDirectory: null, ...urls }),
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

  it("keeps a system error's name, message, code, errno and syscall across the thread boundary", async () => {
    const pool = makePool(1);
    await pool.start();
    // The worker binds the address this test holds: Node's own EADDRINUSE, thrown in the worker.
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as net.AddressInfo;
    try {
      const err = await pool.call(0, 'setListeners', { listeners: [{ name: 'taken', host: '127.0.0.1', port, options: {} }] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ name: 'Error', code: 'EADDRINUSE', syscall: 'listen', message: `listen EADDRINUSE: address already in use 127.0.0.1:${port}` });
      expect((err as { errno?: unknown }).errno).toBeLessThan(0);
    } finally {
      holder.close();
    }
  });

  it("keeps our own coded error's class name, message and code", async () => {
    const pool = makePool(1);
    await pool.start();
    const batch = { messages: [] } as unknown as DeliveryBatch;
    const err = await pool.call(0, 'deliver', batch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ name: 'VipError', message: 'scripted: the spool is closed', code: 'ERR_SPOOL_CLOSED' });
  });

  it('answers a method the worker does not know with ERR_UNKNOWN_METHOD', async () => {
    const pool = makePool(1);
    await pool.start();
    const err = await pool.call(0, 'mmoveDrop', { peer: { host: '127.0.0.1', port: 1 }, reason: 'test' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_UNKNOWN_METHOD', message: 'unknown method mmoveDrop' });
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

  it('rejects a call in flight to a worker that dies with ERR_WORKER_DIED', async () => {
    const pool = makePool(1);
    await pool.start();
    const replaced = new Promise<number>((resolve) => pool.once('replaced', resolve));
    // The worker never answers this call: it dies with it in flight.
    await expect(pool.call(0, 'setLogLevel', { level: 'crash-in-flight' })).rejects.toMatchObject({ code: 'ERR_WORKER_DIED' });
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
