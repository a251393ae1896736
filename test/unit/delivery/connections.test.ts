// The engine's side of the connection book: each connection has an id; a batch uses the idle
// connection the main thread names (and no other), opens at most `mayOpen` (beyond that the rest
// comes back untried, 'throttled', cut), keeps its connection idle and says so, waits for the
// connections it closes before it answers, reports idle connections that close on their own
// (onIdleClosed), and closeIdle closes named ones. Real sockets on loopback.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryEngine, type OutboundMessage } from '../../../src/delivery/index.js';
import type { ConnUse } from '../../../src/delivery/deliver.js';
import { waitFor } from '../../helpers/wait.js';

interface Sink {
  port: number;
  connections: number;
  /** Sockets open now (server side). */
  open: Set<net.Socket>;
  lines: string[];
  close(): Promise<void>;
}

/** A plain SMTP sink; `quit` false never answers QUIT (the client's wait for it is bounded). */
async function sink(quit = true): Promise<Sink> {
  const s: Sink = { port: 0, connections: 0, open: new Set(), lines: [], close: async () => {} };
  const all = new Set<net.Socket>();
  const server = net.createServer((c) => {
    s.connections++;
    s.open.add(c);
    all.add(c);
    c.on('error', () => {});
    c.on('close', () => s.open.delete(c));
    c.write('220 sink ESMTP\r\n');
    let buf = '';
    let data = false;
    c.on('data', (d) => {
      buf += d.toString('latin1');
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (data) {
          if (line === '.') {
            data = false;
            c.write('250 2.0.0 ok\r\n');
          }
          continue;
        }
        s.lines.push(line);
        if (line.startsWith('EHLO')) c.write('250-sink\r\n250 PIPELINING\r\n');
        else if (line === 'DATA') {
          data = true;
          c.write('354 go ahead\r\n');
        } else if (line === 'QUIT') {
          if (quit) c.end('221 bye\r\n');
        } else c.write('250 2.0.0 ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  s.port = (server.address() as net.AddressInfo).port;
  s.close = () => new Promise<void>((resolve) => { for (const c of all) c.destroy(); server.close(() => resolve()); });
  return s;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function engine(o: { idleTimeoutMs?: number; commandTimeoutMs?: number; closed?: number[] } = {}): DeliveryEngine {
  const e = new DeliveryEngine({
    connectTimeoutMs: 10_000, commandTimeoutMs: o.commandTimeoutMs ?? 10_000, maxDeliveriesPerConnection: 100,
    idleTimeoutMs: o.idleTimeoutMs ?? 60_000,
    ...(o.closed !== undefined ? { onIdleClosed: (id: number) => o.closed!.push(id) } : {}),
    logger: { debug() {}, warn() {} },
  });
  cleanup.push(() => e.close());
  return e;
}

const msgs = (n: number, tag = 'm'): OutboundMessage[] => Array.from({ length: n }, (_, i) => ({ id: `${tag}${i}`, from: 's@src.test', rcpt: [`a${i}@d.test`], body: Buffer.from('Subject: t\r\n\r\nx\r\n') }));

function run(e: DeliveryEngine, port: number, n: number, use: ConnUse, perConnection = 100) {
  return e.run({ name: 'b', bindAddress: null, ehloHostname: 'me.test' }, { domain: 'd.test', routes: [{ host: '127.0.0.1', port }], maxDeliveriesPerConnection: perConnection }, { mode: 'opportunistic', verify: false }, msgs(n), use);
}

describe('connections named by the main thread', () => {
  it('keeps its connection idle, says which, and the next batch that names it uses it', async () => {
    const s = await sink();
    cleanup.push(() => s.close());
    const e = engine();
    const a = await run(e, s.port, 2, { conn: null, mayOpen: 1 });
    expect(a.results.every((m) => m.results[0]!.status === 'delivered')).toBe(true);
    expect(a.opened).toBe(1);
    expect(a.kept).toMatchObject({ deliveries: 2 });
    const b = await run(e, s.port, 1, { conn: a.kept!.id, mayOpen: 0 });
    expect(b.results[0]!.results[0]!.status).toBe('delivered');
    expect(b).toMatchObject({ opened: 0, kept: { id: a.kept!.id, deliveries: 3 } });
    expect(s.connections).toBe(1);
  });

  it('uses no idle connection it was not given: a batch without one opens its own', async () => {
    const s = await sink();
    cleanup.push(() => s.close());
    const e = engine();
    const a = await run(e, s.port, 1, { conn: null, mayOpen: 1 });
    const b = await run(e, s.port, 1, { conn: null, mayOpen: 1 });
    expect(b.kept!.id).not.toBe(a.kept!.id);
    expect(s.connections).toBe(2);
    expect(e.stats().idle).toBe(2);
  });

  it('opens no more than mayOpen: the rest comes back untried, throttled and cut', async () => {
    const s = await sink();
    cleanup.push(() => s.close());
    const e = engine();
    const r = await run(e, s.port, 2, { conn: null, mayOpen: 0 });
    expect(s.connections).toBe(0);
    expect(r).toMatchObject({ opened: 0, kept: null });
    for (const m of r.results) {
      expect(m.cut).toBe(true);
      expect(m.results[0]).toMatchObject({ status: 'deferred', origin: 'local', enhanced: '4.3.0' });
      expect(m.results[0]!.reply).toMatch(/connection limit or throttle/);
    }
    // A connection used up midway (1 delivery each) and no second one allowed: the first
    // message is delivered, the second held.
    const t = await run(e, s.port, 2, { conn: null, mayOpen: 1 }, 1);
    expect(t.results.map((m) => [m.results[0]!.status, m.cut ?? false])).toEqual([['delivered', false], ['deferred', true]]);
    expect(t).toMatchObject({ opened: 1, kept: null });
  });

  it('replaces a named connection the peer closed when it may open one, else holds the batch', async () => {
    const s = await sink();
    cleanup.push(() => s.close());
    const closed: number[] = [];
    const e = engine({ closed });
    const a = await run(e, s.port, 1, { conn: null, mayOpen: 1 });
    for (const c of s.open) c.destroy();
    await waitFor('the idle connection reported closed', () => closed.length === 1);
    expect(closed).toEqual([a.kept!.id]);
    const held = await run(e, s.port, 1, { conn: a.kept!.id, mayOpen: 0 });
    expect(held.results[0]!.cut).toBe(true);
    const b = await run(e, s.port, 1, { conn: a.kept!.id, mayOpen: 1 });
    expect(b.results[0]!.results[0]!.status).toBe('delivered');
    expect(b.opened).toBe(1);
    expect(s.connections).toBe(2);
  });

  it('gives back the named connection it never reached (the destination did not resolve)', async () => {
    const s = await sink();
    cleanup.push(() => s.close());
    const fail = () => Promise.reject(Object.assign(new Error('queryMx ESERVFAIL'), { code: 'ESERVFAIL' }));
    const e = new DeliveryEngine({
      connectTimeoutMs: 10_000, commandTimeoutMs: 10_000, maxDeliveriesPerConnection: 100, idleTimeoutMs: 60_000,
      dns: { resolveMx: fail, resolve4: fail, resolve6: fail }, logger: { debug() {}, warn() {} },
    });
    cleanup.push(() => e.close());
    const a = await run(e, s.port, 1, { conn: null, mayOpen: 1 });
    const r = await e.run({ name: 'b', bindAddress: null, ehloHostname: 'me.test' }, { domain: 'nowhere.test' }, { mode: 'opportunistic', verify: false }, msgs(1), { conn: a.kept!.id, mayOpen: 1 });
    expect(r.results[0]!.results[0]!.status).toBe('deferred');
    expect(r).toMatchObject({ opened: 0, kept: { id: a.kept!.id, deliveries: 1 } });
    expect(e.hasIdle(a.kept!.id)).toBe(true);
  });

  it('answers only after the connections it closed are closed (QUIT said, its wait over)', async () => {
    // The sink never answers QUIT: the engine waits for it (bounded by the command timeout).
    const s = await sink(false);
    cleanup.push(() => s.close());
    const e = engine({ commandTimeoutMs: 300 });
    const r = await run(e, s.port, 1, { conn: null, mayOpen: 1 }, 1);
    expect(r.kept).toBeNull();
    // Before its answer the engine said QUIT and waited for the reply; a fire-and-forget QUIT
    // would not have reached the sink yet.
    expect(s.lines).toContain('QUIT');
    await waitFor('the sink sees the close', () => s.open.size === 0);
  });

  it('reports an idle connection closed by its idle timeout; closeIdle closes one now and says so', async () => {
    const s = await sink();
    cleanup.push(() => s.close());
    const closed: number[] = [];
    const e = engine({ idleTimeoutMs: 50, closed });
    const a = await run(e, s.port, 1, { conn: null, mayOpen: 1 });
    await waitFor('the idle timeout', () => closed.length === 1);
    expect(closed).toEqual([a.kept!.id]);
    const e2 = engine({ closed });
    const b = await run(e2, s.port, 1, { conn: null, mayOpen: 1 });
    expect(e2.hasIdle(b.kept!.id)).toBe(true);
    expect(await e2.closeIdle([b.kept!.id, 999])).toEqual([b.kept!.id]);
    expect(e2.hasIdle(b.kept!.id)).toBe(false);
    // Not reported again as closed on its own: the main thread had asked.
    expect(closed).toEqual([a.kept!.id]);
    expect(a.kept!.id).not.toBe(b.kept!.id);
  });
});
