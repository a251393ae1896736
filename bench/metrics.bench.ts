// Metrics micro benchmark (issue 11): the cost of prom-client on the main thread's hot path
// (counter increments per accepted batch and per delivery outcome) and per scrape (render with N
// bindings, 3 queue series each), against the anchor measured in the same run: the hand-written
// registry vipmta used before (copied below as it was at 300b056, src/control/metrics.ts). Main
// thread only; CPU bound, no I/O. Prints markdown tables: ns per inc, minor GCs per 10M incs, ms
// per render.
//
// Run: npm run bench:metrics [-- --time MS] [--bindings 10,100,1000]
// (builds dist/ first: the prom-client side is the compiled src/control/metrics.js).
import os from 'node:os';
import path from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';

// --- the anchor: the hand-written registry as it was (counters, gauges, histograms) ---------------

type Labels = Readonly<Record<string, string>>;

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

interface Series<V> {
  labels: string;
  value: V;
}

abstract class OldMetric<V> {
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected readonly series = new Map<string, Series<V>>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}
  reset(): void {
    this.series.clear();
  }
  protected at(labels: Labels | undefined, init: () => V): Series<V> {
    const values = this.labelNames.map((n) => {
      const v = labels?.[n];
      if (v === undefined) throw new TypeError(`${this.name}: missing label "${n}"`);
      return v;
    });
    const given = labels === undefined ? 0 : Object.keys(labels).length;
    if (given !== this.labelNames.length) throw new TypeError(`${this.name}: labels must be exactly ${JSON.stringify(this.labelNames)}`);
    const key = values.join('\0');
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels: values.map((v, i) => `${this.labelNames[i]}="${escapeLabelValue(v)}"`).join(','), value: init() };
      this.series.set(key, s);
    }
    return s;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    if (this.series.size === 0 && this.labelNames.length === 0 && this.type !== 'histogram') out.push(`${this.name} 0`);
    for (const s of this.series.values()) this.renderSeries(out, s);
  }
  protected abstract renderSeries(out: string[], s: Series<V>): void;
}

const braces = (labels: string): string => (labels === '' ? '' : `{${labels}}`);

class OldCounter extends OldMetric<number> {
  readonly type = 'counter';
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`${this.name}: a counter only goes up (inc by ${by})`);
    this.at(labels, () => 0).value += by;
  }
  get(labels?: Labels): number {
    return this.at(labels, () => 0).value;
  }
  protected renderSeries(out: string[], s: Series<number>): void {
    out.push(`${this.name}${braces(s.labels)} ${formatValue(s.value)}`);
  }
}

class OldGauge extends OldMetric<number> {
  readonly type = 'gauge';
  set(labels: Labels | undefined, v: number): void {
    this.at(labels, () => 0).value = v;
  }
  protected renderSeries(out: string[], s: Series<number>): void {
    out.push(`${this.name}${braces(s.labels)} ${formatValue(s.value)}`);
  }
}

interface HistogramValue {
  counts: number[];
  sum: number;
}

class OldHistogram extends OldMetric<HistogramValue> {
  readonly type = 'histogram';
  constructor(name: string, help: string, labelNames: readonly string[], readonly bounds: readonly number[]) {
    super(name, help, labelNames);
  }
  private fresh = (): HistogramValue => ({ counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0 });
  load(labels: Labels | undefined, counts: readonly number[], sum: number): void {
    const s = this.at(labels, this.fresh).value;
    s.counts = [...counts];
    s.sum = sum;
  }
  protected renderSeries(out: string[], s: Series<HistogramValue>): void {
    const sep = s.labels === '' ? '' : `${s.labels},`;
    let cumulative = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      cumulative += s.value.counts[i]!;
      const le = i < this.bounds.length ? formatValue(this.bounds[i]!) : '+Inf';
      out.push(`${this.name}_bucket{${sep}le="${le}"} ${formatValue(cumulative)}`);
    }
    out.push(`${this.name}_sum${braces(s.labels)} ${formatValue(s.value.sum)}`, `${this.name}_count${braces(s.labels)} ${formatValue(cumulative)}`);
  }
}

