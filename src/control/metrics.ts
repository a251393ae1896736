// The node's Prometheus metric set on prom-client (text exposition format 0.0.4). Main thread: the
// host increments counters per accepted batch and per delivery outcome (an inc never allocates a
// series after the first); queue sizes and spool stats are read at scrape time by collect()
// callbacks, so render() only reads memory and never blocks. No process_* default metrics.
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { BindingQueueSizes, MetricSources, ExporterValues, JournalValues, DuravipState, ClusterValues, ShapingValues, ListenerAbuseValues, CounterHandle, FailureCounter, NodeMetrics } from './metric-sources.js';
import { VERSION } from '../version.js';

/** The Content-Type of render()'s output. */
export const EXPOSITION_CONTENT_TYPE: string = Registry.PROMETHEUS_CONTENT_TYPE;

export type { BindingQueueSizes, MetricSources, ExporterValues, JournalValues, DuravipState, ClusterValues, ShapingValues, ListenerAbuseValues, CounterHandle, FailureCounter, NodeMetrics } from './metric-sources.js';

/** vipmta_duravip_failover_seconds' buckets: an announce round takes milliseconds, an orphan
 *  without an eligible member waits for one (minutes). */
export const FAILOVER_BOUNDS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The spool's commit latency buckets (native/spool_core.h kLatencyBoundsUs), in seconds. */
export const SPOOL_LATENCY_BOUNDS_S = [100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000].map((us) => us / 1e6);

interface SampleLine {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * A histogram whose bucket counts are kept elsewhere (the spool's native histogram) and copied in
 * at scrape time. prom-client's Histogram counts only its own observe() calls and has no setter, so
 * this implements the registry's metric contract (name, help, type, aggregator, get()) itself; the
 * unit test pins the exact text it renders.
 */
class LoadedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private counts: readonly number[] | null = null;
  private sum = 0;

  /** `bounds`: finite upper bounds, ascending; +Inf is implicit. */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
    private readonly source: () => { counts: readonly number[]; sum: number } | null,
  ) {}

  /** `counts[i]`: observations in bucket i only (not cumulative), the +Inf bucket last. */
  load(counts: readonly number[], sum: number): void {
    if (counts.length !== this.bounds.length + 1) throw new RangeError(`${this.name}: expected ${this.bounds.length + 1} bucket counts, got ${counts.length}`);
    this.counts = counts;
    this.sum = sum;
  }

