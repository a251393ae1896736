// Aggregation lag at full delivery rate (issue 15): a real vipmta node (durable spool, the event
// journal on, Event_Log_Lines on, Log_Level info to a file) delivers a full queue to Postfix's
// smtp-sink as fast as it can, while this process runs the Log_Aggregator against the node's
// ECCluster_Listener over loopback (the XMMOVE proof, plain TCP), as an aggregator node would.
// Each delivery record's lag is the time from its write on the node (the journal frame's time) to
// the aggregator's durable mark passing it (the mark sampled every 2 ms); p50/p99/max over every
// delivery record of the run. The delivery rate is measured too, against the same run without an
// aggregator pulling (what pulling the journal costs the node), order alternated.
//
// Build and run from the repository root, as root (smtp-source, smtp-sink), after `npx tsc -p tsconfig.json`:
//   npx tsc --strict --target es2022 --module nodenext --moduleResolution nodenext --types node \
//     --skipLibCheck --rootDir bench --outDir /tmp/vbench bench/aggregate-node.ts \
//     && node /tmp/vbench/aggregate-node.js [--messages 20000] [--poll 50,500] [--rounds 1]
// Main thread; blocks on child processes, awaits the aggregator's file I/O.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { list, repoRoot } from './lib/repo.js';
import { treeCpuSeconds } from './lib/proc.js';
import { freePort, startSmtpSink, startVipmta, type SinkServer, type VipmtaServer } from './lib/servers.js';
import { runSmtpSource } from './lib/smtp-source.js';
import { f0, f2, machineLine } from './lib/report.js';

const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    size: { type: 'string', default: '4096' },
    poll: { type: 'string', default: '50,500' },
    rounds: { type: 'string', default: '1' },
    'worker-threads': { type: 'string', default: '2' },
  },
  strict: true,
});
const root = repoRoot();
const messages = Number(opt.messages);
const size = Number(opt.size);
const SECRET = 'bench aggregation secret';
const load = async (rel: string): Promise<any> => import(pathToFileURL(path.join(root, 'dist', rel)).href);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Row {
  poll: number | null;
  msgPerSec: number;
  cpuMsPerMsg: number;
  records: number;
  p50: number;
  p99: number;
  max: number;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Lines of every file under dir (the aggregated files), parsed. */
function aggregatedRecords(dir: string): { seq: number; time: number; record?: { type?: string } }[] {
  const out: { seq: number; time: number; record?: { type?: string } }[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else for (const line of fs.readFileSync(p, 'utf8').split('\n')) if (line !== '') out.push(JSON.parse(line));
    }
  };
  walk(dir);
  return out;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function round(poll: number | null): Promise<Row> {
  let sink: SinkServer | null = null;
  let node: VipmtaServer | null = null;
  let agg: any = null;
  const aggDir = fs.mkdtempSync('/tmp/vipmta-agg-node-');
  try {
    sink = await startSmtpSink({ count: true });
    const ecPort = await freePort();
    node = await startVipmta({
      name: 'vipmta', repoRoot: root, workerThreads: Number(opt['worker-threads']), nodeFlags: [], suspendDelivery: true,
      logLevel: 'info', logToFile: true,
      extraConfig: `Domain "example.com" { Routes = ( "127.0.0.1:${sink.port}" ) }\nCluster { Cluster_Secret = "${SECRET}" }\nECCluster_Listener { Listen "127.0.0.1:${ecPort}" { } }\n`,
    });
    const fill = await runSmtpSource({ port: node.port, messages, sessions: 32, size, reuseConnections: true });
    if (!fill.ok) throw new Error(`fill: ${fill.error}`);
    const n = node;
    await waitFor('fill', async () => (await n.count()) === messages, 120_000);
    const samples: [number, number][] = [];
    let iv: NodeJS.Timeout | null = null;
    if (poll !== null) {
      const { Aggregator } = await load('aggregate/aggregator.js');
      const { default: pino } = await import(pathToFileURL(path.join(root, 'node_modules', 'pino', 'pino.js')).href);
      agg = new Aggregator({
        nodeName: 'agg', directory: aggDir, logfile: '%Y/%m/%d/%{l}/%{n}', members: ['bench'],
        address: () => ({ host: '127.0.0.1', port: ecPort }), inView: () => true, secret: SECRET, tls: false,
        logger: pino({ level: 'warn' }), pollMs: poll,
      });
      agg.start();
      // The reception records first: the measurement is of delivery, with the aggregator caught up.
      await waitFor('catch-up', () => { const s = agg.status()[0]; return s.last !== null && s.seq >= s.last && s.seq >= messages; }, 120_000);
      iv = setInterval(() => samples.push([Date.now(), agg.status()[0].seq]), 2);
    }
    const target = sink.received() + messages;
    const cpu0 = treeCpuSeconds(n.rootPid);
    const t0 = Date.now();
    await n.setSuspended(false);
    await sink.waitFor(target, 300_000);
    const wall = (Date.now() - t0) / 1000;
    const cpu = ((treeCpuSeconds(n.rootPid) - cpu0) * 1000) / messages;
    if (poll === null) return { poll, msgPerSec: messages / wall, cpuMsPerMsg: cpu, records: 0, p50: NaN, p99: NaN, max: NaN };
    // Every delivery record aggregated: 2 x messages records in all (reception + delivery).
    await waitFor('aggregation', () => agg.status()[0].seq >= 2 * messages, 120_000);
    samples.push([Date.now(), agg.status()[0].seq]);
    clearInterval(iv!);
    await agg.stop();
    agg = null;
    const lags: number[] = [];
    const deliveries = aggregatedRecords(aggDir).filter((r) => r.record?.type === 'delivery').sort((a, b) => a.seq - b.seq);
    let k = 0;
    for (const r of deliveries) {
      while (k < samples.length && samples[k]![1] < r.seq) k++;
      if (k < samples.length) lags.push(samples[k]![0] - r.time);
    }
    lags.sort((a, b) => a - b);
    return { poll, msgPerSec: messages / wall, cpuMsPerMsg: cpu, records: deliveries.length, p50: pct(lags, 50), p99: pct(lags, 99), max: lags[lags.length - 1] ?? NaN };
  } finally {
    if (agg !== null) await agg.stop().catch(() => undefined);
    await node?.stop().catch((e: unknown) => process.stderr.write(`stop vipmta: ${(e as Error).message}\n`));
    await sink?.stop().catch(() => undefined);
    fs.rmSync(aggDir, { recursive: true, force: true });
  }
}

const polls = list(opt.poll, 'poll');
console.log(machineLine());
console.log(`${messages} x ${size} B held, released at once, delivered to smtp-sink; aggregator in this process, pollMs as given; "none": no aggregator.\n`);
console.log('| round | aggregator pollMs | delivered msg/s | node CPU ms/msg | delivery records aggregated | lag p50 ms | lag p99 ms | lag max ms |');
console.log('|---:|---|---:|---:|---:|---:|---:|---:|');
for (let r = 1; r <= Number(opt.rounds); r++) {
  for (const poll of [null, ...polls]) {
    const row = await round(poll);
    console.log(`| ${r} | ${row.poll ?? 'none'} | ${f0(row.msgPerSec)} | ${f2(row.cpuMsPerMsg)} | ${row.records || '-'} | ${Number.isNaN(row.p50) ? '-' : row.p50} | ${Number.isNaN(row.p99) ? '-' : row.p99} | ${Number.isNaN(row.max) ? '-' : row.max} |`);
  }
}
