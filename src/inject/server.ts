// One HTTP injection listener in one worker: uWebSockets.js on Listen's address (SO_REUSEPORT, so
// every worker serves it; the main thread has checked that no other program holds it), POST
// /api/inject/v1 authenticated by a token, the body read under a size limit and a deadline, one
// message per recipient spooled concurrently (the spool's group commit makes a request a handful
// of fsyncs) and the answer sent only when every accepted message is durable. Worker thread;
// never blocks: scrypt and MIME building are asynchronous, the spool commit is the addon's thread.
import fs from 'node:fs';
import uws from '@trufflesuite/uws-js-unofficial';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { Logger } from 'pino';
import { errorCode } from '../errors.js';
import type { AcceptedMessage } from '../message/accepted.js';
import { encodeEnvelope, type SpoolEnvelope } from '../message/envelope.js';
import { receptionPayload } from '../events/build.js';
import { encodeEvent } from '../events/codec.js';
import { rfc5322Date } from '../smtp/date.js';
import { bindingRefusal, TokenCheck } from './auth.js';
import { compose } from './compose.js';
import { RequestCount } from './limits.js';
import { InjectCounters } from './counters.js';
import { parseRequest, recipientProblem, RequestError, type InjectRequest } from './request.js';
import type { InjectListenSpec, InjectSettings, InjectToken } from './settings.js';

/** Where messages go: the spool's writer as a worker sees it (the shape listener/esmtp.ts uses). */
export interface InjectSink {
  begin(): {
    append(chunk: Buffer): void;
    /** Durable when it resolves, `event` in the same group commit; ERR_SPOOL_FULL when full. */
    commit(envelope: Buffer, event?: Buffer): Promise<{ id: string; size: number }>;
    abort(): void;
  };
}

export interface InjectServerOptions {
  spec: InjectListenSpec;
  settings: InjectSettings;
  workerSlot: number;
  sink: InjectSink | null;
  logger: Logger;
  /** Each durable message, as ESMTP reports them (the host batches them to the main thread). */
  onMessage: (m: AcceptedMessage) => void;
  /** The node is drained (`cluster drain`): new requests get 503. */
  drained?: () => boolean;
}

export const INJECT_PATH = '/api/inject/v1';
const JSON_TYPE = 'application/json';
/** Retry-After of a full spool, of a busy server and of a closing one, in seconds. */
const RETRY_FULL = '60';
const RETRY_BUSY = '1';

interface Answer {
  status: string;
  body: unknown;
  retryAfter?: string;
  close?: boolean;
}

/** The binary has App.close() (closes every socket of the app); the typings lack it. */
const closeApp = (app: TemplatedApp): void => (app as unknown as { close(): void }).close();

const refusal = (status: string, error: string, field?: string, more?: Partial<Answer>): Answer => ({ status, body: field === undefined ? { error } : { error, field }, ...more });

export interface InjectResult {
  success_count: number;
  fail_count: number;
  failed_recipients: string[];
  errors: string[];
  /** vipmta's addition: the queue id of each accepted recipient's message, by address. */
  queue_ids: Record<string, string>;
}

export class InjectServer {
  private app: TemplatedApp | null = null;
  private listenSocket: us_listen_socket | null = null;
  private readonly tokens: TokenCheck;
  private readonly bindings: Set<string>;
  private readonly count: RequestCount;
  private readonly counters: InjectCounters;
  private readonly inFlight = new Set<Promise<void>>();
  private closing = false;
  private active = 0;

  constructor(private readonly o: InjectServerOptions) {
    this.tokens = new TokenCheck(o.settings.tokens);
    this.bindings = new Set(o.settings.bindingNames);
    this.count = new RequestCount(o.settings.requests, o.workerSlot);
    this.counters = new InjectCounters(o.settings.counters);
  }

  get activeSessions(): number {
    return this.active;
  }

