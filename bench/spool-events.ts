// Event journal benchmark (issue 15): commit throughput and latency of 4 KiB messages with no
// event, with a ~300-byte event per commit (its fdatasync overlapped with the segment's, the
// default), and with the two syncs one after the other, all in the same run, interleaved in rounds
// so drift of the disk hits each alike. Main thread; blocks on the disk. Prints a markdown table.
//
// Build and run (from the repository root; needs the addon and dist/: `npm run build` first):
//   npx tsc --strict --target es2022 --module nodenext --moduleResolution nodenext --types node \
//     --skipLibCheck --rootDir bench --outDir node_modules/.cache/vipmta-bench bench/spool-events.ts \
//     && node node_modules/.cache/vipmta-bench/spool-events.js [--time MS] [--rounds N] [--dir DIR]
// (--outDir elsewhere works too when run from the repository root.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface MessageWriter {
  append(chunk: Buffer): void;
  commit(envelope?: Buffer, event?: Buffer): Promise<{ id: string; size: number }>;
}
interface Spool {
  writer(): { begin(envelope?: Buffer, sizeHint?: number): MessageWriter };
  markDone(ids: string[]): Promise<void>;
  stats(): { commits: number; syncs: number; averageBatch: number };
  close(): Promise<void>;
}
interface SpoolModule {
  Spool: { open(o: { directory: string; nodeId: string; eventSyncOverlap?: boolean; eventRetention?: number }): Spool };
}

const { values: args } = parseArgs({
  options: { time: { type: 'string', default: '1500' }, rounds: { type: 'string', default: '3' }, dir: { type: 'string' } },
});
// The repository: three levels above the compiled file (node_modules/.cache/vipmta-bench), or the
// working directory when compiled elsewhere.
const up = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const root = fs.existsSync(path.join(up, 'dist', 'spool', 'index.js')) ? up : process.cwd();
const mod = (await import(pathToFileURL(path.join(root, 'dist', 'spool', 'index.js')).href)) as SpoolModule;
const base = fs.mkdtempSync(path.join(args.dir ?? os.tmpdir(), 'vipmta-events-bench-'));
const time = Number(args.time);
const rounds = Number(args.rounds);

const SIZE = 4096;
const body = Buffer.alloc(SIZE, 'x');
for (let i = 76; i < SIZE - 3; i += 78) body.write('\r\n', i, 'latin1');
body.write('\r\n', SIZE - 2, 'latin1');
const envelope = Buffer.from(JSON.stringify({ from: 'bench@example.com', rcpt: ['a@example.net'], arrival: Date.now() }));
// About the size of a reception record (client, helo, from, rcpts, size, tls, ...).
const event = Buffer.from(
  JSON.stringify({
    type: 'received', time: Date.now(), client: '203.0.113.7', helo: 'mail.example.org', from: 'sender@example.org',
    rcpt: ['a@example.net', 'b@example.net'], size: SIZE, tls: 'TLSv1.3', listener: '0.0.0.0:25', auth: null,
    policy: 'accept', note: 'x'.repeat(60),
  }),
);

type Variant = 'none' | 'event' | 'event-serial';
const spools: Record<Variant, Spool> = {
  none: mod.Spool.open({ directory: path.join(base, 'none'), nodeId: 'bench' }),
  event: mod.Spool.open({ directory: path.join(base, 'event'), nodeId: 'bench', eventRetention: 0 }),
  'event-serial': mod.Spool.open({ directory: path.join(base, 'serial'), nodeId: 'bench', eventSyncOverlap: false, eventRetention: 0 }),
};

interface Sample {
  commits: number;
  ms: number;
  lat: number[];
}
const results = new Map<string, Sample>();

// `concurrency` committers, each committing one message after another for `time` ms.
async function run(v: Variant, concurrency: number): Promise<void> {
  const s = spools[v];
  const w = s.writer();
  const ids: string[] = [];
  const key = `${v} x${concurrency}`;
  const r = results.get(key) ?? { commits: 0, ms: 0, lat: [] };
  const t0 = performance.now();
  const end = t0 + time;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const m = w.begin(undefined, SIZE);
        m.append(body);
        const a = performance.now();
        const { id } = await m.commit(envelope, v === 'none' ? undefined : event);
        r.lat.push(performance.now() - a);
        ids.push(id);
        r.commits++;
      }
    }),
  );
  r.ms += performance.now() - t0;
  results.set(key, r);
  await s.markDone(ids);
}

for (let round = 0; round < rounds; round++) {
  for (const concurrency of [1, 16]) {
    for (const v of ['none', 'event', 'event-serial'] as const) await run(v, concurrency);
  }
}

const pct = (a: number[], p: number): number => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
};
console.log(`\nNode ${process.version}, ${os.cpus().length} CPU (${os.cpus()[0]?.model ?? '?'}), dir ${base}, ${rounds} rounds of ${time} ms\n`);
console.log('| committers | variant | commits/s | vs none | p50 ms | p99 ms |');
console.log('|---|---|---|---|---|---|');
for (const concurrency of [1, 16]) {
  const none = results.get(`none x${concurrency}`)!;
  const base = (none.commits * 1000) / none.ms;
  for (const v of ['none', 'event', 'event-serial'] as const) {
    const r = results.get(`${v} x${concurrency}`)!;
    const rate = (r.commits * 1000) / r.ms;
    console.log(`| ${concurrency} | ${v} | ${Math.round(rate).toLocaleString('en-US')} | ${(rate / base).toFixed(2)} | ${pct(r.lat, 50).toFixed(2)} | ${pct(r.lat, 99).toFixed(2)} |`);
  }
}
for (const v of ['none', 'event', 'event-serial'] as const) {
  const st = spools[v].stats();
  console.log(`${v}: ${st.commits} commits, ${st.syncs} syncs (spool files), average batch ${st.averageBatch.toFixed(1)}`);
}
await Promise.all(Object.values(spools).map((s) => s.close()));
fs.rmSync(base, { recursive: true, force: true });
