// The node's wiring of the config group (src/node/config-cluster.ts): none without a Cluster stanza
// (the local coordinator decides); with one, the group becomes the coordinator, the gate it says is
// passed to the DuraVIP manager (closed from the start), the workers' #mmove settings name the
// repository so every ECCluster_Listener serves XCONFIG, and a fetch from a member that announces
// no cluster link says so.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ClusterManager } from '../../src/cluster/manager.js';
import type { ConfigCoordinator, ConfigNodeHost, ConfigRepository } from '../../src/config/repo/types.js';
import type { CorosyncGroup } from '../../src/native/index.js';
import { ConfigCluster } from '../../src/node/config-cluster.js';
import { offerListeners, serveConfigRepo } from '../../src/node/worker-settings.js';
import { config } from './node/helpers.js';

const silent = pino({ level: 'silent' });
const host = (dir: string): ConfigNodeHost => ({
  repo: { dir, head: async () => '' } as unknown as ConfigRepository, node: 'n1',
  check: async () => [], switchTo: async () => ({ ok: true, message: '' }), running: () => '', autoApply: () => true, drift: async () => [],
});
const never = (): Promise<CorosyncGroup> => new Promise(() => undefined);

describe('config cluster wiring', () => {
  it('is not made without a Cluster stanza', () => {
    const cfg = config('Nodename = "n1"\n');
    expect(ConfigCluster.create({ config: () => cfg, logger: silent, host: host('/r'), cluster: () => null, setCoordinator: () => undefined, join: never })).toBeNull();
  });

  it('becomes the coordinator, closes the gate until it knows, serves the repository to the workers, and names a member without a link', async () => {
    const cfg = config('Nodename = "n1"\nCluster { Cluster_Secret = "s" }\nECCluster_Listener { Listen "127.0.0.1:4802" { } }\n');
    const gates: boolean[] = [];
    let coordinator: ConfigCoordinator | null = null;
    const manager = { setConfigGate: (open: boolean) => gates.push(open), peerLink: () => null, openReloadRound: () => undefined, reloadRoundDone: () => undefined } as unknown as ClusterManager;
    try {
      const c = ConfigCluster.create({ config: () => cfg, logger: silent, host: host('/srv/repo'), cluster: () => manager, setCoordinator: (x) => (coordinator = x), join: never })!;
      c.start();
      expect(coordinator).toBe(c.group);
      expect(gates).toEqual([false, false]);
      const offered: unknown[] = [];
      await offerListeners((async (method: string, params: unknown) => {
        offered.push([method, params]);
        return [];
      }) as never, cfg);
      expect(offered.find((o) => (o as [string])[0] === 'setMmove')).toMatchObject(['setMmove', { configRepo: '/srv/repo' }]);
      await expect((c as unknown as { fetch(n: string, s: string): Promise<unknown> }).fetch('n2', '')).rejects.toThrow(/n2 announces no ECCluster_Listener/);
      expect(await c.group.propose({ base: '', message: 'm', author: 'a <a@b>', time: 1, files: [] })).toMatchObject({ ok: false, message: expect.stringMatching(/not in the config group/) });
      c.stop();
    } finally {
      serveConfigRepo(null);
    }
  });
});
