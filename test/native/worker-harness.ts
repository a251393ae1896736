// Test helper: runs the native facade in places vitest cannot transform TypeScript for, namely
// worker threads and child processes (inside `ip netns exec`). Main thread of the test fork; it
// blocks on a tsc compile (a few seconds, once per test file) and on child processes it spawns.
//
// Why this shape: only src/native/ (its addon.ts) may load the addon, and Node 20 cannot import .ts in a
// worker, so workers and children import the compiled facade from dist/native/index.js. We compile
// just that module and src/errors.ts (not the whole project, which others may be editing), into a
// temporary directory, and rename the files into dist/ so a concurrent reader never sees half a file.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, copyFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { tempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** file:// URL of the compiled facade, for dynamic import() in workers and children. */
export const facadeUrl = pathToFileURL(path.join(root, 'dist', 'native', 'index.js')).href;

/** Compiles src/native/index.ts (and what it imports) into dist/. Idempotent. */
export function buildFacade(): void {
  const tmp = tempDir('vipmta-facade-');
  try {
    execFileSync(
      process.execPath,
      [
        path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--outDir', tmp, '--rootDir', path.join(root, 'src'),
        '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
        '--strict', '--skipLibCheck', '--types', 'node', '--sourceMap',
        path.join(root, 'src', 'native', 'index.ts'),
      ],
      { cwd: root, stdio: 'pipe' },
    );
    const copy = (rel: string): void => {
      const dst = path.join(root, 'dist', rel);
      mkdirSync(path.dirname(dst), { recursive: true });
      const part = `${dst}.${process.pid}.part`;
      copyFileSync(path.join(tmp, rel), part);
      renameSync(part, dst);
    };
    for (const dir of ['', 'native']) {
      for (const f of readdirSync(path.join(tmp, dir))) {
        if (f.endsWith('.js') || f.endsWith('.js.map')) copy(path.join(dir, f));
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The fields of an error that survive postMessage (the class and own properties do not). */
export interface PlainError {
  name: string;
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
}

// Plain CommonJS so it runs as an eval worker without a loader. It answers { id, op, args } with
// { id, ok, value | error }; op "spin" acknowledges, then calls into the addon until terminated.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.facadeUrl).then((n) => {
  parentPort.on('message', (m) => {
    if (m.op === 'spin') {
      parentPort.postMessage({ id: m.id, ok: true, value: 'spinning' });
      for (;;) {
        const fd = n.listenTcp({ host: '127.0.0.1', port: 0 });
        n.socketLocalAddress(fd);
        n.closeFd(fd);
        n.listInterfaces();
      }
    }
    try {
      parentPort.postMessage({ id: m.id, ok: true, value: n[m.op](...m.args) });
    } catch (e) {
      parentPort.postMessage({ id: m.id, ok: false,
        error: { name: e.name, message: e.message, code: e.code, errno: e.errno, syscall: e.syscall } });
    }
  });
  parentPort.postMessage({ ready: true });
});
`;

/** A worker thread that calls facade functions by name. */
export class FacadeWorker {
  readonly worker: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private readonly ready: Promise<void>;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { facadeUrl } });
    this.ready = new Promise((resolve, reject) => {
      this.worker.once('error', reject);
      this.worker.on('message', (m: { ready?: boolean; id?: number; ok?: boolean; value?: unknown; error?: PlainError }) => {
        if (m.ready === true) return resolve();
        const p = this.pending.get(m.id ?? -1);
        if (p === undefined) return;
        this.pending.delete(m.id ?? -1);
        if (m.ok === true) p.resolve(m.value);
        else p.reject(Object.assign(new Error(m.error?.message), m.error));
      });
    });
  }

  /** Calls facade function `op` in the worker; rejects with the worker's error fields. */
  async call<T>(op: string, ...args: unknown[]): Promise<T> {
    await this.ready;
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, args });
    });
  }

  /** Resolves once the worker is inside its endless loop of addon calls. */
  spin(): Promise<string> {
    return this.call<string>('spin');
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

/**
 * Runs `body` (an async JS function body with the facade as `n`) in a child node process inside
 * network namespace `ns`, and returns what it returns (JSON). A thrown error comes back rejected
 * with its code and syscall. A namespace is per thread, hence a process rather than a worker.
 */
export function inNetns<T>(ns: string, body: string): Promise<T> {
  const script = `
    const n = await import(${JSON.stringify(facadeUrl)});
    const run = async () => { ${body} };
    try {
      process.stdout.write(JSON.stringify({ ok: true, value: await run() }));
    } catch (e) {
      process.stdout.write(JSON.stringify({ ok: false,
        error: { name: e.name, message: e.message, code: e.code, errno: e.errno, syscall: e.syscall } }));
    }`;
  return new Promise<T>((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`child in ${ns} exited ${code}: ${err}`));
      const r = JSON.parse(out) as { ok: boolean; value?: T; error?: PlainError };
      if (r.ok) resolve(r.value as T);
      else reject(Object.assign(new Error(r.error?.message), r.error));
    });
  });
}

/** Runs `ip` with the given arguments; throws with its stderr on failure. */
export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
