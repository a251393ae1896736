// Durable injection, whole processes (issue 3): vipmta against a private Postfix (mail held in its queue,
// the durable anchor) and smtp-sink (no storage, the ceiling), back to back in one run, all loaded by
// Postfix's smtp-source over loopback. Prints a markdown table; ratios are against Postfix in the same run.
//
// Build and run (from the repository root, as root for Postfix; needs `npx tsc -p tsconfig.json` first):
//   npx tsc --strict --target es2022 --module nodenext --moduleResolution nodenext --types node \
//     --skipLibCheck --rootDir bench --outDir node_modules/.cache/vipmta-bench bench/inject.ts \
//     && node node_modules/.cache/vipmta-bench/inject.js [--quick] [options]
// Options: --quick (2,000 messages per case), --messages N (default 20,000; env INJECT_MESSAGES),
//   --systems smtp-sink,postfix,vipmta  --sizes 4096,65536  --sessions 16,64  --worker-threads N (default 0: the product's default, one per core but one)
//   --warmup N (unmeasured messages first, default 1,000)  --no-reuse (one connection per message)  --cpu-prof DIR (profile vipmta)
//   --source-heap pinned|glibc (smtp-source's malloc: held still, the default, or glibc's own; lib/smtp-source.ts)
//   --json (also write bench/results/inject-<time>.json)
//   --vipmta-root DIR (another built checkout)  --candidate DIR (a second build, measured after vipmta)
//   --log-level info (vipmta's Log_Level, default warn; its log goes to a file, as Postfix's does)
//   --strace DIR (strace -c -f on vipmta's process during the measured messages only: syscalls per message,
//     DIR/<system>-<size>-<sessions>.txt; slows the server, so its rates are not figures)
//   --extra-config 'Event_Log_Lines = false' (appended to vipmta's config, not the candidate's; \n for a new line)
// Runs on the main thread only; it blocks on child processes and samples /proc every 250 ms.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { list, repoRoot } from './lib/repo.js';
import { MemorySampler, treeCpuSeconds } from './lib/proc.js';
import { startPostfix, startSmtpSink, startVipmta, type Server } from './lib/servers.js';
import { runSmtpSource, sourceArgs, SMTP_SOURCE, SOURCE_HEAP_TUNABLES, type SourceHeap } from './lib/smtp-source.js';
import { f0, f2, kib, machineLine } from './lib/report.js';
import { startStrace } from './lib/strace.js';

type System = 'smtp-sink' | 'postfix' | 'vipmta' | 'candidate';
const SYSTEMS: readonly System[] = ['smtp-sink', 'postfix', 'vipmta', 'candidate'];

interface Row {
  system: string;
  size: number;
  sessions: number;
  messages: number;
  ok: boolean;
  error: string;
  wallSeconds: number;
  msgPerSec: number;
  serverCpuMsPerMsg: number;
  clientCpuMsPerMsg: number;
  peakRssMiB: number;
  peakPssMiB: number;
  processes: number;
  /** Messages the server held after the run, warm-up included (null: stores nothing). */
  held: number | null;
}



const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    messages: { type: 'string' },
    systems: { type: 'string', default: 'smtp-sink,postfix,vipmta' },
    sizes: { type: 'string', default: '4096,65536' },
    sessions: { type: 'string', default: '16,64' },
    'worker-threads': { type: 'string', default: '0' },
    warmup: { type: 'string', default: '1000' },
    'no-reuse': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    json: { type: 'boolean', default: false },
    'vipmta-root': { type: 'string' },
    candidate: { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
    'extra-config': { type: 'string', default: '' },
    strace: { type: 'string' },
    'source-heap': { type: 'string', default: 'pinned' },
  },
  strict: true,
});

