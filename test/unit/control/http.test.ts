// The HTTP admin server on uWebSockets.js with stub providers: routes, status codes, headers, the
// mailq filter, a failing provider, an exclusive bind that reports EADDRINUSE, and close().
// Real sockets on 127.0.0.1 (kernel-chosen ports); no vipmta process.
import net from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminHttpServer, uwsNative, type AdminHttpOptions, type MailqReport } from '../../../src/control/http.js';

const servers: AdminHttpServer[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

const report: MailqReport = {
  rows: [{ bindingGroup: 'default', binding: 'default', domain: 'example.com', active: 2, deferred: 0, hold: 0 }],
  totals: { messages: 2, active: 2, deferred: 0, hold: 0 },
};

async function serve(over: Partial<AdminHttpOptions> = {}): Promise<{ server: AdminHttpServer; base: string; seen: object[] }> {
  const seen: object[] = [];
  const server = new AdminHttpServer({
    name: '127.0.0.1:0', host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }),
    metrics: async () => '# HELP x X.\n# TYPE x counter\nx 1\n',
    mailq: (f) => (seen.push(f), report),
    stopping: () => false,
    ...over,
  });
  await server.start();
  servers.push(server);
  return { server, base: `http://127.0.0.1:${server.port}`, seen };
}

describe('HTTP admin server', () => {
  it('loads the native uWebSockets.js binary, not its fallback', () => {
    expect(uwsNative).toBe(true);
  });

  it('answers /health, /metrics and /stats/queues/mailq with the right types', async () => {
    const { base, seen } = await serve();
    const h = await fetch(`${base}/health`);
    expect(h.status).toBe(200);
    expect(h.headers.get('content-type')).toBe('application/json');
    expect(await h.json()).toEqual({ status: 'ok' });
    const m = await fetch(`${base}/metrics`);
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await m.text()).toBe('# HELP x X.\n# TYPE x counter\nx 1\n');
    const q = await fetch(`${base}/stats/queues/mailq?domain=example.com&binding=default`);
    expect(q.status).toBe(200);
    expect(await q.json()).toEqual(report);
    expect(seen).toEqual([{ domain: 'example.com', binding: 'default' }]);
  });

  it('answers 404 for unknown paths and 405 with Allow: GET for other methods', async () => {
    const { base } = await serve();
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/health/`)).status).toBe(404);
    const p = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    expect(p.status).toBe(405);
    expect(p.headers.get('allow')).toBe('GET');
    expect((await fetch(`${base}/stats/queues/mailq`, { method: 'DELETE' })).status).toBe(405);
  });

  it('answers 503 on /health while the node stops', async () => {
    const { base } = await serve({ stopping: () => true });
    const h = await fetch(`${base}/health`);
    expect(h.status).toBe(503);
    expect(await h.json()).toEqual({ status: 'stopping' });
  });

  it('answers 200 "degraded" with the problems while the node runs degraded, 503 once it stops', async () => {
    let stopping = false;
    const { base } = await serve({ problems: () => ['spool full: refusing messages with 452 4.3.1'], stopping: () => stopping });
    const h = await fetch(`${base}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'degraded', problems: ['spool full: refusing messages with 452 4.3.1'] });
    stopping = true;
    expect((await fetch(`${base}/health`)).status).toBe(503);
  });

  it('answers a bland 500 when a provider throws or rejects, and keeps serving', async () => {
    const broke = (): never => {
      throw new Error('/secret/path broke');
    };
    const { base } = await serve({ metrics: async () => broke(), mailq: broke });
    const m = await fetch(`${base}/metrics`);
    expect(m.status).toBe(500);
    expect(await m.text()).toBe('{"error":"internal error"}');
    const q = await fetch(`${base}/stats/queues/mailq`);
    expect(q.status).toBe(500);
    expect(await q.text()).toBe('{"error":"internal error"}');
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('refuses a port another socket holds with EADDRINUSE, even another uWS server', async () => {
    const { server } = await serve();
    const second = new AdminHttpServer({
      name: 'x', host: '127.0.0.1', port: server.port, logger: pino({ level: 'silent' }),
      metrics: async () => '', mailq: () => report, stopping: () => false,
    });
    await expect(second.start()).rejects.toMatchObject({ code: 'EADDRINUSE', message: expect.stringContaining(`127.0.0.1:${server.port}`) });
  });

  it('stops listening on close()', async () => {
    const { server, base } = await serve();
    const port = server.port;
    expect((await fetch(`${base}/health`)).status).toBe(200);
    server.close();
    server.close();
    const refused = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(false)));
      c.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});