  /** Listens with SO_REUSEPORT (uSockets' default), beside this listener in the other workers. */
  async listen(): Promise<void> {
    const s = this.o.settings;
    // The package falls back to a slow ws-based server when its binary does not load (it then has no SSLApp).
    if (typeof (uws as unknown as Record<string, unknown>).SSLApp !== 'function') throw Object.assign(new Error('HTTP injection needs uWebSockets.js\'s native binary, which did not load'), { code: 'ERR_UWS_NATIVE' });
    if (s.tls !== null) {
      // uWS does not say why a certificate did not load: check first, so the error names the file.
      fs.accessSync(s.tls.cert, fs.constants.R_OK);
      fs.accessSync(s.tls.key, fs.constants.R_OK);
    }
    const app = s.tls === null ? uws.App() : uws.SSLApp({ cert_file_name: s.tls.cert, key_file_name: s.tls.key });
    app.post(INJECT_PATH, (res, req) => this.request(res, req));
    app.any('/*', (res) => {
      this.counters.answered(404);
      res.cork(() => res.writeStatus('404 Not Found').writeHeader('Content-Type', JSON_TYPE).end(JSON.stringify({ error: `not found; POST ${INJECT_PATH}` })));
    });
    const { host, port } = this.o.spec;
    const token = await new Promise<us_listen_socket | false>((resolve) => {
      (app.listen as unknown as (h: string, p: number, o: number, cb: (t: us_listen_socket | false) => void) => void)(host, port, 0, resolve);
    });
    if (token === false) {
      closeApp(app);
      throw Object.assign(new Error(`Http_Injection "${this.o.spec.name}" cannot listen (port in use or address not on this host)`), { code: 'EADDRINUSE' });
    }
    this.app = app;
    this.listenSocket = token;
  }

