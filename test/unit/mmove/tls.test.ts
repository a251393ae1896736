// Mmove_TLS end to end inside one process: a real MmoveReceiver (TLS-PSK or plain) on loopback
// writing a real spool, a real MmoveClient reading another, and a recording TCP relay between them
// where a test needs to see the wire. Moves over TLS are byte-identical; every disagreement
// (secret, TLS on one end only) fails as "not sent" (code 0) for the reason it has, not by the
// client's timeout, is logged by the receiver, and spools nothing. No timing assertions here: the
// cost of TLS is measured by bench/mmove.ts --tls.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { MmoveClient, type MmoveItem, type MmoveClientOptions } from '../../../src/mmove/client.js';
import { DedupTable } from '../../../src/mmove/dedup.js';
import { MmoveReceiver } from '../../../src/mmove/receiver.js';
import { clientTlsOptions, mmovePsk, PSK_INFO, TLS_CIPHERS, TLS_VERSION } from '../../../src/mmove/tls.js';
import { Spool } from '../../../src/spool/index.js';
import type { AcceptedMessage } from '../../../src/message/accepted.js';
import { tempDir, wireBody, wireForm } from '../spool/helpers.js';
import { expectArrivedIntact, storeBatch, storeItem } from './helpers.js';

const SECRET = 'correct horse battery staple';
let dirs: string[] = [];
let sender: Spool;
let receiverSpool: Spool;
let receiver: MmoveReceiver | null;
let accepted: AcceptedMessage[];
let logs: { msg: string; node?: string }[];
const clients: MmoveClient[] = [];
const closers: (() => void)[] = [];

beforeEach(() => {
  dirs = [tempDir('mmove-tls-a'), tempDir('mmove-tls-b')];
  sender = Spool.open({ directory: dirs[0]!, nodeId: 'node-a' });
  receiverSpool = Spool.open({ directory: dirs[1]!, nodeId: 'node-b' });
  accepted = [];
  logs = [];
  receiver = null;
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const f of closers.splice(0)) f();
  await receiver?.close(1000);
  await sender.close();
  await receiverSpool.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function startReceiver(useTls: boolean, secret: string | null = SECRET): Promise<number> {
  receiver = new MmoveReceiver({
    name: '127.0.0.1:0', hostname: 'node-b.test', secret, maxHops: 3, maxMessageSize: 10 * 1024 * 1024,
    idleTimeoutMs: 30_000, sink: receiverSpool.writer(), dedup: new DedupTable({ entries: 4096, windowMs: 600_000 }),
    logger: pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s) as { msg: string }) }),
    onMessage: (m) => accepted.push(m), tls: useTls, tlsHandshakeTimeoutMs: 1500,
  });
  return receiver.listen(0, '127.0.0.1');
}

function client(o: Partial<MmoveClientOptions> = {}): MmoveClient {
  const c = new MmoveClient({ nodeName: 'node-a', secret: SECRET, reader: sender, connectionsPerPeer: 2, connectTimeoutMs: 3000, replyTimeoutMs: 3000, ...o });
  clients.push(c);
  return c;
}

function store(body: Buffer, rcpt = ['r@dest.example']): Promise<MmoveItem> {
  return storeItem(sender, body, rcpt);
}

