// Aggregation benchmark (issue 15): a member process with a durable spool whose event journal is
// served on an ECCluster_Listener (MmoveReceiver + SpoolJournalSource, as a node's worker does), and
// this process running the Log_Aggregator against it over loopback. (1) Throughput: the member's
// journal prefilled with --prefill records, the time until the aggregator's mark reaches the last
// one (records/s pulled, written to dated files, fdatasync'd, marked, acked). (2) Lag: the member
// writes --rate records/s (in 10 ms batches, each durable before the next tick) for --seconds; a
// batch's lag is the time from its records being durable on the member to the aggregator's mark
// passing them; p50/p99 over the batches. Records are ~330-byte delivery records.
//
// Build and run from the repository root (dist/ and the addon built: `npm run build` first):
//   npx tsc --strict --target es2022 --module nodenext --moduleResolution nodenext --types node \
//     --skipLibCheck --rootDir bench --outDir /tmp/vipmta-bench-agg bench/aggregate.ts \
//     && node /tmp/vipmta-bench-agg/aggregate.js [--prefill N] [--rate R] [--seconds S] [--poll MS] [--dir DIR]
// Main thread of both processes; the member blocks on its disk, this one awaits both.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    member: { type: 'string' },
    prefill: { type: 'string', default: '200000' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '20' },
    poll: { type: 'string', default: '500' },
    dir: { type: 'string' },
  },
});
const root = process.cwd();
const load = async (rel: string): Promise<any> => import(pathToFileURL(path.join(root, 'dist', rel)).href);
const SECRET = 'bench secret';
const T = Date.now();

function record(i: number): Buffer {
  return Buffer.from(JSON.stringify({
    v: 1, type: 'delivery', time: T + i, node: 'm', id: `0A1B2C3D4E5F${i}`, msgid: `<bench-${i}@sender.example.com>`, from: 'newsletter@sender.example.com',
    rcpt: `user${i}@example.net`, binding: 'default/b1', source: '192.0.2.10', mx: 'mx1.example.net', ip: '203.0.113.5',
    reply: '250 2.0.0 Ok: queued as 4Xyz', code: 250, enhanced: '2.0.0', origin: 'remote', attempt: 1, size: 4096,
  }));
}

// ---- the member ----------------------------------------------------------------------------------
async function member(dir: string): Promise<void> {
  const { Spool, EventJournal } = await load('spool/index.js');
  const { SpoolJournalSource } = await load('mmove/journal.js');
  const { MmoveReceiver } = await load('mmove/receiver.js');
  const { DedupTable } = await load('mmove/dedup.js');
  const { default: pino } = await import(pathToFileURL(path.join(root, 'node_modules', 'pino', 'pino.js')).href);
  const spool = Spool.open({ directory: dir, nodeId: 'm' });
  const journal = new EventJournal({ directory: dir });
  const receiver = new MmoveReceiver({
    name: '127.0.0.1:0', hostname: 'member.bench', secret: SECRET, maxHops: 3, maxMessageSize: 1024, idleTimeoutMs: 60_000, sink: null,
    dedup: new DedupTable({ entries: 64, windowMs: 60_000 }), logger: pino({ level: 'silent' }), onMessage: () => undefined,
    journal: new SpoolJournalSource(journal),
  });
  const port: number = await receiver.listen(0, '127.0.0.1');
  let n = 0;
  const write = async (count: number): Promise<void> => {
    const batch = [];
    for (let k = 0; k < count; k++) batch.push({ data: record(++n) });
    await spool.appendEvents(batch);
  };
  process.on('message', (m: { cmd: string; count?: number; rate?: number; seconds?: number }) => {
    void (async () => {
      if (m.cmd === 'prefill') {
        for (let left = m.count!; left > 0; left -= 5000) await write(Math.min(5000, left));
        process.send!({ cmd: 'prefilled', last: journal.lastSeq() });
      } else if (m.cmd === 'steady') {
        const per = Math.max(1, Math.round(m.rate! / 100));
        const batches: [number, number][] = [];
        const t0 = Date.now();
        for (let tick = 0; Date.now() - t0 < m.seconds! * 1000; tick++) {
          const due = t0 + tick * 10;
          if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
          await write(per);
          batches.push([journal.lastSeq(), Date.now()]);
        }
        process.send!({ cmd: 'steadyDone', batches, bytes: journal.stats().bytes });
      } else if (m.cmd === 'close') {
        await receiver.close(500);
        await spool.close();
        process.exit(0);
      }
    })();
  });
  process.send!({ cmd: 'ready', port });
}

