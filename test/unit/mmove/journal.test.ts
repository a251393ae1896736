// Journal reading over the cluster link: the XJOURNAL framing both ends share, and a real
// MmoveReceiver on loopback serving a real journal file (the JSON-lines stand-in) to the
// aggregator's JournalLink: records byte for byte, bounded batches, acks, and refusals (no
// XMMOVE proof, a wrong Cluster_Secret, a node without a journal), in plain TCP and TLS-PSK.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { JournalLink, LinkError } from '../../../src/aggregate/link.js';
import { DedupTable } from '../../../src/mmove/dedup.js';
import { decodeBatchBody, encodeBatch, MAX_BATCH_RECORDS, parseBatchHead, parseJournalCommand, SpoolJournalSource, type JournalRecord, type JournalSource } from '../../../src/mmove/journal.js';
import { EventJournal, Spool } from '../../../src/spool/index.js';
import { MmoveReceiver } from '../../../src/mmove/receiver.js';
import { appendRecords, eventOf, JsonlJournalSource } from '../../helpers/file-journal.js';
import { readReply } from '../../helpers/node-process.js';
import { tempDir } from '../../helpers/tmp.js';

const SECRET = 'journal secret';

describe('XJOURNAL framing', () => {
  const recs: JournalRecord[] = [
    { seq: 3, time: 1000, id: 'ev 3+x', data: Buffer.from('{"a":1}') },
    { seq: 4, time: 1001, data: Buffer.from('bytes with\r\nCRLF inside') },
    { seq: 9, time: 1002, id: '-', data: Buffer.alloc(0) },
  ];

  it('decodes what it encodes, ids and binary data included', () => {
    const { line, body, count } = encodeBatch({ records: recs, next: 10, first: 2, last: 12 });
    expect(count).toBe(3);
    const head = parseBatchHead(line.slice('250 2.0.0 '.length))!;
    expect(head).toEqual({ count: 3, bytes: body.length, first: 2, next: 10, last: 12 });
    const back = decodeBatchBody(body, head.count);
    expect(back.map((r) => ({ ...r, data: r.data.toString() }))).toEqual(recs.map((r) => ({ ...r, data: r.data.toString() })));
  });

  it('bounds a batch in bytes but always sends one record, and says where to go on', () => {
    const big = (seq: number): JournalRecord => ({ seq, time: 1, data: Buffer.alloc(600, 0x61) });
    const { body, count, line } = encodeBatch({ records: [big(1), big(2), big(3)], next: 4, first: 1, last: 3 }, 1000);
    expect(count).toBe(1);
    expect(parseBatchHead(line.slice(10))).toMatchObject({ count: 1, bytes: body.length, next: 2 });
    expect(encodeBatch({ records: [big(1)], next: 2, first: 1, last: 1 }, 10).count).toBe(1);
  });

  it('rejects a body that is cut short, over-long or out of order', () => {
    const { body } = encodeBatch({ records: recs, next: 10, first: 2, last: 12 });
    expect(() => decodeBatchBody(body.subarray(0, body.length - 1), 3)).toThrow(/cut short/);
    expect(() => decodeBatchBody(body, 2)).toThrow(/after the last record/);
    const swapped = encodeBatch({ records: [recs[1]!, recs[0]!], next: 5, first: 1, last: 5 });
    expect(() => decodeBatchBody(swapped.body, 2)).toThrow(/out of order/);
  });

  it('parses the commands and caps a read at MAX_BATCH_RECORDS', () => {
    expect(parseJournalCommand('READ 1 50')).toEqual({ verb: 'READ', from: 1, max: 50 });
    expect(parseJournalCommand('read 7 999999')).toEqual({ verb: 'READ', from: 7, max: MAX_BATCH_RECORDS });
    expect(parseJournalCommand('ACK aggregator-n1 42')).toEqual({ verb: 'ACK', subscriber: 'aggregator-n1', seq: 42 });
    for (const bad of ['READ 1', 'READ x 5', 'READ 1 0', 'ACK bad/name 1', 'ACK a -1', 'TRIM 1', '']) expect(parseJournalCommand(bad)).toBeNull();
  });
});

