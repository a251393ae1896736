// A small Prometheus registry (counters, gauges, histograms with labels) and its text exposition
// format 0.0.4, plus the node's own metric set (buildMetrics). Main thread; render() is synchronous
// and allocates one string per scrape; increments are a Map lookup and never allocate for a known series.
// Format: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
import type { SpoolStats } from '../spool/index.js';
import { VERSION } from '../version.js';

/** The Content-Type of render()'s output. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** HELP text: backslash and line feed are escaped. */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Label values: backslash, double quote and line feed are escaped. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample value as Go's ParseFloat reads it: +Inf, -Inf, NaN, otherwise JavaScript's shortest form. */
export function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

interface Series<V> {
  labels: string;
  value: V;
}

abstract class Metric<V> {
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected readonly series = new Map<string, Series<V>>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) throw new TypeError(`invalid metric name "${name}"`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new TypeError(`invalid label name "${l}" on ${name}`);
    }
    if (new Set(labelNames).size !== labelNames.length) throw new TypeError(`duplicate label name on ${name}`);
  }

  /** Forgets every series (gauges re-filled on each scrape drop series that went away). */
  reset(): void {
    this.series.clear();
  }

  /** The series for `labels`, created with `init()` on first use. Wrong label names are programmer errors. */
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
    // An unlabelled counter or gauge exists from the start (0), so rate() sees its first increase.
    if (this.series.size === 0 && this.labelNames.length === 0 && this.type !== 'histogram') out.push(`${this.name} 0`);
    for (const s of this.series.values()) this.renderSeries(out, s);
  }

  protected abstract renderSeries(out: string[], s: Series<V>): void;
}

const braces = (labels: string): string => (labels === '' ? '' : `{${labels}}`);

export class Counter extends Metric<number> {
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

export class Gauge extends Metric<number> {
  readonly type = 'gauge';

  set(labels: Labels | undefined, v: number): void {
    this.at(labels, () => 0).value = v;
  }

  get(labels?: Labels): number {
    return this.at(labels, () => 0).value;
  }

  protected renderSeries(out: string[], s: Series<number>): void {
    out.push(`${this.name}${braces(s.labels)} ${formatValue(s.value)}`);
  }
}

interface HistogramValue {
  /** Per bucket, not cumulative; one more than bounds (the +Inf bucket). */
  counts: number[];
  sum: number;
}

export class Histogram extends Metric<HistogramValue> {
  readonly type = 'histogram';
  /** Finite upper bounds, ascending; +Inf is implicit. */
  readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]) {
    super(name, help, labelNames);
    if (labelNames.includes('le')) throw new TypeError(`${name}: "le" is reserved for histogram buckets`);
    const finite = bounds.length > 0 && bounds[bounds.length - 1] === Infinity ? bounds.slice(0, -1) : [...bounds];
    if (finite.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= finite[i - 1]!))) throw new TypeError(`${name}: bucket bounds must be finite and ascending`);
    this.bounds = finite;
  }

  private fresh = (): HistogramValue => ({ counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0 });

  observe(labels: Labels | undefined, v: number): void {
    const s = this.at(labels, this.fresh).value;
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += v;
  }

  /**
   * Replaces a series with counts kept elsewhere (the spool's native histogram): `counts[i]` are
   * the observations in bucket i only, not cumulative, with the +Inf bucket last.
   */
  load(labels: Labels | undefined, counts: readonly number[], sum: number): void {
    if (counts.length !== this.bounds.length + 1) throw new RangeError(`${this.name}: expected ${this.bounds.length + 1} bucket counts, got ${counts.length}`);
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

/** Metrics in registration order; collectors refresh pull-style values just before each render. */
export class Registry {
  private readonly metrics: { readonly name: string; render(out: string[]): void }[] = [];
  private readonly collectors: (() => void)[] = [];

  private add<M extends { readonly name: string; render(out: string[]): void }>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new TypeError(`metric ${m.name} registered twice`);
    this.metrics.push(m);
    return m;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, bounds: readonly number[], labelNames: readonly string[] = []): Histogram {
    return this.add(new Histogram(name, help, labelNames, bounds));
  }

  /** Runs `fn` at the start of every render(), e.g. to copy queue sizes into gauges. */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  /** The text exposition format 0.0.4, ending with a line feed. */
  render(): string {
    for (const c of this.collectors) c();
    const out: string[] = [];
    for (const m of this.metrics) m.render(out);
    return out.join('\n') + '\n';
  }
}

// --- the node's metrics ---------------------------------------------------------------------------

/** Queue sizes of one binding (all destination domains together). */
export interface BindingQueueSizes {
  bindingGroup: string;
  binding: string;
  active: number;
  deferred: number;
  hold: number;
}

/** Where pull-style values come from at scrape time; the daemon supplies them. */
export interface MetricSources {
  queues(): BindingQueueSizes[];
  /** Null while the spool is not open. */
  spool(): Pick<SpoolStats, 'messages' | 'bytes' | 'latency'> | null;
}

export interface NodeMetrics {
  registry: Registry;
  received: Counter;
  delivered: Counter;
  transientFailures: Counter;
  permanentFailures: Counter;
}

/** The spool's commit latency buckets (native/spool_core.h kLatencyBoundsUs), in seconds. */
export const SPOOL_LATENCY_BOUNDS_S = [100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000].map((us) => us / 1e6);

export function buildMetrics(sources: MetricSources): NodeMetrics {
  const r = new Registry();
  const info = r.gauge('vipmta_build_info', 'Always 1; labels name the vipmta and Node.js versions.', ['version', 'node']);
  info.set({ version: VERSION, node: process.version }, 1);
  const received = r.counter('vipmta_messages_received_total', 'Messages accepted (250 after DATA) and committed to the spool.');
  const delivered = r.counter('vipmta_messages_delivered_total', 'Deliveries that succeeded (2xx from the remote host), counted per recipient.');
  const transientFailures = r.counter('vipmta_delivery_transient_failures_total', 'Delivery attempts deferred for a retry (4xx or no connection), counted per recipient.');
  const permanentFailures = r.counter('vipmta_delivery_permanent_failures_total', 'Deliveries that failed for good (5xx or expiry), counted per recipient.');
  const queue = r.gauge('vipmta_queue_messages', 'Queued messages per binding and queue state, counted per destination domain (a message to two domains counts twice).', ['binding_group', 'binding', 'state']);
  const spoolMessages = r.gauge('vipmta_spool_messages', 'Messages in the spool (committed, not yet done).');
  const spoolBytes = r.gauge('vipmta_spool_bytes', 'Body bytes of the messages in the spool.');
  const latency = r.histogram('vipmta_spool_commit_latency_seconds', 'Time from a spool commit to its data being durable.', SPOOL_LATENCY_BOUNDS_S);
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
  return { registry: r, received, delivered, transientFailures, permanentFailures };
}
