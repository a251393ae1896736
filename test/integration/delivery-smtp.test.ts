// The delivery engine against real smtp-server sinks over loopback: source address, EHLO name,
// pipelining, several recipients per transaction, connection reuse, per-recipient results, failures
// at MAIL and DATA, a refused connection, STARTTLS, and the body bytes. No DNS: routes or a fake resolver.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryEngine, type BindingIdentity, type DeliveryEngineOptions, type OutboundMessage, type TlsPolicy } from '../../src/delivery/index.js';
import type { DnsResolver } from '../../src/delivery/mx.js';
import { startProxy, startSink, type Sink } from './delivery-sink.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const silent = { debug() {}, warn() {} };
const plain: TlsPolicy = { mode: 'opportunistic', verify: false };
const binding: BindingIdentity = { name: 'b1', bindAddress: '127.0.0.3', ehloHostname: 'out1.vipmta.test' };

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function engine(o: Partial<DeliveryEngineOptions> = {}): DeliveryEngine {
  const e = new DeliveryEngine({ connectTimeoutMs: 2000, commandTimeoutMs: 5000, maxDeliveriesPerConnection: 100, logger: silent, dns: noDns, ...o });
  cleanup.push(() => e.close());
  return e;
}
async function sink(o: Parameters<typeof startSink>[0] = {}): Promise<Sink> {
  const s = await startSink(o);
  cleanup.push(() => s.close());
  return s;
}
const noDns: DnsResolver = {
  resolveMx: () => Promise.reject(new Error('no DNS in tests')),
  resolve4: () => Promise.reject(new Error('no DNS in tests')),
  resolve6: () => Promise.reject(new Error('no DNS in tests')),
};
const route = (s: { port: number }, host = '127.0.0.1') => ({ domain: 'dest.test', routes: [{ host, port: s.port }] });

/** Wire form (CRLF, dot-stuffed) of a small message, and what the sink must see (unstuffed). */
function message(id: string, rcpt: string[], lines: string[] = ['hello']): { msg: OutboundMessage; expected: Buffer } {
  const all = [`From: <sender@src.test>`, `Subject: ${id}`, '', ...lines];
  const wire = all.map((l) => (l.startsWith('.') ? '.' + l : l)).join('\r\n') + '\r\n';
  return { msg: { id, from: 'sender@src.test', rcpt, body: Buffer.from(wire, 'latin1') }, expected: Buffer.from(all.join('\r\n') + '\r\n', 'latin1') };
}

