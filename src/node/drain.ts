// The node's side of `cluster drain`: the process's drained word that every ESMTP listener and
// #mmove receiver reads (listener/drain-flag.ts; new sessions get 421 4.3.2, #mmove MAIL 451
// 4.3.2), and what a drain or undrain does to the queue (every route looked up again, held mail
// moved with its hold). The election and persistence are the cluster manager's. Main thread;
// event handlers only, nothing blocks.
import type { Logger } from 'pino';
import type { ClusterManager } from '../cluster/manager.js';
import { newDrainFlag, setDrainFlag } from '../listener/drain-flag.js';
import type { QueueManager } from '../queue/manager.js';

/** One word for the life of the process: every listener spec and #mmove setting carries it. */
let flag: SharedArrayBuffer | null = null;
let drainedNow = false;

export function drainFlagBuffer(): SharedArrayBuffer {
  flag ??= newDrainFlag();
  return flag;
}

/** Whether this node is drained now (the metric `vipmta_node_drained`). */
export function nodeDrained(): boolean {
  return drainedNow;
}

function set(drained: boolean): void {
  drainedNow = drained;
  setDrainFlag(drainFlagBuffer(), drained);
}

/**
 * Follows the manager's drained state: at once (a node drained before its restart refuses
 * sessions from its first worker on), then on every 'drained' event. The queue is told after the
 * event's turn, when the election that gave the addresses away has run too.
 */
export function watchDrain(c: ClusterManager, queue: () => Pick<QueueManager, 'drainChanged' | 'parts'>, logger: Logger): void {
  set(c.drained);
  c.trackQueue(() => queue().parts);
  c.on('drained', (drained: boolean) => {
    set(drained);
    setImmediate(() => {
      queue().drainChanged();
      logger.info({ drained, parts: queue().parts }, drained ? 'drain: queued mail moves to the other nodes' : 'drain: undrained; queued mail stays here');
    });
  });
}