/** A TCP relay on loopback that records what the client sent; resolves with its port. */
async function relay(to: number): Promise<{ port: number; sent: () => Buffer }> {
  const seen: Buffer[] = [];
  const socks = new Set<net.Socket>();
  const server = net.createServer((a) => {
    const b = net.connect(to, '127.0.0.1');
    socks.add(a).add(b);
    a.on('data', (d: Buffer) => seen.push(Buffer.from(d)));
    a.pipe(b).pipe(a);
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    for (const s of socks) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, sent: () => Buffer.concat(seen) };
}

const MARKER = 'Subject: the-plaintext-marker-7f3a';

describe('Mmove_TLS', () => {
  it('derives the PSK with HKDF-SHA256 and a fixed info string, never the raw secret', () => {
    const k = mmovePsk(SECRET);
    expect(k).toHaveLength(32);
    expect(k.equals(mmovePsk(SECRET))).toBe(true);
    expect(k.equals(mmovePsk(SECRET + 'x'))).toBe(false);
    expect(k.includes(Buffer.from(SECRET))).toBe(false);
    expect(PSK_INFO).toBe('vipmta ECmmove2 TLS-PSK v1');
  });

  it('moves messages byte-identical, with their metadata, and nothing of them is readable on the wire', async () => {
    const port = await startReceiver(true);
    const r = await relay(port);
    const bodies = [wireForm(Buffer.from(`${MARKER}\r\n\r\n.dot first\r\n..two\r\nmid\r\n.\r\n`)), wireBody(4096, 1), wireBody(70_000, 3), wireBody(64 * 1024, 4)];
    const items = await storeBatch(sender, bodies);
    const results = await client({ tls: true }).send({ host: '127.0.0.1', port: r.port }, items);
    expect(results.map((x) => [x.ok, x.code])).toEqual(items.map(() => [true, 250]));

    const byOrig = expectArrivedIntact(items, accepted, sender, receiverSpool);
    const rec = receiverSpool.live().find((x) => x.id === byOrig.get(items[7]!.id)!.id)!;
    expect(JSON.parse(rec.envelope.toString())).toMatchObject({ tls: true, moved: { hops: 3, originNode: 'node-z' }, mmovePeer: 'node-a' });
    // Encrypted: neither the body nor the dialogue is on the wire; it starts with a TLS record.
    const wire = r.sent();
    expect(wire[0]).toBe(0x16);
    for (const s of [MARKER, 'MAIL FROM', 'XMMOVE', 'r@dest.example']) expect(wire.includes(s), s).toBe(false);
    expect(receiver!.stats().tlsFailures).toBe(0);
  });

  it('without TLS the dialogue is the same plain ECmmove2 as before', async () => {
    const port = await startReceiver(false);
    const r = await relay(port);
    const it1 = await store(wireForm(Buffer.from(`${MARKER}\r\n\r\nbody\r\n`)));
    const [res] = await client().send({ host: '127.0.0.1', port: r.port }, [it1]);
    expect(res).toMatchObject({ ok: true, code: 250 });
    const wire = r.sent().toString('latin1');
    expect(wire).toMatch(/^EHLO node-a\r\nXMMOVE node-a HMAC-SHA256 [0-9a-f]{64}\r\nMAIL FROM:<s@src\.example> SIZE=\d+ XMM-ID=/);
    expect(wire).toContain(MARKER);
  });

  it('still needs the XMMOVE proof inside TLS (530 before it)', async () => {
    const port = await startReceiver(true);
    const sock = tls.connect({ host: '127.0.0.1', port, ...clientTlsOptions(SECRET, 'node-a') });
    closers.push(() => sock.destroy());
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
    await expect.poll(() => got, { timeout: 5000 }).toMatch(/^220 .*challenge=[0-9a-f]{32}/);
    // TLS was really used: TLS 1.2 with one of the PSK suites Mmove_TLS allows.
    expect(sock.getProtocol()).toBe(TLS_VERSION);
    expect(TLS_CIPHERS.split(':')).toContain(sock.getCipher().name);
    sock.write('EHLO node-a\r\nMAIL FROM:<a@b>\r\n');
    await expect.poll(() => got, { timeout: 5000 }).toMatch(/\r\n530 5\.7\.0 /);
    expect(accepted).toHaveLength(0);
  });

  it('fails the TLS handshake with a different secret: not sent, nothing spooled, logged', async () => {
    const port = await startReceiver(true);
    // The client's own timeout is far away: the failure must come from the handshake itself
    // (its text says so), not from waiting for an answer that never comes.
    const [r] = await client({ tls: true, secret: 'another secret', connectTimeoutMs: 30_000 }).send({ host: '127.0.0.1', port }, [await store(wireBody(1000, 9))]);
    expect(r).toMatchObject({ ok: false, code: 0 });
    expect(r!.text).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed .*Cluster_Secret/);
    expect(accepted).toHaveLength(0);
    expect(receiverSpool.stats().messages).toBe(0);
    await expect.poll(() => receiver!.stats().tlsFailures).toBe(1);
    expect(logs.find((l) => /TLS handshake failed/.test(l.msg))).toMatchObject({ node: 'node-a' });
  });

  it('a TLS client and a plain receiver fail at once: not sent, nothing spooled, logged on both ends', async () => {
    const port = await startReceiver(false);
    // As above: a handshake failure, not the client's timeout (which would say "no answer ... within").
    const [r] = await client({ tls: true, connectTimeoutMs: 30_000 }).send({ host: '127.0.0.1', port }, [await store(wireBody(1000, 9))]);
    expect(r).toMatchObject({ ok: false, code: 0 });
    expect(r!.text).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed/);
    expect(accepted).toHaveLength(0);
    expect(receiverSpool.stats().messages).toBe(0);
    await expect.poll(() => receiver!.stats().tlsFailures).toBe(1);
    expect(logs.some((l) => /TLS handshake on a plain ECCluster_Listener/.test(l.msg))).toBe(true);
  });

  it('a plain client and a TLS receiver fail: the receiver gives up on the handshake, not sent, nothing spooled, logged', async () => {
    const port = await startReceiver(true);
    const sending = client({ connectTimeoutMs: 30_000 }).send({ host: '127.0.0.1', port }, [await store(wireBody(1000, 9))]);
    // The receiver gives up on the handshake (after 1.5 s) while the client still waits.
    await expect.poll(() => logs.some((l) => /no TLS handshake in time/.test(l.msg)), { timeout: 10_000 }).toBe(true);
    expect(receiver!.stats().tlsFailures).toBe(1);
    // The receiver closes the connection it gave up on: the client learns it from the close, long
    // before its own 30 s timeout (which would say "no answer ... within").
    const [r] = await sending;
    expect(r).toMatchObject({ ok: false, code: 0 });
    expect(r!.text).toMatch(/connection closed by 127\.0\.0\.1:\d+ before its greeting/);
    expect(accepted).toHaveLength(0);
    expect(receiverSpool.stats().messages).toBe(0);
  });

  it('refuses every TLS handshake when the receiver has no secret', async () => {
    const port = await startReceiver(true, null);
    const [r] = await client({ tls: true }).send({ host: '127.0.0.1', port }, [await store(wireBody(100, 1))]);
    expect(r).toMatchObject({ ok: false, code: 0 });
    expect(accepted).toHaveLength(0);
    await expect.poll(() => logs.some((l) => /no Cluster_Secret configured/.test(l.msg))).toBe(true);
  });
});