describe('delivery', () => {
  it('connects from the binding\'s address, says EHLO with its hostname, and delivers the body byte for byte', async () => {
    const s = await sink();
    const { msg, expected } = message('m1', ['a@dest.test'], ['.starts with a dot', '..two dots', '.', 'tail', 'caf\u00e9 8bit \u00ff']);
    const [r] = await engine().deliver(binding, route(s), plain, [msg]);
    expect(r!.results).toEqual([{
      rcpt: 'a@dest.test', status: 'delivered', code: 250, enhanced: expect.any(String), reply: expect.stringMatching(/^250 /),
      origin: 'remote', remoteHost: '127.0.0.1', remoteAddress: '127.0.0.1',
    }]);
    expect(r!.localAddress).toBe('127.0.0.3');
    expect(s.connections[0]!.remoteAddress).toBe('127.0.0.3');
    expect(s.connections[0]!.ehlo).toBe('out1.vipmta.test');
    expect(s.transactions[0]!.body.equals(expected)).toBe(true);
  });

  it('adds the CRLF before the end-of-data mark when a body lacks it, and sends an empty body', async () => {
    const s = await sink();
    const e = engine();
    const res = await e.deliver(binding, route(s), plain, [
      { id: 'x', from: '', rcpt: ['a@dest.test'], body: Buffer.from('Subject: x\r\n\r\nno newline at end') },
      { id: 'y', from: '', rcpt: ['a@dest.test'], body: Buffer.alloc(0) },
    ]);
    expect(res.map((r) => r.results[0]!.status)).toEqual(['delivered', 'delivered']);
    expect(s.transactions[0]!.body.toString()).toBe('Subject: x\r\n\r\nno newline at end\r\n');
    expect(s.transactions[0]!.from).toBe('');
    expect(s.transactions[1]!.body.length).toBe(0);
  });

  it('pipelines MAIL, every RCPT and DATA in one write when the server offers PIPELINING', async () => {
    const s = await sink();
    const proxy = await startProxy(s.port);
    cleanup.push(() => proxy.close());
    const { msg } = message('p', ['a@dest.test', 'b@dest.test', 'c@dest.test']);
    const [r] = await engine().deliver(binding, route(proxy), plain, [msg]);
    expect(r!.results.map((x) => x.status)).toEqual(['delivered', 'delivered', 'delivered']);
    const size = msg.body.length;
    expect(proxy.chunks).toContain(`MAIL FROM:<sender@src.test> SIZE=${size}\r\nRCPT TO:<a@dest.test>\r\nRCPT TO:<b@dest.test>\r\nRCPT TO:<c@dest.test>\r\nDATA\r\n`);
    // One transaction with all three recipients.
    expect(s.transactions).toHaveLength(1);
    expect(s.transactions[0]!.rcpt).toEqual(['a@dest.test', 'b@dest.test', 'c@dest.test']);
  });

  it('sends one command at a time to a server without PIPELINING', async () => {
    const s = await sink({ pipelining: false });
    const proxy = await startProxy(s.port);
    cleanup.push(() => proxy.close());
    const { msg } = message('p', ['a@dest.test', 'b@dest.test']);
    const [r] = await engine().deliver(binding, route(proxy), plain, [msg]);
    expect(r!.results.map((x) => x.status)).toEqual(['delivered', 'delivered']);
    expect(proxy.chunks.filter((c) => /^(MAIL|RCPT|DATA)/.test(c))).toEqual([
      `MAIL FROM:<sender@src.test> SIZE=${msg.body.length}\r\n`, 'RCPT TO:<a@dest.test>\r\n', 'RCPT TO:<b@dest.test>\r\n', 'DATA\r\n',
    ]);
  });

  it('delivers following messages over the same connection, across batches, up to the limit', async () => {
    const s = await sink();
    const e = engine({ maxDeliveriesPerConnection: 4 });
    const batch = (n: number, p: string) => Array.from({ length: n }, (_, i) => message(`${p}${i}`, [`r${i}@dest.test`]).msg);
    const first = await e.deliver(binding, route(s), plain, batch(3, 'a'));
    expect(first.every((m) => m.results[0]!.status === 'delivered')).toBe(true);
    expect(s.connections).toHaveLength(1);
    // The next batch reuses the idle connection for one more, then opens a second one.
    await e.deliver(binding, route(s), plain, batch(3, 'b'));
    expect(s.transactions).toHaveLength(6);
    expect(s.connections).toHaveLength(2);
    const perConnection = s.transactions.reduce((m, t) => m.set(t.connection, (m.get(t.connection) ?? 0) + 1), new Map<string, number>());
    expect([...perConnection.values()]).toEqual([4, 2]);
    expect(e.stats()).toMatchObject({ connectionsOpened: 2, connectionsReused: 1, transactions: 6 });
  });

  it('does not reuse a connection for another binding', async () => {
    const s = await sink();
    const e = engine();
    await e.deliver(binding, route(s), plain, [message('a', ['a@dest.test']).msg]);
    await e.deliver({ name: 'b2', bindAddress: '127.0.0.4', ehloHostname: 'out2.vipmta.test' }, route(s), plain, [message('b', ['a@dest.test']).msg]);
    expect(s.connections.map((c) => [c.remoteAddress, c.ehlo])).toEqual([['127.0.0.3', 'out1.vipmta.test'], ['127.0.0.4', 'out2.vipmta.test']]);
  });

  it('drops an idle connection the server closed and opens a new one for the next batch', async () => {
    const s = await sink({ idleTimeoutMs: 300 });
    const e = engine();
    await e.deliver(binding, route(s), plain, [message('a', ['a@dest.test']).msg]);
    expect(e.stats().idle).toBe(1);
    await waitFor('the idle connection dropped', () => e.stats().idle === 0, { timeoutMs: 5000, intervalMs: 20 });
    const [r] = await e.deliver(binding, route(s), plain, [message('b', ['a@dest.test']).msg]);
    expect(r!.results[0]!.status).toBe('delivered');
    expect(s.connections).toHaveLength(2);
  });

  it('reports 2xx, 4xx and 5xx per recipient', async () => {
    const s = await sink({
      rcpt: (a) => a.startsWith('later') ? { code: 450, text: 'Mailbox busy' } : a.startsWith('nobody') ? { code: 550, text: 'No such user' } : null,
    });
    const { msg } = message('m', ['ok@dest.test', 'later@dest.test', 'nobody@dest.test', 'ok2@dest.test']);
    const [r] = await engine().deliver(binding, route(s), plain, [msg]);
    expect(r!.results.map((x) => [x.rcpt, x.status, x.code, x.enhanced])).toEqual([
      ['ok@dest.test', 'delivered', 250, expect.stringMatching(/^2\./)],
      ['later@dest.test', 'deferred', 450, expect.stringMatching(/^4\./)],
      ['nobody@dest.test', 'bounced', 550, expect.stringMatching(/^5\./)],
      ['ok2@dest.test', 'delivered', 250, expect.stringMatching(/^2\./)],
    ]);
    expect(r!.results[2]!.reply).toBe(`550 ${r!.results[2]!.enhanced} No such user`);
    expect(s.transactions[0]!.rcpt).toEqual(['ok@dest.test', 'ok2@dest.test']);
  });

  it('defers every accepted recipient on a 4xx at the end of DATA, and keeps the connection usable', async () => {
    let refuse = true;
    const s = await sink({ data: () => (refuse ? { code: 451, text: 'Try again later' } : null) });
    const e = engine();
    const { msg } = message('m', ['a@dest.test', 'b@dest.test', 'nobody@dest.test']);
    const [r] = await e.deliver(binding, route(s), plain, [msg]);
    expect(r!.results.map((x) => [x.status, x.code])).toEqual([['deferred', 451], ['deferred', 451], ['deferred', 451]]);
    refuse = false;
    const [r2] = await e.deliver(binding, route(s), plain, [message('n', ['a@dest.test']).msg]);
    expect(r2!.results[0]!.status).toBe('delivered');
    expect(s.connections).toHaveLength(1);
  });

  it('bounces every recipient on a 5xx at MAIL, then delivers the next message after RSET', async () => {
    const s = await sink({ mail: (a) => (a === 'bad@src.test' ? { code: 553, text: 'Sender refused' } : null) });
    const bad = message('bad', ['a@dest.test', 'b@dest.test']).msg;
    bad.from = 'bad@src.test';
    const good = message('good', ['a@dest.test']).msg;
    const [r1, r2] = await engine().deliver(binding, route(s), plain, [bad, good]);
    expect(r1!.results.map((x) => [x.status, x.code, x.enhanced])).toEqual([['bounced', 553, '5.1.3'], ['bounced', 553, '5.1.3']]);
    expect(r2!.results[0]!.status).toBe('delivered');
    expect(s.connections).toHaveLength(1);
  });

  it('splits a message with many recipients into transactions of at most maxRecipientsPerTransaction', async () => {
    const s = await sink();
    const rcpt = Array.from({ length: 5 }, (_, i) => `r${i}@dest.test`);
    const [r] = await engine({ maxRecipientsPerTransaction: 2 }).deliver(binding, route(s), plain, [message('m', rcpt).msg]);
    expect(r!.results.map((x) => x.rcpt)).toEqual(rcpt);
    expect(r!.results.every((x) => x.status === 'delivered')).toBe(true);
    expect(s.transactions.map((t) => t.rcpt.length)).toEqual([2, 2, 1]);
  });

  it('defers everything with the reason when the connection is refused', async () => {
    const port = await closedPort();
    const res = await engine().deliver(binding, { domain: 'dest.test', routes: [{ host: '127.0.0.1', port }] }, plain,
      [message('a', ['a@dest.test', 'b@dest.test']).msg, message('b', ['c@dest.test']).msg]);
    for (const m of res) {
      for (const x of m.results) {
        expect(x).toMatchObject({ status: 'deferred', code: 451, enhanced: '4.4.1', origin: 'local', reply: `4.4.1 connect to 127.0.0.1:${port} failed: ECONNREFUSED` });
      }
    }
  });

  it('tries the next route when the first does not answer', async () => {
    const s = await sink();
    const port = await closedPort();
    const [r] = await engine().deliver(binding, { domain: 'dest.test', routes: [{ host: '127.0.0.1', port }, { host: '127.0.0.1', port: s.port }] }, plain,
      [message('a', ['a@dest.test']).msg]);
    expect(r!.results[0]!.status).toBe('delivered');
  });

  it('finds the MX through the injected resolver', async () => {
    const s = await sink();
    const dns: DnsResolver = {
      resolveMx: async (n) => (n === 'dest.test' ? [{ exchange: 'mx.dest.test', priority: 10 }] : []),
      resolve4: async (n) => (n === 'mx.dest.test' ? ['127.0.0.1'] : []),
      resolve6: async () => [],
    };
    const [r] = await engine({ dns, mxPort: s.port }).deliver(binding, { domain: 'dest.test' }, plain, [message('a', ['a@dest.test']).msg]);
    expect(r!.results[0]).toMatchObject({ status: 'delivered', remoteHost: 'mx.dest.test', remoteAddress: '127.0.0.1' });
  });

  it('bounces a null-MX domain without connecting', async () => {
    const dns: DnsResolver = { ...noDns, resolveMx: async () => [{ exchange: '', priority: 0 }] };
    const [r] = await engine({ dns }).deliver(binding, { domain: 'nomail.test' }, plain, [message('a', ['a@nomail.test']).msg]);
    expect(r!.results[0]).toMatchObject({ status: 'bounced', code: 556, enhanced: '5.1.10', origin: 'local' });
  });
});

