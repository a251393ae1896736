// Catch-up over the cluster link: a real MmoveReceiver on loopback serving a real git repository
// with XCONFIG BUNDLE (src/mmove/config-fetch.ts) to the member's client (src/cluster/config-link.ts):
// the bundle carries exactly the missing revisions (a clone that was behind fetches them and has the
// same history), and the refusals (no proof, another Cluster_Secret, no repository), plain and TLS-PSK.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchConfigBundle } from '../../src/cluster/config-link.js';
import { bundleCommand, gitBundleSource, parseBundleReply, parseConfigCommand, type ConfigBundleSource } from '../../src/mmove/config-fetch.js';
import { DedupTable } from '../../src/mmove/dedup.js';
import { MmoveReceiver } from '../../src/mmove/receiver.js';
import { tempDir } from '../helpers/tmp.js';

const SECRET = 'config secret';
const git = (dir: string, ...args: string[]): string => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@b.test', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@b.test' } }).trim();

function commit(dir: string, file: string, text: string): string {
  fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  fs.writeFileSync(path.join(dir, file), text);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', `edit ${file}`);
  return git(dir, 'rev-parse', 'HEAD');
}

describe('XCONFIG wire', () => {
  it('parses what it writes', () => {
    const rev = 'c'.repeat(40);
    expect(parseConfigCommand(bundleCommand(rev).slice('XCONFIG '.length))).toEqual({ verb: 'BUNDLE', since: rev });
    expect(parseConfigCommand(bundleCommand('').slice('XCONFIG '.length))).toEqual({ verb: 'BUNDLE', since: '' });
    for (const bad of ['BUNDLE', 'BUNDLE xyz', 'BUNDLE - x', 'PUSH -', '']) expect(parseConfigCommand(bad)).toBeNull();
    expect(parseBundleReply(`2.0.0 BUNDLE bytes=12 head=${rev}`)).toEqual({ bytes: 12, head: rev });
    expect(parseBundleReply('2.0.0 JOURNAL count=1')).toBeNull();
  });
});

describe('XCONFIG on an ECCluster_Listener', () => {
  const receivers: MmoveReceiver[] = [];
  afterEach(async () => {
    for (const r of receivers.splice(0)) await r.close(500);
  });

  async function serve(config: ConfigBundleSource | null, tls = false): Promise<number> {
    const r = new MmoveReceiver({
      name: '127.0.0.1:0', hostname: 'member.test', secret: SECRET, maxHops: 3, maxMessageSize: 1024, idleTimeoutMs: 30_000,
      sink: null, dedup: new DedupTable({ entries: 64, windowMs: 60_000 }), logger: pino({ level: 'silent' }), onMessage: () => undefined, config, tls,
    });
    receivers.push(r);
    return r.listen(0, '127.0.0.1');
  }

  for (const tls of [false, true]) {
    it(`a member behind fetches exactly what it misses${tls ? ' (TLS-PSK)' : ''}`, async () => {
      const dir = tempDir('cfg-src-');
      git(dir, 'init', '-q', '-b', 'main');
      const r1 = commit(dir, 'global/vipmta.conf', 'one\n');
      const behind = tempDir('cfg-behind-');
      fs.rmSync(behind, { recursive: true });
      execFileSync('git', ['clone', '-q', dir, behind]);
      commit(dir, 'global/vipmta.conf', 'two\n');
      const r3 = commit(dir, 'n1/vipmta.conf', 'three\n');
      const port = await serve(gitBundleSource(dir), tls);
      const got = await fetchConfigBundle({ host: '127.0.0.1', port, nodeName: 'n3', secret: SECRET, tls, since: r1, timeoutMs: 10_000 });
      expect(got.head).toBe(r3);
      const file = path.join(behind, '..', `${path.basename(behind)}.bundle`);
      fs.writeFileSync(file, got.bundle);
      git(behind, 'fetch', '-q', file, 'refs/heads/main');
      git(behind, 'merge', '-q', '--ff-only', 'FETCH_HEAD');
      expect(git(behind, 'log', '--format=%H')).toBe(git(dir, 'log', '--format=%H'));
      // The whole history for a member with none.
      const all = await fetchConfigBundle({ host: '127.0.0.1', port, nodeName: 'n3', secret: SECRET, tls, since: '' });
      fs.writeFileSync(file, all.bundle);
      expect(git(dir, 'bundle', 'list-heads', file)).toBe(`${r3} refs/heads/main`);
    });
  }

  it('refuses another Cluster_Secret, and says when the member runs no repository', async () => {
    const port = await serve(null);
    await expect(fetchConfigBundle({ host: '127.0.0.1', port, nodeName: 'n3', secret: 'wrong', tls: false, since: '' })).rejects.toThrow(/refused the authentication: 535/);
    await expect(fetchConfigBundle({ host: '127.0.0.1', port, nodeName: 'n3', secret: SECRET, tls: false, since: '' })).rejects.toThrow(/554 5\.3\.3 XCONFIG: this node runs no config repository/);
  });
});
