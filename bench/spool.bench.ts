// Spool micro benchmark (issue 3): append + commit of 4 KiB and 64 KiB messages with 1 and 16
// concurrent committers, fdatasync vs none, against the anchor measured in the same run: a file
// per message written and fsync'ed (what Postfix and Haraka pay per message). Main thread only;
// blocks on the disk. Prints a markdown table: msgs/s and the ratio against the anchor.
//
// Build and run (from the repository root; needs the addon and dist/: `npm run build` first):
//   npx tsc --strict --target es2022 --module nodenext --moduleResolution nodenext --types node \
//     --skipLibCheck --rootDir bench --outDir node_modules/.cache/vipmta-bench bench/spool.bench.ts \
//     && node node_modules/.cache/vipmta-bench/spool.bench.js [--time MS] [--dir DIR]
// The spool and the anchor files go to DIR (default: a fresh directory under os.tmpdir(), so the
// same filesystem as the spool would use there); everything is removed at the end.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';

// fs.promises runs on the libuv pool: give the 16-writer anchor 16 threads, as 16 Postfix
// processes would have. Must be set before the pool starts (no fs promise has run yet).
process.env.UV_THREADPOOL_SIZE = '16';

// The compiled spool (dist/), typed locally so this file compiles on its own.
interface MessageWriter {
  append(chunk: Buffer): void;
  commit(envelope?: Buffer): Promise<{ id: string; size: number }>;
}
interface Spool {
  writer(): { begin(envelope?: Buffer, sizeHint?: number): MessageWriter };
  markDone(ids: string[]): Promise<void>;
  stats(): { commits: number; syncs: number; averageBatch: number };
  close(): Promise<void>;
}
interface SpoolModule {
  Spool: { open(o: { directory: string; nodeId: string; sync?: 'fdatasync' | 'none' }): Spool };
}

const { values: args } = parseArgs({
  options: { time: { type: 'string', default: '1500' }, dir: { type: 'string' } },
});
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const mod = (await import(pathToFileURL(path.join(root, 'dist', 'spool', 'index.js')).href)) as SpoolModule;
const base = fs.mkdtempSync(path.join(args.dir ?? os.tmpdir(), 'vipmta-spool-bench-'));
const time = Number(args.time);

function body(size: number): Buffer {
  const b = Buffer.alloc(size, 'x');
  for (let i = 76; i < size - 3; i += 78) b.write('\r\n', i, 'latin1');
  b.write('\r\n', size - 2, 'latin1');
  return b;
}
// DATA arrives in socket-sized pieces; the spool gets each one as it comes (never joined).
const CHUNK = 16 * 1024;
const envelope = Buffer.from(JSON.stringify({ from: 'bench@example.com', rcpt: ['a@example.net'], arrival: Date.now() }));

const spools = {
  fdatasync: mod.Spool.open({ directory: path.join(base, 'spool-fdatasync'), nodeId: 'bench', sync: 'fdatasync' }),
  none: mod.Spool.open({ directory: path.join(base, 'spool-none'), nodeId: 'bench', sync: 'none' }),
};

interface Case {
  name: string;
  kind: 'spool' | 'anchor';
  sync: string;
  size: number;
  concurrency: number;
}
const cases: Case[] = [];
const bench = new Bench({ time, warmupTime: 200, iterations: 10 });
let seq = 0;

for (const size of [4096, 65536]) {
  const b = body(size);
  for (const concurrency of [1, 16]) {
    for (const sync of ['fdatasync', 'none'] as const) {
      const spool = spools[sync];
      const w = spool.writer();
      const ids: string[] = [];
      const name = `spool ${sync} ${size / 1024} KiB x${concurrency}`;
      cases.push({ name, kind: 'spool', sync, size, concurrency });
      bench.add(
        name,
        async () => {
          const ps: Promise<{ id: string }>[] = [];
          for (let c = 0; c < concurrency; c++) {
            const m = w.begin(undefined, size);
            for (let i = 0; i < size; i += CHUNK) m.append(b.subarray(i, i + CHUNK));
            ps.push(m.commit(envelope));
          }
          for (const r of await Promise.all(ps)) ids.push(r.id);
        },
        // Deliver everything afterwards so segments are reclaimed and the disk does not fill up.
        { afterAll: async () => void (await spool.markDone(ids.splice(0))) },
      );
    }
    const dir = path.join(base, `files-${size}-${concurrency}`);
    fs.mkdirSync(dir);
    const name = `file per message + fsync ${size / 1024} KiB x${concurrency}`;
    cases.push({ name, kind: 'anchor', sync: 'fsync', size, concurrency });
    bench.add(
      name,
      async () => {
        const ps: Promise<void>[] = [];
        for (let c = 0; c < concurrency; c++) {
          ps.push(
            (async () => {
              const fh = await fs.promises.open(path.join(dir, `m${seq++}`), 'wx');
              await fh.write(b);
              await fh.sync();
              await fh.close();
            })(),
          );
        }
        await Promise.all(ps);
      },
      // Runs after the warm-up too: start each phase with an empty directory.
      {
        afterAll: () => {
          fs.rmSync(dir, { recursive: true, force: true });
          fs.mkdirSync(dir);
        },
      },
    );
  }
}

await bench.run();

const rate = new Map<string, number>();
for (const t of bench.tasks) {
  const c = cases.find((x) => x.name === t.name)!;
  const r = t.result;
  if (r.state !== 'completed') {
    console.error(`${t.name}: ${r.state}${'error' in r ? ` ${String(r.error)}` : ''}`);
    continue;
  }
  rate.set(t.name, (c.concurrency * 1000) / r.latency.mean);
}
console.log(`\nNode ${process.version}, ${os.cpus().length} CPU (${os.cpus()[0]?.model ?? '?'}), dir ${base}\n`);
console.log('| size | committers | spool fdatasync msg/s | spool none msg/s | file+fsync msg/s | fdatasync / file+fsync |');
console.log('|---|---|---|---|---|---|');
for (const size of [4096, 65536]) {
  for (const concurrency of [1, 16]) {
    const pick = (kind: string, sync: string): number =>
      rate.get(cases.find((c) => c.kind === kind && c.sync === sync && c.size === size && c.concurrency === concurrency)!.name) ?? NaN;
    const fd = pick('spool', 'fdatasync');
    const none = pick('spool', 'none');
    const file = pick('anchor', 'fsync');
    const f = (n: number): string => Math.round(n).toLocaleString('en-US');
    console.log(`| ${size / 1024} KiB | ${concurrency} | ${f(fd)} | ${f(none)} | ${f(file)} | ${(fd / file).toFixed(1)}x |`);
  }
}
const st = spools.fdatasync.stats();
console.log(`\nspool fdatasync: ${st.commits} commits, ${st.syncs} syncs, average batch ${st.averageBatch.toFixed(1)}`);
await Promise.all([spools.fdatasync.close(), spools.none.close()]);
fs.rmSync(base, { recursive: true, force: true });
