// The node's side of the config repository with a real repository and a stand-in reload: what a
// check adds to the config's own errors (interfaces, local addresses), the LocalCoordinator's
// refusals and commits, Config_Auto_Apply, and the persisted running revision.
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Config, LoadResult } from '../../src/config/index.js';
import { GitConfigRepository } from '../../src/config/repo/repository.js';
import type { ChangeSet } from '../../src/config/repo/types.js';
import { bootFromRepository, NodeConfigHost, type HostFacts } from '../../src/node/config-repo.js';
import { tempDir } from '../helpers/tmp.js';

const BASE = 'ESMTP_Listener {\n  Listen "127.0.0.1:2525" { }\n}\nSpool {\n  Directory = "./var/spool"\n}\n';
const facts: HostFacts = { interfaces: () => new Set(['lo', 'eth0']), addresses: () => new Set(['127.0.0.1', '192.0.2.10']) };

function cs(base: string, files: Record<string, string | null>, message = 'change'): ChangeSet {
  return { base, message, author: 'Ann <ann@n1>', time: 1_800_000_000, files: Object.entries(files).map(([p, c]) => ({ path: p, content: c === null ? null : Buffer.from(c) })) };
}

async function setup(text = BASE): Promise<{ host: NodeConfigHost; loads: LoadResult[]; repo: GitConfigRepository }> {
  const dir = path.join(tempDir('vipmta-cfgnode-'), 'repo');
  const repo = await GitConfigRepository.init(dir, cs('', { 'default/vipmta.conf': text }, 'first'));
  const cwd = tempDir('vipmta-cfgnode-cwd-');
  const boot = await bootFromRepository(dir, 'n1', cwd);
  if (!boot.result.ok) throw new Error('the first revision does not load');
  let running: Config = boot.result.config;
  const loads: LoadResult[] = [];
  const host = new NodeConfigHost({
    boot, cwd, facts, logger: pino({ level: 'silent' }),
    config: () => running,
    // As reload.ts: load, and take it only when it is valid.
    reload: async (load) => {
      const r = load();
      loads.push(r);
      if (!r.ok) return { ok: false, message: 'config reload failed; keeping the running config' };
      running = r.config;
      return { ok: true, message: 'config reloaded' };
    },
  });
  host.started();
  return { host, loads, repo };
}

describe('the node host of the config repository', () => {
  it('checks a change for what only this node knows: its interfaces and its addresses', async () => {
    const { host, repo } = await setup();
    const head = await repo.head();
    expect(await host.check(cs(head, { 'global/x.conf': 'unused\n' }))).toEqual([]);
    const cluster = 'Cluster {\n  Topology "198.51.100.0/24" { Interface = "eth9" }\n}\n';
    expect(await host.check(cs(head, { 'n1/vipmta.conf': BASE + cluster }))).toEqual([
      'n1/vipmta.conf:8:3: Topology "198.51.100.0/24" names Interface "eth9", which this node (n1) does not have',
    ]);
    // Another node's directory is not this node's business.
    expect(await host.check(cs(head, { 'n2/vipmta.conf': BASE + cluster }))).toEqual([]);
    const listen = BASE.replace('127.0.0.1:2525', '203.0.113.5:25');
    expect(await host.check(cs(head, { 'default/vipmta.conf': listen }))).toEqual([
      'default/vipmta.conf:2:3: ESMTP_Listener Listen "203.0.113.5:25": 203.0.113.5 is not an address of this node (n1) and not a DuraVIP',
    ]);
    expect(await host.check(cs(head, { 'default/vipmta.conf': BASE.replace('127.0.0.1:2525', '192.0.2.10:25') }))).toEqual([]);
  });

  it('commits and runs an accepted change, and refuses a broken or stale one without committing', async () => {
    const { host, repo } = await setup();
    const r1 = await repo.head();
    expect(host.running()).toBe(r1);
    expect(repo.readRunning()).toBe(r1);
    const c = host.coordinator();
    const bad = await c.propose(cs(r1, { 'default/vipmta.conf': BASE + 'Log_Levle = "debug"\n' }));
    expect(bad).toMatchObject({ ok: false, rejected: [{ node: 'n1', errors: [expect.stringMatching(/^default\/vipmta\.conf:7:1: unknown option "Log_Levle"/)] }] });
    expect(await repo.head()).toBe(r1);
    const good = await c.propose(cs(r1, { 'default/vipmta.conf': BASE + 'Log_Level = "debug"\n' }));
    expect(good.ok).toBe(true);
    const r2 = good.ok ? good.rev : '';
    expect(await repo.head()).toBe(r2);
    expect(host.running()).toBe(r2);
    expect(repo.readRunning()).toBe(r2);
    const stale = await c.propose(cs(r1, { 'global/x.conf': 'x\n' }));
    expect(stale).toMatchObject({ ok: false, rejected: [], message: expect.stringMatching(/^refused: the change was made against/) });
    expect(await c.status()).toEqual([{ node: 'n1', head: r2, running: r2, autoApply: true, drift: [] }]);
  });

  it('keeps its revision when Config_Auto_Apply is false, until one is applied by hand', async () => {
    const { host, repo } = await setup(BASE + 'Config_Auto_Apply = false\n');
    const r1 = await repo.head();
    const p = await host.coordinator().propose(cs(r1, { 'global/extra.conf': 'x\n' }));
    expect(p).toMatchObject({ ok: true, message: expect.stringMatching(/config apply/) });
    const r2 = p.ok ? p.rev : '';
    expect(host.running()).toBe(r1);
    expect((await host.state()).autoApply).toBe(false);
    expect(await host.switchTo(r2)).toMatchObject({ ok: true });
    expect(host.running()).toBe(r2);
    expect(repo.readRunning()).toBe(r2);
  });

  it('does not persist a revision it could not switch to', async () => {
    const { host, repo, loads } = await setup();
    const r1 = await repo.head();
    // Committed behind the node's back (as a member might): the reload refuses it.
    const r2 = await repo.commit(cs(r1, { 'default/vipmta.conf': 'Spool {\n' }));
    const s = await host.switchTo(r2);
    expect(s.ok).toBe(false);
    expect(loads.at(-1)).toMatchObject({ ok: false, errors: [expect.objectContaining({ file: 'default/vipmta.conf' })] });
    expect(host.running()).toBe(r1);
    expect(repo.readRunning()).toBe(r1);
  });

  it('refuses to decide alone on a node with a Cluster stanza (the cluster\'s config group does)', async () => {
    const { host, repo } = await setup(BASE + 'Cluster {\n  Topology "198.51.100.0/24" { Interface = "eth0" }\n}\n');
    const r1 = await repo.head();
    const p = await host.coordinator().propose(cs(r1, { 'global/x.conf': 'x\n' }));
    expect(p).toMatchObject({ ok: false, rejected: [], message: expect.stringMatching(/Cluster stanza/) });
    expect(await repo.head()).toBe(r1);
    const agreed = { propose: async () => ({ ok: true as const, rev: 'r', message: 'agreed' }), status: async () => [] };
    host.setCoordinator(agreed);
    expect(host.coordinator()).toBe(agreed);
  });
});
