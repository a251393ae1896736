// The node's wiring of the cluster's config coordinator (issue 16), on a node run from a config
// repository with a Cluster stanza: makes the config group and hands it to the node side
// (setCoordinator), serves XCONFIG from the ECCluster_Listeners, fetches from a member's, and tells
// the DuraVIP manager whether this node's config has caught up. Main thread; nothing blocks.

import type { Logger } from 'pino';
import { ConfigGroup } from '../cluster/config-group.js';
import { fetchConfigBundle } from '../cluster/config-link.js';
import { configKey } from '../cluster/config-wire.js';
import type { ClusterManager } from '../cluster/manager.js';
import type { Config } from '../config/index.js';
import type { ConfigCoordinator, ConfigNodeHost } from '../config/repo/types.js';
import type { CorosyncGroup } from '../native/index.js';
import { serveConfigRepo } from './worker-settings.js';

export interface ConfigClusterOptions {
  config(): Config;
  readonly logger: Logger;
  /** The node side of the repository (node/config-repo.ts). */
  readonly host: ConfigNodeHost;
  /** The DuraVIP manager: its gate, its reload round, the members' #mmove addresses. */
  cluster(): ClusterManager | null;
  /** Makes the config group the coordinator of `config commit` / `revert`. */
  setCoordinator(c: ConfigCoordinator): void;
  /** Tests: a fake join. */
  readonly join?: (name: string) => Promise<CorosyncGroup>;
}

export class ConfigCluster {
  readonly group: ConfigGroup;
  private keyOf: { secret: string; key: Buffer } | null = null;
  /** The gate as the group last said it, applied to the manager whenever there is one. */
  private gate: { open: boolean; why: string } = { open: false, why: 'not compared with the cluster yet' };

  /** Null on a node without a Cluster stanza: the local coordinator decides alone. */
  static create(o: ConfigClusterOptions): ConfigCluster | null {
    return o.config().cluster === null ? null : new ConfigCluster(o);
  }

  private constructor(private readonly o: ConfigClusterOptions) {
    const logger = o.logger.child({ subsystem: 'config' });
    this.group = new ConfigGroup({
      host: o.host, logger,
      key: () => this.key(),
      fetch: (node, since) => this.fetch(node, since),
      gate: (open, why) => {
        this.gate = { open, why };
        o.cluster()?.setConfigGate(open, why);
      },
      reloadRound: () => {
        const c = o.cluster();
        return c === null ? null : { open: () => c.openReloadRound(), done: () => c.reloadRoundDone() };
      },
      ...(o.join ? { join: o.join } : {}),
    });
    // Before the workers get their #mmove settings: every ECCluster_Listener serves XCONFIG.
    serveConfigRepo(o.host.repo.dir);
  }

  start(): void {
    this.group.start();
    this.o.cluster()?.setConfigGate(this.gate.open, this.gate.why);
    this.o.setCoordinator(this.group);
  }

  stop(): void {
    this.group.stop();
  }

  private async fetch(node: string, since: string): Promise<{ head: string; bundle: Buffer }> {
    const c = this.o.config().cluster;
    const secret = c?.options.Cluster_Secret;
    if (c === null || secret === undefined) throw new Error('no Cluster_Secret: the config cannot be fetched from a member');
    const peer = this.o.cluster()?.peerLink(node) ?? null;
    if (peer === null) throw new Error(`${node} announces no ECCluster_Listener to fetch the config from`);
    return fetchConfigBundle({ host: peer.host, port: peer.port, nodeName: c.options.Nodename, secret, tls: c.options.Mmove_TLS, since });
  }

  /** configKey of the current Cluster_Secret (a switch may change it), derived once per secret. */
  private key(): Buffer | null {
    const secret = this.o.config().cluster?.options.Cluster_Secret;
    if (secret === undefined) return null;
    if (this.keyOf?.secret !== secret) this.keyOf = { secret, key: configKey(secret) };
    return this.keyOf.key;
  }
}