  /** Called by Registry.resetMetrics(). */
  reset(): void {
    this.counts = null;
    this.sum = 0;
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: SampleLine[] }> {
    const s = this.source();
    if (s !== null) this.load(s.counts, s.sum);
    const values: SampleLine[] = [];
    if (this.counts !== null) {
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += this.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: i < this.bounds.length ? this.bounds[i]! : '+Inf' }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum }, { metricName: `${this.name}_count`, labels: {}, value: cumulative });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export function buildMetrics(sources: MetricSources): NodeMetrics {
  // Not prom-client's global registry: each node (and each test) has its own set.
  const registers = [new Registry()];
  const r = registers[0]!;
  const counter = (name: string, help: string, collect?: (this: Counter) => void): Counter => new Counter({ name, help, registers, collect });
  const gauge = (name: string, help: string, collect: (this: Gauge) => void): Gauge => new Gauge({ name, help, registers, collect });

  new Gauge({ name: 'vipmta_build_info', help: 'Always 1; labels name the vipmta and Node.js versions.', labelNames: ['version', 'node'], registers }).set({ version: VERSION, node: process.version }, 1);
  const received = counter('vipmta_messages_received_total', 'Messages accepted (250 after DATA) and committed to the spool.');
  const delivered = counter('vipmta_messages_delivered_total', 'Deliveries that succeeded (2xx from the remote host), counted per recipient.');
  const transientFailures = counter('vipmta_delivery_transient_failures_total', 'Delivery attempts deferred for a retry (4xx or no connection), counted per recipient.');
  const permanentFailures = counter('vipmta_delivery_permanent_failures_total', 'Deliveries that failed for good (5xx or expiry), counted per recipient.');
  const byClass = new Counter({
    name: 'vipmta_delivery_failures_total',
    help: 'Recipient failures of delivery attempts by bounce class (Momentum\'s codes: 10 invalid recipient, 21 DNS failure, 22 mailbox full, 24 timeout/expired, 50 mail block, 51 spam block, 70 transient, ...): kind="transient" (deferred for a retry) or "permanent" (bounced, expired).',
    labelNames: ['class', 'kind'],
    registers,
  });
  // One child per (class, kind), made on first use: an inc hashes no labels afterwards.
  const children = new Map<number, Counter.Internal>();
  const failures: FailureCounter = {
    inc(kind, cls, n = 1) {
      const key = cls * 2 + (kind === 'permanent' ? 1 : 0);
      let c = children.get(key);
      if (c === undefined) children.set(key, (c = byClass.labels({ class: String(cls), kind })));
      c.inc(n);
    },
  };
  new Gauge({
    name: 'vipmta_queue_messages',
    help: 'Queued messages per binding and queue state, counted per destination domain (a message to two domains counts twice).',
    labelNames: ['binding_group', 'binding', 'state'],
    registers,
    collect() {
      // Re-filled on each scrape: a binding removed by a reload drops its series.
      this.reset();
      for (const q of sources.queues()) {
        for (const state of ['active', 'deferred', 'hold'] as const) this.set({ binding_group: q.bindingGroup, binding: q.binding, state }, q[state]);
      }
    },
  });
  // Each spool series asks for the stats itself (a native call reading counters, three per scrape)
  // rather than depend on the order in which the registry collects.
  gauge('vipmta_spool_messages', 'Messages in the spool (committed, not yet done).', function () {
    const s = sources.spool();
    if (s !== null) this.set(s.messages);
  });
  gauge('vipmta_spool_bytes', 'Body bytes of the messages in the spool.', function () {
    const s = sources.spool();
    if (s !== null) this.set(s.bytes);
  });
  const latency = new LoadedHistogram('vipmta_spool_commit_latency_seconds', 'Time from a spool commit to its data being durable.', SPOOL_LATENCY_BOUNDS_S, () => {
    const s = sources.spool();
    return s === null ? null : { counts: s.latency.counts, sum: s.latency.sumUs / 1e6 };
  });
  // The registry takes any object with name and get(); its typings list only its own classes.
  r.registerMetric(latency as unknown as Metric);
  gauge('vipmta_spool_full', '1 while the spool refuses commits for lack of space (new mail gets 452 4.3.1), else 0.', function () {
    this.set(sources.spoolFull() ? 1 : 0);
  });
  if (sources.drained !== undefined) {
    const drained = sources.drained;
    gauge('vipmta_node_drained', '1 while this node is drained (cluster drain): it owns no DuraVIP, refuses new sessions (421 4.3.2) and moves its queue to the others, else 0.', function () {
      this.set(drained() ? 1 : 0);
    });
  }
  if (sources.journal !== undefined) {
    const journal = sources.journal;
    gauge('vipmta_event_journal_bytes', 'Bytes of event records on disk in the event journal (events/ in the spool directory).', function () {
      const j = journal();
      if (j !== null) this.set(j.bytes);
    });
    gauge('vipmta_event_journal_cap_bytes', 'Event_Journal_Max_Size: at it, events are refused (mail gets 452 4.3.1) or the oldest dropped (Event_Journal_At_Cap).', function () {
      const j = journal();
      if (j !== null && j.cap !== null) this.set(j.cap);
    });
    gauge('vipmta_event_journal_alarm', '1 while the event journal is above its alarm size (80% of the cap): a subscriber is falling behind, else 0.', function () {
      const j = journal();
      this.set(j !== null && j.alarm ? 1 : 0);
    });
    gauge('vipmta_event_journal_last_seq', 'Sequence number of the newest event record (records written since the journal was created).', function () {
      const j = journal();
      if (j !== null) this.set(j.lastSeq);
    });
    new Gauge({
      name: 'vipmta_event_journal_subscriber_lag_records', help: 'Event records each journal subscriber (exporter, aggregator, log read) has not acknowledged yet.',
      labelNames: ['subscriber'], registers,
      collect(this: Gauge) {
        const j = journal();
        this.reset();
        for (const s of j?.subscribers ?? []) this.set({ subscriber: s.name }, s.lagRecords);
      },
    });
  }
  let fullErrorsSeen = 0;
  counter('vipmta_spool_full_errors_total', 'Commits the spool refused for lack of space (ENOSPC, EDQUOT): a 452 4.3.1, a DSN or a #mmove receipt not written.', function () {
    const s = sources.spool();
    if (s !== null && s.fullErrors > fullErrorsSeen) {
      this.inc(s.fullErrors - fullErrorsSeen);
      fullErrorsSeen = s.fullErrors;
    }
  });
  // Counted by the native spool while it recovers at open: the counter shows what this start found
  // (a corrupt record was acknowledged and is lost; a torn tail never was).
  const recoverySeen = { corrupt: 0, torn_tail: 0 };
  new Counter({
    name: 'vipmta_spool_recovery_events_total',
    help: 'Spool records found damaged at open: kind="corrupt" (moved to corrupt/, an acknowledged message lost), kind="torn_tail" (an unacknowledged write cut off).',
    labelNames: ['kind'],
    registers,
    collect() {
      const s = sources.spool();
      if (s === null) return;
      for (const [kind, now] of [['corrupt', s.corrupt], ['torn_tail', s.tornTails]] as const) {
        this.inc({ kind }, now - recoverySeen[kind]);
        recoverySeen[kind] = now;
      }
    },
  });
  const mmoveMoved = counter('vipmta_mmove_moved_total', 'Recipients handed to the node that owns their binding (#mmove), each after its 250.');
  let duplicatesSeen = 0;
  counter('vipmta_mmove_duplicates_total', 'Messages received over #mmove that were already spooled here (answered 250, not spooled again).', function () {
    const d = sources.mmoveDuplicates() - duplicatesSeen;
    if (d > 0) {
      this.inc(d);
      duplicatesSeen += d;
    }
  });
  const listeners = sources.listeners;
  if (listeners !== undefined) {
    // Counted by the workers in shared memory: the counters show what they counted since start.
    const seen = { command: 0, data: 0, memory: 0, junk: 0 };
    new Counter({
      name: 'vipmta_listener_deadlines_total',
      help: 'ESMTP sessions closed with 421 at a deadline: kind="command" (Command_Deadline), "data" (Data_Deadline), "memory" (waited longer than Timeout for Max_Body_Memory), "junk" (more than Max_Junk_Commands NOOP, RSET, VRFY, EXPN, HELP or ETRN without sending a message).',
      labelNames: ['kind'],
      registers,
      collect() {
        const v = listeners();
        if (v === null) return;
        for (const [kind, now] of [['command', v.counters.commandDeadline], ['data', v.counters.dataDeadline], ['memory', v.counters.memoryTimeouts], ['junk', v.counters.junkCommands]] as const) {
          this.inc({ kind }, now - seen[kind]);
          seen[kind] = now;
        }
      },
    });
    gauge('vipmta_body_memory_bytes', 'Memory granted to message bodies being received, over 64 KiB each (Max_Body_Memory bounds it).', function () {
      this.set(listeners()?.heldBytes ?? 0);
    });
    gauge('vipmta_body_memory_waiting', 'Message bodies waiting for memory right now, their clients paused.', function () {
      this.set(listeners()?.waiting ?? 0);
    });
    let waitsSeen = 0;
    counter('vipmta_body_memory_waits_total', 'Times a message body had to wait for memory (Max_Body_Memory).', function () {
      const w = listeners()?.counters.memoryWaits ?? waitsSeen;
      this.inc(w - waitsSeen);
      waitsSeen = w;
    });
  }
  const inject = sources.inject;
  if (inject !== undefined) {
    // Counted by the workers in shared memory since start; each scrape adds what is new.
    const seenStatus: Record<string, number> = {};
    new Counter({
      name: 'vipmta_http_injection_requests_total',
      help: 'HTTP injection requests answered, by status: 200 (every recipient durable or refused one by one), 400/413 (invalid), 401/403 (token, binding), 408 (body too slow), 429 (Max_Concurrent_Requests), 503 (draining), 507 (spool full), other.',
      labelNames: ['status'],
      registers,
      collect() {
        for (const [status, now] of Object.entries(inject().requests)) {
          this.inc({ status }, now - (seenStatus[status] ?? 0));
          seenStatus[status] = now;
        }
      },
    });
    const seen = { accepted: 0, failed: 0 };
    new Counter({
      name: 'vipmta_http_injection_recipients_total',
      help: 'Recipients of HTTP injection requests: result="accepted" (its message on disk), "failed" (refused: invalid address, spool full, local error).',
      labelNames: ['result'],
      registers,
      collect() {
        const v = inject();
        for (const r of ['accepted', 'failed'] as const) {
          this.inc({ result: r }, v[r] - seen[r]);
          seen[r] = v[r];
        }
      },
    });
  }
  const shaping = sources.shaping;
  if (shaping !== undefined) {
    const firedSeen = new Map<string, number>();
    new Counter({
      name: 'vipmta_shaping_rule_fired_total',
      help: 'Shaping_Rule firings on this node (a receiver\'s reply matched often enough), by rule.',
      labelNames: ['rule'],
      registers,
      collect() {
        for (const [rule, now] of shaping().fired) {
          this.inc({ rule }, now - (firedSeen.get(rule) ?? 0));
          firedSeen.set(rule, now);
        }
      },
    });
    new Gauge({
      name: 'vipmta_shaping_restrictions',
      help: 'Restrictions in force in the cluster (as this node holds them), by action: suspend, throttle, reduce_connections.',
      labelNames: ['action'],
      registers,
      collect() {
        const n = { suspend: 0, throttle: 0, reduce_connections: 0 } as Record<string, number>;
        for (const r of shaping().restrictions) n[r.action] = (n[r.action] ?? 0) + 1;
        for (const [action, v] of Object.entries(n)) this.set({ action }, v);
      },
    });
    const sentSeen = new Map<string, number>();
    new Counter({
      name: 'vipmta_shaping_group_messages_sent_total',
      help: 'Messages this node multicast on the shaping CPG group (lease claims, releases), by type.',
      labelNames: ['type'],
      registers,
      collect() {
        for (const [type, now] of Object.entries(shaping().groupMessages ?? {})) {
          this.inc({ type }, now - (sentSeen.get(type) ?? 0));
          sentSeen.set(type, now);
        }
      },
    });
    const limitGauge = (name: string, help: string, pick: (l: NonNullable<ShapingValues['limits']>[number]) => number): void => {
      new Gauge({
        name, help, labelNames: ['key'], registers,
        collect() {
          this.reset();
          for (const l of shaping().limits ?? []) this.set({ key: l.key }, pick(l));
        },
      });
    };
    limitGauge('vipmta_cluster_limit_allowance', 'This node\'s share (lease) of a cluster-wide limit (key: destination#conn, #msg/PERIOD_MS, #open/PERIOD_MS, in:CIDR).', (l) => l.allowance);
    limitGauge('vipmta_cluster_limit_target', 'This node\'s fair share of a cluster-wide limit (water-filled over the members\' demands).', (l) => l.target);
    limitGauge('vipmta_cluster_limit_use', 'What this node uses of a cluster-wide limit now (connections open, or its window\'s count).', (l) => l.use);
    limitGauge('vipmta_cluster_limit_cap', 'The cluster-wide limit in force (the lowest any member announced).', (l) => l.cap);
    limitGauge('vipmta_cluster_limit_cluster_use', 'What every member uses of a cluster-wide limit, as they last reported it.', (l) => l.clusterUse);
    new Gauge({
      name: 'vipmta_outbound_connections',
      help: 'Outbound delivery connections open now, by state: open (in use or idle, what the limits count) and idle.',
      labelNames: ['state'], registers,
      collect() {
        const o = shaping().outbound;
        if (o === undefined) return;
        this.set({ state: 'open' }, o.open);
        this.set({ state: 'idle' }, o.idle);
      },
    });
    let closeSeen = 0;
    counter('vipmta_outbound_idle_closed_total', 'Idle outbound connections closed to make room under a limit (closeIdle calls).', function () {
      const n = shaping().outbound?.closeIdleCalls ?? closeSeen;
      this.inc(n - closeSeen);
      closeSeen = n;
    });
    new Gauge({
      name: 'vipmta_inbound_cidr_connections', help: 'Inbound connections open now from an Inbound_Cidr network (this node, every listener).',
      labelNames: ['cidr'], registers,
      collect() { for (const i of shaping().inbound ?? []) this.set({ cidr: i.cidr }, i.open); },
    });
    new Gauge({
      name: 'vipmta_inbound_cidr_limit', help: 'This node\'s limit for an Inbound_Cidr network now (its share of Cluster_Max_Inbound_Connections).',
      labelNames: ['cidr'], registers,
      collect() { for (const i of shaping().inbound ?? []) this.set({ cidr: i.cidr }, i.limit); },
    });
    const refusedSeen = new Map<string, number>();
    new Counter({
      name: 'vipmta_inbound_cidr_refused_total', help: 'Connections refused with 421 4.7.0 because their network was at its limit.',
      labelNames: ['cidr'], registers,
      collect() {
        for (const i of shaping().inbound ?? []) {
          this.inc({ cidr: i.cidr }, Math.max(0, i.refused - (refusedSeen.get(i.cidr) ?? 0)));
          refusedSeen.set(i.cidr, i.refused);
        }
      },
    });
  }
  if (sources.cluster !== undefined) clusterSeries(sources.cluster, registers);
  if (sources.exporters !== undefined) exporterSeries(sources.exporters, registers);
  return { received, delivered, transientFailures, permanentFailures, failures, mmoveMoved, render: () => r.metrics() };
}

