// Delivery from a filled queue (issue 4): vipmta against a private Postfix, both delivering to the same
// kind of sink (Postfix's smtp-sink on loopback, a fresh one per case), back to back in one run.
// For each system and size: fill its queue with N held messages through smtp-source, write the dirty
// pages back (`sync`), then release everything at one instant and time until the sink has counted N
// messages. Prints a markdown table; ratios are against Postfix in the same run.
//
// Held and released:
//   vipmta:  Suspend_Delivery = true in the config; release = the config rewritten without it, then
//            `vipmta console -s SOCK config reload` (the console client's start-up is inside the time).
//   Postfix: smtpd_data_restrictions = check_client_access static:HOLD (bench/postfix/main.cf.in);
//            release = `postsuper -H ALL` (hold/ -> deferred/) then `postqueue -f` (both inside the time).
// Before the measured fill each system delivers W unmeasured warm-up messages the same way (V8's JIT,
// Postfix's smtp processes and connection cache).
//
// Build and run (repository root, as root for Postfix; needs `npx tsc -p tsconfig.json` first):
//   npm run bench:delivery -- [--quick] [options]
// Options: --quick (2,000 messages, 200 warm-up)  --messages N (default 20,000)  --sizes 4096,65536
//   --systems postfix,vipmta  --warmup W (default 1,000)  --worker-threads N (default 0: the product's default, one per core but one)  --fill-sessions 32
//   --log-level info (vipmta's Log_Level; its log goes to a file, as Postfix's does)
//   --cpu-prof DIR (profile vipmta)  --json (also write bench/results/delivery-<time>.json)
//   --vipmta-root DIR (another built checkout)
//   --strace DIR (strace -c -f on vipmta during the delivery only: DIR/delivery-<size>.txt; slows it)
//   --domain-options 'OPTION = VALUE ...' (added to vipmta's Domain stanza of the sink's domain, e.g.
//   limits that never bind, to measure what they cost)
// Runs on the main thread only; it blocks on child processes and samples /proc every 250 ms.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { list, repoRoot } from './lib/repo.js';
import { MemorySampler, treeCpuSeconds } from './lib/proc.js';
import { startPostfix, startSmtpSink, startVipmta, type PostfixServer, type SinkServer, type VipmtaServer } from './lib/servers.js';
import { runSmtpSource, SMTP_SOURCE, sourceArgs } from './lib/smtp-source.js';
import { f0, f2, kib, machineLine } from './lib/report.js';
import { startStrace } from './lib/strace.js';

type System = 'postfix' | 'vipmta';
const SYSTEMS: readonly System[] = ['postfix', 'vipmta'];

interface Row {
  system: string;
  size: number;
  messages: number;
  ok: boolean;
  error: string;
  /** Fill: smtp-source wall time (not measured against anything; for the record). */
  fillSeconds: number;
  /** From the release command to the sink's N-th message. */
  wallSeconds: number;
  /** Of which the release command itself (reload / postsuper + postqueue). */
  releaseSeconds: number;
  msgPerSec: number;
  serverCpuMsPerMsg: number;
  sinkCpuMsPerMsg: number;
  peakRssMiB: number;
  peakPssMiB: number;
  processes: number;
  /** Messages left in the server's queue once the sink had them all and the queue settled. */
  left: number | null;
}



const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    messages: { type: 'string' },
    systems: { type: 'string', default: 'postfix,vipmta' },
    sizes: { type: 'string', default: '4096,65536' },
    warmup: { type: 'string' },
    'worker-threads': { type: 'string', default: '0' },
    'fill-sessions': { type: 'string', default: '32' },
    'log-level': { type: 'string', default: 'info' },
    'cpu-prof': { type: 'string' },
    json: { type: 'boolean', default: false },
    'vipmta-root': { type: 'string' },
    'domain-options': { type: 'string', default: '' },
    strace: { type: 'string' },
  },
  strict: true,
});

const root = repoRoot();
const messages = Number(opt.messages ?? (opt.quick ? 2000 : 20000));
if (!Number.isInteger(messages) || messages <= 0) throw new Error('--messages: expected a positive integer');
const warmup = Number(opt.warmup ?? (opt.quick ? 200 : 1000));
if (!Number.isInteger(warmup) || warmup < 0) throw new Error('--warmup: expected an integer >= 0');
const vipmtaRoot = path.resolve(opt['vipmta-root'] ?? root);
const systems = opt.systems.split(',').map((s) => s.trim().toLowerCase()) as System[];
for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`--systems: unknown system "${s}" (known: ${SYSTEMS.join(', ')})`);
const sizes = list(opt.sizes, 'sizes');
const fillSessions = list(opt['fill-sessions'], 'fill-sessions')[0]!;
const cpuProf = opt['cpu-prof'] === undefined ? null : path.resolve(opt['cpu-prof']);
if (cpuProf !== null) fs.mkdirSync(cpuProf, { recursive: true });
if (opt.strace !== undefined) fs.mkdirSync(path.resolve(opt.strace), { recursive: true });
// The longest we wait for a phase: generous (a failed system shows as a timeout, not a hang).
const phaseTimeoutMs = (n: number): number => Math.max(60_000, n * 20);

