// A handover cuts every delivery from the address this node gave up, whatever its connection is
// doing (issue 12, section 1): resolving, connecting, waiting for the greeting, EHLO, the STARTTLS
// handshake, a transaction with more messages behind it, idle in the pool. Real sockets on
// loopback, delivering from 127.0.0.2; every timeout of the engine is 60 s, so a delivery that is
// not cut cannot come back within the 10 s the test waits for it.
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryEngine, type DnsResolver, type MessageResult, type OutboundMessage } from '../../../src/delivery/index.js';
import { waitFor } from '../../helpers/wait.js';

const FROM = '127.0.0.2';
const LONG = 60_000;

interface Sink {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Every command line received, in order ("<body>" for a message body). */
  lines: string[];
  close(): Promise<void>;
}

/** A line-based sink on 127.0.0.1: `greeting` null never greets; `answer` undefined says nothing. */
async function sink(greeting: string | null, answer: (line: string) => string | undefined): Promise<Sink> {
  const sockets = new Set<net.Socket>();
  const s: Sink = { port: 0, connections: 0, lines: [], close: async () => {} };
  const server = net.createServer((c) => {
    sockets.add(c);
    s.connections++;
    c.on('error', () => {});
    if (greeting !== null) c.write(greeting + '\r\n');
    let buf = '';
    let data = false;
    c.on('data', (d) => {
      buf += d.toString('latin1');
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (data) {
          if (line !== '.') continue;
          s.lines.push('<body>');
          data = false;
        } else s.lines.push(line);
        const r = answer(line);
        if (r === undefined) continue;
        c.write(r + '\r\n');
        if (r.startsWith('354')) data = true;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  s.port = (server.address() as net.AddressInfo).port;
  s.close = () => new Promise<void>((resolve) => { for (const c of sockets) c.destroy(); server.close(() => resolve()); });
  return s;
}

/** EHLO with `ext`, 354 to DATA, 250 to the rest; `over` decides first (null: say nothing). */
function ordinary(ext: string[], over: (line: string) => string | null | undefined = () => undefined): (line: string) => string | undefined {
  return (line) => {
    const r = over(line);
    if (r === null) return undefined;
    if (r !== undefined) return r;
    if (line.startsWith('EHLO')) return ['250-sink', ...ext.map((e) => `250-${e}`), '250 8BITMIME'].join('\r\n');
    if (line === 'DATA') return '354 go ahead';
    if (line === 'QUIT') return '221 bye';
    return '250 2.0.0 ok';
  };
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function engine(dns?: DnsResolver): DeliveryEngine {
  const e = new DeliveryEngine({
    connectTimeoutMs: LONG, commandTimeoutMs: LONG, dataTimeoutMs: LONG, maxDeliveriesPerConnection: 10,
    logger: { debug() {}, warn() {} }, ...(dns !== undefined ? { dns } : {}),
  });
  cleanup.push(() => e.close());
  return e;
}

const msg = (id: string): OutboundMessage => ({ id, from: 's@src.test', rcpt: [`a-${id}@d.test`, `b-${id}@d.test`], body: Buffer.from('Subject: t\r\n\r\nx\r\n') });
const batch = (n: number): OutboundMessage[] => Array.from({ length: n }, (_, i) => msg(`m${i}`));

/** Starts a delivery from `from` and keeps its results once it returns. */
function start(e: DeliveryEngine, port: number | null, messages: OutboundMessage[], tlsRequired = false, from = FROM) {
  const run = { results: null as MessageResult[] | null };
  void e.deliver({ name: 'b', bindAddress: from, ehloHostname: 'me.test' },
    port === null ? { domain: 'd.test' } : { domain: 'd.test', routes: [{ host: '127.0.0.1', port }] },
    { mode: tlsRequired ? 'required' : 'opportunistic', verify: false }, messages).then((r) => (run.results = r));
  return run;
}

/** Every recipient of every message came back as cut by the handover, deferred, nothing attempted. */
function expectCut(results: MessageResult[], n: number): void {
  expect(results).toHaveLength(n);
  for (const r of results) {
    expect(r.cut).toBe(true);
    expect(r.results).toHaveLength(2);
    for (const x of r.results) {
      expect(x).toMatchObject({ status: 'deferred', origin: 'local', enhanced: '4.4.2' });
      expect(x.reply).toMatch(/no longer holds 127\.0\.0\.2/);
    }
  }
}

const cutResults = (run: { results: MessageResult[] | null }) => waitFor('the cut deliveries to come back', () => run.results, { timeoutMs: 10_000 });

describe('a handover cuts every delivery from the address', () => {
  it('while waiting for the greeting', async () => {
    const s = await sink(null, () => undefined);
    cleanup.push(() => s.close());
    const e = engine();
    const run = start(e, s.port, batch(2));
    await waitFor('the connection', () => s.connections === 1);
    expect(e.abortFrom('127.0.0.3')).toBe(0);
    expect(e.abortFrom(FROM)).toBe(1);
    expectCut(await cutResults(run), 2);
    // The second message did not open another connection from the address.
    expect(s.connections).toBe(1);
  });

  it('while waiting for the reply to EHLO', async () => {
    const s = await sink('220 sink ESMTP', () => undefined);
    cleanup.push(() => s.close());
    const e = engine();
    const run = start(e, s.port, batch(2));
    await waitFor('EHLO', () => s.lines.some((l) => l.startsWith('EHLO')));
    expect(e.abortFrom(FROM)).toBe(1);
    expectCut(await cutResults(run), 2);
    expect(s.connections).toBe(1);
  });

  it('during the STARTTLS handshake', async () => {
    const s = await sink('220 sink ESMTP', ordinary(['STARTTLS'], (l) => (l === 'STARTTLS' ? '220 2.0.0 go ahead' : undefined)));
    cleanup.push(() => s.close());
    const e = engine();
    // The sink says 220 and never speaks TLS: the handshake waits for a ServerHello.
    const run = start(e, s.port, batch(1), true);
    await waitFor('STARTTLS', () => s.lines.includes('STARTTLS'));
    expect(e.abortFrom(FROM)).toBe(1);
    expectCut(await cutResults(run), 1);
    expect(s.connections).toBe(1);
  });

  it('while resolving the MX', async () => {
    const asked: string[] = [];
    const never = (q: string) => { asked.push(q); return new Promise<never>(() => {}); };
    const e = engine({ resolveMx: never, resolve4: never, resolve6: never });
    const run = start(e, null, batch(2));
    await waitFor('the MX query', () => asked.length > 0);
    expect(e.abortFrom(FROM)).toBe(1);
    expectCut(await cutResults(run), 2);
  });

  it('while the TCP connect is unanswered', async () => {
    const { port, stop } = await unansweredPort();
    cleanup.push(stop);
    const e = engine();
    const run = start(e, port, batch(2));
    await waitFor('the connect to start', () => e.stats().opening === 1);
    expect(e.abortFrom(FROM)).toBe(1);
    expectCut(await cutResults(run), 2);
  });

  it('in a transaction, and the messages after it open no connection', async () => {
    const s = await sink('220 sink ESMTP', ordinary(['PIPELINING'], (l) => (l === '.' ? null : undefined))); // never answers the data
    cleanup.push(() => s.close());
    const e = engine();
    const run = start(e, s.port, batch(3));
    await waitFor('the first body', () => s.lines.includes('<body>'));
    expect(e.abortFrom(FROM)).toBe(1);
    expectCut(await cutResults(run), 3);
    expect(s.connections).toBe(1);
  });

  it('idle in the pool, and leaves deliveries from other addresses alone', async () => {
    const ok = await sink('220 sink ESMTP', ordinary(['PIPELINING']));
    cleanup.push(() => ok.close());
    const silent = await sink(null, () => undefined);
    cleanup.push(() => silent.close());
    const e = engine();
    const done = start(e, ok.port, batch(1));
    const r = await waitFor('the delivery', () => done.results);
    expect(r[0]!.results.map((x) => x.status)).toEqual(['delivered', 'delivered']);
    expect(e.stats().idle).toBe(1);
    const other = start(e, silent.port, batch(1), false, '127.0.0.3');
    await waitFor('the other connection', () => silent.connections === 1);
    expect(e.abortFrom(FROM)).toBe(1);
    await waitFor('the pool to be empty', () => e.stats().idle === 0);
    // The delivery from 127.0.0.3 is still running: it is there to be cut.
    expect(other.results).toBeNull();
    expect(e.abortFrom('127.0.0.3')).toBe(1);
    const o = await waitFor('the other delivery', () => other.results);
    expect(o[0]!.cut).toBe(true);
  });
});

/**
 * A port on 127.0.0.1 whose SYNs go unanswered: a listener (backlog 1) on a worker thread whose
 * event loop is blocked, so it never accepts; two connections fill its accept queue, and Linux
 * drops further SYNs while it is full (the connect stays in SYN-SENT).
 */
async function unansweredPort(): Promise<{ port: number; stop: () => Promise<void> }> {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const net = require('node:net');
    const server = net.createServer();
    server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      parentPort.postMessage(server.address().port);
      Atomics.wait(workerData, 0, 0);
      server.close();
    });`, { eval: true, workerData: gate });
  const port = await new Promise<number>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  const fillers: net.Socket[] = [];
  let connected = 0;
  for (let i = 0; i < 3; i++) {
    const c = net.connect({ port, host: '127.0.0.1' });
    c.on('error', () => {});
    c.on('connect', () => connected++);
    fillers.push(c);
  }
  await waitFor('the accept queue to fill', () => connected >= 2);
  return {
    port,
    stop: async () => {
      for (const c of fillers) c.destroy();
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await w.terminate();
    },
  };
}
