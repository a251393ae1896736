// The webhook's request against real loopback servers: the headers sent, the reply's status, first
// bytes and Retry-After, a deadline covering a receiver that never answers, an abort, a refused
// connection, and TLS_Verify against a self-signed certificate.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { httpPost } from '../../../src/export/http-post.js';
import { freePort } from '../../helpers/node-process.js';
import { tempDir } from '../../helpers/tmp.js';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

function client(url: string, timeoutMs = 5000, tlsVerify = true) {
  const c = httpPost({ url, headers: ['Authorization: Bearer t0k', 'X-Extra:  two words '], timeoutMs, tlsVerify });
  closers.push(c.close);
  return c;
}

const never = new AbortController().signal;

describe('webhook request', () => {
  it('POSTs the body as JSON with the configured headers, and returns the status, the first 256 bytes and Retry-After', async () => {
    let seen: { method?: string; url?: string; headers: http.IncomingHttpHeaders; body: string } | null = null;
    const port = await listen(http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() };
        res.writeHead(503, { 'retry-after': '7' }).end('x'.repeat(1000));
      });
    }));
    const r = await client(`http://127.0.0.1:${port}/hook?k=1`).post(Buffer.from('[{"a":1}]'), never);
    expect(r).toEqual({ status: 503, head: 'x'.repeat(256), retryAfterMs: 7000 });
    expect(seen).toMatchObject({ method: 'POST', url: '/hook?k=1', body: '[{"a":1}]' });
    expect(seen!.headers).toMatchObject({ 'content-type': 'application/json', 'content-length': '9', authorization: 'Bearer t0k', 'x-extra': 'two words' });
    expect(seen!.headers['user-agent']).toMatch(/^vipmta\//);
  });

  it('fails with ETIMEDOUT when no reply comes in time, ABORT_ERR when stopped, and the connection error otherwise', async () => {
    const port = await listen(http.createServer(() => { /* never answers */ }));
    await expect(client(`http://127.0.0.1:${port}/`, 50).post(Buffer.from('[]'), never)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    const ac = new AbortController();
    const p = client(`http://127.0.0.1:${port}/`).post(Buffer.from('[]'), ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'ABORT_ERR' });
    const closed = await freePort();
    await expect(client(`http://127.0.0.1:${closed}/`).post(Buffer.from('[]'), never)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  describe('over TLS', () => {
    let dir: string;
    let tls: { key: Buffer; cert: Buffer };
    beforeAll(() => {
      dir = tempDir('vipmta-webhook-tls-');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
        '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
      tls = { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) };
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('refuses a self-signed certificate with TLS_Verify, and sends without it', async () => {
      const port = await listen(https.createServer(tls, (_req, res) => res.writeHead(204).end()));
      await expect(client(`https://127.0.0.1:${port}/`).post(Buffer.from('[]'), never)).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
      expect(await client(`https://127.0.0.1:${port}/`, 5000, false).post(Buffer.from('[]'), never)).toMatchObject({ status: 204 });
    });
  });
});
