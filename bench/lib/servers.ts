// The systems under test of bench/inject.ts and bench/delivery.ts, each started fresh in its own temporary directory on a free
// loopback port, and stopped by the PID we started (never by name) with the directory removed.
// Runs on the benchmark's main thread; start/stop block on child processes for up to a few seconds.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { alive, processTree } from './proc.js';

export interface Server {
  readonly name: string;
  readonly port: number;
  /** Process whose tree holds all of the server's CPU and memory. */
  readonly rootPid: number;
  /** Messages the server holds durably (undefined: it stores nothing). */
  count(): Promise<number | undefined>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { ...opts, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until the port answers with a 220 greeting (the server is ready for load). */
async function waitForGreeting(port: number, timeoutMs: number, stillStarting: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!stillStarting()) throw new Error(`server on port ${port} exited during startup`);
    last = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      let buf = '';
      const done = (v: string): void => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(2000, () => done('timeout'));
      s.on('error', (e) => done(e.message));
      s.on('data', (d) => {
        buf += d.toString('latin1');
        if (buf.includes('\n')) {
          s.write('QUIT\r\n');
          done(buf);
        }
      });
    });
    if (last.startsWith('220')) return;
    await sleep(100);
  }
  throw new Error(`no 220 greeting on port ${port} within ${timeoutMs} ms (last: ${last.trim()})`);
}

/** Stops the processes we know by PID: signal, wait, then SIGKILL whatever is left. */
async function reap(pids: number[], signal: NodeJS.Signals | null, graceMs: number): Promise<number[]> {
  if (signal !== null) for (const p of pids) if (alive(p)) process.kill(p, signal);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(alive)) await sleep(50);
  const left = pids.filter(alive);
  for (const p of left) process.kill(p, 'SIGKILL');
  return left;
}

function countFiles(dir: string): number {
  let n = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    n += e.isDirectory() ? countFiles(path.join(dir, e.name)) : 1;
  }
  return n;
}

function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(d, 0o755); // Postfix's daemons run as the postfix user and must reach the queue.
  return d;
}

// ---------------------------------------------------------------------------------------------------
// vipmta

/** Tails a child's output so it never blocks on a full pipe; keeps the last 8 KiB for errors. */
function drain(child: ChildProcess): () => string {
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString('utf8')).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail;
}

function drainStderr(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => (tail = (tail + d.toString('utf8')).slice(-8192)));
  return () => tail;
}

export interface VipmtaOptions {
  /** Shown in the results ('vipmta', or 'candidate' for a second build). */
  name: string;
  /** A built checkout: runs <repoRoot>/bin/vipmta.js. */
  repoRoot: string;
  /** Worker_Threads; 0 leaves it out (the product's default). */
  workerThreads: number;
  /** Extra `node` flags for the server, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  nodeFlags: string[];
  /** Start with Suspend_Delivery = true (default: true, mail is held as bench/inject.ts wants). */
  suspendDelivery?: boolean;
  /** Appended to the generated config, e.g. a Domain stanza with Routes (default: none). */
  extraConfig?: string;
  /** Log_Level (default "warn"). */
  logLevel?: string;
  /** Write the server's stdout/stderr (its JSON log) to <dir>/vipmta.log instead of a pipe to us. */
  logToFile?: boolean;
}

export interface VipmtaServer extends Server {
  /** Rewrites the config with or without Suspend_Delivery and runs `vipmta console config reload`. */
  setSuspended(suspended: boolean): Promise<void>;
}

