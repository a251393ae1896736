// What the status page costs at 10,000 DuraVIPs and 32 nodes (issue 14): a generated cluster
// (bench/lib/status-state.ts) fed to the real builder (src/node/status.ts) and served by the real
// admin HTTP server with its event stream; the page loaded in headless Chromium (puppeteer-core).
// Reports: the document's size (JSON, gzip), the time to build it (fresh, and with the address rows
// kept as the node keeps them between elections), to serialise it, the delta after one member died
// (size, time to compute), and in the browser the time to first render, the page's own time for the
// whole document and for the delta, and the time to render every address row ("show all"). Every
// member's queue summary (src/cluster/queue-summary.ts) is at the cap: each node has --queues
// bindings with mail, its 100 largest named, the largest differing from node to node; reported:
// the summary's cost and size on the wire (from --summary-bindings bindings), and the page's time
// for one member's new summary.
//
//   npm run bench:status-page -- [--addresses N] [--nodes N] [--queues N] [--summary-bindings N] [--reps R] [--no-browser]
// Defaults: 10,000 addresses, 32 nodes, 2,500 bindings with mail, summaries from 10,000 bindings, 20 repetitions. Chromium from
// PATH (Debian's `chromium`). Main thread; blocks while building documents (that is what it measures).
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import pino from 'pino';
import type { ClusterSnapshot } from '../src/cluster/manager.js';
import type { BindingQueueSizes } from '../src/control/metrics.js';
import type { QueueSummary } from '../src/cluster/queue-summary.js';
import type { StatusFailover, StatusPeer, StatusState } from '../src/control/status.js';
import { repoRoot } from './lib/repo.js';
import { f0, f2, machineLine } from './lib/report.js';
import { afterDeath, nodeName, syntheticCluster } from './lib/status-state.js';

// The code measured is the build's (dist/, `tsc -p tsconfig.json` first): typed from src/.
const dist = (m: string): string => path.join(repoRoot(), 'dist', m);
const { AdminHttpServer } = (await import(dist('control/http.js'))) as typeof import('../src/control/http.js');
const { diffStatus } = (await import(dist('control/status.js'))) as typeof import('../src/control/status.js');
const { addressRows, buildStatus } = (await import(dist('node/status.js'))) as typeof import('../src/node/status.js');
const { buildQueueSummary } = (await import(dist('cluster/queue-summary.js'))) as typeof import('../src/cluster/queue-summary.js');
const { consoleKey, decodeConsoleMessage, encodeConsoleMessage } = (await import(dist('cluster/console-wire.js'))) as typeof import('../src/cluster/console-wire.js');

const { values: opt } = parseArgs({
  options: {
    addresses: { type: 'string', default: '10000' },
    nodes: { type: 'string', default: '32' },
    queues: { type: 'string', default: '2500' },
    'summary-bindings': { type: 'string', default: '10000' },
    reps: { type: 'string', default: '20' },
    'no-browser': { type: 'boolean', default: false },
  },
  strict: true,
});
const N = Number(opt.addresses);
const NODES = Number(opt.nodes);
const QUEUES = Number(opt.queues);
const REPS = Number(opt.reps);
const SUMMARY_BINDINGS = Number(opt['summary-bindings']);

const now = Date.now();
const before = syntheticCluster({ nodes: NODES, addresses: N, now });
const after = afterDeath({ nodes: NODES, addresses: N, now }, 5);
const queues: BindingQueueSizes[] = Array.from({ length: QUEUES }, (_, i) => ({ bindingGroup: 'default', binding: `b${i}`, active: i % 7, deferred: i % 13, hold: i % 29 === 0 ? 1 : 0 }));
const mmove: StatusPeer[] = Array.from({ length: NODES - 1 }, (_, i) => ({ peer: nodeName(i + 1), sent: { messages: 1e6, recipients: 2e6, duplicates: 10, failed: 3 }, received: { messages: 1e6, bytes: 4e9 } }));
const failovers: StatusFailover[] = Array.from({ length: 200 }, (_, i) => ({ id: i + 1, at: now - 1000 * i, address: `10.0.0.${i + 1}`, from: nodeName(i % NODES), to: nodeName((i + 1) % NODES), reason: 'current owner keeps it' }));
const node = { name: nodeName(0), version: 'bench', startedAt: now, pid: process.pid };
/** Node k's queue: QUEUES bindings with mail, b<(i + 37k) mod QUEUES> sized so each node's 100 largest differ. */
const nodeQueue = (k: number, extra = 0): BindingQueueSizes[] => Array.from({ length: QUEUES }, (_, i) => {
  const j = (i + 37 * k) % QUEUES;
  return { bindingGroup: 'default', binding: `b${j}`, active: (i % 7) + extra, deferred: i % 13, hold: i % 29 === 0 ? 1 : 0 };
});
const own = buildQueueSummary(node.name, now, false, queues);
let summaries: QueueSummary[] = Array.from({ length: NODES - 1 }, (_, k) => buildQueueSummary(nodeName(k + 1), now, k === 4, nodeQueue(k + 1)));
const build = (c: ClusterSnapshot, rows?: ReturnType<typeof addressRows>): StatusState =>
  buildStatus({ now: Date.now(), node, cluster: c, queues, mmove, failovers, restrictions: [], own, summaries, ...(rows !== undefined ? { addresses: rows } : {}) });

