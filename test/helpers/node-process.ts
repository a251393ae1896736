// Runs real vipmta processes for integration tests: a temp working directory, a config file, the
// compiled CLI (dist/, built by `npm test`), JSON log lines collected from stdout, and cleanup by
// the PID we started (never by name), also when a test fails. A node with a Cluster stanza can run
// in a private network namespace, so that it never reaches a corosync the host may run (corosync's
// IPC sockets are abstract, hence per network namespace); forward() reaches its loopback ports.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireCapabilities, requireCommand } from './preconditions.js';
import { tempDir } from './tmp.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliPath = path.join(repoRoot, 'bin', 'vipmta.js');

export interface LogRecord {
  level: string;
  msg: string;
  [k: string]: unknown;
}

export class VipmtaProcess {
  readonly logs: LogRecord[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: { pred: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }[] = [];
  private readonly relays: ChildProcess[] = [];

  constructor(readonly child: ChildProcess, readonly cwd: string, readonly configFile: string | null, readonly privateNetwork = false) {
    let partial = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      this.stdout += d;
      partial += d;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as LogRecord;
          this.logs.push(rec);
          this.waiters = this.waiters.filter((w) => (w.pred(rec) ? (w.resolve(rec), false) : true));
        } catch {
          /* not a log line */
        }
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    // A relay left running would keep the node's namespace alive.
    void this.exited.then(() => {
      for (const r of this.relays) if (r.exitCode === null && r.signalCode === null) r.kill('SIGKILL');
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log record (past or future) matching pred; rejects on exit or timeout. */
  waitForLog(pred: (r: LogRecord) => boolean, timeoutMs = 30_000): Promise<LogRecord> {
    const seen = this.logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a log record; stderr: ${this.stderr}\nstdout: ${this.stdout.slice(-2000)}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (r) => (clearTimeout(timer), resolve(r)) });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`vipmta exited (code ${code}, signal ${signal}) before the expected log record; stderr: ${this.stderr}\nstdout: ${this.stdout.slice(-2000)}`));
      });
    });
  }

  waitStarted(): Promise<LogRecord> {
    return this.waitForLog((r) => r.msg === 'vipmta started');
  }

  /** Runs `vipmta console` against this node (asynchronously, so our pipe from the node keeps draining). */
  console(...argv: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const args = [cliPath, 'console', ...(this.configFile ? ['-c', this.configFile] : []), ...argv];
    return runCli(args, this.cwd);
  }

  /**
   * A port on 127.0.0.1 here that reaches 127.0.0.1:`port` inside the node's private network
   * namespace (startVipmta's privateNetwork). A relay process entered into the node's namespace
   * accepts on a listening socket made here (a socket stays in the namespace it was made in) and
   * connects inside; it is killed by its PID when the node exits. Bytes only: closes and resets
   * are passed on as closes.
   */
  async forward(port: number): Promise<number> {
    if (!this.privateNetwork) return port;
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const outer = (server.address() as net.AddressInfo).port;
    const relay = spawn('nsenter', [`--net=/proc/${this.pid}/ns/net`, process.execPath, '-e', RELAY, String(port)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.relays.push(relay);
    let err = '';
    relay.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    await new Promise<void>((resolve, reject) => {
      relay.once('message', () => resolve());
      relay.once('exit', (code) => reject(new Error(`relay into ${this.pid}'s namespace exited (${code}): ${err}`)));
      relay.send('listen', server);
    });
    server.close(); // the relay holds its own copy of the listening socket
    return outer;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.pid, sig);
  }

  /** SIGKILL by PID if still running; always safe to call. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}

/** The relay forward() runs inside a node's namespace: accepts on the server it is sent, connects to 127.0.0.1:argv[1]. */
const RELAY = `const net = require('node:net');
const port = Number(process.argv[1]);
process.on('message', (m, server) => {
  server.on('connection', (a) => {
    const b = net.connect(port, '127.0.0.1');
    a.pipe(b).pipe(a);
    for (const [x, y] of [[a, b], [b, a]]) { x.on('error', () => y.destroy()); x.on('close', () => y.destroy()); }
  });
  process.send('ready');
});
process.on('disconnect', () => process.exit(0)); // the test process is gone`;

const running = new Set<VipmtaProcess>();

export interface StartOptions {
  /** Working directory; a new temp dir when omitted. */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Run the node in a new network namespace of its own (only loopback, up): it cannot reach a
   * corosync on the host, whatever runs there. Its TCP ports are reached through forward(); its
   * control socket is a file and works as usual. Needs CAP_SYS_ADMIN and CAP_NET_ADMIN.
   */
  privateNetwork?: boolean;
  /** Run the node in that (running, privateNetwork) node's network namespace: the two reach each
   *  other's loopback ports, neither reaches a corosync on the host. */
  networkOf?: VipmtaProcess;
}

/** Starts `vipmta start` in `cwd` (a new temp dir when omitted) with `configText` (null: built-in default). */
export function startVipmta(configText: string | null, opts: StartOptions = {}): VipmtaProcess {
  const cwd = opts.cwd ?? tempDir('vipmta-test-');
  let configFile: string | null = null;
  if (configText !== null) {
    configFile = path.join(cwd, 'vipmta.conf');
    fs.writeFileSync(configFile, configText);
  }
  let argv = [process.execPath, cliPath, 'start', ...(configFile ? ['-c', configFile] : [])];
  if (opts.privateNetwork === true) {
    requireCapabilities('runs vipmta in a network namespace of its own (away from any corosync on the host)', 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN');
    requireCommand('unshare', 'nsenter', 'ip');
    // unshare (without --fork) and `exec` replace themselves: the PID we get is the node's.
    argv = ['unshare', '--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...argv];
  } else if (opts.networkOf !== undefined) {
    requireCapabilities('runs vipmta in another node\'s network namespace', 'CAP_SYS_ADMIN');
    requireCommand('nsenter');
    // nsenter (without --fork) replaces itself: the PID we get is the node's.
    argv = ['nsenter', `--net=/proc/${opts.networkOf.pid}/ns/net`, '--', ...argv];
  }
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = new VipmtaProcess(child, cwd, configFile, opts.privateNetwork === true || opts.networkOf !== undefined);
  running.add(p);
  void p.exited.then(() => running.delete(p));
  return p;
}

/** Kills every process started by this module that is still running (afterEach/afterAll). Their
 *  temp directories go after the test file (test/helpers/tmp.ts). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
}

/** A TCP port that is free on 127.0.0.1 right now (the kernel picks it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Reads an SMTP reply (all lines up to the one with a space after the code). */
export function readReply(sock: net.Socket, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`no SMTP reply within ${timeoutMs} ms; got ${JSON.stringify(buf)}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const lines = buf.split('\r\n');
      if (lines.some((l) => /^\d{3} /.test(l))) done(null);
    };
    const onEnd = (): void => done(new Error(`connection closed; got ${JSON.stringify(buf)}`));
    function done(err: Error | null): void {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      if (err) reject(err);
      else resolve(buf);
    }
    sock.on('data', onData);
    sock.on('end', onEnd);
  });
}

/** Opens a TCP connection and returns it with the server's greeting. */
export async function smtpConnect(port: number, host = '127.0.0.1'): Promise<{ sock: net.Socket; greeting: string }> {
  const sock = net.connect(port, host);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const greeting = await readReply(sock);
  return { sock, greeting };
}

/** Runs the CLI with args (already including cliPath) and collects its output. */
export function runCli(args: string[], cwd: string, timeoutMs = 30_000, env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vipmta ${args.slice(1).join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