const root = repoRoot();
const messages = Number(opt.messages ?? process.env['INJECT_MESSAGES'] ?? (opt.quick ? 2000 : 20000));
if (!Number.isInteger(messages) || messages <= 0) throw new Error('--messages: expected a positive integer');
// A/B of two builds in one run: --vipmta-root DIR (default: this checkout) and --candidate DIR, each a
// built checkout (dist/ and build/Release/); the candidate runs right after vipmta in every case.
const vipmtaRoot = path.resolve(opt['vipmta-root'] ?? root);
const candidateRoot = opt.candidate === undefined ? null : path.resolve(opt.candidate);
const systems = opt.systems.split(',').map((s) => s.trim().toLowerCase()) as System[];
if (candidateRoot !== null && !systems.includes('candidate')) systems.push('candidate');
if (candidateRoot === null && systems.includes('candidate')) throw new Error('--systems candidate needs --candidate DIR');
for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`--systems: unknown system "${s}" (known: ${SYSTEMS.join(', ')})`);
const sizes = list(opt.sizes, 'sizes');
const sessionCounts = list(opt.sessions, 'sessions');
const reuse = !opt['no-reuse'];
const heap = opt['source-heap'] as SourceHeap;
if (heap !== 'pinned' && heap !== 'glibc') throw new Error('--source-heap: expected pinned or glibc');
// Unmeasured messages sent first to every server, same sessions and size: V8's JIT and Postfix's
// process pool warm up on them (a cold 2,000-message run of vipmta measured a third of a warm one).
const warmup = Number(opt.warmup);
if (!Number.isInteger(warmup) || warmup < 0) throw new Error('--warmup: expected an integer >= 0');
const cpuProf = opt['cpu-prof'] === undefined ? null : path.resolve(opt['cpu-prof']);
if (cpuProf !== null) fs.mkdirSync(cpuProf, { recursive: true });

const straceDir = opt.strace === undefined ? null : path.resolve(opt.strace);
if (straceDir !== null) fs.mkdirSync(straceDir, { recursive: true });

