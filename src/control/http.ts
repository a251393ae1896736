// The HTTP admin API on uWebSockets.js: GET /health, GET /metrics (Prometheus), GET
// /stats/queues/mailq (JSON), and shaping: GET /shaping/suspensions, GET /shaping/leases, POST /shaping/suspend and
// POST /shaping/resume (arguments in the query string, as the console's); the status page (GET /),
// its document GET /api/cluster/v1/state and its event stream (status-stream.ts). Main thread;
// every answer is computed from in-memory state (the queue index, spool counters): synchronously,
// or for /metrics in prom-client's promise, which reads memory only (a large status document is
// gzipped on zlib's thread pool), so a handler never waits on I/O and never blocks for long.
// No authentication: the config puts it on loopback by default (docs/configuration.md).
import net from 'node:net';
import { gzip } from 'node:zlib';
import uws from '@trufflesuite/uws-js-unofficial';
import type { HttpResponse, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { Logger } from 'pino';
import { VipError } from '../errors.js';
import type { MailqRow, QueueState } from '../queue/views.js';
import { EXPOSITION_CONTENT_TYPE } from './metrics.js';
import type { StatusState } from './status.js';
import { STATUS_PAGE } from './status-page.js';
import { StatusStream } from './status-stream.js';

/** What `mailq` shows, as JSON. */
export interface MailqReport {
  rows: MailqRow[];
  totals: Record<QueueState, number> & { messages: number };
}

export interface AdminHttpOptions {
  /** "ip:port" as configured, for logs. */
  name: string;
  host: string;
  port: number;
  logger: Logger;
  /** The exposition text; called once per GET /metrics. */
  metrics: () => Promise<string>;
  mailq: (filter: { domain?: string; binding?: string }) => MailqReport;
  /** True once the node is shutting down: /health answers 503 so a balancer stops sending. */
  stopping: () => boolean;
  /** What leaves the node degraded (running and delivering, but e.g. refusing new mail): /health
   *  still answers 200, with status "degraded" and these lines. Empty: "ok". */
  problems?: () => string[];
  /** The shaping console's operations (cluster/shaping/console.ts); absent: no /shaping routes. */
  shaping?: ShapingApi;
  /** The status document (node/status.ts); absent: no status page and no /api/cluster routes. */
  status?: () => StatusState;
}

/** What /shaping/* does; a bad argument throws a VipError ERR_CONTROL_BAD_REQUEST (answered 400). */
export interface ShapingApi {
  restrictions(): unknown[];
  suspend(q: { domain: string; binding: string | null; duration: string; reason?: string }): unknown;
  resume(q: { domain: string; binding: string | null }): unknown;
  /** The cluster-wide limits' lease table (GET /shaping/leases); absent: no route. */
  leases?(): unknown;
}

/** One response, ready to write. */
interface Answer {
  status: string;
  type: string;
  body: string | Buffer;
  extra?: [string, string][];
}

const ROUTES = new Set(['/health', '/metrics', '/stats/queues/mailq']);
/** The shaping routes and the method each takes. */
const SHAPING_ROUTES = new Map([['/shaping/suspensions', 'get'], ['/shaping/leases', 'get'], ['/shaping/suspend', 'post'], ['/shaping/resume', 'post']]);
const JSON_TYPE = 'application/json';
const STATE_URL = '/api/cluster/v1/state';
const STREAM_URL = '/api/cluster/v1/stream';
/** Documents above this size go gzipped to a client that accepts it (zlib's thread pool, not the main thread). */
const GZIP_ABOVE = 16 * 1024;

/** LIBUS_LISTEN_EXCLUSIVE_PORT: without it uSockets sets SO_REUSEPORT and a second node shares the port silently. */
const LISTEN_EXCLUSIVE_PORT = 1;

/**
 * True when the native uWS binary loaded; the package otherwise falls back to a slow `ws`-based
 * server after printing a warning to the console (the native module has SSLApp, the fallback not).
 */
export const uwsNative: boolean = typeof (uws as unknown as Record<string, unknown>).SSLApp === 'function';

export class AdminHttpServer {
  private listenSocket: us_listen_socket | null = null;
  private boundPort = 0;
  private readonly stream: StatusStream | null;

  constructor(private readonly opts: AdminHttpOptions) {
    const status = opts.status;
    this.stream = status === undefined ? null
      : new StatusStream({ build: status, onError: (err) => opts.logger.error({ err, listener: opts.name }, 'HTTP admin API: building the status document failed') });
  }

  /** The port actually bound (differs from opts.port when that was 0). */
  get port(): number {
    return this.boundPort;
  }

  /** Binds host:port exclusively; rejects with a VipError whose code is the bind errno (EADDRINUSE, ...). */
  async start(): Promise<void> {
    const { host, port } = this.opts;
    const app = uws.App();
    app.any('/*', (res, req) => {
      // The request object is only valid inside this callback: copy what is needed first.
      const method = req.getMethod().toLowerCase();
      const url = req.getUrl();
      const query = req.getQuery() ?? '';
      if (url === STREAM_URL && method === 'get' && this.stream !== null) {
        this.stream.attach(res);
        return;
      }
      this.serve(res, method, url, query, req.getHeader('accept-encoding'));
    });
    const token = await new Promise<us_listen_socket | false>((resolve) => {
      // The typings lack the (host, port, options, cb) overload that the binary has.
      (app.listen as unknown as (h: string, p: number, o: number, cb: (t: us_listen_socket | false) => void) => void)(host, port, LISTEN_EXCLUSIVE_PORT, resolve);
    });
    if (token === false) throw await bindError(host, port);
    this.listenSocket = token;
    this.boundPort = uws.us_socket_local_port(token as never);
    if (!uwsNative) this.opts.logger.warn('uWebSockets.js native binary did not load; the HTTP admin API runs on its slow fallback');
  }

  /** Stops listening (us_listen_socket_close); requests in flight finish. Safe to call twice. */
  close(): void {
    const t = this.listenSocket;
    this.listenSocket = null;
    if (t !== null) uws.us_listen_socket_close(t);
    this.stream?.close();
  }

  private serve(res: HttpResponse, method: string, url: string, query: string, encodings = ''): void {
    // uWS requires an abort handler on any response not ended inside the callback (/metrics is
    // answered after prom-client's promise); it also covers a provider that throws after a disconnect.
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const send = (a: Answer): void => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(a.status).writeHeader('Content-Type', a.type).writeHeader('Cache-Control', 'no-store');
        for (const [k, v] of a.extra ?? []) res.writeHeader(k, v);
        res.end(a.body);
      });
    };
    let answer: Answer | Promise<Answer>;
    try {
      answer = this.answer(method, url, query, encodings);
    } catch (err) {
      answer = this.failed(err, url);
    }
    if (answer instanceof Promise) answer.then(send, (err: unknown) => send(this.failed(err, url)));
    else send(answer);
  }

  private answer(method: string, url: string, query: string, encodings: string): Answer | Promise<Answer> {
    const status = this.opts.status;
    if (status !== undefined && (url === '/' || url === STATE_URL || url === STREAM_URL)) {
      if (method !== 'get') return { status: '405 Method Not Allowed', type: JSON_TYPE, body: JSON.stringify({ error: 'method not allowed' }), extra: [['Allow', 'GET']] };
      if (url === '/') return { status: '200 OK', type: 'text/html; charset=utf-8', body: STATUS_PAGE };
      return jsonAnswer(JSON.stringify(status()), /\bgzip\b/.test(encodings));
    }
    const shaping = this.opts.shaping;
    const shapingMethod = SHAPING_ROUTES.get(url);
    if (shaping !== undefined && shapingMethod !== undefined && (url !== '/shaping/leases' || shaping.leases !== undefined)) {
      if (method !== shapingMethod) return { status: '405 Method Not Allowed', type: JSON_TYPE, body: JSON.stringify({ error: 'method not allowed' }), extra: [['Allow', shapingMethod.toUpperCase()]] };
      const p = new URLSearchParams(query);
      const binding = p.get('binding');
      const target = { domain: p.get('domain') ?? '', binding: binding === null || binding === '' ? null : binding };
      try {
        const body = url === '/shaping/suspensions' ? { restrictions: shaping.restrictions() }
          : url === '/shaping/leases' ? shaping.leases!()
          : url === '/shaping/suspend' ? shaping.suspend({ ...target, duration: p.get('duration') ?? '', reason: p.get('reason') ?? '' })
          : shaping.resume(target);
        return { status: '200 OK', type: JSON_TYPE, body: JSON.stringify(body) };
      } catch (err) {
        if (err instanceof VipError && err.code === 'ERR_CONTROL_BAD_REQUEST') return { status: '400 Bad Request', type: JSON_TYPE, body: JSON.stringify({ error: err.message }) };
        throw err;
      }
    }
    if (!ROUTES.has(url)) return { status: '404 Not Found', type: JSON_TYPE, body: JSON.stringify({ error: 'not found' }) };
    if (method !== 'get') return { status: '405 Method Not Allowed', type: JSON_TYPE, body: JSON.stringify({ error: 'method not allowed' }), extra: [['Allow', 'GET']] };
    if (url === '/health') {
      // 503 only for "take me out, I am going": a degraded node still runs and delivers, and one
      // restarted by a probe would not start any better (a full spool disk stays full).
      if (this.opts.stopping()) return { status: '503 Service Unavailable', type: JSON_TYPE, body: JSON.stringify({ status: 'stopping' }) };
      const problems = this.opts.problems?.() ?? [];
      return { status: '200 OK', type: JSON_TYPE, body: JSON.stringify(problems.length === 0 ? { status: 'ok' } : { status: 'degraded', problems }) };
    }
    if (url === '/metrics') return this.opts.metrics().then((body) => ({ status: '200 OK', type: EXPOSITION_CONTENT_TYPE, body }));
    const params = new URLSearchParams(query);
    const filter: { domain?: string; binding?: string } = {};
    const d = params.get('domain');
    const b = params.get('binding');
    if (d !== null && d !== '') filter.domain = d;
    if (b !== null && b !== '') filter.binding = b;
    return { status: '200 OK', type: JSON_TYPE, body: JSON.stringify(this.opts.mailq(filter)) };
  }

  /** Bland on the wire, full in the log. */
  private failed(err: unknown, url: string): Answer {
    this.opts.logger.error({ err, url, listener: this.opts.name }, 'HTTP admin API request failed');
    return { status: '500 Internal Server Error', type: JSON_TYPE, body: JSON.stringify({ error: 'internal error' }) };
  }
}

