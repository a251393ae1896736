// #mmove transport benchmark (issue 6): two hosts in network namespaces (test/cluster/harness.ts:
// a bridge namespace, each host on a veth), their links shaped to 1 Gbit/s with tc tbf, durable
// spools on both ends. On the same link, in the same run: iperf3 (the raw TCP ceiling), Postfix's
// smtp-source into smtp-sink (the SMTP ceiling without any storage), and vipmta moving a filled
// spool to a vipmta receiver (4 KiB and 64 KiB messages). Then the same unshaped. Prints a
// markdown table and writes bench/results/mmove-<time>.json.
//
//   npm run bench:mmove [-- --quick]      (root: namespaces; iperf3, smtp-source, smtp-sink installed)
// Options: --quick (10,000 x 4 KiB, 2,000 x 64 KiB, iperf3 3 s)  --connections N (default 4)
//   --no-unshaped / --no-shaped (skip that pass)  --reps N (N rounds of both passes, interleaved;
//   the summary gives the median and range of the per-round ratios: on shared machines one round's
//   anchor and move can see different load)  --cpu-prof DIR (node --cpu-prof for sender and receiver,
//   profiles written to DIR/<size>-{sender,receiver}/)  --trace (per-thread CPU of sender and
//   receiver, and `perf stat` counts of write/fdatasync system calls during each move, in the JSON)  --sizes 4096,65536 (which moves to run)
//   --no-queue (skip the moves through the queue: two vipmta nodes in a corosync cluster, a DuraVIP
//   handover from A to B moving A's whole queue; bench/lib/mmove-queue.ts)
//   --tls (Mmove_TLS on both ends: the receiver's Cluster stanza, the sender's MmoveClient, both queue nodes)
// Main thread; blocks on `ip`/`tc` calls; awaits the child processes. Every namespace and process
// it made is removed at the end, also on failure (the harness's exit hook covers a crash).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ClusterLab, waitFor, type LabHost, type LabProcess } from '../test/cluster/harness.js';
import { spawn } from 'node:child_process';
import { queueMove, type QueueMoveRun } from './lib/mmove-queue.js';
import { threadTicks, treeCpuSeconds } from './lib/proc.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    connections: { type: 'string', default: '4' },
    'no-unshaped': { type: 'boolean', default: false },
    'no-shaped': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    trace: { type: 'boolean', default: false },
    reps: { type: 'string', default: '1' },
    sizes: { type: 'string', default: '4096,65536' },
    'no-queue': { type: 'boolean', default: false },
    tls: { type: 'boolean', default: false },
  },
});
const here = path.dirname(fileURLToPath(import.meta.url));
// Compiled to node_modules/.cache/vipmta-bench-mmove/bench/: the repository is four levels up.
const root = path.resolve(here, '..', '..', '..', '..');
const cli = path.join(root, 'bin', 'vipmta.js');
const senderJs = path.join(here, 'mmove-sender.js');
const quick = args.quick;
const N4 = quick ? 10_000 : 100_000;
const N64 = quick ? 2_000 : 20_000;
const SINK4 = quick ? 10_000 : 50_000;
const SINK64 = quick ? 2_000 : 10_000;
const IPERF_S = quick ? 3 : 8;
const SECRET = 'bench-secret';
const MMOVE_PORT = 4802;
const SINK_PORT = 2525;

/** Counters of the sending host's root qdisc (the data direction) over one measurement. */
interface Qdisc {
  kind: string;
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
}
interface Figures {
  /** tc -s counters on host a's eth1 (data direction) during each measurement. */
  qdisc: Record<string, Qdisc>;
  iperfGbps: number;
  sink4: { messages: number; seconds: number; perSecond: number };
  sink64: { messages: number; seconds: number; perSecond: number; gbps: number };
  mmove4: MoveRun;
  mmove64: MoveRun;
  /** The same sizes and counts through two real nodes' queues (null: --no-queue or size skipped). */
  queue4: QueueMoveRun | null;
  queue64: QueueMoveRun | null;
}
interface MoveRun {
  messages: number;
  failed: number;
  seconds: number;
  perSecond: number;
  gbps: number;
  senderCpuSeconds: number;
  receiverCpuSeconds: number;
  fillSeconds: number;
  /** --trace only: CPU seconds per thread name (user, system) and system-call counts. */
  trace?: { threads: Record<string, { user: number; system: number }>; syscalls: Record<string, number> };
}

