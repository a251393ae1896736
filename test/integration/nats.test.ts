// Event_Nats end to end: a real vipmta node exports its event journal to a real `nats-server -js`
// (Debian's nats-server) on loopback, started by this test on a free port with a temporary store.
// The stream first captures only delivery subjects, so the export stops at a `hold` record with
// the "no stream" ERROR (a place it is stuck at, whatever the machine's speed): there the node is
// killed with SIGKILL and restarted, and the NATS server is stopped and restarted; then the stream
// is widened and the exporter catches up. Every record is in the stream exactly once (JetStream's
// duplicate window drops the re-sends by Nats-Msg-Id). Records are appended to the journal with
// the spool's appendEvents while the node is stopped (the spool is exclusive to one process).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { connect, nanos, type NatsConnection } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/index.js';
import { freePort, killAll, startVipmta, type LogRecord, type VipmtaProcess } from '../helpers/node-process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanup.splice(0).reverse()) await c();
});

function natsServerPath(): string {
  for (const p of ['/usr/sbin/nats-server', '/usr/bin/nats-server']) if (fs.existsSync(p)) return p;
  const w = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  if (w.status === 0 && w.stdout.trim() !== '') return w.stdout.trim();
  throw new Error('nats-server is not installed: this test needs the Debian package nats-server (apt-get install nats-server; scripts/test-all.sh installs it)');
}

interface NatsServer { child: ChildProcess; exited: Promise<void> }

/** Starts nats-server with JetStream on 127.0.0.1:port, its store in storeDir; stopped by PID. */
async function startNats(port: number, storeDir: string): Promise<NatsServer> {
  const child = spawn(natsServerPath(), ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const s = { child, exited };
  cleanup.push(() => stopNats(s));
  // Ready once it says so (JetStream has read its store by then).
  await waitFor('nats-server ready', () => (child.exitCode !== null ? Promise.reject(new Error(`nats-server exited: ${stderr}`)) : /Server is ready/.test(stderr)), { timeoutMs: 20_000 });
  return s;
}

async function stopNats(s: NatsServer): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
  await s.exited;
}

const B = 2500; // the hold record: no stream captures its subject until the stream is widened
const N = 4000;

/** Appends records 1..N to the node's journal: deliveries, and one hold at seq B. */
async function appendRecords(spoolDir: string): Promise<void> {
  const spool = Spool.open({ directory: spoolDir, nodeId: 'n1' });
  try {
    for (let s = 1; s <= N; s += 500) {
      const events = [];
      for (let k = s; k <= Math.min(N, s + 499); k++) {
        const id = `T${String(k).padStart(8, '0')}`;
        const rec = k === B
          ? { v: 1, time: Date.now(), node: 'n1', type: 'hold', id, binding: 'default/default', rcpt: [`r${k}@example.org`] }
          : {
              v: 1, time: Date.now(), node: 'n1', type: 'delivery', id, from: 'a@example.net', rcpt: `r${k}@example.org`, binding: 'default/default',
              source: '127.0.0.1', mx: 'mx.example.org', ip: '127.0.0.2', reply: '250 2.0.0 Ok', code: 250, enhanced: '2.0.0', origin: 'remote', attempt: 1, size: 1000 + k,
            };
        events.push({ id, data: Buffer.from(JSON.stringify(rec)) });
      }
      await spool.appendEvents(events);
    }
  } finally {
    await spool.close();
  }
}

function checkpoint(spoolDir: string): number {
  return (JSON.parse(fs.readFileSync(path.join(spoolDir, 'events', 'subscribers', 'nats-lake.json'), 'utf8')) as { seq: number }).seq;
}

function config(natsPort: number, httpPort: number): string {
  return `Worker_Threads = 1
Nodename = "n1"
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Http_Listener { Listen "127.0.0.1:${httpPort}" { } }
Event_Nats "lake" {
  Servers = ( "nats://127.0.0.1:${natsPort}" )
  Stream = "VIPMTA"
  Batch_Size = 100
  Max_Delay = 100ms
  Request_Timeout = 1s
  Min_Retry_Delay = 20ms
  Max_Retry_Delay = 300ms
}
`;
}

const noStream = (l: LogRecord): boolean => /no JetStream stream captures subject vipmta\.events\.n1\.hold/.test(l.msg);

