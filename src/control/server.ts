// The control socket: a Unix socket (mode 0600, in a 0700 directory) that answers console commands
// from a CommandTable. Local and private by design: no network listener. Main thread; one short
// request per connection, so a slow or silent client is cut off after a timeout.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { errorCode } from '../errors.js';
import type { CommandTable } from './commands.js';
import { CLUSTER_TIMEOUT_MS, MAX_CLUSTER_TIMEOUT_MS, MAX_REQUEST_BYTES, type ControlRequest, type ControlResponse } from './protocol.js';

/** Runs a request for the cluster (`cluster` or `node` set: src/node/cluster-console.ts). */
export type ClusterRequestHandler = (req: ControlRequest & { timeoutMs: number }) => Promise<{ output: string; status: number }>;

const REQUEST_TIMEOUT_MS = 10_000;

export class ControlServer {
  private server: net.Server | null = null;

  constructor(
    readonly socketPath: string,
    private readonly commands: CommandTable,
    private readonly logger: Logger,
    /** `console --cluster` / `--node`; absent: such requests are refused. */
    private readonly cluster: ClusterRequestHandler | null = null,
  ) {}

  async start(): Promise<void> {
    fs.mkdirSync(path.dirname(this.socketPath), { recursive: true, mode: 0o700 });
    await removeStaleSocket(this.socketPath);
    const server = net.createServer((sock) => this.serve(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Only the owner may talk to the control socket: it can stop the node and reload config.
    fs.chmodSync(this.socketPath, 0o600);
    server.on('error', (err) => this.logger.error({ err }, 'control socket error'));
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s === null) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }

  private serve(sock: net.Socket): void {
    let buf = '';
    sock.setEncoding('utf8');
    sock.setTimeout(REQUEST_TIMEOUT_MS, () => sock.destroy());
    sock.on('error', () => sock.destroy());
    const onData = (chunk: string): void => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.off('data', onData);
        this.reply(sock, { ok: false, error: 'request too large', code: 'ERR_CONTROL_BAD_REQUEST' });
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sock.off('data', onData);
      void this.handle(sock, buf.slice(0, nl));
    };
    sock.on('data', onData);
  }

  private async handle(sock: net.Socket, line: string): Promise<void> {
    let req: ControlRequest;
    try {
      const parsed: unknown = JSON.parse(line);
      if (
        parsed === null || typeof parsed !== 'object' || !Array.isArray((parsed as ControlRequest).argv) ||
        !(parsed as ControlRequest).argv.every((a) => typeof a === 'string')
      ) {
        throw new Error('argv must be an array of strings');
      }
      req = parsed as ControlRequest;
      checkScope(req);
    } catch (err) {
      this.reply(sock, { ok: false, error: `bad request: ${(err as Error).message}`, code: 'ERR_CONTROL_BAD_REQUEST' });
      return;
    }
    if (req.cluster === true || req.node !== undefined) {
      await this.handleCluster(sock, req);
      return;
    }
    try {
      const output = await this.commands.run(req.argv);
      this.logger.info({ command: this.commands.logged(req.argv) }, 'console command');
      this.reply(sock, { ok: true, output });
    } catch (err) {
      const code = errorCode(err) ?? 'ERR_CONTROL_FAILED';
      this.logger.warn({ command: this.commands.logged(req.argv), code, err: (err as Error).message }, 'console command failed');
      this.reply(sock, { ok: false, error: (err as Error).message, code });
    }
  }

  private async handleCluster(sock: net.Socket, req: ControlRequest): Promise<void> {
    const timeoutMs = req.timeoutMs ?? CLUSTER_TIMEOUT_MS;
    // The answer takes up to the members' timeout: the idle cut-off must not end it first.
    sock.setTimeout(timeoutMs + REQUEST_TIMEOUT_MS);
    const scope = req.node !== undefined ? `--node ${req.node}` : '--cluster';
    try {
      if (this.cluster === null) throw Object.assign(new Error('this node cannot run console commands across the cluster'), { code: 'ERR_CLUSTER_DISABLED' });
      const r = await this.cluster({ ...req, timeoutMs });
      this.logger.info({ command: this.commands.logged(req.argv), scope, status: r.status }, 'console command');
      this.reply(sock, { ok: true, output: r.output, status: r.status });
    } catch (err) {
      const code = errorCode(err) ?? 'ERR_CONTROL_FAILED';
      this.logger.warn({ command: this.commands.logged(req.argv), scope, code, err: (err as Error).message }, 'console command failed');
      this.reply(sock, { ok: false, error: (err as Error).message, code });
    }
  }

  private reply(sock: net.Socket, res: ControlResponse): void {
    if (!sock.writable) return;
    sock.end(JSON.stringify(res) + '\n');
  }
}

/** The optional cluster fields: --cluster and --node exclude each other; a timeout is whole ms in range. */
function checkScope(req: ControlRequest): void {
  if (req.cluster !== undefined && typeof req.cluster !== 'boolean') throw new Error('cluster must be a boolean');
  if (req.node !== undefined && (typeof req.node !== 'string' || req.node === '')) throw new Error('node must be a node name');
  if (req.cluster === true && req.node !== undefined) throw new Error('give --cluster or --node, not both');
  const t = req.timeoutMs;
  if (t !== undefined && (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > MAX_CLUSTER_TIMEOUT_MS)) throw new Error(`timeoutMs must be 1 to ${MAX_CLUSTER_TIMEOUT_MS}`);
}

/**
 * A socket file left by a crashed process would make listen() fail with EADDRINUSE. Remove it only
 * if nothing answers on it; if a live process answers, that is a second instance: refuse to start.
 */
async function removeStaleSocket(p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    const err = new Error(`control socket path ${p} exists and is not a socket`) as Error & { code: string };
    err.code = 'EEXIST';
    throw err;
  }
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) {
    const err = new Error(`another vipmta answers on the control socket ${p}`) as Error & { code: string };
    err.code = 'EADDRINUSE';
    throw err;
  }
  fs.rmSync(p, { force: true });
}
