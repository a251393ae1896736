// Resident memory per deferred message in the queue manager (issue 4: at most 400 bytes with a
// million queued; issue 18: at most 200), against the anchor of the same data as one JS object
// per message (the layout of the first queue index: id, sender, recipient array, headers, state,
// binding, times). Each layout is measured in a fresh `node --expose-gc` child: RSS after a full
// GC, minus RSS after the same GC before the messages were added, divided by the messages.
// Strings are flat, distinct per message, as JSON.parse and structured clone make them.
//
// Run: npm run bench:queue-memory [-- --messages 1000000] [--json]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { repoRoot } from './lib/repo.js';

interface Sample {
  layout: string;
  messages: number;
  rssBytesPerMessage: number;
  heapBytesPerMessage: number;
  arrayBuffersBytesPerMessage: number;
  buildMs: number;
}


/** A flat copy (not a rope of the concatenation parts). */
function flat(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

/** The message data both layouts hold: 1 recipient (the common bulk case), 10,000 domains. */
function message(i: number): { id: string; from: string; rcpt: string; size: number; arrival: number } {
  return {
    id: flat(`n1-${(i >>> 12).toString(16).padStart(8, '0')}-${(i & 0xfff).toString(16).padStart(6, '0')}`),
    from: flat(`bounce-${i}@news.example.com`),
    rcpt: flat(`user${i}@d${i % 10_000}.example.net`),
    size: 4096,
    arrival: 1_763_800_000_000 + i,
  };
}

function measure(layout: string, n: number, add: (i: number) => void): Sample {
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc(); gc();
  const m0 = process.memoryUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) add(i);
  const buildMs = performance.now() - t0;
  gc(); gc();
  const m1 = process.memoryUsage();
  return {
    layout, messages: n, buildMs: Math.round(buildMs),
    rssBytesPerMessage: (m1.rss - m0.rss) / n,
    heapBytesPerMessage: (m1.heapUsed - m0.heapUsed) / n,
    arrayBuffersBytesPerMessage: (m1.arrayBuffers - m0.arrayBuffers) / n,
  };
}

async function child(layout: string, n: number): Promise<void> {
  const root = repoRoot();
  let keep: unknown;
  if (layout === 'queue-manager') {
    const { QueueManager } = (await import(pathToFileURL(path.join(root, 'dist/queue/manager.js')).href)) as typeof import('../src/queue/manager.js');
    const { defaultConfig } = (await import(pathToFileURL(path.join(root, 'dist/config/index.js')).href)) as typeof import('../src/config/index.js');
    const cfg = defaultConfig();
    const never = (): never => { throw new Error('not used by the memory benchmark'); };
    const qm = new QueueManager({
      config: () => cfg,
      spool: { markDone: never, update: never },
      deliver: never,
      bounce: never,
      assign: () => ({ bindingGroup: 'default', binding: 'default' }),
      logger: { trace() {}, info() {}, warn() {}, error() {} } as never,
    });
    const next = Date.now() + 3_600_000;
    keep = qm;
    const s = measure(layout, n, (i) => {
      const m = message(i);
      // Deferred, as after a failed attempt: in the retry heap with its state.
      qm.add({ id: m.id, size: m.size, arrival: m.arrival, from: m.from, rcpt: [m.rcpt], xBinding: null, listener: null, bindingGroup: 'default', binding: 'default' },
        { v: 1, p: [{ g: 'default', b: 'default', r: [m.rcpt], a: 1, n: next + (i % 1000) }] });
    });
    if (qm.counts().deferred !== n) throw new Error(`expected ${n} deferred, got ${qm.counts().deferred}`);
    process.stdout.write(JSON.stringify(s));
  } else {
    // The anchor: one object per message in a Map, as the first index kept them, plus the retry
    // fields a deferred message needs.
    const map = new Map<string, object>();
    keep = map;
    const s = measure(layout, n, (i) => {
      const m = message(i);
      map.set(m.id, {
        id: m.id, size: m.size, arrival: m.arrival, from: m.from, rcpt: [m.rcpt], headers: {},
        state: 'deferred', bindingGroup: 'default', binding: 'default', attempts: 1, nextAttempt: Date.now() + 3_600_000,
      });
    });
    process.stdout.write(JSON.stringify(s));
  }
  void keep;
}

async function main(): Promise<void> {
  const { values: opt } = parseArgs({
    options: {
      messages: { type: 'string', default: '1000000' },
      child: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const n = Number(opt.messages);
  if (!Number.isInteger(n) || n < 1000) throw new Error('--messages: at least 1000');
  if (opt.child !== undefined) return child(opt.child, n);
  const me = fileURLToPath(import.meta.url);
  const run = (layout: string): Sample =>
    JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', me, '--child', layout, '--messages', String(n)], { encoding: 'utf8', maxBuffer: 1 << 20 })) as Sample;
  const rows = [run('objects'), run('queue-manager')];
  const [anchor, ours] = rows as [Sample, Sample];
  const f = (x: number) => x.toFixed(0);
  console.log(`# Queue memory, ${n.toLocaleString('en-US')} deferred messages (node ${process.version})\n`);
  console.log('| layout | RSS B/msg | V8 heap B/msg | typed arrays B/msg | build ms |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.layout} | ${f(r.rssBytesPerMessage)} | ${f(r.heapBytesPerMessage)} | ${f(r.arrayBuffersBytesPerMessage)} | ${r.buildMs} |`);
  console.log(`\nqueue-manager / objects (RSS): ${(ours.rssBytesPerMessage / anchor.rssBytesPerMessage).toFixed(2)}x; budget 400 B/msg (issue 4): ${ours.rssBytesPerMessage <= 400 ? 'met' : 'NOT met'}; target 200 B/msg (issue 18): ${ours.rssBytesPerMessage <= 200 ? 'met' : 'NOT met'}`);
  if (opt.json) {
    const dir = path.join(repoRoot(), 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `queue-memory-${new Date().toISOString().replaceAll(':', '-')}.json`);
    fs.writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, rows }, null, 2) + '\n');
    console.log(`results: ${path.relative(process.cwd(), file)}`);
  }
}

await main();