// ---- the aggregator --------------------------------------------------------------------------------
function next<T>(child: ChildProcess, cmd: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { cmd: string }): void => {
      if (m.cmd !== cmd) return;
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
  });
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const base = fs.mkdtempSync(path.join(args.dir ?? os.tmpdir(), 'vipmta-agg-bench-'));
  const prefill = Number(args.prefill);
  const rate = Number(args.rate);
  const seconds = Number(args.seconds);
  const pollMs = Number(args.poll);
  const child = fork(process.argv[1]!, ['--member', path.join(base, 'member')], { stdio: 'inherit' });
  try {
    const { port } = await next<{ port: number }>(child, 'ready');
    child.send({ cmd: 'prefill', count: prefill });
    const { last } = await next<{ last: number }>(child, 'prefilled');
    const { Aggregator } = await load('aggregate/aggregator.js');
    const { default: pino } = await import(pathToFileURL(path.join(root, 'node_modules', 'pino', 'pino.js')).href);
    const agg = new Aggregator({
      nodeName: 'a', directory: path.join(base, 'aggregated'), logfile: '%Y/%m/%d/%{l}/%{n}', members: ['m'],
      address: () => ({ host: '127.0.0.1', port }), inView: () => true, secret: SECRET, tls: false,
      logger: pino({ level: 'warn' }), pollMs,
    });
    const mark = (): number => agg.status()[0].seq as number;
    const t0 = performance.now();
    agg.start();
    await new Promise<void>((resolve) => {
      const iv = setInterval(() => {
        if (mark() >= last) {
          clearInterval(iv);
          resolve();
        }
      }, 2);
    });
    const pullMs = performance.now() - t0;

    // Steady writes: sample the mark every 2 ms.
    const samples: [number, number][] = [];
    const iv = setInterval(() => samples.push([Date.now(), mark()]), 2);
    child.send({ cmd: 'steady', rate, seconds });
    const { batches } = await next<{ batches: [number, number][]; bytes: number }>(child, 'steadyDone');
    const end = batches[batches.length - 1]![0];
    await new Promise<void>((resolve) => {
      const w = setInterval(() => {
        if (mark() >= end) {
          clearInterval(w);
          resolve();
        }
      }, 2);
    });
    samples.push([Date.now(), mark()]);
    clearInterval(iv);
    await agg.stop();
    const lags: number[] = [];
    let k = 0;
    for (const [seq, at] of batches) {
      while (k < samples.length && samples[k]![1] < seq) k++;
      lags.push(samples[k]![0] - at);
    }
    lags.sort((a, b) => a - b);
    const written = (batches.length * Math.max(1, Math.round(rate / 100))) / seconds;
    console.log(`| prefill pulled | records/s | steady write rate (records/s) | poll ms | lag p50 ms | lag p99 ms | lag max ms |`);
    console.log(`|---|---|---|---|---|---|---|`);
    console.log(`| ${prefill} in ${(pullMs / 1000).toFixed(2)} s | ${Math.round((prefill * 1000) / pullMs)} | ${Math.round(written)} | ${pollMs} | ${pct(lags, 50)} | ${pct(lags, 99)} | ${lags[lags.length - 1]} |`);
    child.send({ cmd: 'close' });
    await new Promise((r) => child.once('exit', r));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(base, { recursive: true, force: true });
  }
}

if (args.member !== undefined) await member(args.member);
else await main();