/** A JSON answer, gzipped off the main thread when it is large and the client takes gzip. */
function jsonAnswer(body: string, gzipOk: boolean): Answer | Promise<Answer> {
  if (!gzipOk || body.length < GZIP_ABOVE) return { status: '200 OK', type: JSON_TYPE, body };
  return new Promise((resolve, reject) => gzip(body, (err, z) => {
    if (err !== null) reject(err);
    else resolve({ status: '200 OK', type: JSON_TYPE, body: z, extra: [['Content-Encoding', 'gzip'], ['Vary', 'Accept-Encoding']] });
  }));
}

/**
 * uWS reports a failed listen only as `false`. Ask the kernel why with a plain exclusive bind of
 * the same address (closed at once), so the operator sees EADDRINUSE or EADDRNOTAVAIL, not a guess.
 */
async function bindError(host: string, port: number): Promise<VipError> {
  const where = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  const code = await new Promise<string>((resolve) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'EADDRINUSE'));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve('EADDRINUSE')));
  });
  const why = code === 'EADDRINUSE' ? 'the port is in use (another vipmta or another program?)'
    : code === 'EADDRNOTAVAIL' ? 'the address is not on this host'
    : code === 'EACCES' ? 'a port below 1024 needs privileges'
    : code;
  return new VipError(code, `HTTP admin API cannot listen on ${where}: ${why}`, { syscall: 'listen' });
}
