// Hosts the Log_Aggregator (src/aggregate/) in the node: its members from the config (or every
// Node of the Cluster stanza), their addresses as written or as the cluster's live view announces
// them, the secret and TLS of the cluster link, and the `log aggregator` console command. Main
// thread; starting and stopping are asynchronous, nothing blocks.
import type { Logger } from 'pino';
import { Aggregator, type MemberAddress } from '../aggregate/aggregator.js';
import { logfileError } from '../aggregate/layout.js';
import { mmoveAddress, type ClusterManager } from '../cluster/manager.js';
import type { Config } from '../config/index.js';
import type { CommandTable } from '../control/commands.js';
import { parseEndpoint } from '../net/address.js';

/** The configured members: name -> fixed address (null: the live view's). */
export function aggregatorMembers(config: Config): Map<string, MemberAddress | null> {
  const out = new Map<string, MemberAddress | null>();
  const written = config.logAggregator?.options.Members ?? [];
  if (written.length === 0) {
    for (const n of config.cluster?.nodes ?? []) out.set(n.name, null);
    return out;
  }
  for (const m of written) {
    const eq = m.indexOf('=');
    if (eq < 0) {
      out.set(m, null);
      continue;
    }
    const ep = parseEndpoint(m.slice(eq + 1));
    out.set(m.slice(0, eq), ep === null ? null : { host: ep.host, port: ep.port });
  }
  return out;
}

/** The aggregator the config asks for, started; null without a Log_Aggregator stanza. */
export function startLogAggregator(config: Config, cluster: () => ClusterManager | null, logger: Logger): Aggregator | null {
  const la = config.logAggregator;
  if (la === null) return null;
  const bad = logfileError(la.options.Logfile);
  if (bad !== null) {
    logger.error(`Log_Aggregator not started: ${bad}`);
    return null;
  }
  const members = aggregatorMembers(config);
  if (members.size === 0) logger.warn('Log_Aggregator has no members: give Members = ( ... ) or Node stanzas in Cluster');
  const local = mmoveAddress(config);
  const agg = new Aggregator({
    nodeName: config.global.Nodename,
    directory: la.options.Directory,
    logfile: la.options.Logfile,
    members: [...members.keys()],
    address: (m) => members.get(m) ?? cluster()?.peerLink(m) ?? null,
    // A member given with its address and outside the Cluster's Node list (or without a cluster
    // manager) has no view to be in: it is always expected to answer.
    inView: (m) => {
      const c = cluster();
      const fixed = members.get(m) !== null;
      if (c === null) return fixed;
      return c.peerLink(m) !== null || (fixed && !(config.cluster?.nodes ?? []).some((n) => n.name === m));
    },
    secret: config.cluster?.options.Cluster_Secret ?? null,
    tls: config.cluster?.options.Mmove_TLS ?? false,
    ...(local !== null ? { localAddress: local.host } : {}),
    logger,
  });
  agg.start();
  logger.info({ directory: la.options.Directory, members: [...members.keys()], subscriber: agg.subscriber }, 'log aggregator started');
  return agg;
}

export function addLogAggregatorCommands(t: CommandTable, agg: () => Aggregator | null): void {
  t.add('log aggregator', 'the Log_Aggregator\'s members: each one\'s mark (seq aggregated), its newest seq, the lag in records and seconds', () => {
    const a = agg();
    return a === null ? 'no Log_Aggregator on this node\n' : a.report();
  });
}
