// The values the node hands the metric set (control/metrics.ts): one interface per source, read at
// scrape time. Types only; the main thread's host (node/metrics.ts) implements them.
import type { InjectCounts } from '../inject/counters.js';
import type { BounceClass } from '../policy/bounce-class.js';
import type { SpoolStats } from '../spool/index.js';

/** Queue sizes of one binding (all destination domains together). */
export interface BindingQueueSizes {
  bindingGroup: string;
  binding: string;
  active: number;
  deferred: number;
  hold: number;
}

/** Where pull-style values come from at scrape time; the host supplies them. */
export interface MetricSources {
  queues(): BindingQueueSizes[];
  /** Null while the spool is not open (the spool series keep their last values). */
  spool(): Pick<SpoolStats, 'messages' | 'bytes' | 'latency' | 'corrupt' | 'tornTails' | 'fullErrors'> | null;
  /** Messages received over #mmove that were already spooled here, since start. */
  mmoveDuplicates(): number;
  /** True while the spool refuses commits for lack of space. */
  spoolFull(): boolean;
  /** The ESMTP listeners' shared counts (listener/body-memory.ts), across workers; absent: no series. */
  listeners?(): ListenerAbuseValues | null;
  /** HTTP injection's counts across workers (inject/counters.ts); absent: no series (no Http_Injection at start). */
  inject?(): InjectCounts;
  /** Response-driven shaping: rule firings on this node since start, and the restrictions in
   *  force in the cluster (as this node holds them); absent: no series. */
  shaping?(): ShapingValues;
  /** This node is drained (`cluster drain`); absent: no series. */
  drained?(): boolean;
  /** The event journal (node/journal-watch.ts, read every 5 s); absent: no series; null: not open yet. */
  journal?(): JournalValues | null;
  /** The cluster as this node sees it (null until the manager is there); absent (no Cluster
   *  stanza): no vipmta_cluster_, vipmta_duravip_ or per-peer #mmove series. */
  cluster?(): ClusterValues | null;
  /** The event exporters (Event_Webhook, Event_Nats) and their state; absent: no vipmta_exporter_ series. */
  exporters?(): readonly ExporterValues[];
}

/** One event exporter as the metrics show it (src/export/, read at scrape time). */
export interface ExporterValues {
  readonly name: string;
  readonly kind: string;
  /** The last attempt succeeded (or none failed since start). */
  readonly up: boolean;
  readonly lagRecords: number;
  readonly lagSeconds: number;
  /** Totals since start. */
  readonly batchesSent: number;
  readonly recordsSent: number;
  readonly retries: number;
}

/** The event journal's figures for its series. */
export interface JournalValues {
  bytes: number;
  cap: number | null;
  alarm: boolean;
  lastSeq: number;
  subscribers: readonly { name: string; lagRecords: number; lagBytes: number }[];
}

/** A DuraVIP's state as one label value: the worst that applies, in this order. */
export type DuravipState = 'broken' | 'orphan' | 'conflict' | 'unsafe' | 'owned';

/** What the cluster series show, read at scrape time (node/metrics.ts maps the manager's snapshot and events). */
export interface ClusterValues {
  /** This node's view counter: changes at every CPG view change; 0 while it has no view. */
  readonly viewId: number;
  /** The members of the view: node names (nodeid:pid until a member has announced). */
  readonly members: readonly string[];
  /** corosync's quorum as this node last heard it. */
  readonly quorate: boolean;
  /** Connected to corosync and it delivers this node's messages (not stalled). */
  readonly corosyncUp: boolean;
  /** Addresses the last election gives each member of that election (0 included). */
  readonly held: ReadonlyArray<{ readonly node: string; readonly addresses: number }>;
  /** Each address of the last election and its state; the same array as long as the election is
   *  the same (the series are rebuilt only when it changes). */
  readonly addresses: ReadonlyArray<{ readonly address: string; readonly state: DuravipState }>;
  /** Totals since start: elections this node ran, owner changes after its first, failovers. */
  readonly elections: number;
  readonly moves: number;
  /** Failover durations: observations per FAILOVER_BOUNDS_S bucket (not cumulative, +Inf last), sum in seconds. */
  readonly failovers: { readonly counts: readonly number[]; readonly sum: number };
  /** #mmove totals per peer since start (bytes are known only for what this node received). */
  readonly mmove: ReadonlyArray<{ readonly peer: string; readonly sentMessages: number; readonly receivedMessages: number; readonly receivedBytes: number }>;
}


export interface ShapingValues {
  readonly fired: ReadonlyMap<string, number>;
  readonly restrictions: ReadonlyArray<{ readonly action: string }>;
  /** Messages this node multicast on the shaping group since start, by type (claims, release). */
  readonly groupMessages?: Readonly<Record<string, number>>;
  /** Every cluster-wide limit key this node has work under: its share and use, the cluster's. */
  readonly limits?: ReadonlyArray<{ readonly key: string; readonly allowance: number; readonly target: number; readonly use: number; readonly cap: number; readonly clusterUse: number }>;
  /** Outbound connections open now (idle ones included) and idle, and closeIdle calls since start. */
  readonly outbound?: { readonly open: number; readonly idle: number; readonly closeIdleCalls: number };
  /** Inbound connections per Inbound_Cidr: open now, this node's limit, refusals since start. */
  readonly inbound?: ReadonlyArray<{ readonly cidr: string; readonly open: number; readonly limit: number; readonly refused: number }>;
}

/** Deadlines enforced and the body-memory budget, as the listeners count them (since start). */
export interface ListenerAbuseValues {
  heldBytes: number;
  waiting: number;
  counters: { commandDeadline: number; dataDeadline: number; memoryWaits: number; memoryTimeouts: number; junkCommands: number };
}

/** A counter as the host sees it: it only goes up, by 1 or by n >= 0. */
export interface CounterHandle {
  inc(n?: number): void;
}

/** Recipient failures by bounce class and kind (vipmta_delivery_failures_total). */
export interface FailureCounter {
  inc(kind: 'transient' | 'permanent', cls: BounceClass, n?: number): void;
}

export interface NodeMetrics {
  received: CounterHandle;
  delivered: CounterHandle;
  transientFailures: CounterHandle;
  permanentFailures: CounterHandle;
  failures: FailureCounter;
  mmoveMoved: CounterHandle;
  /** The exposition text, ending with a line feed; runs the collect() callbacks first. */
  render(): Promise<string>;
}