class OldRegistry {
  private readonly metrics: { render(out: string[]): void }[] = [];
  private readonly collectors: (() => void)[] = [];
  counter(name: string, help: string, labelNames: readonly string[] = []): OldCounter {
    const m = new OldCounter(name, help, labelNames);
    this.metrics.push(m);
    return m;
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): OldGauge {
    const m = new OldGauge(name, help, labelNames);
    this.metrics.push(m);
    return m;
  }
  histogram(name: string, help: string, bounds: readonly number[]): OldHistogram {
    const m = new OldHistogram(name, help, [], bounds);
    this.metrics.push(m);
    return m;
  }
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }
  render(): string {
    for (const c of this.collectors) c();
    const out: string[] = [];
    for (const m of this.metrics) m.render(out);
    return out.join('\n') + '\n';
  }
}

// --- the two metric sets, fed the same sources -----------------------------------------------------

interface BindingQueueSizes {
  bindingGroup: string;
  binding: string;
  active: number;
  deferred: number;
  hold: number;
}
interface SpoolSnapshot {
  messages: number;
  bytes: number;
  latency: { boundsUs: number[]; counts: number[]; sumUs: number };
}
interface Sources {
  queues(): BindingQueueSizes[];
  spool(): SpoolSnapshot | null;
  mmoveDuplicates(): number;
}
interface Inc {
  inc(n?: number): void;
}
/** The compiled src/control/metrics.js, typed locally so this file compiles on its own. */
interface MetricsModule {
  buildMetrics(s: Sources): { received: Inc; delivered: Inc; render(): Promise<string> };
  SPOOL_LATENCY_BOUNDS_S: number[];
}

/** The node's set as the old buildMetrics and daemon.ts registered it. */
function buildOld(sources: Sources, bounds: number[]): { received: OldCounter; delivered: OldCounter; render(): string } {
  const r = new OldRegistry();
  r.gauge('vipmta_build_info', 'Always 1; labels name the vipmta and Node.js versions.', ['version', 'node']).set({ version: '0.1.0', node: process.version }, 1);
  const received = r.counter('vipmta_messages_received_total', 'Messages accepted (250 after DATA) and committed to the spool.');
  const delivered = r.counter('vipmta_messages_delivered_total', 'Deliveries that succeeded (2xx from the remote host), counted per recipient.');
  r.counter('vipmta_delivery_transient_failures_total', 'Delivery attempts deferred for a retry (4xx or no connection), counted per recipient.');
  r.counter('vipmta_delivery_permanent_failures_total', 'Deliveries that failed for good (5xx or expiry), counted per recipient.');
  const queue = r.gauge('vipmta_queue_messages', 'Queued messages per binding and queue state, counted per destination domain (a message to two domains counts twice).', ['binding_group', 'binding', 'state']);
  const spoolMessages = r.gauge('vipmta_spool_messages', 'Messages in the spool (committed, not yet done).');
  const spoolBytes = r.gauge('vipmta_spool_bytes', 'Body bytes of the messages in the spool.');
  const latency = r.histogram('vipmta_spool_commit_latency_seconds', 'Time from a spool commit to its data being durable.', bounds);
  r.onCollect(() => {
    queue.reset();
    for (const q of sources.queues()) {
      for (const state of ['active', 'deferred', 'hold'] as const) queue.set({ binding_group: q.bindingGroup, binding: q.binding, state }, q[state]);
    }
    const s = sources.spool();
    if (s === null) return;
    spoolMessages.set(undefined, s.messages);
    spoolBytes.set(undefined, s.bytes);
    latency.load(undefined, s.latency.counts, s.latency.sumUs / 1e6);
  });
  r.counter('vipmta_mmove_moved_total', 'Recipients handed to the node that owns their binding (#mmove), each after its 250.');
  const dups = r.counter('vipmta_mmove_duplicates_total', 'Messages received over #mmove that were already spooled here (answered 250, not spooled again).');
  r.onCollect(() => {
    const d = sources.mmoveDuplicates() - dups.get();
    if (d > 0) dups.inc(undefined, d);
  });
  return { received, delivered, render: () => r.render() };
}