function start(system: System): Promise<Server> {
  switch (system) {
    case 'smtp-sink':
      return startSmtpSink();
    case 'postfix':
      return startPostfix(path.join(root, 'bench', 'postfix'));
    case 'vipmta':
    case 'candidate':
      return startVipmta({
        name: system,
        repoRoot: system === 'vipmta' ? vipmtaRoot : candidateRoot!,
        workerThreads: Number(opt['worker-threads']),
        nodeFlags: cpuProf === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`],
        logLevel: opt['log-level'],
        logToFile: true,
        // The option under test goes to vipmta only: the candidate may be a build that does not know it.
        extraConfig: system === 'vipmta' ? opt['extra-config'].replace(/\\n/g, '\n') : '',
      });
  }
}

// The server under test right now, so an interrupted run still stops it (by its PID) and removes its files.
let current: Server | null = null;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`${sig}: stopping the server under test\n`);
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

async function measure(system: System, size: number, sessions: number): Promise<Row> {
  const row: Row = {
    system: system === 'postfix' ? 'Postfix' : system,
    size,
    sessions,
    messages,
    ok: false,
    error: '',
    wallSeconds: NaN,
    msgPerSec: NaN,
    serverCpuMsPerMsg: NaN,
    clientCpuMsPerMsg: NaN,
    peakRssMiB: NaN,
    peakPssMiB: NaN,
    processes: 0,
    held: null,
  };
  let server: Server;
  try {
    server = await start(system);
  } catch (err) {
    row.error = `start: ${(err as Error).message}`;
    return row;
  }
  current = server;
  try {
    if (warmup > 0) {
      const w = await runSmtpSource({ port: server.port, messages: warmup, sessions, size, reuseConnections: reuse, heap });
      if (!w.ok) throw new Error(`warm-up: smtp-source: ${w.error.split('\n').slice(-3).join(' | ')}`);
    }
    const mem = new MemorySampler(server.rootPid);
    const tracer = straceDir === null || (system !== 'vipmta' && system !== 'candidate') ? null : await startStrace(server.rootPid, path.join(straceDir, `${system}-${size}-${sessions}.txt`));
    const cpu0 = treeCpuSeconds(server.rootPid);
    const load = await runSmtpSource({ port: server.port, messages, sessions, size, reuseConnections: reuse, heap });
    await tracer?.();
    const cpu1 = treeCpuSeconds(server.rootPid);
    const peak = mem.stop();
    row.wallSeconds = load.wallSeconds;
    row.msgPerSec = messages / load.wallSeconds;
    row.serverCpuMsPerMsg = ((cpu1 - cpu0) * 1000) / messages;
    row.clientCpuMsPerMsg = (load.clientCpuSeconds * 1000) / messages;
    row.peakRssMiB = peak.rssKiB / 1024;
    row.peakPssMiB = peak.pssKiB / 1024;
    row.processes = peak.processes;
    const held = await server.count();
    row.held = held ?? null;
    row.ok = load.ok && (held === undefined || held === warmup + messages);
    row.error = load.ok ? (row.ok ? '' : `held ${held} of ${warmup} + ${messages}`) : `smtp-source: ${load.error.split('\n').slice(-3).join(' | ')}`;
  } catch (err) {
    row.error = (err as Error).message;
  } finally {
    current = null;
    await server.stop();
    // Write back this system's dirty pages now, not during the next system's run.
    execFileSync('sync');
  }
  return row;
}


function table(rows: Row[]): string {
  const out = [
    '| size / sessions | system | msg/s | vs Postfix | server CPU ms/msg | smtp-source CPU ms/msg | peak RSS MiB | peak PSS MiB | procs | held |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const pf = rows.find((x) => x.system === 'Postfix' && x.size === r.size && x.sessions === r.sessions && x.ok);
    const ratio = pf !== undefined && r.ok ? `${(r.msgPerSec / pf.msgPerSec).toFixed(2)}x` : '-';
    const rate = r.ok ? f0(r.msgPerSec) : `failed: ${r.error.replaceAll('|', '/')}`;
    out.push(
      `| ${kib(r.size)} / ${r.sessions} | ${r.system} | ${rate} | ${ratio} | ${f2(r.serverCpuMsPerMsg)} | ${f2(r.clientCpuMsPerMsg)} | ${f0(r.peakRssMiB)} | ${f0(r.peakPssMiB)} | ${r.processes || '-'} | ${r.held ?? 'n/a'} |`,
    );
  }
  // Each candidate against the vipmta row measured just before it (a case listed twice, e.g.
  // --sessions 64,64, gives two pairs).
  for (const [i, c] of rows.entries()) {
    if (c.system !== 'candidate' || !c.ok) continue;
    const v = rows.slice(0, i).reverse().find((x) => x.system === 'vipmta' && x.size === c.size && x.sessions === c.sessions && x.ok);
    if (v !== undefined) {
      out.push(`\ncandidate / vipmta, ${kib(c.size)} / ${c.sessions}: ${(c.msgPerSec / v.msgPerSec).toFixed(2)}x msg/s, ${(c.serverCpuMsPerMsg / v.serverCpuMsPerMsg).toFixed(2)}x CPU per message`);
    }
  }
  return out.join('\n');
}

function header(): string {
  const example = sourceArgs({ port: 0, messages, sessions: sessionCounts[0]!, size: sizes[0]!, reuseConnections: reuse }).join(' ');
  return [
    machineLine(),
    `load: ${heap === 'pinned' ? `GLIBC_TUNABLES=${SOURCE_HEAP_TUNABLES} ` : ''}${SMTP_SOURCE} ${example.replace('127.0.0.1:0', '127.0.0.1:PORT')} (per case -s/-l vary), after ${warmup} unmeasured warm-up messages`,
    `vipmta: ${vipmtaRoot}${candidateRoot === null ? '' : `; candidate: ${candidateRoot}`}; Worker_Threads = ${opt['worker-threads'] === '0' ? 'default' : opt['worker-threads']}, Spool Sync = fdatasync (default); Postfix: mail held (smtpd_data_restrictions = check_client_access static:HOLD)`,
  ].join('\n');
}

async function main(): Promise<void> {
  process.stdout.write(header() + '\n\n');
  const rows: Row[] = [];
  for (const size of sizes) {
    for (const sessions of sessionCounts) {
      for (const system of systems) {
        const r = await measure(system, size, sessions);
        rows.push(r);
        process.stderr.write(
          `${kib(size)} / ${sessions} ${r.system}: ${r.ok ? `${f0(r.msgPerSec)} msg/s, ${f2(r.serverCpuMsPerMsg)} ms CPU/msg` : `FAILED ${r.error}`}\n`,
        );
      }
    }
  }
  process.stdout.write(table(rows) + '\n');
  if (opt.json) {
    const dir = path.join(root, 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `inject-${new Date().toISOString().replaceAll(':', '-')}.json`);
    fs.writeFileSync(file, JSON.stringify({ header: header(), reuseConnections: reuse, rows }, null, 2) + '\n');
    process.stderr.write(`wrote ${file}\n`);
  }
  if (rows.some((r) => !r.ok)) process.exitCode = 1;
}

await main();
