// Start-up recovery and queue memory of a real node with N messages in its spool (issue 18): fills a
// spool directly through the spool's own writer (the records a listener commits: envelope, body,
// reception event), then starts `vipmta start` on it with delivery suspended and reports the
// "spool recovered" log record's ms, the time until the listener greets, and the node's RSS once
// recovered against the same node on an empty spool (RSS per queued message).
// Runs on the benchmark's main thread; blocks on the spool's fsyncs and on child processes.
//
// Build and run (repository root, after `npx tsc -p tsconfig.json`):
//   npx tsc --strict --target es2022 --module nodenext --moduleResolution nodenext --types node \
//     --skipLibCheck --rootDir . --outDir /tmp/vipmta-bench-qr bench/queue-recovery.ts \
//     && node /tmp/vipmta-bench-qr/bench/queue-recovery.js [--messages 1000000] [--size 1024] [--dir DIR]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { repoRoot } from './lib/repo.js';
import { machineLine } from './lib/report.js';

const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    size: { type: 'string', default: '1024' },
    concurrency: { type: 'string', default: '1000' },
    'worker-threads': { type: 'string', default: '2' },
    /** Reuse a spool filled by an earlier run (DIR/spool) instead of filling a new one. */
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
  strict: true,
});
const n = Number(opt.messages);
const size = Number(opt.size);
const concurrency = Number(opt.concurrency);
const root = repoRoot();

type SpoolMod = typeof import('../src/spool/index.js');
type EnvMod = typeof import('../src/message/envelope.js');
type CodecMod = typeof import('../src/events/codec.js');
type BuildMod = typeof import('../src/events/build.js');

async function fill(dir: string): Promise<number> {
  const { Spool } = (await import(pathToFileURL(path.join(root, 'dist/spool/index.js')).href)) as SpoolMod;
  const { encodeEnvelope } = (await import(pathToFileURL(path.join(root, 'dist/message/envelope.js')).href)) as EnvMod;
  const { encodeEvent } = (await import(pathToFileURL(path.join(root, 'dist/events/codec.js')).href)) as CodecMod;
  const { receptionPayload } = (await import(pathToFileURL(path.join(root, 'dist/events/build.js')).href)) as BuildMod;
  const spool = Spool.open({ directory: dir, nodeId: 'bench' });
  const w = spool.writer();
  const line = Buffer.from('x'.repeat(76) + '\r\n');
  const header = (i: number): Buffer => Buffer.from(`Message-ID: <${i}@bench.invalid>\r\nSubject: recovery ${i}\r\n\r\n`);
  const t0 = performance.now();
  let next = 0;
  const one = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const m = w.begin(undefined, size + 100);
      m.append(header(i));
      for (let b = 0; b < size; b += line.length) m.append(line);
      const envelope = {
        v: 1 as const, from: `bounce-${i}@news.example.com`, rcpt: [`user${i}@d${i % 10_000}.example.net`], arrival: Date.now(),
        client: '127.0.0.1', helo: 'client.invalid', user: null, tls: false, listener: 'bench', headers: { 'message-id': `<${i}@bench.invalid>` },
      };
      await m.commit(encodeEnvelope(envelope), encodeEvent(receptionPayload(envelope, size)));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  const s = (performance.now() - t0) / 1000;
  await spool.close();
  return s;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('data', (d) => { c.destroy(); resolve(d.toString().startsWith('220')); });
    c.once('error', () => resolve(false));
  });
}

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]);
}

/**
 * Starts a node on spoolDir, waits for its greeting and returns (recovery ms, wall s, RSS KiB after
 * it settled, and its peak RSS so far: VmHWM, the high-water mark recovery left).
 */
async function startNode(dir: string, spoolDir: string): Promise<{ recoveredMs: number; messages: number; greetSeconds: number; rssKiB: number; peakKiB: number }> {
  const port = await freePort();
  const conf = path.join(dir, 'vipmta.conf');
  const log = path.join(dir, 'vipmta.log');
  fs.writeFileSync(conf, `Worker_Threads = ${opt['worker-threads']}\nLog_Level = "info"\nHostname = "bench.invalid"\nNodename = "bench"\nSuspend_Delivery = true\nESMTP_Listener { Listen "127.0.0.1:${port}" { } }\nControl_Listener { Listen "${path.join(dir, 'control.sock')}" { } }\nSpool { Directory = "${spoolDir}" }\n`);
  const fd = fs.openSync(log, 'w');
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(root, 'bin', 'vipmta.js'), 'start', '-c', conf], { cwd: dir, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  let exited = false;
  child.once('exit', () => (exited = true));
  try {
    while (!(await greets(port))) {
      if (exited) throw new Error(`vipmta exited:\n${fs.readFileSync(log, 'utf8').slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const greetSeconds = (performance.now() - t0) / 1000;
    // The queue is built; let the heap settle (GC after start-up) before reading RSS.
    await new Promise((r) => setTimeout(r, 5000));
    const rss = statusKiB(child.pid!, 'VmRSS');
    const peak = statusKiB(child.pid!, 'VmHWM');
    const rec = fs.readFileSync(log, 'utf8').split('\n').map((l) => { try { return JSON.parse(l) as { msg?: string; ms?: number; messages?: number }; } catch { return {}; } }).find((r) => r.msg === 'spool recovered');
    return { recoveredMs: rec?.ms ?? NaN, messages: rec?.messages ?? NaN, greetSeconds, rssKiB: rss, peakKiB: peak };
  } finally {
    const done = new Promise((r) => child.once('exit', r));
    if (!exited) child.kill('SIGTERM');
    await done;
  }
}

async function main(): Promise<void> {
  const dir = opt.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'vipmta-recovery-'));
  const spoolDir = path.join(dir, 'spool');
  console.log(machineLine());
  if (!fs.existsSync(spoolDir)) {
    const s = await fill(spoolDir);
    console.log(`filled ${n.toLocaleString('en-US')} messages of ${size} B body in ${s.toFixed(1)} s through the spool writer (${concurrency} concurrent commits)`);
  }
  const emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vipmta-recovery-empty-'));
  const empty = await startNode(emptyDir, path.join(emptyDir, 'spool'));
  fs.rmSync(emptyDir, { recursive: true, force: true });
  const full = await startNode(dir, spoolDir);
  console.log('| spool | messages recovered | "spool recovered" ms | s per million | start to greeting s | RSS MiB | RSS B per queued message | peak RSS (VmHWM) MiB |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  console.log(`| empty | 0 | ${empty.recoveredMs} | - | ${empty.greetSeconds.toFixed(2)} | ${(empty.rssKiB / 1024).toFixed(0)} | - | ${(empty.peakKiB / 1024).toFixed(0)} |`);
  const perMsg = ((full.rssKiB - empty.rssKiB) * 1024) / full.messages;
  console.log(`| full | ${full.messages} | ${full.recoveredMs} | ${((full.recoveredMs / 1000) * (1e6 / full.messages)).toFixed(1)} | ${full.greetSeconds.toFixed(2)} | ${(full.rssKiB / 1024).toFixed(0)} | ${perMsg.toFixed(0)} | ${(full.peakKiB / 1024).toFixed(0)} |`);
  if (!opt.keep && opt.dir === undefined) fs.rmSync(dir, { recursive: true, force: true });
  else console.log(`spool kept in ${dir}`);
}

await main();
