// One HTTP(S) POST of an exporter's batch, on node:http/node:https (no dependency: Node 20's
// built-in fetch cannot turn certificate verification off without importing undici's Agent, and
// we want the reply's first bytes and a hard deadline covering connect and reply). Main thread;
// asynchronous, never blocks; one keep-alive connection per exporter.
import http from 'node:http';
import https from 'node:https';
import { VERSION } from '../version.js';

/** What came back: the status, the reply's first bytes (for the log) and Retry-After in ms. */
export interface PostReply {
  status: number;
  head: string;
  retryAfterMs?: number;
}

/** Sends one body; resolves with any HTTP reply, rejects on a connection error, a timeout
 *  (`code: 'ETIMEDOUT'`) or an abort (`code: 'ABORT_ERR'`). */
export type Post = (body: Buffer, signal: AbortSignal) => Promise<PostReply>;

export interface HttpPostOptions {
  url: string;
  /** "Name: value" lines. */
  headers: readonly string[];
  timeoutMs: number;
  tlsVerify: boolean;
}

/** How much of a reply is kept for the log. */
const HEAD_BYTES = 256;

export function httpPost(o: HttpPostOptions): { post: Post; close(): void } {
  const url = new URL(o.url);
  const secure = url.protocol === 'https:';
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: o.tlsVerify })
    : new http.Agent({ keepAlive: true, maxSockets: 1 });
  const headers: Record<string, string> = { 'user-agent': `vipmta/${VERSION}` };
  for (const line of o.headers) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const post: Post = (body, signal) =>
    new Promise<PostReply>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, reply?: PostReply): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (err !== null) reject(err);
        else resolve(reply!);
      };
      const req = (secure ? https : http).request(url, {
        method: 'POST',
        agent,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(body.length) },
      });
      const fail = (code: string, message: string): void => {
        const err = Object.assign(new Error(message), { code });
        finish(err);
        req.destroy(err);
      };
      const timer = setTimeout(() => fail('ETIMEDOUT', `no reply within ${o.timeoutMs} ms`), o.timeoutMs);
      const onAbort = (): void => fail('ABORT_ERR', 'stopped');
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort);
      req.on('error', (err) => finish(err));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (c: Buffer) => {
          if (kept < HEAD_BYTES) {
            chunks.push(c.subarray(0, HEAD_BYTES - kept));
            kept += Math.min(c.length, HEAD_BYTES - kept);
          }
        });
        res.on('error', (err) => finish(err));
        res.on('end', () => {
          const reply: PostReply = { status: res.statusCode ?? 0, head: Buffer.concat(chunks).toString('utf8') };
          const ra = retryAfter(res.headers['retry-after']);
          if (ra !== undefined) reply.retryAfterMs = ra;
          finish(null, reply);
        });
      });
      req.end(body);
    });
  return { post, close: () => agent.destroy() };
}

/** RFC 9110 10.2.3: delay-seconds or an HTTP-date. */
function retryAfter(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}