describe('XJOURNAL on an ECCluster_Listener', () => {
  const receivers: MmoveReceiver[] = [];
  const links: JournalLink[] = [];
  afterEach(async () => {
    for (const l of links.splice(0)) l.close();
    for (const r of receivers.splice(0)) await r.close(500);
  });

  async function serve(journal: JournalSource | null, tls = false): Promise<number> {
    const r = new MmoveReceiver({
      name: '127.0.0.1:0', hostname: 'member.test', secret: SECRET, maxHops: 3, maxMessageSize: 1024, idleTimeoutMs: 30_000,
      sink: null, dedup: new DedupTable({ entries: 64, windowMs: 60_000 }), logger: pino({ level: 'silent' }), onMessage: () => undefined, journal, tls,
    });
    receivers.push(r);
    return r.listen(0, '127.0.0.1');
  }

  async function link(port: number, secret = SECRET, tls = false): Promise<JournalLink> {
    const l = await JournalLink.open({ host: '127.0.0.1', port, nodeName: 'agg', secret, tls, timeoutMs: 5000 });
    links.push(l);
    return l;
  }

  it.each([false, true])('serves the records of a real journal file in bounded batches and takes acks (Mmove_TLS %s)', async (tls) => {
    const dir = tempDir('journal-');
    const file = path.join(dir, 'events.jsonl');
    appendRecords(file, 1, 1200);
    const port = await serve(new JsonlJournalSource(file), tls);
    const l = await link(port, SECRET, tls);
    const got: JournalRecord[] = [];
    let from = 1;
    for (;;) {
      const b = await l.read(from, 5000);
      expect(b.records.length).toBeLessThanOrEqual(MAX_BATCH_RECORDS);
      expect(b).toMatchObject({ first: 1, last: 1200 });
      if (b.records.length === 0) break;
      got.push(...b.records);
      from = b.next;
    }
    expect(got.map((r) => r.seq)).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1));
    expect(got.every((r) => JSON.stringify(JSON.parse(r.data.toString())) === JSON.stringify(eventOf(r.seq)) && r.id === `ev-${r.seq}`)).toBe(true);
    // A record appended after the last read is the next one read.
    appendRecords(file, 1201, 1201);
    expect((await l.read(from, 10)).records.map((r) => r.seq)).toEqual([1201]);
    await l.ack('aggregator-agg', 1201);
    expect(fs.readFileSync(path.join(`${file}.acks`, 'aggregator-agg'), 'utf8').trim()).toBe('1201');
  });

  it('serves the spool\'s own journal (SpoolJournalSource): records, ids, first/last, an ack that subscribes', async () => {
    const dir = tempDir('journal-spool-');
    const spool = Spool.open({ directory: dir, nodeId: 't', sync: 'none', preallocate: 'none', eventSegmentSize: 4096 });
    try {
      const payload = (i: number): Buffer => Buffer.from(JSON.stringify(eventOf(i)));
      for (let i = 1; i <= 300; i += 50) await spool.appendEvents(Array.from({ length: 50 }, (_, k) => ({ data: payload(i + k), id: `q${i + k}` })));
      const journal = new EventJournal({ directory: dir });
      const port = await serve(new SpoolJournalSource(journal));
      const l = await link(port);
      const got: JournalRecord[] = [];
      let from = 1;
      for (;;) {
        const b = await l.read(from, 64);
        expect(b).toMatchObject({ first: 1, last: 300 });
        if (b.records.length === 0) break;
        got.push(...b.records);
        from = b.next;
      }
      expect(got.map((r) => r.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
      expect(got.every((r) => r.data.equals(payload(r.seq)) && r.id === `q${r.seq}`)).toBe(true);
      expect(journal.subscribers().has('aggregator-agg')).toBe(false);
      // The first ack creates the subscriber (its checkpoint is the ack); the unread rest is served.
      await l.ack('aggregator-agg', 200);
      expect(journal.checkpoint('aggregator-agg')).toBe(200);
      const b = await l.read(201, 1000);
      expect(b.records.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 201));
      await expect(l.ack('aggregator-agg', 301)).rejects.toThrow(/451 4\.3\.0 .*past the last record/);
    } finally {
      await spool.close();
    }
  });

  it('refuses a wrong Cluster_Secret, and XJOURNAL before the proof', async () => {
    const dir = tempDir('journal-');
    const file = path.join(dir, 'events.jsonl');
    appendRecords(file, 1, 3);
    const reads: number[] = [];
    const src = new JsonlJournalSource(file);
    const port = await serve({ read: (f, m) => (reads.push(f), src.read(f, m)), ack: (s, q) => src.ack(s, q) });
    const err = await link(port, 'not the secret').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LinkError);
    expect((err as LinkError).code).toBe(535);
    expect((err as Error).message).toMatch(/Cluster_Secret/);

    const sock = net.connect(port, '127.0.0.1');
    await readReply(sock);
    sock.write('EHLO agg\r\n');
    expect(await readReply(sock)).toMatch(/250-XJOURNAL\r\n/);
    sock.write('XJOURNAL READ 1 10\r\n');
    expect(await readReply(sock)).toMatch(/^530 5\.7\.0/);
    sock.write('XJOURNAL ACK aggregator-agg 3\r\n');
    expect(await readReply(sock)).toMatch(/^530 5\.7\.0/);
    sock.destroy();
    expect(reads).toEqual([]);
    expect(fs.existsSync(`${file}.acks`)).toBe(false);
  });

  it('says so when the node keeps no journal, or its journal fails', async () => {
    const none = await link(await serve(null));
    await expect(none.read(1, 10)).rejects.toThrow(/554 5\.3\.3 XJOURNAL: this node keeps no event journal/);
    const failing = await link(await serve({ read: () => Promise.reject(new Error('disk on fire')), ack: () => { throw new Error('no'); } }));
    await expect(failing.read(1, 10)).rejects.toThrow(/451 4\.3\.0 XJOURNAL: journal read failed: disk on fire/);
    await expect(failing.ack('aggregator-agg', 1)).rejects.toThrow(/451 4\.3\.0 XJOURNAL: journal ack failed: no/);
    // The connection stays usable after a refusal.
    await expect(failing.read(1, 10)).rejects.toThrow(/451/);
  });
});
