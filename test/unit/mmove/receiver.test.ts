// ECmmove2 end to end inside one process: a real MmoveReceiver on loopback writing a real spool,
// a real MmoveClient reading another. What the receiver spools is byte for byte what the sender
// stored, with the metadata; what it refuses gets a standard reply with an enhanced code.
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { MmoveClient, type MmoveItem } from '../../../src/mmove/client.js';
import { DedupTable } from '../../../src/mmove/dedup.js';
import { MmoveReceiver } from '../../../src/mmove/receiver.js';
import { parseChallenge, proof } from '../../../src/mmove/wire.js';
import { Spool } from '../../../src/spool/index.js';
import type { AcceptedMessage } from '../../../src/message/accepted.js';
import { SmtpTestClient } from '../../helpers/smtp-client.js';
import { tempDir, wireBody, wireForm } from '../spool/helpers.js';
import { expectArrivedIntact, storeBatch, storeItem } from './helpers.js';

const SECRET = 'correct horse battery staple';
let dirs: string[] = [];
let sender: Spool;
let receiverSpool: Spool;
let receiver: MmoveReceiver;
let dedup: DedupTable;
let accepted: AcceptedMessage[];
let port: number;
const clients: MmoveClient[] = [];

beforeEach(async () => {
  dirs = [tempDir('mmove-a'), tempDir('mmove-b')];
  sender = Spool.open({ directory: dirs[0]!, nodeId: 'node-a' });
  receiverSpool = Spool.open({ directory: dirs[1]!, nodeId: 'node-b' });
  dedup = new DedupTable({ entries: 4096, windowMs: 600_000 });
  accepted = [];
  receiver = new MmoveReceiver({
    name: '127.0.0.1:0', hostname: 'node-b.test', secret: SECRET, maxHops: 3, maxMessageSize: 10 * 1024 * 1024,
    idleTimeoutMs: 30_000, sink: receiverSpool.writer(), dedup, logger: pino({ level: 'silent' }),
    onMessage: (m) => accepted.push(m),
  });
  port = await receiver.listen(0, '127.0.0.1');
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await receiver.close(1000);
  await sender.close();
  await receiverSpool.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function client(secret = SECRET, connectionsPerPeer = 2): MmoveClient {
  const c = new MmoveClient({ nodeName: 'node-a', secret, reader: sender, connectionsPerPeer });
  clients.push(c);
  return c;
}

function store(body: Buffer, rcpt = ['r@dest.example']): Promise<MmoveItem> {
  return storeItem(sender, body, rcpt);
}

async function announced(): Promise<SmtpTestClient> {
  const { client: c, greeting } = await SmtpTestClient.connect(port);
  expect(greeting.code).toBe(220);
  const ch = parseChallenge(greeting.text)!;
  expect((await c.cmd('EHLO node-a')).code).toBe(250);
  expect((await c.cmd(`XMMOVE node-a HMAC-SHA256 ${proof(SECRET, ch, 'node-a')}`)).code).toBe(235);
  return c;
}

/** The reply as it was on the wire (the test client splits off the code). */
const say = (r: { code: number; text: string }): string => `${r.code} ${r.text}`;

const MAIL = 'MAIL FROM:<s@x> XMM-ID=id-1 XMM-ORIGIN=node-a XMM-BINDING=b XMM-GROUP=g XMM-ARRIVAL=1 XMM-ATTEMPTS=0 XMM-NEXT=0 XMM-HOPS=0';

describe('mmove receiver and client', () => {
  it('moves messages byte-identical, with their metadata, over several pipelined connections', async () => {
    const bodies = [wireBody(4096, 1), wireForm(Buffer.from('.dot first\r\n..two\r\nmid\r\n.\r\n')), wireBody(70_000, 3), wireBody(64 * 1024, 4)];
    const items = await storeBatch(sender, bodies);
    const results = await client().send({ host: '127.0.0.1', port }, items);
    expect(results.map((r) => r.ok)).toEqual(items.map(() => true));
    expect(results.map((r) => r.id)).toEqual(items.map((i) => i.id));
    expect(results.every((r) => r.code === 250 && !r.duplicate && /queued as/.test(r.text))).toBe(true);

    const byOrig = expectArrivedIntact(items, accepted, sender, receiverSpool);
    // The spooled envelope carries the same metadata, for recovery after a restart.
    const rec = receiverSpool.live().find((r) => r.id === byOrig.get(items[7]!.id)!.id)!;
    expect(JSON.parse(rec.envelope.toString())).toMatchObject({ moved: { hops: 3, originNode: 'node-z' }, mmovePeer: 'node-a' });
  });

  it('refuses a peer with the wrong secret (535 5.7.8) and spools nothing', async () => {
    const it1 = await store(wireBody(1000, 9));
    const [r] = await client('wrong secret').send({ host: '127.0.0.1', port }, [it1]);
    expect(r).toMatchObject({ ok: false, code: 535 });
    expect(r!.text).toMatch(/^5\.7\.8 /);
    expect(accepted).toHaveLength(0);
    expect(receiver.stats().authFailures).toBe(1);
  });

  it('refuses a message at the hop limit (554 5.4.6) and still moves the rest of the batch', async () => {
    const a = await store(wireBody(1000, 1));
    const b = await store(wireBody(1000, 2));
    b.hops = 3;
    const c = await store(wireBody(1000, 3));
    const rs = await client().send({ host: '127.0.0.1', port }, [a, b, c]);
    expect(rs.map((r) => [r.ok, r.code])).toEqual([[true, 250], [false, 554], [true, 250]]);
    expect(rs[1]!.text).toMatch(/^5\.4\.6 /);
    expect(accepted.map((m) => m.moved!.originalId).sort()).toEqual([a.id, c.id].sort());
    expect(receiver.stats().hopRefusals).toBe(1);
  });

  it('answers a duplicate 250 without spooling it again, and counts it', async () => {
    const a = await store(wireBody(2000, 5));
    const first = await client().send({ host: '127.0.0.1', port }, [a]);
    const again = await client().send({ host: '127.0.0.1', port }, [a]);
    expect(first[0]).toMatchObject({ ok: true, duplicate: false });
    expect(again[0]).toMatchObject({ ok: true, duplicate: true, code: 250 });
    expect(accepted).toHaveLength(1);
    expect(receiverSpool.stats().messages).toBe(1);
    expect(dedup.stats().duplicates).toBe(1);
  });

  it('moves another part of the same message (other recipients) as a new message, not a duplicate', async () => {
    const a = await store(wireBody(2000, 6));
    const first = await client().send({ host: '127.0.0.1', port }, [a]);
    const part2 = { ...a, rcpt: ['someone@other.example'] };
    const second = await client().send({ host: '127.0.0.1', port }, [part2]);
    expect(first[0]).toMatchObject({ ok: true, duplicate: false });
    expect(second[0]).toMatchObject({ ok: true, duplicate: false });
    expect(accepted.map((m) => m.rcpt)).toEqual([a.rcpt, ['someone@other.example']]);
    expect(dedup.stats().duplicates).toBe(0);
  });

  it('takes DATA with dot-stuffing as well as BDAT, and stores the same wire form', async () => {
    const c = await announced();
    const wire = wireForm(Buffer.from('Subject: x\r\n\r\n.leading\r\n..double\r\nend'));
    expect((await c.cmd(MAIL)).code).toBe(250);
    expect((await c.cmd('RCPT TO:<r@d>')).code).toBe(250);
    expect((await c.cmd('DATA')).code).toBe(354);
    // Split the body at awkward places: inside the CRLF before a dot and inside the terminator.
    const all = Buffer.concat([wire, Buffer.from('.\r\n')]);
    c.write(all.subarray(0, 15));
    c.write(all.subarray(15, 17));
    c.write(all.subarray(17, all.length - 2));
    c.write(all.subarray(all.length - 2));
    const r = await c.read();
    expect(r.code).toBe(250);
    expect(receiverSpool.read(accepted[0]!.id).equals(wire)).toBe(true);
    await c.quit();
  });

  it('answers malformed and out-of-order commands with standard replies', async () => {
    const { client: raw } = await SmtpTestClient.connect(port);
    expect(say(await raw.cmd('MAIL FROM:<a@b>'))).toMatch(/^530 5\.7\.0 /);
    expect(say(await raw.cmd('XMMOVE node-a HMAC-SHA256 00'))).toMatch(/^503 5\.5\.1 /); // before EHLO
    expect(say(await raw.cmd('FOO bar'))).toMatch(/^500 5\.5\.1 /);
    expect((await raw.cmd('EHLO x')).text).toMatch(/XMMOVE2/);
    expect(say(await raw.cmd('XMMOVE node-a'))).toMatch(/^501 5\.5\.4 /);
    expect(say(await raw.cmd('XMMOVE node-a CRAM-MD5 00'))).toMatch(/^504 5\.5\.4 /);
    raw.close();

    const c = await announced();
    expect(say(await c.cmd('RCPT TO:<r@d>'))).toMatch(/^503 5\.5\.1 /);
    expect(say(await c.cmd('MAIL FROM:<a@b>'))).toMatch(/^501 5\.5\.4 /); // no metadata
    expect(say(await c.cmd(MAIL + ' NOTIFY=NEVER'))).toMatch(/^555 5\.5\.4 /);
    expect(say(await c.cmd('DATA'))).toMatch(/^503 5\.5\.1 /);
    expect((await c.cmd(MAIL)).code).toBe(250);
    expect(say(await c.cmd('RCPT TO:bad'))).toMatch(/^501 5\.5\.4 /);
    // One refused recipient refuses the move: mmove moves whole messages.
    expect(say(await c.cmd('DATA'))).toMatch(/^554 5\.5\.1 /);
    expect(say(await c.cmd('BDAT x'))).toMatch(/^501 5\.5\.4 /);
    expect(accepted).toHaveLength(0);
  });

  it('refuses every announce with 454 4.7.0 when no secret is configured', async () => {
    await receiver.close(100);
    receiver = new MmoveReceiver({
      name: 'x', hostname: 'node-b.test', secret: null, maxHops: 3, maxMessageSize: 1024, idleTimeoutMs: 30_000,
      sink: receiverSpool.writer(), dedup, logger: pino({ level: 'silent' }), onMessage: () => undefined,
    });
    port = await receiver.listen(0, '127.0.0.1');
    const [r] = await client().send({ host: '127.0.0.1', port }, [await store(wireBody(100, 1))]);
    expect(r).toMatchObject({ ok: false, code: 454 });
  });

  it('reports messages not sent when the peer is unreachable', async () => {
    await receiver.close(100);
    const [r] = await client().send({ host: '127.0.0.1', port }, [await store(wireBody(100, 1))]);
    expect(r).toMatchObject({ ok: false, code: 0 });
  });

  // The receiver's side of the drain policy (src/workers/socket-set.ts), as a reload or a stop uses it.
  it('on close: 421 to an idle session, a body in DATA finishes with 250; a shorter second close cuts the rest', async () => {
    const idle = await announced();
    const busy = await announced();
    const stuck = await announced();
    for (const [c, rcpt] of [[busy, 'r1@d'], [stuck, 'r2@d']] as const) {
      expect((await c.cmd(MAIL)).code).toBe(250);
      expect((await c.cmd(`RCPT TO:<${rcpt}>`)).code).toBe(250);
      expect((await c.cmd('DATA')).code).toBe(354);
      c.write('Subject: x\r\n\r\nfirst half\r\n');
    }
    const closed = receiver.close(60_000);
    expect(say(await idle.read())).toMatch(/^421 4\.3\.2 /);
    busy.write('second half\r\n.\r\n');
    expect((await busy.read()).code).toBe(250);
    expect(accepted).toHaveLength(1);
    // Its body done, the busy session leaves by itself; only the stuck one is left to cut.
    await vi.waitFor(() => expect(receiver.activeSessions).toBe(1));
    expect(receiver.close(1)).toBe(closed);
    expect(await closed).toBe(1);
    expect(accepted).toHaveLength(1);
  });
});