describe('Event_Nats', () => {
  it('puts every record in the stream exactly once, across a missing stream, a kill -9 of the node and a nats-server restart', async () => {
    const natsPort = await freePort();
    const httpPort = await freePort();
    const store = tempDir('nats-store-');
    let nats = await startNats(natsPort, store);
    const nc: NatsConnection = await connect({ servers: `nats://127.0.0.1:${natsPort}`, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    cleanup.push(async () => { await nc.close(); });
    const jsm = await nc.jetstreamManager();
    // Deliveries only, for now; a duplicate window longer than any outage of this test.
    await jsm.streams.add({ name: 'VIPMTA', subjects: ['vipmta.events.*.delivery'], duplicate_window: nanos(10 * 60_000) });
    const streamCount = async (): Promise<number> => (await jsm.streams.info('VIPMTA')).state.messages;

    const cwd = tempDir('nats-node-');
    const spoolDir = path.join(cwd, 'spool');
    const start = async (): Promise<VipmtaProcess> => {
      const n = startVipmta(config(natsPort, httpPort), { cwd });
      await n.waitForLog((l) => l.msg === 'event nats started');
      return n;
    };
    // First start: the subscriber nats-lake is made at the end of the (empty) journal.
    let node = await start();
    node.signal('SIGTERM');
    await node.exited;
    expect(checkpoint(spoolDir)).toBe(0);
    await appendRecords(spoolDir);

    // The export runs up to the batch holding the hold record, which no stream captures.
    node = await start();
    const err = await node.waitForLog(noStream, 60_000);
    expect(err).toMatchObject({ exporter: 'lake', subject: 'vipmta.events.n1.hold' });
    await waitFor('the deliveries before the hold in the stream', async () => (await streamCount()) >= B - 1, { timeoutMs: 30_000 });
    expect(checkpoint(spoolDir)).toBeLessThan(B);
    // Between two attempts (one may be in flight at a given moment: state sending).
    await waitFor('log exporters says retrying', async () => /\nlake +nats +retrying /.test((await node.console('log', 'exporters')).stdout));
    // Logged once, however many attempts: the failure is the same.
    await waitFor('a few more attempts', async () => / retrying +\d+ +\d+ +[\d.]+ +\d+ +\d+ +([5-9]|\d\d+) /.test((await node.console('log', 'exporters')).stdout), { timeoutMs: 30_000 });
    expect(node.logs.filter(noStream)).toHaveLength(1);

    // kill -9 mid-export, and back: the batches since the checkpoint go again.
    await node.kill();
    node = await start();
    await node.waitForLog(noStream, 60_000);

    // The NATS server goes away under the connected exporter, and comes back with its store.
    await stopNats(nats);
    await node.waitForLog((l) => l.exporter === 'lake' && /^event nats: (cannot connect|publish failed)/.test(l.msg), 30_000);
    nats = await startNats(natsPort, store);
    // The stream now takes every type: the exporter catches up.
    await waitFor('the test client reconnected', async () => { await jsm.streams.info('VIPMTA'); return true; }, { timeoutMs: 20_000 });
    const info = await jsm.streams.info('VIPMTA');
    await jsm.streams.update('VIPMTA', { ...info.config, subjects: ['vipmta.events.>'] });
    await waitFor('the checkpoint at the last record', () => checkpoint(spoolDir) === N, { timeoutMs: 120_000, intervalMs: 100 });
    await node.waitForLog((l) => /export resumed/.test(l.msg), 10_000);

    // Exactly once: N messages, seq 1..N each once, with its message id and subject.
    expect(await streamCount()).toBe(N);
    const seqs: number[] = [];
    const bad: string[] = [];
    const consumer = await nc.jetstream().consumers.get('VIPMTA');
    const msgs = await consumer.fetch({ max_messages: N, expires: 10_000 });
    for await (const m of msgs) {
      const rec = JSON.parse(Buffer.from(m.data).toString('utf8')) as Record<string, unknown>;
      const seq = rec.seq as number;
      seqs.push(seq);
      if (m.headers?.get('Nats-Msg-Id') !== `n1:${seq}`) bad.push(`msg id ${m.headers?.get('Nats-Msg-Id')} for seq ${seq}`);
      if (m.subject !== `vipmta.events.n1.${rec.type as string}`) bad.push(`subject ${m.subject} for seq ${seq}`);
      if (rec.record_id !== `n1:${seq}`) bad.push(`record_id ${String(rec.record_id)}`);
      if (seqs.length === N) break;
    }
    expect(bad).toEqual([]);
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    const out = await waitFor('log exporters caught up', async () => {
      const r = await node.console('log', 'exporters');
      return new RegExp(`\\nlake +nats +idle +${N} +0 +0\\.0 `).test(r.stdout) ? r.stdout : null;
    });
    expect(out).toMatch(/^EXPORTER +KIND +STATE/);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toMatch(/vipmta_exporter_lag_records\{exporter="lake",kind="nats"\} 0/);
    expect(metrics).toMatch(/vipmta_exporter_up\{exporter="lake",kind="nats"\} 1/);
    expect(Number(/vipmta_exporter_records_sent_total\{exporter="lake",kind="nats"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
  }, 240_000);
});