/** The event exporters' series, labelled by exporter and kind, read at scrape time. */
function exporterSeries(exporters: () => readonly ExporterValues[], registers: Registry[]): void {
  const labelNames = ['exporter', 'kind'];
  const gauge = (name: string, help: string, value: (e: ExporterValues) => number): void => {
    new Gauge({ name, help, labelNames, registers, collect() { for (const e of exporters()) this.set({ exporter: e.name, kind: e.kind }, value(e)); } });
  };
  gauge('vipmta_exporter_up', '1 while the exporter\'s last attempt succeeded, 0 while it retries a failed batch.', (e) => (e.up ? 1 : 0));
  gauge('vipmta_exporter_lag_records', 'Journal records the exporter has not had acknowledged yet (its subscriber\'s lag).', (e) => e.lagRecords);
  gauge('vipmta_exporter_lag_seconds', 'Age of the oldest journal record the exporter has not had acknowledged yet (0 when caught up).', (e) => e.lagSeconds);
  const counter = (name: string, help: string, total: (e: ExporterValues) => number): void => {
    const seen = new Map<string, number>();
    new Counter({
      name, help, labelNames, registers,
      collect() {
        for (const e of exporters()) {
          const n = total(e);
          const before = seen.get(e.name) ?? 0;
          if (n > before) this.inc({ exporter: e.name, kind: e.kind }, n - before);
          seen.set(e.name, Math.max(before, n));
        }
      },
    });
  };
  counter('vipmta_exporter_batches_sent_total', 'Batches the receiver acknowledged (2xx), since start.', (e) => e.batchesSent);
  counter('vipmta_exporter_records_sent_total', 'Records in acknowledged batches, since start.', (e) => e.recordsSent);
  counter('vipmta_exporter_retries_total', 'Failed attempts (non-2xx, timeout, connection error), each retried, since start.', (e) => e.retries);
}

