// #mmove into a real vipmta process: its workers serve ECCluster_Listener on loopback and write its
// real spool; the sending side is the real MmoveClient reading a real spool in this process. What
// got 250 is on the receiver's disk byte for byte with its metadata, kill -9 included; nothing
// without a 250 is counted as moved; a retry after the kill is suppressed as a duplicate. The node
// has a Cluster stanza (the #mmove settings live there), so it runs in a network namespace of its
// own: it must not join a corosync the host may run. Its ports are reached through forward().
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MmoveClient, type MmoveItem, type MmoveResult } from '../../src/mmove/client.js';
import { Spool } from '../../src/spool/index.js';
import { freePort, killAll, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { tempDir, wireBody, wireForm } from '../unit/spool/helpers.js';

const SECRET = 'mmove-integration-secret';
let senderDir: string;
let sender: Spool;
let seq = 0;

beforeAll(() => {
  senderDir = tempDir('mmove-sender');
  sender = Spool.open({ directory: senderDir, nodeId: 'node-a' });
});
afterAll(async () => {
  await sender.close();
  fs.rmSync(senderDir, { recursive: true, force: true });
});
afterEach(killAll);

function receiverConfig(port: number, http: number, tls: boolean): string {
  return `Worker_Threads = 2
Nodename = "node-b"
ECCluster_Listener { Listen "127.0.0.1:${port}" { } }
Cluster {
  Cluster_Secret = "${SECRET}"
  Mmove_Max_Hops = 3${tls ? '\n  Mmove_TLS = true' : ''}
}
Suspend_Delivery = true
Spool { Directory = "./spool" }
Http_Listener { Listen "127.0.0.1:${http}" { } }
Control_Listener { Listen "./run/control.sock" { } }
`;
}

/** `port` and `http` are what the node listens on in its namespace; `mmove` and `metrics` reach them from here. */
async function receiverNode(opts: { cwd?: string; port?: number; http?: number; tls?: boolean } = {}): Promise<{ node: VipmtaProcess; port: number; http: number; mmove: number; metrics: number }> {
  const port = opts.port ?? (await freePort());
  const http = opts.http ?? (await freePort());
  const node = startVipmta(receiverConfig(port, http, opts.tls ?? false), { privateNetwork: true, ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) });
  await node.waitStarted();
  return { node, port, http, mmove: await node.forward(port), metrics: await node.forward(http) };
}

async function store(body: Buffer): Promise<MmoveItem> {
  const w = sender.writer().begin();
  w.append(body);
  const rcpt = [`r${seq++}@dest.example`];
  const { id } = await w.commit(Buffer.from(JSON.stringify({ v: 1, from: 's@src.example', rcpt })));
  return { id, from: 's@src.example', rcpt, binding: 'out-1', bindingGroup: 'grp', arrival: 1_795_000_000_000 + seq, attempts: 1, nextAttempt: 0, hops: 0 };
}

/** Stops (SIGTERM) or finds dead the node, then reads its spool: originalId -> [body, envelope]. */
async function receivedSpool(node: VipmtaProcess): Promise<Map<string, { body: Buffer; env: Record<string, unknown> }[]>> {
  if (node.child.exitCode === null && node.child.signalCode === null) {
    node.signal('SIGTERM');
    expect((await node.exited).code).toBe(0);
  }
  const spool = Spool.open({ directory: path.join(node.cwd, 'spool'), nodeId: 'reader', sync: 'none' });
  try {
    const out = new Map<string, { body: Buffer; env: Record<string, unknown> }[]>();
    for (const r of spool.recover()) {
      const env = JSON.parse(r.envelope.toString()) as Record<string, unknown> & { moved: { originalId: string } };
      const list = out.get(env.moved.originalId) ?? [];
      list.push({ body: spool.read(r.id), env });
      out.set(env.moved.originalId, list);
    }
    return out;
  } finally {
    await spool.close();
  }
}

function client(secret = SECRET, connectionsPerPeer = 2, tls = false, connectTimeoutMs = 5000): MmoveClient {
  return new MmoveClient({ nodeName: 'node-a', secret, reader: sender, connectionsPerPeer, tls, connectTimeoutMs });
}