/** What Postfix needs to relay to the sink; everything else stays as bench/postfix/*.cf.in has it. */
function postfixSettings(sinkPort: number): { main: Record<string, string>; master: string[] } {
  return {
    main: { relayhost: `[127.0.0.1]:${sinkPort}` },
    // The stock master.cf lines of the SMTP client (default_transport = smtp, relay_transport = relay).
    master: ['smtp      unix  -       -       n       -       -       smtp', 'relay     unix  -       -       n       -       -       smtp'],
  };
}

function vipmtaExtra(sinkPort: number): string {
  return `# bench/delivery.ts: every recipient is rcpt@example.com; deliver to the sink instead of the MX.\nDomain "example.com" { Routes = ( "127.0.0.1:${sinkPort}" ) ${opt['domain-options']} }\n`;
}

/** One system under test, held and released the same way for the warm-up and the measured run. */
interface Subject {
  server: PostfixServer | VipmtaServer;
  /** Messages in the queue (any state). */
  queued(): Promise<number>;
  hold(): Promise<void>;
  release(): Promise<void>;
}

async function startSubject(system: System, sinkPort: number): Promise<Subject> {
  if (system === 'postfix') {
    const pf = await startPostfix(path.join(root, 'bench', 'postfix'), postfixSettings(sinkPort));
    return {
      server: pf,
      queued: async () => pf.queued(),
      hold: async () => undefined, // smtpd holds every new message anyway
      release: () => pf.release(),
    };
  }
  const v = await startVipmta({
    name: 'vipmta',
    repoRoot: vipmtaRoot,
    workerThreads: Number(opt['worker-threads']),
    nodeFlags: cpuProf === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`],
    suspendDelivery: true,
    extraConfig: vipmtaExtra(sinkPort),
    logLevel: opt['log-level'],
    logToFile: true,
  });
  return {
    server: v,
    queued: async () => (await v.count()) ?? 0,
    hold: () => v.setSuspended(true),
    release: () => v.setSuspended(false),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitQueued(s: Subject, want: (n: number) => boolean, timeoutMs: number, what: string): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let n = await s.queued();
  while (!want(n)) {
    if (Date.now() > deadline) throw new Error(`${what}: queue holds ${n} after ${timeoutMs} ms`);
    await sleep(250);
    n = await s.queued();
  }
  return n;
}

async function fill(s: Subject, port: number, n: number, size: number): Promise<number> {
  const r = await runSmtpSource({ port, messages: n, sessions: fillSessions, size, reuseConnections: true });
  if (!r.ok) throw new Error(`fill: smtp-source: ${r.error.split('\n').slice(-3).join(' | ')}`);
  await waitQueued(s, (q) => q === n, phaseTimeoutMs(n), `fill of ${n}`);
  return r.wallSeconds;
}

// What is running now, so an interrupted run still stops it (by PID) and removes its files.
const running = new Set<{ stop(): Promise<void> }>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`${sig}: stopping the servers under test\n`);
    void Promise.allSettled([...running].map((s) => s.stop())).finally(() => process.exit(130));
  });
}

async function measure(system: System, size: number): Promise<Row> {
  const row: Row = {
    system: system === 'postfix' ? 'Postfix' : system,
    size, messages, ok: false, error: '',
    fillSeconds: NaN, wallSeconds: NaN, releaseSeconds: NaN, msgPerSec: NaN,
    serverCpuMsPerMsg: NaN, sinkCpuMsPerMsg: NaN, peakRssMiB: NaN, peakPssMiB: NaN, processes: 0, left: null,
  };
  let sink: SinkServer | null = null;
  let subject: Subject | null = null;
  try {
    sink = await startSmtpSink({ count: true });
    running.add(sink);
    subject = await startSubject(system, sink.port);
    running.add(subject.server);
    const { server } = subject;
    if (warmup > 0) {
      await fill(subject, server.port, warmup, size);
      await subject.release();
      await sink.waitFor(warmup, phaseTimeoutMs(warmup));
      await waitQueued(subject, (q) => q === 0, phaseTimeoutMs(warmup), 'warm-up delivery');
      await subject.hold();
    }
    row.fillSeconds = await fill(subject, server.port, messages, size);
    // Write the fill's dirty pages back now, not during the delivery.
    execFileSync('sync');
    const target = sink.received() + messages;
    const mem = new MemorySampler(server.rootPid);
    const cpu0 = treeCpuSeconds(server.rootPid);
    const sinkCpu0 = treeCpuSeconds(sink.rootPid);
    const tracer = opt.strace === undefined || system !== 'vipmta' ? null : await startStrace(server.rootPid, path.join(path.resolve(opt.strace), `delivery-${size}.txt`));
    const t0 = process.hrtime.bigint();
    await subject.release();
    row.releaseSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await sink.waitFor(target, phaseTimeoutMs(messages));
    await tracer?.();
    row.wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu1 = treeCpuSeconds(server.rootPid);
    const sinkCpu1 = treeCpuSeconds(sink.rootPid);
    const peak = mem.stop();
    row.msgPerSec = messages / row.wallSeconds;
    row.serverCpuMsPerMsg = ((cpu1 - cpu0) * 1000) / messages;
    row.sinkCpuMsPerMsg = ((sinkCpu1 - sinkCpu0) * 1000) / messages;
    row.peakRssMiB = peak.rssKiB / 1024;
    row.peakPssMiB = peak.pssKiB / 1024;
    row.processes = peak.processes;
    // Every message done (vipmta: marked done in the spool; Postfix: queue file removed).
    row.left = await waitQueued(subject, (q) => q === 0, 30_000, 'after delivery').catch(() => null);
    const extra = sink.received() - target;
    row.ok = row.left === 0 && extra === 0;
    row.error = row.ok ? '' : row.left !== 0 ? 'queue not empty after delivery' : `sink received ${extra} more than sent (duplicates)`;
  } catch (err) {
    row.error = (err as Error).message;
  } finally {
    for (const s of [subject?.server, sink]) {
      if (s == null) continue;
      await s.stop().catch((e: unknown) => process.stderr.write(`stop ${s.name}: ${(e as Error).message}\n`));
      running.delete(s);
    }
    execFileSync('sync');
  }
  return row;
}


function table(rows: Row[]): string {
  const out = [
    '| size | system | msg/s | vs Postfix | server CPU ms/msg | sink CPU ms/msg | peak RSS MiB | peak PSS MiB | procs | release s | fill msg/s |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const pf = rows.find((x) => x.system === 'Postfix' && x.size === r.size && x.ok);
    const ratio = pf !== undefined && r.ok ? `${(r.msgPerSec / pf.msgPerSec).toFixed(2)}x` : '-';
    const rate = r.ok ? f0(r.msgPerSec) : `failed: ${r.error.replaceAll('|', '/').replaceAll('\n', ' ')}`;
    out.push(
      `| ${kib(r.size)} | ${r.system} | ${rate} | ${ratio} | ${f2(r.serverCpuMsPerMsg)} | ${f2(r.sinkCpuMsPerMsg)} | ${f0(r.peakRssMiB)} | ${f0(r.peakPssMiB)} | ${r.processes || '-'} | ${f2(r.releaseSeconds)} | ${f0(r.messages / r.fillSeconds)} |`,
    );
  }
  return out.join('\n');
}

function header(): string {
  const example = sourceArgs({ port: 0, messages, sessions: fillSessions, size: sizes[0]!, reuseConnections: true }).join(' ');
  const pf = postfixSettings(0);
  return [
    machineLine(),
    `fill: ${SMTP_SOURCE} ${example.replace('127.0.0.1:0', '127.0.0.1:PORT')} (-l per size), after ${warmup} unmeasured warm-up messages delivered the same way`,
    `sink: /usr/sbin/smtp-sink -c -u nobody 127.0.0.1:PORT 1024, a fresh one per case`,
    `vipmta: ${vipmtaRoot}; Worker_Threads = ${opt['worker-threads'] === '0' ? 'default' : opt['worker-threads']}, Log_Level = ${opt['log-level']} (to a file), Spool Sync = fdatasync, delivery defaults (Max_Outbound_Connections 20, Max_Deliveries_Per_Connection 100), Domain "example.com" { Routes = ( "127.0.0.1:PORT" ) }; held by Suspend_Delivery = true, released by config reload`,
    `Postfix: bench/postfix/*.cf.in plus ${Object.entries(pf.main).map(([k, v]) => `${k} = ${v}`).join(', ').replace(':0', ':PORT')} and master.cf services smtp, relay (smtp(8)); held by static:HOLD, released by postsuper -H ALL + postqueue -f`,
  ].join('\n');
}

async function main(): Promise<void> {
  process.stdout.write(header() + '\n\n');
  const rows: Row[] = [];
  for (const size of sizes) {
    for (const system of systems) {
      const r = await measure(system, size);
      rows.push(r);
      process.stderr.write(
        `${kib(size)} ${r.system}: ${r.ok ? `${f0(r.msgPerSec)} msg/s, ${f2(r.serverCpuMsPerMsg)} ms CPU/msg` : `FAILED ${r.error}`}\n`,
      );
    }
  }
  process.stdout.write(table(rows) + '\n');
  if (opt.json) {
    const dir = path.join(root, 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `delivery-${new Date().toISOString().replaceAll(':', '-')}.json`);
    fs.writeFileSync(file, JSON.stringify({ header: header(), rows }, null, 2) + '\n');
    process.stderr.write(`wrote ${file}\n`);
  }
  if (rows.some((r) => !r.ok)) process.exitCode = 1;
}

await main();
