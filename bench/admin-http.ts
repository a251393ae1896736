// HTTP admin API scrape benchmark (issue 11; was a 1,000-scrape loop in
// test/integration/admin-http.test.ts): one real vipmta node with an Http_Listener on loopback and
// B configured bindings (3 queue series each), scraped N times in a row over keep-alive fetch. The
// anchor, measured in the same run against the same node, is GET /health (the HTTP path with no
// work behind it). Main thread of the benchmark; blocks on the child process only to start it.
// Prints a markdown table: p50, p99, max and mean latency per path, body size and sample lines.
//
// Run: npm run bench:admin-http [-- --scrapes 1000] [--bindings 0,100,1000] [--repo DIR]
// (builds dist/ first: the node is the compiled CLI of this checkout, or of the built checkout
// DIR, e.g. another branch's, to compare two builds one after the other on the same machine).
import { parseArgs } from 'node:util';
import { list, repoRoot } from './lib/repo.js';
import { f0, machineLine } from './lib/report.js';
import { freePort, startVipmta } from './lib/servers.js';

const { values: args } = parseArgs({
  options: { scrapes: { type: 'string', default: '1000' }, bindings: { type: 'string', default: '0,100,1000' }, repo: { type: 'string' } },
});
const scrapes = list(args.scrapes, 'scrapes')[0]!;
// 0 is allowed here (the default binding only), so parse by hand.
const bindingCounts = args.bindings.split(',').map((x) => Number(x.trim()));
if (bindingCounts.some((n) => !Number.isInteger(n) || n < 0)) throw new Error(`--bindings: expected integers >= 0, got "${args.bindings}"`);

interface Row {
  bindings: number;
  path: string;
  bytes: number;
  samples: number;
  ms: number[];
}

/** GETs `url` `n` times in a row; every answer must be 200 (a failed scrape is a failed run). */
async function scrape(url: string, n: number): Promise<{ ms: number[]; body: string }> {
  const ms: number[] = [];
  let body = '';
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const r = await fetch(url);
    body = await r.text();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.status !== 200) throw new Error(`GET ${url}: ${r.status} ${body.slice(0, 200)}`);
  }
  return { ms, body };
}

async function measure(bindings: number): Promise<Row[]> {
  const http = await freePort();
  const group = bindings === 0 ? '' : `Binding_Group "bench" {\n${Array.from({ length: bindings }, (_, i) => `  Binding "b${i}" { }`).join('\n')}\n}\n`;
  const node = await startVipmta({
    name: 'vipmta',
    repoRoot: args.repo ?? repoRoot(),
    workerThreads: 1,
    nodeFlags: [],
    extraConfig: `Http_Listener { Listen "127.0.0.1:${http}" { } }\n${group}`,
  });
  try {
    const rows: Row[] = [];
    for (const path of ['/health', '/metrics']) {
      const url = `http://127.0.0.1:${http}${path}`;
      await scrape(url, Math.min(100, scrapes)); // warm-up: JIT, keep-alive connection
      const { ms, body } = await scrape(url, scrapes);
      const samples = path === '/metrics' ? body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length : 0;
      rows.push({ bindings, path, bytes: Buffer.byteLength(body), samples, ms });
    }
    return rows;
  } finally {
    await node.stop();
  }
}

const rows: Row[] = [];
for (const b of bindingCounts) rows.push(...(await measure(b)));

const at = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
console.log(`\n${machineLine()}; checkout ${args.repo ?? repoRoot()}; ${scrapes} GETs per path in a row over keep-alive fetch\n`);
console.log('| bindings | path | body bytes | sample lines | p50 ms | p99 ms | max ms | mean ms |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const s = [...r.ms].sort((x, y) => x - y);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  console.log(`| ${r.bindings} | ${r.path} | ${f0(r.bytes)} | ${r.path === '/metrics' ? f0(r.samples) : '-'} | ${at(s, 0.5).toFixed(3)} | ${at(s, 0.99).toFixed(3)} | ${at(s, 1).toFixed(3)} | ${mean.toFixed(3)} |`);
}