describe('mmove into a vipmta process', () => {
  it.each([false, true])('spools moved messages byte-identical with their metadata, across the workers (Mmove_TLS %s)', async (tls) => {
    const { node, mmove: port } = await receiverNode({ tls });
    const items: MmoveItem[] = [];
    for (let i = 0; i < 60; i++) items.push(await store(i % 3 === 0 ? wireForm(Buffer.from(`.dot ${i}\r\nbody\r\n..x\r\n`)) : wireBody(i % 2 ? 4096 : 65536, i)));
    const c = client('' + SECRET, 4, tls);
    const results = await c.send({ host: '127.0.0.1', port }, items);
    await c.close();
    expect(results.filter((r) => !r.ok)).toEqual([]);
    const got = await receivedSpool(node);
    expect(got.size).toBe(items.length);
    for (const it of items) {
      const [m, ...more] = got.get(it.id)!;
      expect(more).toHaveLength(0);
      expect(m!.body.equals(sender.read(it.id))).toBe(true);
      expect(m!.env).toMatchObject({
        from: it.from, rcpt: it.rcpt, arrival: it.arrival, mmovePeer: 'node-a', tls,
        moved: { binding: 'out-1', bindingGroup: 'grp', originalId: it.id, originNode: 'node-a', arrival: it.arrival, attempts: 1, nextAttempt: 0, hops: 1 },
      });
    }
    expect(node.logs.filter((l) => l.msg === 'reception')).toHaveLength(items.length);
  });

  it('refuses a wrong secret and a message at the hop limit, and logs both', async () => {
    const { node, mmove: port } = await receiverNode();
    const bad = client('not the secret');
    const [r1] = await bad.send({ host: '127.0.0.1', port }, [await store(wireBody(500, 1))]);
    await bad.close();
    expect(r1).toMatchObject({ ok: false, code: 535 });
    await node.waitForLog((l) => l.msg.startsWith('mmove refused: authentication failed') && l.node === 'node-a');

    const looping = await store(wireBody(500, 2));
    looping.hops = 3;
    const c = client();
    const [r2] = await c.send({ host: '127.0.0.1', port }, [looping]);
    await c.close();
    expect(r2).toMatchObject({ ok: false, code: 554 });
    expect(r2!.text).toMatch(/^5\.4\.6 /);
    await node.waitForLog((l) => l.msg.startsWith('mmove refused: hop limit') && l.originalId === looping.id);
    expect((await receivedSpool(node)).size).toBe(0);
  });

  it('counts a suppressed duplicate in /metrics', async () => {
    const { node, mmove: port, metrics } = await receiverNode();
    const it1 = await store(wireBody(3000, 7));
    const c = client();
    const [a] = await c.send({ host: '127.0.0.1', port }, [it1]);
    await c.close();
    // A new client (new connection, maybe another worker): the retry of a message whose 250 was lost.
    const c2 = client();
    const [b] = await c2.send({ host: '127.0.0.1', port }, [it1]);
    await c2.close();
    expect(a).toMatchObject({ ok: true, duplicate: false });
    expect(b).toMatchObject({ ok: true, duplicate: true });
    const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
    expect(text).toMatch(/^vipmta_mmove_duplicates_total 1$/m);
    expect((await receivedSpool(node)).get(it1.id)).toHaveLength(1);
  });

  it('keeps what got no 250 when the receiver is killed mid-transfer, and moves it exactly once on a retry', async () => {
    const first = await receiverNode();
    const items: MmoveItem[] = [];
    for (let i = 0; i < 1500; i++) items.push(await store(wireBody(64 * 1024, 1000 + i)));
    const c = client(SECRET, 2);
    const sending = c.send({ host: '127.0.0.1', port: first.mmove }, items);
    // Kill as soon as the node has spooled something: the rest is in flight or not sent yet.
    await first.node.waitForLog((l) => l.msg === 'reception');
    await first.node.kill();
    const results: MmoveResult[] = await sending;
    await c.close();
    const okIds = new Set(results.filter((r) => r.ok).map((r) => r.id));
    const failed = items.filter((it) => !okIds.has(it.id));
    expect(failed.length).toBeGreaterThan(0);
    expect(results.filter((r) => !r.ok).every((r) => r.code === 0)).toBe(true);

    // Every 250 the sender saw is on the receiver's disk (it was durable before the 250).
    const afterKill = await receivedSpool(first.node);
    for (const id of okIds) expect(afterKill.has(id)).toBe(true);

    // Restart on the same spool and port; retry what failed.
    const second = await receiverNode({ cwd: first.node.cwd, port: first.port, http: first.http });
    const c2 = client();
    const retry = await c2.send({ host: '127.0.0.1', port: second.mmove }, failed);
    await c2.close();
    expect(retry.filter((r) => !r.ok)).toEqual([]);
    const final = await receivedSpool(second.node);
    for (const it of items) {
      const copies = final.get(it.id) ?? [];
      // Committed before the kill but its 250 lost: the restarted node knows it (duplicate).
      expect(copies).toHaveLength(1);
      expect(copies[0]!.body.equals(sender.read(it.id))).toBe(true);
    }
    const dups = retry.filter((r) => r.duplicate).length;
    expect(dups).toBe(failed.filter((f) => afterKill.has(f.id)).length);
  });

  it('with Mmove_TLS on one end only nothing moves; a reload that turns it on applies to new connections', async () => {
    const { node, port, http, mmove } = await receiverNode();
    const it1 = await store(wireBody(3000, 77));
    const tlsClient = client(SECRET, 1, true, 30_000);
    const [r1] = await tlsClient.send({ host: '127.0.0.1', port: mmove }, [it1]);
    await tlsClient.close();
    // Refused by the handshake (the plain listener answers a ClientHello), not by the client's
    // timeout, which is far away and would read "no answer ... within".
    expect(r1).toMatchObject({ ok: false, code: 0 });
    expect(r1!.text).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed/);
    await node.waitForLog((l) => /TLS handshake on a plain ECCluster_Listener/.test(l.msg));

    fs.writeFileSync(node.configFile!, receiverConfig(port, http, true));
    const r = await node.console('config', 'reload');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // A plain client now waits for a greeting that never comes: not sent, within its timeout.
    const plain = client(SECRET, 1, false);
    const [r2] = await plain.send({ host: '127.0.0.1', port: mmove }, [it1]);
    await plain.close();
    expect(r2).toMatchObject({ ok: false, code: 0 });
    expect(r2!.text).toMatch(/Mmove_TLS on there and off here/);
    const tlsAgain = client(SECRET, 1, true);
    const [r3] = await tlsAgain.send({ host: '127.0.0.1', port: mmove }, [it1]);
    await tlsAgain.close();
    expect(r3).toMatchObject({ ok: true, code: 250, duplicate: false });
    const got = await receivedSpool(node);
    expect(got.get(it1.id)).toHaveLength(1);
    expect(got.get(it1.id)![0]!.body.equals(sender.read(it1.id))).toBe(true);
    expect(got.get(it1.id)![0]!.env).toMatchObject({ tls: true });
  });
});