describe('delivery over TLS', () => {
  let dir: string;
  let tlsFiles: { key: Buffer; cert: Buffer };
  beforeAll(() => {
    dir = tempDir('vipmta-delivery-tls-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    tlsFiles = { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) };
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('uses STARTTLS when offered, without checking a self-signed certificate', async () => {
    const s = await sink({ tls: tlsFiles });
    const { msg, expected } = message('t', ['a@dest.test'], ['.dot']);
    const [r] = await engine().deliver(binding, route(s), plain, [msg]);
    expect(r!.results[0]!.status).toBe('delivered');
    expect(s.connections[0]).toMatchObject({ secure: true, remoteAddress: '127.0.0.3', ehlo: 'out1.vipmta.test' });
    expect(s.transactions[0]!.body.equals(expected)).toBe(true);
  });

  it('defers with 4.7.5 when TLS is required and verified and the certificate is self-signed', async () => {
    const s = await sink({ tls: tlsFiles });
    const [r] = await engine().deliver(binding, route(s), { mode: 'required', verify: true }, [message('t', ['a@dest.test']).msg]);
    expect(r!.results[0]).toMatchObject({ status: 'deferred', enhanced: '4.7.5', origin: 'local' });
    expect(r!.results[0]!.reply).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed: .*SELF_SIGNED/);
    expect(s.transactions).toHaveLength(0);
  });

  it('delivers with TLS required and verified when the certificate chains to a trusted CA', async () => {
    const s = await sink({ tls: tlsFiles });
    const [r] = await engine().deliver(binding, route(s), { mode: 'required', verify: true, ca: [tlsFiles.cert.toString()] }, [message('t', ['a@dest.test']).msg]);
    expect(r!.results[0]!.status).toBe('delivered');
    expect(s.connections[0]!.secure).toBe(true);
  });

  it('defers with 4.7.10 when TLS is required and the server offers no STARTTLS', async () => {
    const s = await sink();
    const [r] = await engine().deliver(binding, route(s), { mode: 'required', verify: false }, [message('t', ['a@dest.test']).msg]);
    expect(r!.results[0]).toMatchObject({ status: 'deferred', enhanced: '4.7.10' });
    expect(s.transactions).toHaveLength(0);
  });
});

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