/** A counter that follows a total the host keeps (it never goes down here). */
function followCounter(name: string, help: string, registers: Registry[], total: () => number | undefined): void {
  let seen = 0;
  new Counter({
    name, help, registers,
    collect() {
      const n = total();
      if (n !== undefined && n > seen) {
        this.inc(n - seen);
        seen = n;
      }
    },
  });
}

/** The cluster's series (a node with a Cluster stanza), every value read from `cluster()` at scrape time. */
function clusterSeries(cluster: () => ClusterValues | null, registers: Registry[]): void {
  const gauge = (name: string, help: string, value: (c: ClusterValues) => number): void => {
    new Gauge({
      name, help, registers,
      collect() {
        const c = cluster();
        if (c !== null) this.set(value(c));
      },
    });
  };
  gauge('vipmta_cluster_view_id', 'This node\'s CPG view counter: a new value at every view change (members joined or left); 0 while it has no view.', (c) => c.viewId);
  gauge('vipmta_cluster_members', 'Members of the CPG view (vipmta processes in the group).', (c) => c.members.length);
  new Gauge({
    name: 'vipmta_cluster_member', help: 'Always 1, one series per member of the view, by node name (nodeid:pid until it has announced).',
    labelNames: ['node'], registers,
    collect() {
      const c = cluster();
      if (c === null) return;
      this.reset();
      for (const node of c.members) this.set({ node }, 1);
    },
  });
  gauge('vipmta_cluster_quorate', '1 while corosync says this node\'s partition is quorate, else 0 (without quorum a node owns no DuraVIP).', (c) => (c.quorate ? 1 : 0));
  gauge('vipmta_cluster_corosync_up', '1 while this node is connected to corosync and corosync delivers its messages, else 0 (not connected, or STALLED: it then owns no DuraVIP).', (c) => (c.corosyncUp ? 1 : 0));
  new Gauge({
    name: 'vipmta_duravip_addresses_held', help: 'DuraVIPs the last election gives each of its members (as this node computed it; the same on every member).',
    labelNames: ['node'], registers,
    collect() {
      const c = cluster();
      if (c === null) return;
      this.reset();
      for (const h of c.held) this.set({ node: h.node }, h.addresses);
    },
  });
  // One series per address (its current state only): 10,000 DuraVIPs are 10,000 series, which
  // Prometheus takes well; rebuilt only when the election changed since the last scrape.
  let shown: ClusterValues['addresses'] | null = null;
  new Gauge({
    name: 'vipmta_duravip_address_state',
    help: 'Always 1, one series per DuraVIP of the last election, labelled with its state, the first that applies: broken (BROKEN, not managed), orphan (no owner), conflict (preferences in conflict), unsafe (UNSAFE: services differ), owned.',
    labelNames: ['address', 'state'], registers,
    collect() {
      const c = cluster();
      if (c === null || c.addresses === shown) return;
      this.reset();
      for (const a of c.addresses) this.set({ address: a.address, state: a.state }, 1);
      shown = c.addresses;
    },
  });
  followCounter('vipmta_cluster_elections_total', 'DuraVIP elections this node ran (one per agreed announce, move or tick once a view\'s announce round is complete).', registers, () => cluster()?.elections);
  followCounter('vipmta_duravip_moves_total', 'DuraVIP owner changes in this node\'s elections after its first (the status page\'s failover list): failovers, rebalancing, cluster duravip move, and addresses left without an owner.', registers, () => cluster()?.moves);
  const failoverHelp = 'the view change in which the owner left the group (died, partitioned away, stopped), as this node saw it, to this node\'s election giving the address to another member (past any time it spent without an owner). corosync\'s failure detection (token timeout) comes before the view change and is not included.';
  followCounter('vipmta_duravip_failovers_total', `DuraVIPs given to another member after their owner left the group (see vipmta_duravip_failover_seconds): from ${failoverHelp}`, registers, () => {
    const c = cluster();
    return c === null ? undefined : c.failovers.counts.reduce((a, b) => a + b, 0);
  });
  const failover = new LoadedHistogram('vipmta_duravip_failover_seconds', `Time a failed-over DuraVIP took: from ${failoverHelp}`, FAILOVER_BOUNDS_S, () => cluster()?.failovers ?? null);
  registers[0]!.registerMetric(failover as unknown as Metric);
  const mmoveCounter = (name: string, help: string, values: (p: ClusterValues['mmove'][number]) => ReadonlyArray<readonly [string, number]>): void => {
    const seen = new Map<string, number>();
    new Counter({
      name, help, labelNames: ['peer', 'direction'], registers,
      collect() {
        for (const p of cluster()?.mmove ?? []) {
          for (const [direction, now] of values(p)) {
            const key = `${direction}\0${p.peer}`;
            const d = now - (seen.get(key) ?? 0);
            if (d > 0 || !seen.has(key)) this.inc({ peer: p.peer, direction }, Math.max(0, d));
            seen.set(key, Math.max(now, seen.get(key) ?? 0));
          }
        }
      },
    });
  };
  mmoveCounter('vipmta_mmove_messages_total', 'Messages over #mmove per peer: direction="sent" (the peer took it, its 250), "received" (this node spooled it from the peer; a peer that announces no ECCluster_Listener is named by its address).', (p) => [['sent', p.sentMessages], ['received', p.receivedMessages]]);
  mmoveCounter('vipmta_mmove_bytes_total', 'Message bytes this node received over #mmove and spooled, per peer (direction="received" only: the size of what this node sends is not counted).', (p) => [['received', p.receivedBytes]]);
}
