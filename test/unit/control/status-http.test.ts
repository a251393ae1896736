// The status routes of the HTTP admin server with a stub document: the page, the document gzipped
// only when asked and large, the stream over a real socket, and no routes without a provider.
// Real sockets on 127.0.0.1 (kernel-chosen ports); no vipmta process.
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminHttpServer, type AdminHttpOptions } from '../../../src/control/http.js';
import { STATUS_VERSION, type StatusState } from '../../../src/control/status.js';

const servers: AdminHttpServer[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function doc(queues: number): StatusState {
  return {
    version: STATUS_VERSION, seq: 0, generatedAt: 1, node: { name: 'n1', version: '1', startedAt: 0, pid: 1 }, cluster: null, members: [], addresses: [],
    queues: Array.from({ length: queues }, (_, i) => ({ bindingGroup: 'default', binding: `b${i}`, active: 1, deferred: 0, hold: 0 })),
    nodes: [], mmove: [], failovers: [], shaping: [],
  };
}

async function serve(over: Partial<AdminHttpOptions> = {}): Promise<string> {
  const server = new AdminHttpServer({
    name: '127.0.0.1:0', host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }),
    metrics: async () => '', mailq: () => ({ rows: [], totals: { messages: 0, active: 0, deferred: 0, hold: 0 } }), stopping: () => false,
    ...over,
  });
  await server.start();
  servers.push(server);
  return `http://127.0.0.1:${server.port}`;
}

/** A GET with exactly these headers (fetch adds its own Accept-Encoding). */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

describe('status routes', () => {
  it('serve the page and the document, gzipped only when asked and large', async () => {
    let n = 2;
    const base = await serve({ status: () => doc(n) });
    const page = await get(`${base}/`, {});
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body.toString()).toContain('<title>vipmta status</title>');
    const small = await get(`${base}/api/cluster/v1/state`, { 'accept-encoding': 'gzip' });
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(small.body.toString())).toEqual(doc(2));
    n = 1000;
    const big = await get(`${base}/api/cluster/v1/state`, { 'accept-encoding': 'gzip, deflate' });
    expect(big.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(big.body).toString())).toEqual(doc(1000));
    const plain = await get(`${base}/api/cluster/v1/state`, {});
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(plain.body.toString())).toEqual(doc(1000));
  });

  it('stream the document first over server-sent events', async () => {
    const base = await serve({ status: () => doc(1) });
    const ac = new AbortController();
    const r = await fetch(`${base}/api/cluster/v1/stream`, { signal: ac.signal });
    expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = r.body!.getReader();
    let text = '';
    while (!text.includes('\n\nevent: state\n') || !text.endsWith('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    const data = JSON.parse(/^data: (.*)$/m.exec(text)![1]!) as StatusState;
    expect(data.queues).toEqual(doc(1).queues);
    expect(data.seq).toBe(1);
  });

  it('are not there without a status provider', async () => {
    const base = await serve();
    expect((await get(`${base}/`, {})).status).toBe(404);
    expect((await get(`${base}/api/cluster/v1/state`, {})).status).toBe(404);
    expect((await get(`${base}/api/cluster/v1/stream`, {})).status).toBe(404);
  });
});