// --- the runs ---------------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: { time: { type: 'string', default: '1000' }, bindings: { type: 'string', default: '10,100,1000' } },
});
const time = Number(args.time);
const bindingCounts = args.bindings.split(',').map(Number);
if (!(time > 0) || bindingCounts.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error('--time MS and --bindings N,N,... take positive numbers');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const mod = (await import(pathToFileURL(path.join(root, 'dist', 'control', 'metrics.js')).href)) as MetricsModule;
const boundsUs = [...mod.SPOOL_LATENCY_BOUNDS_S.map((s) => s * 1e6), Infinity];

function sources(bindings: number): Sources {
  const rows: BindingQueueSizes[] = [];
  for (let i = 0; i < bindings; i++) rows.push({ bindingGroup: `group-${i % 10}`, binding: `binding-${i}`, active: i, deferred: i * 3, hold: i & 1 });
  const counts = boundsUs.map((_, i) => i * 17);
  return { queues: () => rows, spool: () => ({ messages: 1234, bytes: 5_050_000, latency: { boundsUs, counts, sumUs: 98_765 } }), mmoveDuplicates: () => 7 };
}

/** Increments per timed call: one inc is a few ns, far below the timer's and the harness's cost. */
const INCS = 1000;
const oldSet = buildOld(sources(10), mod.SPOOL_LATENCY_BOUNDS_S);
const newSet = mod.buildMetrics(sources(10));
const incBench = new Bench({ time, warmupTime: 200 });
let n = 1;
incBench.add('hand-written inc', () => {
  for (let i = 0; i < INCS; i++) oldSet.received.inc(undefined, n);
});
incBench.add('prom-client inc', () => {
  for (let i = 0; i < INCS; i++) newSet.received.inc(n);
});
await incBench.run();

/** Minor (scavenge) GCs while making 10M increments: 0 means an inc allocates nothing that survives to the heap. */
async function minorGcs(inc: (by: number) => void): Promise<number> {
  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs++;
  });
  obs.observe({ entryTypes: ['gc'] });
  for (let i = 0; i < 10_000_000; i++) inc(n);
  await new Promise((r) => setTimeout(r, 50)); // GC entries are delivered asynchronously
  obs.disconnect();
  return gcs;
}
n = 2;
const gcOld = await minorGcs((by) => oldSet.received.inc(undefined, by));
const gcNew = await minorGcs((by) => newSet.received.inc(by));

const renderBench = new Bench({ time, warmupTime: 200 });
const lines = new Map<string, number>();
for (const b of bindingCounts) {
  const o = buildOld(sources(b), mod.SPOOL_LATENCY_BOUNDS_S);
  const p = mod.buildMetrics(sources(b));
  lines.set(`${b}`, (await p.render()).split('\n').filter((l) => l !== '' && !l.startsWith('#')).length);
  renderBench.add(`hand-written render ${b}`, () => void o.render());
  renderBench.add(`prom-client render ${b}`, async () => void (await p.render()));
}
await renderBench.run();

function mean(bench: Bench, name: string): number {
  const r = bench.tasks.find((t) => t.name === name)!.result;
  if (r.state !== 'completed') throw new Error(`${name}: ${r.state}${'error' in r ? ` ${String(r.error)}` : ''}`);
  return r.latency.mean;
}

console.log(`\nNode ${process.version}, ${os.cpus().length} CPU (${os.cpus()[0]?.model ?? '?'})\n`);
const incOld = (mean(incBench, 'hand-written inc') * 1e6) / INCS;
const incNew = (mean(incBench, 'prom-client inc') * 1e6) / INCS;
console.log('| counter inc (unlabelled, by n) | ns per inc | minor GCs per 10M incs |');
console.log('|---|---|---|');
console.log(`| hand-written (anchor) | ${incOld.toFixed(1)} | ${gcOld} |`);
console.log(`| prom-client | ${incNew.toFixed(1)} | ${gcNew} |`);
console.log(`\nprom-client / hand-written: ${(incNew / incOld).toFixed(2)}x per inc`);
console.log('\n| bindings | series (sample lines) | hand-written ms per render | prom-client ms per render | ratio |');
console.log('|---|---|---|---|---|');
for (const b of bindingCounts) {
  const o = mean(renderBench, `hand-written render ${b}`);
  const p = mean(renderBench, `prom-client render ${b}`);
  console.log(`| ${b} | ${lines.get(`${b}`)} | ${o.toFixed(3)} | ${p.toFixed(3)} | ${(p / o).toFixed(2)}x |`);
}
