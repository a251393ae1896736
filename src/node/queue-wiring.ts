// How the node hosts the queue manager: the spool calls it may make, the worker that runs its
// batches, the policy it rebinds with, the cluster route of each binding and the metrics of its
// outcomes. The one place that builds QueueManagerOptions. Main thread; nothing here blocks.
import type { Logger } from 'pino';
import type { ClusterManager } from '../cluster/manager.js';
import type { Config } from '../config/index.js';
import type { BindingPolicy } from '../policy/binding.js';
import { QueueManager, type QueueManagerOptions } from '../queue/manager.js';
import type { Spool } from '../spool/index.js';
import { routeOfBinding } from './cluster.js';
import type { Dispatcher } from './dispatch.js';
import type { Outcome } from './metrics.js';

export interface QueueWiring {
  config: () => Config;
  /** The open spool; the queue calls it only after start-up has opened it. */
  spool: () => Spool;
  dispatch: Pick<Dispatcher, 'deliver' | 'move' | 'bounce' | 'closeIdle' | 'onConnections'>;
  policy: () => BindingPolicy;
  cluster: () => ClusterManager | null;
  outcome: (status: Outcome, n: number) => void;
  /** Failures by bounce class (NodeMetricSet.failure). */
  failure?: NonNullable<QueueManagerOptions['onFailure']>;
  /** Response-driven shaping (node/shaping.ts): the rules see the receivers' replies, the
   *  scheduler sees the restrictions in force. */
  shaping?: {
    observe: NonNullable<QueueManagerOptions['shaping']>;
    restrictionsFor: NonNullable<QueueManagerOptions['restrictions']>;
    destination: NonNullable<QueueManagerOptions['onDestination']>;
    /** The destination key of a domain (MX rollup), for the connection book. */
    destinationOf?: NonNullable<QueueManagerOptions['destinationOf']>;
  };
  /** The cluster's shares of the Cluster_* limits (the shaping group's leases). */
  allowances?: NonNullable<QueueManagerOptions['allowances']>;
  logger: Logger;
  /** Where the queue's event records go (src/events/). */
  events?: QueueManagerOptions['events'];
}

export function makeQueue(w: QueueWiring): QueueManager {
  const q = new QueueManager({
    config: w.config,
    spool: {
      markDone: (ids) => w.spool().markDone(ids),
      update: (id, state) => w.spool().update(id, state),
    },
    deliver: (batch, worker) => w.dispatch.deliver(batch, worker),
    closeIdle: (worker, ids) => w.dispatch.closeIdle(worker, ids),
    ...(w.allowances !== undefined ? { allowances: w.allowances } : {}),
    ...(w.shaping?.destinationOf !== undefined ? { destinationOf: w.shaping.destinationOf } : {}),
    // A worker reads the original's headers and spools the DSN: the main thread reads no body.
    bounce: (req) => w.dispatch.bounce(req),
    assign: (m) => {
      const a = w.policy().assignStored(m);
      if (a.warning !== undefined) w.logger.warn({ binding: 'default/default' }, `binding assignment: ${a.warning}; using default`);
      return a;
    },
    logger: w.logger,
    ...(w.events !== undefined ? { events: w.events } : {}),
    onOutcome: w.outcome,
    ...(w.failure !== undefined ? { onFailure: w.failure } : {}),
    ...(w.shaping !== undefined ? { shaping: w.shaping.observe, restrictions: w.shaping.restrictionsFor, onDestination: w.shaping.destination } : {}),
    route: (_group, binding) => routeOfBinding(w.cluster(), w.config(), binding),
    move: (node, items) => w.dispatch.move(node, items),
    drained: () => w.cluster()?.drained ?? false,
    moveConnections: () => w.config().cluster?.options.Mmove_Connections ?? 4,
  });
  // Connections that close without a batch (idle timeout, the peer, a dead worker) leave the book.
  w.dispatch.onConnections({ closed: (worker, ids) => q.connectionsClosed(worker, ids), workerGone: (worker) => q.workerGone(worker) });
  return q;
}
