// The node's side of the DuraVIP cluster (the manager itself lives in src/cluster/): where a
// binding's mail goes, which binding-group members this node sends from, and what the node does
// when owners change (re-place queued mail, cut deliveries and moves that cannot complete).
// Main thread; event handlers only, nothing blocks.
import type { Logger } from 'pino';
import { mmoveAddress, type ClusterManager } from '../cluster/manager.js';
import type { Config } from '../config/index.js';
import { corosyncLibrary } from '../native/index.js';
import { BindingPolicy } from '../policy/binding.js';
import { LOCAL_ROUTE, type Route } from '../queue/routes.js';
import type { Dispatcher } from './dispatch.js';
import type { EventEmit } from '../events/emitter.js';

/** Where a binding's mail goes: local unless its Bind_Address is a DuraVIP another node owns. */
export function routeOfBinding(cluster: ClusterManager | null, config: Config, binding: string): Route {
  const addr = config.bindings.get(binding)?.options.Bind_Address;
  if (cluster === null) return LOCAL_ROUTE;
  // No Bind_Address: local, unless this node is drained (then another node takes it).
  return cluster.routeFor(addr ?? null);
}

/** Binding groups prefer members whose address this node sends from (not a DuraVIP, or owned here). */
export function bindingPolicy(config: Config, cluster: () => ClusterManager | null): BindingPolicy {
  return new BindingPolicy(config, {
    holds: (address) => {
      const c = cluster();
      return c === null || c.routeFor(address).to === 'local';
    },
  });
}

export interface ClusterWiring {
  config: Config;
  /** Re-places queued mail of the bindings whose owner changed (QueueManager.reroute). */
  reroute: () => void;
  dispatch: Pick<Dispatcher, 'dropMovesTo' | 'abortDeliveriesFrom'>;
  logger: Logger;
  /** Where address_taken and address_released records go (src/events/). */
  events?: EventEmit;
}

/** Starts the manager after the listeners (they bind every DuraVIP with IP_FREEBIND before
 *  owning it), with the node's reactions to its events. The join does not wait for corosync:
 *  the node serves at once and owns DuraVIPs once corosync answers. */
export function startCluster(c: ClusterManager, w: ClusterWiring): void {
  // Which corosync support this node has: the addon loads corosync's client libraries at run time.
  const lib = corosyncLibrary();
  if (lib.available) w.logger.info({ cpg: lib.cpg, quorum: lib.quorum }, 'cluster: corosync support available');
  else w.logger.warn({ error: lib.error }, 'cluster: corosync support unavailable; this node owns no DuraVIP until corosync is installed');
  if (w.config.ecclusterListeners.length > 0 && mmoveAddress(w.config) === null) {
    w.logger.warn('ECCluster_Listener listens only on a wildcard address: peers cannot move mail here (give it this node\'s cluster link address)');
  }
  // Owners change in elections: re-place queued mail of the bindings that moved. An election
  // (one 'allocation' after its owner changes) does it at once, so that mail a worker hands over
  // after the election's record is routed by it, never by the route the election replaced; owner
  // changes without an allocation (corosync lost) do it once per turn of the event loop.
  let queued = false;
  c.on('allocation', () => w.reroute());
  c.on('ownership', () => {
    if (queued) return;
    queued = true;
    setImmediate(() => {
      queued = false;
      w.reroute();
    });
  });
  c.on('memberLeft', (node: string) => w.dispatch.dropMovesTo(node));
  // Taken off the wire for whatever reason (an election, a stalled corosync, lost quorum): what is
  // being sent from it ends now, whatever state its connection is in.
  c.on('released', (address: string) => {
    w.dispatch.abortDeliveriesFrom(address);
    w.events?.emit({ type: 'address_released', address });
  });
  c.on('taken', (address: string, ifname: string) => w.events?.emit({ type: 'address_taken', address, ifname }));
  c.start();
}

/** Hands this node's addresses over first on shutdown, before sessions drain; a failure is logged. */
export async function stopCluster(c: ClusterManager | null, logger: Logger): Promise<void> {
  if (c === null) return;
  try {
    await c.stop();
  } catch (err) {
    logger.error({ err }, 'cluster: handover on shutdown failed');
  }
}