const SYSCALLS = ['fdatasync', 'pwritev', 'pwrite64', 'write', 'writev', 'read', 'pread64', 'epoll_wait', 'futex'];

/** `perf stat` of the system calls of `pids` until the returned function is called. */
function perfStat(pids: number[]): () => Promise<Record<string, number>> {
  const p = spawn('perf', ['stat', '-x', ',', '-p', pids.join(','), ...SYSCALLS.flatMap((c) => ['-e', `syscalls:sys_enter_${c}`])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  return async () => {
    p.kill('SIGINT');
    await exited;
    const out: Record<string, number> = {};
    for (const line of err.split('\n')) {
      const f = line.split(',');
      const m = /syscalls:sys_enter_(\w+)/.exec(line);
      if (m !== null && /^\d+$/.test(f[0] ?? '')) out[m[1]!] = Number(f[0]);
    }
    return out;
  };
}

function log(s: string): void {
  process.stderr.write(`[bench:mmove] ${s}\n`);
}

function listening(lab: ClusterLab, h: LabHost, port: number): boolean {
  return lab.exec(h, ['ss', '-Hltn']).split('\n').some((l) => l.includes(`:${port} `));
}

function shape(lab: ClusterLab, on: boolean): void {
  for (const h of lab.hosts) {
    // Both directions: data one way, acks and replies the other. tbf burst 1 MB: at 1 Gbit/s a
    // smaller bucket cannot hold one timer tick's worth of bytes and the rate falls short.
    if (on) lab.exec(h, ['tc', 'qdisc', 'replace', 'dev', h.ifname, 'root', 'tbf', 'rate', '1gbit', 'burst', '1mb', 'latency', '20ms']);
    else {
      try {
        lab.exec(h, ['tc', 'qdisc', 'del', 'dev', h.ifname, 'root']);
      } catch {
        /* no qdisc of ours: already unshaped */
      }
    }
  }
}

function qdisc(lab: ClusterLab, h: LabHost): Qdisc {
  const j = JSON.parse(lab.exec(h, ['tc', '-j', '-s', 'qdisc', 'show', 'dev', h.ifname])) as Qdisc[];
  const q = j.find((x) => (x as { root?: boolean }).root === true) ?? j[0]!;
  return { kind: q.kind, bytes: q.bytes, packets: q.packets, drops: q.drops, overlimits: q.overlimits };
}

/** Runs `f` and records the sending host's qdisc counters it caused under `name`. */
async function counted<T>(lab: ClusterLab, h: LabHost, into: Record<string, Qdisc>, name: string, f: () => Promise<T>): Promise<T> {
  const q0 = qdisc(lab, h);
  const r = await f();
  const q1 = qdisc(lab, h);
  into[name] = { kind: q1.kind, bytes: q1.bytes - q0.bytes, packets: q1.packets - q0.packets, drops: q1.drops - q0.drops, overlimits: q1.overlimits - q0.overlimits };
  return r;
}

async function iperf(lab: ClusterLab, a: LabHost, b: LabHost): Promise<number> {
  const server = lab.spawn(b, ['iperf3', '-s', '-1', '-B', b.address, '-p', '5201']);
  try {
    await waitFor('iperf3 listening', () => listening(lab, b, 5201));
    const { stdout, code } = await lab.execAsync(a, ['iperf3', '-c', b.address, '-p', '5201', '-t', String(IPERF_S), '-J']);
    if (code !== 0) throw new Error(`iperf3 failed: ${stdout.slice(0, 500)}`);
    const j = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 1e9;
  } finally {
    await server.kill('SIGTERM');
  }
}

async function sink(lab: ClusterLab, a: LabHost, b: LabHost, size: number, messages: number): Promise<{ messages: number; seconds: number; perSecond: number }> {
  // -u nobody: smtp-sink refuses to run as root after binding.
  const server = lab.spawn(b, ['/usr/sbin/smtp-sink', '-u', 'nobody', `${b.address}:${SINK_PORT}`, '1024']);
  try {
    await waitFor('smtp-sink listening', () => listening(lab, b, SINK_PORT));
    const t0 = process.hrtime.bigint();
    // -d: keep each session's connection for its next message (as #mmove does); 16 sessions.
    const { stdout, code } = await lab.execAsync(a, ['/usr/sbin/smtp-source', '-d', '-s', '16', '-m', String(messages), '-l', String(size),
      '-f', 'bench@a.invalid', '-t', 'rcpt@b.invalid', '-M', 'a.invalid', `${b.address}:${SINK_PORT}`]);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (code !== 0) throw new Error(`smtp-source failed: ${stdout.slice(0, 500)}`);
    return { messages, seconds, perSecond: messages / seconds };
  } finally {
    await server.kill('SIGTERM');
  }
}

async function mmove(lab: ClusterLab, a: LabHost, b: LabHost, size: number, messages: number): Promise<MoveRun> {
  const runDir = fs.mkdtempSync(path.join(b.dir, `mmove-${size}-`));
  const senderDir = fs.mkdtempSync(path.join(a.dir, `mmove-${size}-`));
  const conf = path.join(runDir, 'vipmta.conf');
  // Log_Level warn: the daemon's per-message 'reception' info line is not what this measures.
  fs.writeFileSync(conf, `Worker_Threads = 2
Nodename = "node-b"
Log_Level = "warn"
ECCluster_Listener { Listen "${b.address}:${MMOVE_PORT}" { } }
Cluster {
  Cluster_Secret = "${SECRET}"
  Mmove_Dedup_Entries = ${Math.max(1024, messages * 2)}
  Mmove_TLS = ${args.tls}
}
# The binding the sender's messages name (mmove-sender.ts: "b1"): in a cluster a message is moved
# to the node that owns its binding's address, so the receiver knows it. Without it the receiver
# logs a warning per message (an unknown binding) and the bench measures that logging.
Binding "b1" { }
# The receiver only stores: the benchmark measures the move, not the delivery after it.
Suspend_Delivery = true
Spool { Directory = "${path.join(runDir, 'spool')}" }
`);
  let receiver: LabProcess | null = null;
  let sender: LabProcess | null = null;
  try {
    const prof = (who: string): string[] => {
      if (args['cpu-prof'] === undefined) return [];
      const d = path.resolve(args['cpu-prof'], `${size}-${who}`);
      fs.mkdirSync(d, { recursive: true });
      return ['--cpu-prof', '--cpu-prof-dir', d];
    };
    receiver = lab.spawn(b, [process.execPath, ...prof('receiver'), cli, 'start', '-c', conf]);
    await waitFor('vipmta receiver listening', () => listening(lab, b, MMOVE_PORT) || (receiver!.running ? false : Promise.reject(new Error(`receiver exited: ${receiver!.stderrLines.join('\n')}`))), { timeoutMs: 30_000 });
    sender = lab.spawn(a, [process.execPath, ...prof('sender'), senderJs, '--root', root, '--dir', senderDir, '--peer', `${b.address}:${MMOVE_PORT}`,
      '--size', String(size), '--count', String(messages), '--connections', args.connections!, '--secret', SECRET, ...(args.tls ? ['--tls'] : [])]);
    const filled = JSON.parse((await sender.waitLine((l) => l.includes('"filled"'), { timeoutMs: 600_000 })).line) as { seconds: number };
    const cpu0 = treeCpuSeconds(receiver.pid);
    const ticks0 = args.trace ? new Map([...threadTicks(receiver.pid, 'receiver'), ...threadTicks(sender.pid, 'sender')]) : null;
    const stopPerf = args.trace ? perfStat([receiver.pid, sender.pid]) : null;
    const moved = JSON.parse((await sender.waitLine((l) => l.includes('"moved"'), { timeoutMs: 900_000 })).line) as {
      messages: number; failed: number; bytes: number; seconds: number; senderCpuSeconds: number;
    };
    const receiverCpuSeconds = treeCpuSeconds(receiver.pid) - cpu0;
    let trace: MoveRun['trace'];
    if (ticks0 !== null && stopPerf !== null) {
      const ticks1 = new Map([...threadTicks(receiver.pid, 'receiver'), ...threadTicks(sender.pid, 'sender')]);
      const threads: Record<string, { user: number; system: number }> = {};
      for (const [k, [u, sy]] of ticks1) {
        const [u0, s0] = ticks0.get(k) ?? [0, 0];
        if (u - u0 + sy - s0 > 0) threads[k] = { user: (u - u0) / 100, system: (sy - s0) / 100 };
      }
      trace = { threads, syscalls: await stopPerf() };
      log(`trace ${size}: ${JSON.stringify(trace)}`);
    }
    await sender.exited;
    return {
      messages: moved.messages,
      failed: moved.failed,
      seconds: moved.seconds,
      perSecond: moved.messages / moved.seconds,
      gbps: (moved.bytes * 8) / moved.seconds / 1e9,
      senderCpuSeconds: moved.senderCpuSeconds,
      receiverCpuSeconds,
      fillSeconds: filled.seconds,
      ...(trace !== undefined ? { trace } : {}),
    };
  } finally {
    await sender?.kill('SIGKILL');
    await receiver?.kill('SIGTERM');
    fs.rmSync(runDir, { recursive: true, force: true });
    fs.rmSync(senderDir, { recursive: true, force: true });
  }
}

async function pass(lab: ClusterLab, shaped: boolean): Promise<Figures> {
  const [a, b] = [lab.hosts[0]!, lab.hosts[1]!];
  shape(lab, shaped);
  const label = shaped ? '1 Gbit/s tbf' : 'unshaped veth';
  const q: Record<string, Qdisc> = {};
  log(`${label}: iperf3`);
  const iperfGbps = await counted(lab, a, q, 'iperf3', () => iperf(lab, a, b));
  log(`${label}: smtp-source -> smtp-sink 4 KiB`);
  const sink4 = await counted(lab, a, q, 'sink4', () => sink(lab, a, b, 4096, SINK4));
  log(`${label}: smtp-source -> smtp-sink 64 KiB`);
  const s64 = await counted(lab, a, q, 'sink64', () => sink(lab, a, b, 65536, SINK64));
  const sink64 = { ...s64, gbps: (s64.perSecond * 65536 * 8) / 1e9 };
  const sizes = args.sizes!.split(',').map(Number);
  const skipped: MoveRun = { messages: 0, failed: 0, seconds: NaN, perSecond: NaN, gbps: NaN, senderCpuSeconds: NaN, receiverCpuSeconds: NaN, fillSeconds: NaN };
  log(`${label}: mmove ${N4} x 4 KiB`);
  const mmove4 = sizes.includes(4096) ? await counted(lab, a, q, 'mmove4', () => mmove(lab, a, b, 4096, N4)) : skipped;
  log(`${label}: mmove ${N64} x 64 KiB`);
  const mmove64 = sizes.includes(65536) ? await counted(lab, a, q, 'mmove64', () => mmove(lab, a, b, 65536, N64)) : skipped;
  const viaQueue = (size: number, n: number): Promise<QueueMoveRun> =>
    counted(lab, a, q, `queue${size / 1024}`, () => queueMove(lab, cli, size, n, { secret: SECRET, connections: Number(args.connections), tls: args.tls, log: (m) => log(`${label}: ${m}`) }));
  const queue4 = !args['no-queue'] && sizes.includes(4096) ? await viaQueue(4096, N4) : null;
  const queue64 = !args['no-queue'] && sizes.includes(65536) ? await viaQueue(65536, N64) : null;
  log(`${label}: qdisc ${a.ifname} of ${a.name}: ${JSON.stringify(q)}`);
  return { qdisc: q, iperfGbps, sink4, sink64, mmove4, mmove64, queue4, queue64 };
}

function table(label: string, f: Figures): string {
  const r = (x: number, d = 0): string => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  return [
    `### ${label}`,
    '',
    '| measurement | figure | ratio |',
    '|---|---|---|',
    `| iperf3 raw TCP | ${r(f.iperfGbps, 3)} Gbit/s | 1.00 |`,
    `| smtp-source -> smtp-sink, 4 KiB, 16 sessions | ${r(f.sink4.perSecond)} msg/s | 1.00 (4 KiB anchor) |`,
    `| smtp-source -> smtp-sink, 64 KiB, 16 sessions | ${r(f.sink64.perSecond)} msg/s = ${r(f.sink64.gbps, 3)} Gbit/s | ${r(f.sink64.gbps / f.iperfGbps, 2)} of raw TCP |`,
    `| #mmove 4 KiB (${r(f.mmove4.messages)}, durable both ends) | ${r(f.mmove4.perSecond)} msg/s | ${r(f.mmove4.perSecond / f.sink4.perSecond, 2)} of smtp-sink |`,
    `| #mmove 64 KiB (${r(f.mmove64.messages)}, durable both ends) | ${r(f.mmove64.perSecond)} msg/s = ${r(f.mmove64.gbps, 3)} Gbit/s | ${r(f.mmove64.gbps / f.iperfGbps, 2)} of raw TCP |`,
    ...(f.queue4 !== null ? [`| #mmove 4 KiB through the queues (node A -> node B, ${r(f.queue4.messages)}) | ${r(f.queue4.perSecond)} msg/s | ${r(f.queue4.perSecond / f.sink4.perSecond, 2)} of smtp-sink |`] : []),
    ...(f.queue64 !== null ? [`| #mmove 64 KiB through the queues (node A -> node B, ${r(f.queue64.messages)}) | ${r(f.queue64.perSecond)} msg/s = ${r(f.queue64.gbps, 3)} Gbit/s | ${r(f.queue64.gbps / f.iperfGbps, 2)} of raw TCP |`] : []),
    '',
    `CPU during the moves (s): 4 KiB sender ${r(f.mmove4.senderCpuSeconds, 1)}, receiver ${r(f.mmove4.receiverCpuSeconds, 1)}; ` +
      `64 KiB sender ${r(f.mmove64.senderCpuSeconds, 1)}, receiver ${r(f.mmove64.receiverCpuSeconds, 1)}. ` +
      `Failed moves: ${f.mmove4.failed + f.mmove64.failed}.` +
      (f.queue4 !== null || f.queue64 !== null
        ? ` Through the queues: node A ${r(f.queue4?.senderCpuSeconds ?? 0, 1)} / ${r(f.queue64?.senderCpuSeconds ?? 0, 1)} s, node B ${r(f.queue4?.receiverCpuSeconds ?? 0, 1)} / ${r(f.queue64?.receiverCpuSeconds ?? 0, 1)} s (4 / 64 KiB), left on A ${(f.queue4?.leftOnSender ?? 0) + (f.queue64?.leftOnSender ?? 0)}.`
        : ''),
    '',
  ].join('\n');
}

interface Ratios {
  mmove4OfSink4: number;
  mmove64OfRawTcp: number;
  sink64OfRawTcp: number;
  queue4OfSink4: number;
  queue64OfRawTcp: number;
}
const ratios = (f: Figures): Ratios => ({
  mmove4OfSink4: f.mmove4.perSecond / f.sink4.perSecond,
  mmove64OfRawTcp: f.mmove64.gbps / f.iperfGbps,
  sink64OfRawTcp: f.sink64.gbps / f.iperfGbps,
  queue4OfSink4: (f.queue4?.perSecond ?? NaN) / f.sink4.perSecond,
  queue64OfRawTcp: (f.queue64?.gbps ?? NaN) / f.iperfGbps,
});
function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
}
function summary(fs: Figures[]): Record<keyof Ratios, { median: number; min: number; max: number; each: number[] }> {
  const rs = fs.map(ratios);
  const one = (k: keyof Ratios): { median: number; min: number; max: number; each: number[] } => {
    const each = rs.map((r) => r[k]);
    return { median: median(each), min: Math.min(...each), max: Math.max(...each), each };
  };
  return {
    mmove4OfSink4: one('mmove4OfSink4'), mmove64OfRawTcp: one('mmove64OfRawTcp'), sink64OfRawTcp: one('sink64OfRawTcp'),
    queue4OfSink4: one('queue4OfSink4'), queue64OfRawTcp: one('queue64OfRawTcp'),
  };
}
function summaryTable(label: string, fs: Figures[]): string {
  const s = summary(fs);
  const f = (x: { median: number; min: number; max: number }): string => `${x.median.toFixed(2)} (${x.min.toFixed(2)}-${x.max.toFixed(2)})`;
  return [
    `### ${label}: ${fs.length} rounds, median (range) of the per-round ratios`,
    '',
    '| ratio | median (range) |',
    '|---|---|',
    `| #mmove 4 KiB / smtp-sink 4 KiB | ${f(s.mmove4OfSink4)} |`,
    `| #mmove 64 KiB / raw TCP | ${f(s.mmove64OfRawTcp)} |`,
    `| smtp-sink 64 KiB / raw TCP | ${f(s.sink64OfRawTcp)} |`,
    `| #mmove 4 KiB through the queues / smtp-sink 4 KiB | ${f(s.queue4OfSink4)} |`,
    `| #mmove 64 KiB through the queues / raw TCP | ${f(s.queue64OfRawTcp)} |`,
    '',
  ].join('\n');
}

const reps = Math.max(1, Number(args.reps));
// Corosync on both hosts: the moves through the queues need a cluster (its traffic is tiny).
const lab = await ClusterLab.create({ nodes: 2, corosync: true });
try {
  const started = new Date();
  const runs: { shaped: Figures | null; unshaped: Figures | null; loadavg: number[] }[] = [];
  for (let i = 0; i < reps; i++) {
    if (reps > 1) log(`round ${i + 1} of ${reps}`);
    const loadavg = os.loadavg();
    const shaped = args['no-shaped'] ? null : await pass(lab, true);
    const unshaped = args['no-unshaped'] ? null : await pass(lab, false);
    runs.push({ shaped, unshaped, loadavg });
  }
  const all = (k: 'shaped' | 'unshaped'): Figures[] => runs.map((r) => r[k]).filter((f): f is Figures => f !== null);
  const out = {
    date: started.toISOString(),
    command: `npm run bench:mmove${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '', node: process.version, kernel: os.release() },
    settings: { connections: Number(args.connections), tls: args.tls, n4: N4, n64: N64, sink4: SINK4, sink64: SINK64, iperfSeconds: IPERF_S, reps },
    // The first round (the only one without --reps), as before; every round in `runs`.
    shaped: runs[0]!.shaped,
    unshaped: runs[0]!.unshaped,
    runs,
    summary: { shaped: all('shaped').length > 0 ? summary(all('shaped')) : null, unshaped: all('unshaped').length > 0 ? summary(all('unshaped')) : null },
  };
  const dir = path.join(root, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `mmove-${started.toISOString().replace(/[:.]/g, '-')}${args.tls ? '-tls' : ''}${quick ? '-quick' : ''}.json`);
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  for (const [i, r] of runs.entries()) {
    const n = reps > 1 ? ` (round ${i + 1}, load average ${r.loadavg.map((x) => x.toFixed(1)).join(' ')})` : '';
    if (r.shaped !== null) console.log(table(`1 Gbit/s (tc tbf on both veths)${n}`, r.shaped));
    if (r.unshaped !== null) console.log(table(`unshaped veth${n}`, r.unshaped));
  }
  if (reps > 1) {
    if (all('shaped').length > 0) console.log(summaryTable('1 Gbit/s (tc tbf)', all('shaped')));
    if (all('unshaped').length > 0) console.log(summaryTable('unshaped veth', all('unshaped')));
  }
  console.log(`raw JSON: ${path.relative(root, file)}`);
} finally {
  await lab.destroy();
}