  /** Stops accepting; requests in progress finish (their messages are durable and answered) within
   *  graceMs, then every connection is closed. Resolves with how many requests were cut off. */
  async close(graceMs: number): Promise<number> {
    this.closing = true;
    if (this.listenSocket !== null) uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    let cut = 0;
    if (this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), Math.max(1, graceMs))));
      const done = await Promise.race([Promise.allSettled([...this.inFlight]).then(() => 'done' as const), timeout]);
      clearTimeout(timer);
      if (done === 'late') cut = this.inFlight.size;
    }
    if (this.app !== null) closeApp(this.app);
    this.app = null;
    return cut;
  }

  private request(res: HttpResponse, req: HttpRequest): void {
    // The request object is valid only inside this callback: copy what is needed first.
    const auth = req.getHeader('authorization');
    const length = Number(req.getHeader('content-length') || '0');
    const client = Buffer.from(res.getRemoteAddressAsText()).toString();
    let aborted = false;
    let answered = false;
    let complete = false;
    let onAbort = (): void => undefined;
    res.onAborted(() => {
      aborted = true;
      onAbort();
    });
    const send = (a: Answer): void => {
      if (aborted || answered) return;
      answered = true;
      this.counters.answered(a.status);
      res.cork(() => {
        res.writeStatus(a.status).writeHeader('Content-Type', JSON_TYPE).writeHeader('Cache-Control', 'no-store');
        if (a.retryAfter !== undefined) res.writeHeader('Retry-After', a.retryAfter);
        res.end(JSON.stringify(a.body), a.close === true);
      });
    };
    const s = this.o.settings;
    if (this.closing || this.o.drained?.() === true) {
      send(refusal('503 Service Unavailable', 'not accepting messages (shutting down or drained); try another server', undefined, { retryAfter: RETRY_BUSY, close: true }));
      return;
    }
    if (length > s.maxBodySize) {
      send(refusal('413 Payload Too Large', `the body is larger than ${s.maxBodySize} bytes`, 'body', { close: true }));
      return;
    }
    if (!this.count.tryOpen(s.maxConcurrent)) {
      send(refusal('429 Too Many Requests', `${s.maxConcurrent} requests in progress; retry later`, undefined, { retryAfter: RETRY_BUSY, close: true }));
      return;
    }
    this.active++;
    const chunks: Buffer[] = [];
    let size = 0;
    let done!: () => void;
    const work = new Promise<void>((r) => (done = r));
    this.inFlight.add(work);
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      this.inFlight.delete(work);
      this.active--;
      this.count.close();
      done();
    };
    // A slow client holds a slot only until the deadline (uWS's own idle timeout ends a silent one).
    const deadline = setTimeout(() => {
      if (complete) return;
      // end(..., closeConnection) closes the connection once the answer is written.
      send(refusal('408 Request Timeout', `the body did not arrive within ${s.requestDeadlineMs} ms`, 'body', { close: true }));
      finish();
    }, s.requestDeadlineMs);
    // A client gone before its body was whole: nothing was spooled, the slot is free.
    onAbort = () => {
      if (complete) return;
      complete = true;
      clearTimeout(deadline);
      finish();
    };
    res.onData((ab, isLast) => {
      if (complete || answered) return;
      size += ab.byteLength;
      if (size > s.maxBodySize) {
        complete = true;
        clearTimeout(deadline);
        send(refusal('413 Payload Too Large', `the body is larger than ${s.maxBodySize} bytes`, 'body', { close: true }));
        finish();
        return;
      }
      // The ArrayBuffer is uWS's and reused after this call: copy.
      chunks.push(Buffer.from(new Uint8Array(ab).slice()));
      if (!isLast) return;
      complete = true;
      clearTimeout(deadline);
      this.handle(Buffer.concat(chunks, size), auth, client).then(send, (err: unknown) => {
        this.o.logger.error({ err, listener: this.o.spec.name }, 'HTTP injection: request failed');
        send(refusal('500 Internal Server Error', 'internal error'));
      }).finally(finish);
    });
  }

  private async handle(body: Buffer, auth: string, client: string): Promise<Answer> {
    const s = this.o.settings;
    const token = auth === '' ? null : await this.tokens.check(auth);
    if (token === null) return { ...refusal('401 Unauthorized', auth === '' ? 'an Authorization header is required (Bearer TOKEN)' : 'the token is not valid'), retryAfter: undefined };
    let request: InjectRequest;
    try {
      request = parseRequest(body, s.maxRecipients);
    } catch (err) {
      if (err instanceof RequestError) return refusal(err.status === 413 ? '413 Payload Too Large' : '400 Bad Request', err.message, err.field);
      throw err;
    }
    if (request.binding !== null) {
      const why = bindingRefusal(token, request.binding, this.bindings);
      if (why !== null) return refusal('403 Forbidden', why, 'binding');
    }
    if (this.o.sink === null) return refusal('503 Service Unavailable', 'no spool', undefined, { retryAfter: RETRY_FULL });
    return this.spool(request, token, client);
  }

  /** Builds and commits every recipient's message at once; resolves once all are durable or failed. */
  private async spool(request: InjectRequest, token: InjectToken, client: string): Promise<Answer> {
    const s = this.o.settings;
    const sink = this.o.sink!;
    const arrival = Date.now();
    const tls = s.tls !== null;
    const received = Buffer.from(
      `Received: from [${client.replace(/^::ffff:/, '')}]\r\n\tby ${s.hostname} (vipmta) with HTTP${tls ? 'S' : ''}A;\r\n\t${rfc5322Date(new Date(arrival))}\r\n`,
      'latin1',
    );
    const headers: Record<string, string> = request.binding === null ? {} : { 'x-binding': request.binding };
    const listener = this.o.spec.listener;
    let full = 0;
    const outcomes = await Promise.all(request.recipients.map(async (r): Promise<{ email: string; id?: string; error?: string }> => {
      const problem = recipientProblem(r.email);
      if (problem !== null) return { email: r.email, error: `${r.email}: ${problem}` };
      let composed;
      try {
        composed = await compose(request, r, s.hostname);
      } catch (err) {
        return { email: r.email, error: `${r.email}: the message could not be built (${(err as Error).message})` };
      }
      const h = composed.messageId === null ? headers : { ...headers, 'message-id': composed.messageId };
      const envelope: SpoolEnvelope = { v: 1, from: request.envelopeSender, rcpt: [r.email], arrival, client, helo: '', user: token.name, tls, listener, headers: h };
      const w = sink.begin();
      w.append(received);
      w.append(composed.message);
      try {
        const { id, size } = await w.commit(encodeEnvelope(envelope), encodeEvent(receptionPayload(envelope, received.length + composed.message.length)));
        this.o.onMessage({ id, size, arrival, from: envelope.from, rcpt: envelope.rcpt, headers: h, listener, client });
        return { email: r.email, id };
      } catch (err) {
        if (errorCode(err) === 'ERR_SPOOL_FULL') {
          full++;
          return { email: r.email, error: `${r.email}: the spool is full; retry later` };
        }
        this.o.logger.error({ err, listener: this.o.spec.name }, 'HTTP injection: spool commit failed');
        return { email: r.email, error: `${r.email}: local error in spooling` };
      }
    }));
    const result: InjectResult = { success_count: 0, fail_count: 0, failed_recipients: [], errors: [], queue_ids: {} };
    for (const o of outcomes) {
      if (o.id !== undefined) {
        result.success_count++;
        result.queue_ids[o.email] = o.id;
      } else {
        result.fail_count++;
        result.failed_recipients.push(o.email);
        result.errors.push(o.error!);
      }
    }
    this.counters.recipients(result.success_count, result.fail_count);
    // A full spool is never a 200: 507 with what was taken (durable, will be delivered) and what
    // to send again later.
    if (full > 0) return { status: '507 Insufficient Storage', body: result, retryAfter: RETRY_FULL };
    return { status: '200 OK', body: result };
  }
}