export async function startVipmta(o: VipmtaOptions): Promise<VipmtaServer> {
  const dir = tmpDir('vipmta-bench-');
  const port = await freePort();
  const sock = path.join(dir, 'control.sock');
  const conf = path.join(dir, 'vipmta.conf');
  const logFile = path.join(dir, 'vipmta.log');
  const writeConfig = (suspended: boolean): void =>
    fs.writeFileSync(
      conf,
      `# bench/inject.ts, bench/delivery.ts: one node, durable spool (Sync defaults to fdatasync).
${o.workerThreads > 0 ? `Worker_Threads = ${o.workerThreads}\n` : ''}Log_Level = "${o.logLevel ?? 'warn'}"
Hostname = "bench.invalid"
Nodename = "bench"
${suspended ? '# Held like Postfix\'s mail in the same run.\nSuspend_Delivery = true\n' : ''}ESMTP_Listener { Listen "127.0.0.1:${port}" { } }
Control_Listener { Listen "${sock}" { } }
Spool { Directory = "${path.join(dir, 'spool')}" }
${o.extraConfig ?? ''}`,
    );
  writeConfig(o.suspendDelivery ?? true);
  const cli = path.join(o.repoRoot, 'bin', 'vipmta.js');
  let output: () => string;
  let child: ChildProcess;
  if (o.logToFile === true) {
    const fd = fs.openSync(logFile, 'a');
    child = spawn(process.execPath, [...o.nodeFlags, cli, 'start', '-c', conf], { cwd: dir, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    output = () => {
      try {
        return fs.readFileSync(logFile, 'utf8').slice(-8192);
      } catch {
        return '(no log)';
      }
    };
  } else {
    child = spawn(process.execPath, [...o.nodeFlags, cli, 'start', '-c', conf], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    output = drain(child);
  }
  let exited = false;
  child.on('exit', () => (exited = true));
  const pid = child.pid!;
  const stop = async (): Promise<void> => {
    if (!exited) {
      const done = new Promise((r) => child.once('exit', r));
      const left = await reap([pid], 'SIGTERM', 15_000);
      if (left.length > 0) process.stderr.write(`vipmta ${pid} did not stop on SIGTERM; killed\n`);
      await done;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForGreeting(port, 30_000, () => !exited);
  } catch (err) {
    const out = output();
    await stop();
    throw new Error(`${(err as Error).message}\n${out}`);
  }
  return {
    name: o.name,
    port,
    rootPid: pid,
    async count() {
      const r = await run(process.execPath, [cli, 'console', '-s', sock, 'mailq']);
      const m = /^Total: (\d+) message/m.exec(r.stdout);
      if (r.code !== 0 || m === null) throw new Error(`vipmta mailq failed (${r.code}): ${r.stdout}${r.stderr}`);
      return Number(m[1]);
    },
    async setSuspended(suspended: boolean) {
      writeConfig(suspended);
      const r = await run(process.execPath, [cli, 'console', '-s', sock, 'config', 'reload']);
      if (r.code !== 0 || !r.stdout.includes('config reloaded')) throw new Error(`vipmta config reload failed (${r.code}): ${r.stdout}${r.stderr}\n${output()}`);
    },
    stop,
  };
}

// ---------------------------------------------------------------------------------------------------
// Postfix: a private instance (config and queue in a temporary directory), mail held in its queue.

function userId(name: string): number {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (line === undefined) throw new Error(`no user ${name} in /etc/passwd`);
  return Number(line.split(':')[2]);
}

export interface PostfixOptions {
  /** main.cf settings that replace the template's (a key the template sets is taken out of it). */
  main?: Record<string, string>;
  /** Lines appended to master.cf, e.g. the smtp client service. */
  master?: string[];
}

export interface PostfixServer extends Server {
  readonly confDir: string;
  /** Queue files anywhere in the queue (incoming, active, deferred, hold, maildrop). */
  queued(): number;
  /** `postsuper -H ALL` then `postqueue -f`: held mail goes to the deferred queue and is flushed. */
  release(): Promise<void>;
}

export async function startPostfix(templateDir: string, opts: PostfixOptions = {}): Promise<PostfixServer> {
  if (process.getuid?.() !== 0) throw new Error('Postfix needs root to start its master');
  const dir = tmpDir('postfix-bench-');
  const port = await freePort();
  const confDir = path.join(dir, 'conf');
  for (const d of ['conf', 'queue', 'data']) fs.mkdirSync(path.join(dir, d));
  fs.chownSync(path.join(dir, 'data'), userId('postfix'), -1);
  for (const f of ['main.cf', 'master.cf']) {
    let t = fs.readFileSync(path.join(templateDir, `${f}.in`), 'utf8');
    if (f === 'main.cf' && opts.main !== undefined) {
      const keys = new Set(Object.keys(opts.main));
      t = t
        .split('\n')
        .filter((l) => !keys.has(l.split('=')[0]!.trim()))
        .join('\n');
      t += `\n# Set by the benchmark:\n${Object.entries(opts.main).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`;
    }
    if (f === 'master.cf' && opts.master !== undefined) t += `\n${opts.master.join('\n')}\n`;
    fs.writeFileSync(path.join(confDir, f), t.replaceAll('@BASE@', dir).replaceAll('@PORT@', String(port)));
  }
  const log = (): string => {
    try {
      return fs.readFileSync(path.join(dir, 'maillog'), 'utf8').slice(-4096);
    } catch {
      return '(no maillog)';
    }
  };
  const cleanup = (): void => fs.rmSync(dir, { recursive: true, force: true });
  const started = await run('postfix', ['-c', confDir, 'start']);
  const pidFile = path.join(dir, 'queue', 'pid', 'master.pid');
  let pid = 0;
  for (let i = 0; i < 50 && pid === 0; i++) {
    try {
      pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    } catch {
      await sleep(100);
    }
  }
  if (started.code !== 0 || pid === 0) {
    if (pid !== 0) await reap([pid], 'SIGTERM', 5000);
    const msg = `postfix start failed (${started.code}): ${started.stderr}\n${log()}`;
    cleanup();
    throw new Error(msg);
  }
  const stop = async (): Promise<void> => {
    // Everything master started, by PID; `postfix stop` addresses this instance by its config only.
    const pids = processTree(pid).map((s) => s.pid);
    await run('postfix', ['-c', confDir, 'stop']);
    const left = await reap(pids, null, 10_000);
    if (left.length > 0) process.stderr.write(`postfix processes ${left.join(' ')} outlived "postfix stop"; killed\n`);
    cleanup();
  };
  try {
    await waitForGreeting(port, 20_000, () => alive(pid));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    name: 'Postfix',
    port,
    rootPid: pid,
    async count() {
      // Held mail sits in hold/; anything in incoming/active/deferred would be a leak of the setup.
      const q = path.join(dir, 'queue');
      const elsewhere = ['incoming', 'active', 'deferred', 'maildrop'].reduce((n, d) => n + countFiles(path.join(q, d)), 0);
      if (elsewhere > 0) throw new Error(`Postfix has ${elsewhere} queue files outside hold/`);
      return countFiles(path.join(q, 'hold'));
    },
    confDir,
    queued() {
      const q = path.join(dir, 'queue');
      return ['incoming', 'active', 'deferred', 'maildrop', 'hold'].reduce((n, d) => n + countFiles(path.join(q, d)), 0);
    },
    async release() {
      const h = await run('postsuper', ['-c', confDir, '-H', 'ALL']);
      if (h.code !== 0) throw new Error(`postsuper -H ALL failed (${h.code}): ${h.stderr}`);
      const f = await run('postqueue', ['-c', confDir, '-f']);
      if (f.code !== 0) throw new Error(`postqueue -f failed (${f.code}): ${f.stderr}`);
    },
    stop,
  };
}

// ---------------------------------------------------------------------------------------------------
// smtp-sink: accepts and discards; the ceiling of the load generator and the loopback link.

export interface SinkServer extends Server {
  /** Messages received so far ("." answered), from smtp-sink -c's counters; 0 without `count`. */
  received(): number;
  /** Resolves when received() reaches n; rejects after timeoutMs or when the sink exits. */
  waitFor(n: number, timeoutMs: number): Promise<void>;
}

export async function startSmtpSink(opts: { count?: boolean } = {}): Promise<SinkServer> {
  const port = await freePort();
  // -u: drop root after binding (required when started as root); 1024: listen backlog.
  // -c: counters "sess=N quit=N mesg=N" on stdout after every session end, QUIT and ".".
  const args = [...(opts.count === true ? ['-c'] : []), ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), `127.0.0.1:${port}`, '1024'];
  const child = spawn('/usr/sbin/smtp-sink', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // With -c, stdout is the counters (read below); errors are on stderr.
  const output = opts.count === true ? drainStderr(child) : drain(child);
  let exited = false;
  let received = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  if (opts.count === true) {
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      const text = partial + d.toString('latin1');
      const end = text.lastIndexOf('\r');
      partial = text.slice(end + 1);
      const m = /mesg=(\d+)$/.exec(text.slice(0, Math.max(0, end)));
      if (m !== null) received = Number(m[1]);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (received >= waiters[i]!.n) waiters.splice(i, 1)[0]!.resolve();
      }
    });
  }
  child.on('exit', () => (exited = true));
  const pid = child.pid!;
  const stop = async (): Promise<void> => {
    if (!exited) {
      const done = new Promise((r) => child.once('exit', r));
      await reap([pid], 'SIGTERM', 5000);
      await done;
    }
  };
  try {
    await waitForGreeting(port, 10_000, () => !exited);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${output()}`);
  }
  return {
    name: 'smtp-sink',
    port,
    rootPid: pid,
    count: async () => undefined,
    received: () => received,
    waitFor(n: number, timeoutMs: number) {
      if (received >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const w = { n, resolve: () => (clearTimeout(t), clearInterval(dead), resolve()) };
        const fail = (why: string): void => {
          const k = waiters.indexOf(w);
          if (k >= 0) waiters.splice(k, 1);
          clearTimeout(t);
          clearInterval(dead);
          reject(new Error(`smtp-sink: ${why} (received ${received} of ${n})`));
        };
        const t = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
        const dead = setInterval(() => exited && fail('exited'), 500);
        waiters.push(w);
      });
    },
    stop,
  };
}