function median(f: () => void): number {
  const t: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    f();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

const doc = build(before);
const json = JSON.stringify(doc);
const rowsKept = addressRows(before);
const docAfter = build(after);
const delta = diffStatus(doc, docAfter)!;
const deltaJson = JSON.stringify(delta);
// One member's summary: from SUMMARY_BINDINGS bindings with mail (the cap keeps 100), on the wire.
const many: BindingQueueSizes[] = Array.from({ length: SUMMARY_BINDINGS }, (_, i) => ({ bindingGroup: 'default', binding: `binding-${i}`, active: i % 7, deferred: i % 13, hold: i % 29 === 0 ? 1 : 0 }));
const key = consoleKey('bench secret');
const summary = buildQueueSummary('n02', now, false, many);
const wire = encodeConsoleMessage(key, { type: 'queues', from: '2:1000', node: 'n02', summary });
// A new summary of one member (its queue changed): the document and the delta that follow.
const summaryChanged = (): QueueSummary[] => summaries.map((s, k) => (k === 0 ? buildQueueSummary(s.node, now + 2000, false, nodeQueue(1, 1)) : s));
const withSummaries = (list: QueueSummary[]): StatusState => {
  const keep = summaries;
  summaries = list;
  try { return build(before, rowsKeptFor()); } finally { summaries = keep; }
};
let rowsKeptCache: ReturnType<typeof addressRows> | null = null;
const rowsKeptFor = (): ReturnType<typeof addressRows> => (rowsKeptCache ??= addressRows(before));
const docKept = withSummaries(summaries);
const changedList = summaryChanged();
const docChanged = withSummaries(changedList);
const summaryDelta = diffStatus(docKept, docChanged)!;
const summaryDeltaJson = JSON.stringify(summaryDelta);
const nodesJson = JSON.stringify(doc.nodes);
const figures: [string, string][] = [
  ['addresses / nodes / bindings with mail', `${f0(N)} / ${NODES} / ${f0(QUEUES)}`],
  [`queue summary of one member from ${f0(SUMMARY_BINDINGS)} bindings with mail: build (cap 100 + other)`, `${f2(median(() => buildQueueSummary('n02', now, false, many)))} ms`],
  ['queue summary on the wire (HMAC, header, JSON)', `${f0(wire.length)} bytes; encode ${f2(median(() => encodeConsoleMessage(key, { type: 'queues', from: '2:1000', node: 'n02', summary })))} ms, decode and check ${f2(median(() => decodeConsoleMessage(key, wire, '2:1000')))} ms`],
  [`the document's nodes part (${NODES} summaries at the cap)`, `${f0(nodesJson.length)} bytes of the document's ${f0(json.length)}`],
  ['document, JSON', `${f0(json.length)} bytes`],
  ['document, gzip (GET /state with Accept-Encoding: gzip)', `${f0(gzipSync(json).length)} bytes`],
  ['build, address rows made afresh (after an election)', `${f2(median(() => build(before)))} ms`],
  ['build, address rows kept (the 250 ms tick between elections)', `${f2(median(() => build(before, rowsKept)))} ms`],
  ['JSON.stringify of the document', `${f2(median(() => JSON.stringify(doc)))} ms`],
  ['delta when nothing changed (rows kept)', `${f2(median(() => diffStatus(doc, build(before, doc.addresses))))} ms`],
  [`delta after a member died (${delta.upsert?.addresses?.length ?? 0} addresses move)`, `${f2(median(() => diffStatus(doc, docAfter)))} ms, ${f0(deltaJson.length)} bytes (gzip ${f0(gzipSync(deltaJson).length)})`],
  ['build with one member\'s new queue summary (rows kept)', `${f2(median(() => withSummaries(changedList)))} ms`],
  ['delta after one member\'s new queue summary', `${f2(median(() => diffStatus(docKept, docChanged)))} ms, ${f0(summaryDeltaJson.length)} bytes (gzip ${f0(gzipSync(summaryDeltaJson).length)})`],
];

async function browser(): Promise<void> {
  let current: ClusterSnapshot = before;
  let rows = addressRows(before);
  const server = new AdminHttpServer({
    name: 'bench', host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }),
    metrics: async () => '', mailq: () => ({ rows: [], totals: { active: 0, deferred: 0, hold: 0, messages: 0 } }), stopping: () => false,
    status: () => build(current, rows),
  });
  await server.start();
  const chromium = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  const { default: puppeteer } = await import('puppeteer-core');
  const b = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const page = await b.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    const t0 = performance.now();
    await page.goto(`http://127.0.0.1:${server.port}/`);
    // Page-side code as strings: this file is type-checked without the DOM's types.
    await page.waitForFunction("document.body.dataset.seq !== undefined && document.querySelectorAll('#addresses tbody tr').length > 0", { polling: 'raf' });
    const firstRender = performance.now() - t0;
    const full = (await page.evaluate('window.statusTimings.full')) as number;
    // A member dies: the stream sends the delta on its next tick.
    const moved = delta.upsert!.addresses![0]!;
    current = after;
    rows = addressRows(after);
    const t1 = performance.now();
    await page.waitForFunction(`document.querySelector('tr[data-key="${moved.address}"] td.owner')?.textContent === ${JSON.stringify(moved.owner)}`, { polling: 'raf' });
    const shown = performance.now() - t1;
    const d = (await page.evaluate('window.statusTimings.delta')) as number;
    await page.click('#more');
    await page.waitForFunction(`document.querySelectorAll('#addresses tbody tr').length === ${N}`, { polling: 'raf' });
    const all = (await page.evaluate('window.statusTimings.rows')) as number;
    // One member's queue changes: its new summary reaches the page in the next delta.
    const changed = changedList[0]!;
    const want = changed.active + changed.deferred + changed.hold;
    summaries = changedList;
    const t2 = performance.now();
    await page.waitForFunction(`document.querySelector('#cqueues tr[data-key="(total)"] td[data-node="${changed.node}"]')?.textContent === '${want}'`, { polling: 'raf' });
    const summaryShown = performance.now() - t2;
    const qd = (await page.evaluate('window.statusTimings.delta')) as number;
    const qt = (await page.evaluate('window.statusTimings.cqueues')) as number;
    const qrows = (await page.evaluate("document.querySelectorAll('#cqueues tbody tr').length")) as number;
    figures.push(
      ['browser: navigation to first render (page, stream, document, 500 rows)', `${f0(firstRender)} ms`],
      ['browser: the page\'s own time for the whole document', `${f0(full)} ms`],
      ['browser: a member died, until the moved row shows its new owner (up to 250 ms of it is the stream\'s tick)', `${f0(shown)} ms`],
      ['browser: the page\'s own time for that delta', `${f2(d)} ms`],
      [`browser: "show all": every one of the ${f0(N)} rows`, `${f0(all)} ms`],
      [`browser: one member's new queue summary, until its total shows (the table of bindings by node: ${qrows} rows, ${NODES} columns; up to 1 s of it is the table's pace, up to 250 ms the stream's tick)`, `${f0(summaryShown)} ms`],
      ['browser: the page\'s own time for that delta (the members\' rows; the table is redrawn at most every second)', `${f2(qd)} ms`],
      ['browser: the page\'s own time to redraw the table of bindings by node', `${f2(qt)} ms`],
    );
  } finally {
    await b.close();
    server.close();
  }
}

if (!opt['no-browser']) await browser();
console.log(`# status page at ${f0(N)} addresses, ${NODES} nodes\n${machineLine()}\n`);
console.log('| measure | value |\n|---|---|');
for (const [k, v] of figures) console.log(`| ${k} | ${v} |`);
