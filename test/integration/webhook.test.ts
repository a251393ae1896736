// Event_Webhook end to end: a real vipmta node exports its event journal to a real HTTP receiver on
// loopback (node:http) that fails 20% of requests: 500s, connections dropped before the batch is
// read, and connections dropped after the receiver kept the batch (the reply is lost: the batch
// comes again). The node is killed with SIGKILL mid-export and restarted; the receiver ends with
// every record, duplicates only under the same record_id with the same content, and the
// subscriber's checkpoint at the last record. The records are written into the node's journal
// with the spool's appendEvents from this process while the node is stopped (the spool is
// exclusive to one process).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/index.js';
import { freePort, killAll, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanup.splice(0).reverse()) await c();
});

interface Receiver {
  port: number;
  /** record_id -> every copy received (as JSON text). */
  copies: Map<string, string[]>;
  requests: number;
  faults: { status500: number; droppedBefore: number; droppedAfter: number };
  bad: string[];
}

/** A receiver failing 20% of requests, the same way for the same request count (seeded). */
async function startReceiver(): Promise<Receiver> {
  let seed = 0x2545f491;
  const rand = (): number => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) / 0x1_0000_0000;
  };
  const r: Receiver = { port: 0, copies: new Map(), requests: 0, faults: { status500: 0, droppedBefore: 0, droppedAfter: 0 }, bad: [] };
  const server = http.createServer((req, res) => {
    r.requests++;
    const x = rand();
    if (x < 0.05) {
      r.faults.droppedBefore++;
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (x < 0.15) {
        r.faults.status500++;
        res.writeHead(500).end('try later');
        return;
      }
      if (req.headers['content-type'] !== 'application/json' || req.headers['x-test'] !== 'yes') r.bad.push(`headers ${JSON.stringify(req.headers)}`);
      const batch = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Array<Record<string, unknown>>;
      for (const rec of batch) {
        const id = rec.record_id as string;
        if (id !== `${rec.node as string}:${rec.seq as number}`) r.bad.push(`record_id ${id} for seq ${String(rec.seq)}`);
        const list = r.copies.get(id) ?? [];
        list.push(JSON.stringify(rec));
        r.copies.set(id, list);
      }
      if (x < 0.2) {
        // Kept, but the reply never arrives: the exporter must send it again.
        r.faults.droppedAfter++;
        req.socket.destroy();
        return;
      }
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.port = (server.address() as { port: number }).port;
  cleanup.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return r;
}

function config(receiverPort: number, httpPort: number): string {
  return `Worker_Threads = 1
Nodename = "n1"
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Http_Listener { Listen "127.0.0.1:${httpPort}" { } }
Event_Webhook "sink" {
  Url = "http://127.0.0.1:${receiverPort}/events"
  Batch_Size = 100
  Max_Delay = 100ms
  Request_Timeout = 2s
  Min_Retry_Delay = 20ms
  Max_Retry_Delay = 200ms
  Headers = ( "X-Test: yes" )
}
`;
}

/** Appends delivery records first..last to the node's journal (the node must be stopped). */
async function appendRecords(spoolDir: string, first: number, last: number): Promise<void> {
  const spool = Spool.open({ directory: spoolDir, nodeId: 'n1' });
  try {
    for (let s = first; s <= last; s += 500) {
      const events = [];
      for (let k = s; k <= Math.min(last, s + 499); k++) {
        const id = `T${String(k).padStart(8, '0')}`;
        events.push({
          id,
          data: Buffer.from(JSON.stringify({
            v: 1, time: Date.now(), node: 'n1', type: 'delivery', id, from: 'a@example.net', rcpt: `r${k}@example.org`, binding: 'default/default',
            source: '127.0.0.1', mx: 'mx.example.org', ip: '127.0.0.2', reply: '250 2.0.0 Ok', code: 250, enhanced: '2.0.0', origin: 'remote', attempt: 1, size: 1000 + k,
          })),
        });
      }
      await spool.appendEvents(events);
    }
  } finally {
    await spool.close();
  }
}

function checkpoint(spoolDir: string): number {
  return (JSON.parse(fs.readFileSync(path.join(spoolDir, 'events', 'subscribers', 'webhook-sink.json'), 'utf8')) as { seq: number }).seq;
}

describe('Event_Webhook', () => {
  it('delivers every record to a receiver failing 20% of requests, across a kill -9, duplicates only under the same record_id', async () => {
    const receiver = await startReceiver();
    const httpPort = await freePort();
    const cwd = tempDir('webhook-');
    const spoolDir = path.join(cwd, 'spool');
    const start = async (): Promise<VipmtaProcess> => {
      const n = startVipmta(config(receiver.port, httpPort), { cwd });
      await n.waitForLog((l) => l.msg === 'event webhook started');
      return n;
    };
    // First start: the subscriber webhook-sink is made (at the end: the journal is empty).
    let node = await start();
    node.signal('SIGTERM');
    await node.exited;
    expect(checkpoint(spoolDir)).toBe(0);

    const N1 = 6000;
    const N2 = 9000;
    await appendRecords(spoolDir, 1, N1);
    node = await start();
    // Mid-export: some batches are in, many are not.
    await waitFor('a first part at the receiver', () => receiver.copies.size >= 1000, { timeoutMs: 60_000 });
    await node.kill();
    const before = receiver.copies.size;
    expect(before).toBeLessThan(N1);

    await appendRecords(spoolDir, N1 + 1, N2);
    node = await start();
    // Acked through the last record: the receiver must have had every batch by then.
    await waitFor('the checkpoint at the last record', () => checkpoint(spoolDir) === N2, { timeoutMs: 120_000, intervalMs: 100 });

    // Every record 1..N2, none other, each copy of one the same.
    const ids = [...receiver.copies.keys()].map((k) => Number(k.split(':')[1])).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: N2 }, (_, i) => i + 1));
    let duplicates = 0;
    for (const [id, list] of receiver.copies) {
      duplicates += list.length - 1;
      for (const c of list) expect(c, id).toBe(list[0]);
    }
    const seq7 = JSON.parse(receiver.copies.get('n1:7')![0]!) as Record<string, unknown>;
    expect(seq7).toMatchObject({ record_id: 'n1:7', seq: 7, id: 'T00000007', node: 'n1', type: 'delivery', v: 1 });
    expect(receiver.bad).toEqual([]);
    // The receiver's faults happened, and the lost replies came back as duplicates.
    expect(receiver.faults.status500).toBeGreaterThan(0);
    expect(receiver.faults.droppedBefore + receiver.faults.droppedAfter).toBeGreaterThan(0);
    if (receiver.faults.droppedAfter > 0) expect(duplicates).toBeGreaterThan(0);

    // The console and /metrics tell the same: caught up, with retries counted.
    const out = await waitFor('log exporters caught up', async () => {
      const r = await node.console('log', 'exporters');
      return / idle +9000 +0 +0\.0 /.test(r.stdout) ? r.stdout : null;
    });
    expect(out).toMatch(/^EXPORTER +KIND +STATE +CHECKPOINT +LAG/);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toMatch(/vipmta_exporter_lag_records\{exporter="sink",kind="webhook"\} 0/);
    expect(metrics).toMatch(/vipmta_exporter_up\{exporter="sink",kind="webhook"\} 1/);
    const retries = Number(/vipmta_exporter_retries_total\{exporter="sink",kind="webhook"\} (\d+)/.exec(metrics)?.[1]);
    expect(retries).toBeGreaterThan(0);
  }, 240_000);
});
