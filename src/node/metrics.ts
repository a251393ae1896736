// The node's metric set as the rest of src/node/ uses it: what is counted where (received,
// per-recipient outcomes and failures by bounce class, #mmove moves and duplicates) and what is
// read at scrape time (queue sizes per binding, the spool). The only file here that touches src/control/metrics.ts.
// Main thread; increments are cheap and never allocate, render() runs per scrape.
import type { Config } from '../config/index.js';
import { buildMetrics, type BindingQueueSizes, type ShapingValues } from '../control/metrics.js';
import type { BounceClass } from '../policy/bounce-class.js';
import type { DedupTable } from '../mmove/dedup.js';
import type { QueueManager } from '../queue/manager.js';
import type { Spool } from '../spool/index.js';
import { listenerAbuse } from './worker-settings.js';
import { nodeDrained } from './drain.js';

export type Outcome = 'delivered' | 'deferred' | 'bounced' | 'moved';

export interface NodeMetricSources {
  config: () => Config;
  queue: Pick<QueueManager, 'byBinding'>;
  /** Null while the spool is not open. */
  spool: () => Pick<Spool, 'stats'> | null;
  dedup: Pick<DedupTable, 'stats'>;
  /** True while the spool refuses commits for lack of space (SpoolFullWatch). */
  spoolFull: () => boolean;
  /** Rule firings and restrictions in force (node/shaping.ts). */
  shaping?: () => ShapingValues;
}

export class NodeMetricSet {
  /** Messages taken in: a worker's accepted batch, or a dead worker's commits found in the spool. */
  readonly received: (n: number) => void;
  /** Per-recipient outcomes of the queue manager (its onOutcome). */
  readonly outcome: (status: Outcome, n: number) => void;
  /** Per-recipient failures by bounce class (the queue manager's onFailure). */
  readonly failure: (kind: 'transient' | 'permanent', cls: BounceClass, n: number) => void;
  /** The exposition text for GET /metrics. */
  readonly render: () => Promise<string>;

  constructor(s: NodeMetricSources) {
    const m = buildMetrics({
      queues: () => queueSizes(s.config(), s.queue),
      spool: () => s.spool()?.stats() ?? null,
      mmoveDuplicates: () => s.dedup.stats().duplicates,
      spoolFull: s.spoolFull,
      listeners: listenerAbuse,
      drained: nodeDrained,
      ...(s.shaping !== undefined ? { shaping: s.shaping } : {}),
    });
    this.received = (n) => m.received.inc(n);
    this.outcome = (status, n) => {
      if (status === 'delivered') m.delivered.inc(n);
      else if (status === 'deferred') m.transientFailures.inc(n);
      else if (status === 'bounced') m.permanentFailures.inc(n);
      else m.mmoveMoved.inc(n);
    };
    this.failure = (kind, cls, n) => m.failures.inc(kind, cls, n);
    this.render = () => m.render();
  }
}

/** Queue sizes per binding over all domains; every configured binding appears, at 0 when idle. */
export function queueSizes(config: Config, queue: Pick<QueueManager, 'byBinding'>): BindingQueueSizes[] {
  const by = new Map<string, BindingQueueSizes>();
  const row = (bindingGroup: string, binding: string): BindingQueueSizes => {
    const key = `${bindingGroup}\0${binding}`;
    let r = by.get(key);
    if (r === undefined) by.set(key, (r = { bindingGroup, binding, active: 0, deferred: 0, hold: 0 }));
    return r;
  };
  for (const b of config.bindings.values()) row(b.group, b.name);
  for (const m of queue.byBinding()) {
    const r = row(m.bindingGroup, m.binding);
    r.active += m.active;
    r.deferred += m.deferred;
    r.hold += m.hold;
  }
  return [...by.values()];
}
