// The config repository with real git in temporary directories: deterministic revisions, the
// stale base, resolution order, preview, bundles, revert, drift, and loading a resolved tree.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GitConfigRepository } from '../../src/config/repo/repository.js';
import { loadResolved } from '../../src/config/repo/load.js';
import type { ChangeSet } from '../../src/config/repo/types.js';
import { decodeChangeSet, encodeChangeSet } from '../../src/config/repo/wire.js';
import { tempDir } from '../helpers/tmp.js';

const AUTHOR = 'Ann Operator <ann@n1>';
const T0 = 1_800_000_000;
const CONF = 'ESMTP_Listener {\n  Listen "127.0.0.1:2525" { }\n}\nSpool {\n  Directory = "./var/spool"\n}\n';

function cs(base: string, files: Record<string, string | null>, message = 'change', time = T0): ChangeSet {
  return { base, message, author: AUTHOR, time, files: Object.entries(files).map(([p, c]) => ({ path: p, content: c === null ? null : Buffer.from(c) })) };
}

async function fresh(first?: Record<string, string | null>): Promise<GitConfigRepository> {
  const dir = path.join(tempDir('vipmta-repo-'), 'repo');
  return GitConfigRepository.init(dir, first === undefined ? undefined : cs('', first, 'first'));
}

const gitOut = (dir: string, ...args: string[]): string => execFileSync('git', args, { cwd: dir, env: { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' } }).toString();

describe('the config repository', () => {
  it('makes the same revision ids in two repositories given the same change sets', async () => {
    const a = await fresh();
    const b = await fresh();
    const revs: string[][] = [[], []];
    for (const [i, r] of [a, b].entries()) {
      const r1 = await r.commit(cs('', { 'default/vipmta.conf': CONF }, 'first'));
      const r2 = await r.commit(cs(r1, { 'global/extra.conf': 'Log_Level = "debug"\n', 'default/vipmta.conf': CONF + '# two\n' }, 'second\n\nwith a body  ', T0 + 60));
      const r3 = await r.commit(cs(r2, { 'global/extra.conf': null }, 'third', T0 + 120));
      revs[i] = [r1, r2, r3];
    }
    expect(revs[0]).toEqual(revs[1]);
    expect(new Set(revs[0]).size).toBe(3);
    expect(await a.head()).toBe(revs[0]![2]);
    // The work tree follows the head, and git's own log reads the history.
    expect(fs.readFileSync(path.join(a.dir, 'default/vipmta.conf'), 'utf8')).toBe(CONF + '# two\n');
    expect(fs.existsSync(path.join(a.dir, 'global/extra.conf'))).toBe(false);
    expect(gitOut(a.dir, 'log', '--format=%an <%ae> %at %s').trim().split('\n')).toEqual([`${AUTHOR} ${T0 + 120} third`, `${AUTHOR} ${T0 + 60} second`, `${AUTHOR} ${T0} first`]);
    const log = await a.log();
    expect(log.map((l) => l.message)).toEqual(['third', 'second\n\nwith a body', 'first']);
    expect(log[1]!.files).toEqual(['default/vipmta.conf', 'global/extra.conf']);
    expect((await a.log({ max: 1, path: 'default/vipmta.conf' })).map((l) => l.rev)).toEqual([revs[0]![1]]);
    expect(await a.drift()).toEqual([]);
  });

  it('refuses a change made against a revision that is not the head, and changes nothing', async () => {
    const r = await fresh({ 'default/vipmta.conf': CONF });
    const base = await r.head();
    const r2 = await r.commit(cs(base, { 'default/vipmta.conf': CONF + '#2\n' }));
    await expect(r.commit(cs(base, { 'default/vipmta.conf': CONF + '#3\n' }))).rejects.toMatchObject({ code: 'ERR_CONFIG_REPO_STALE' });
    await expect(r.commit(cs('', { 'default/vipmta.conf': CONF }))).rejects.toMatchObject({ code: 'ERR_CONFIG_REPO_STALE' });
    expect(await r.head()).toBe(r2);
  });

  it('refuses paths outside a top-level directory or into .git', async () => {
    const r = await fresh();
    for (const p of ['vipmta.conf', '../x/y', 'default/../../etc', '.git/config', 'default/.git/x', '/abs/x']) {
      await expect(r.commit(cs('', { [p]: 'x' }))).rejects.toMatchObject({ code: 'ERR_CONFIG_REPO' });
    }
    expect(await r.head()).toBe('');
  });

  it('resolves each file from global/, then NODE/, then default/', async () => {
    const r = await fresh({
      'default/vipmta.conf': 'default', 'default/a.conf': 'default-a', 'default/b.conf': 'default-b', 'default/conf.d/c.conf': 'default-c',
      'n1/a.conf': 'n1-a', 'n1/b.conf': 'n1-b', 'n2/a.conf': 'n2-a',
      'global/b.conf': 'global-b',
    });
    const t = await r.resolve(await r.head(), 'n1');
    const read = (rel: string): string => fs.readFileSync(path.join(t.dir, rel), 'utf8');
    expect([read('vipmta.conf'), read('a.conf'), read('b.conf'), read('conf.d/c.conf')]).toEqual(['default', 'n1-a', 'global-b', 'default-c']);
    expect(t.entry).toBe(path.join(t.dir, 'vipmta.conf'));
    expect(t.origin.get(path.join(t.dir, 'a.conf'))).toBe('n1/a.conf');
    expect(t.origin.get(path.join(t.dir, 'b.conf'))).toBe('global/b.conf');
    expect(t.origin.get(path.join(t.dir, 'conf.d/c.conf'))).toBe('default/conf.d/c.conf');
    expect(t.dir.startsWith(path.join(r.dir, '.git', 'vipmta'))).toBe(true);
    const t2 = await r.resolve(await r.head(), 'n2');
    expect(fs.readFileSync(path.join(t2.dir, 'a.conf'), 'utf8')).toBe('n2-a');
    expect(fs.readFileSync(path.join(t2.dir, 'b.conf'), 'utf8')).toBe('global-b');
    await expect(r.resolve(await r.head(), 'global')).rejects.toMatchObject({ code: 'ERR_CONFIG_REPO' });
    await expect(r.resolve('0123456789abcdef0123456789abcdef01234567', 'n1')).rejects.toMatchObject({ code: 'ERR_CONFIG_REPO' });
  });

  it('previews a change without committing it', async () => {
    const r = await fresh({ 'default/vipmta.conf': CONF });
    const head = await r.head();
    const t = await r.preview(cs(head, { 'n1/vipmta.conf': 'node one\n' }), 'n1');
    expect(t.rev).toBe('');
    expect(fs.readFileSync(t.entry, 'utf8')).toBe('node one\n');
    expect(t.origin.get(t.entry)).toBe('n1/vipmta.conf');
    expect(await r.head()).toBe(head);
    expect((await r.log()).length).toBe(1);
    expect(fs.existsSync(path.join(r.dir, 'n1'))).toBe(false);
  });

  it('brings a repository that missed revisions up to the head with a bundle, and refuses one that does not reach the expected head', async () => {
    const a = await fresh({ 'default/vipmta.conf': CONF });
    const b = await fresh({ 'default/vipmta.conf': CONF });
    const c = await fresh(); // empty: takes everything
    const base = await a.head();
    expect(await b.head()).toBe(base);
    const r2 = await a.commit(cs(base, { 'global/x.conf': 'x\n' }, 'two', T0 + 1));
    const r3 = await a.commit(cs(r2, { 'global/x.conf': 'y\n' }, 'three', T0 + 2));
    // A bundle that stops at r2 does not bring b to r3: nothing changes.
    const partial = await (async () => {
      const d = await fresh({ 'default/vipmta.conf': CONF });
      await d.commit(cs(base, { 'global/x.conf': 'x\n' }, 'two', T0 + 1));
      return d.bundle(base);
    })();
    await expect(b.takeBundle(partial, r3)).rejects.toMatchObject({ code: 'ERR_CONFIG_REPO' });
    expect(await b.head()).toBe(base);
    await expect(b.takeBundle(Buffer.from('not a bundle'), r3)).rejects.toMatchObject({ code: 'ERR_CONFIG_REPO' });
    expect(await b.head()).toBe(base);
    await b.takeBundle(await a.bundle(base), r3);
    expect(await b.head()).toBe(r3);
    expect(fs.readFileSync(path.join(b.dir, 'global/x.conf'), 'utf8')).toBe('y\n');
    expect((await b.log()).map((l) => l.rev)).toEqual((await a.log()).map((l) => l.rev));
    await c.takeBundle(await a.bundle(''), r3);
    expect(await c.head()).toBe(r3);
    // Already there: an empty bundle is enough.
    expect((await a.bundle(r3)).length).toBe(0);
    await b.takeBundle(Buffer.alloc(0), r3);
    // A bundle of a diverged history is not a fast-forward.
    const e = await fresh({ 'default/vipmta.conf': CONF });
    const eOwn = await e.commit(cs(base, { 'global/x.conf': 'other\n' }, 'diverged', T0 + 5));
    await expect(e.takeBundle(await a.bundle(base), r3)).rejects.toMatchObject({ code: 'ERR_CONFIG_REPO' });
    expect(await e.head()).toBe(eOwn);
  });

  it('reverts a revision to its parent, and refuses when a file it changed changed since', async () => {
    const r = await fresh({ 'default/vipmta.conf': CONF, 'global/a.conf': 'a1\n' });
    const r1 = await r.head();
    const r2 = await r.commit(cs(r1, { 'global/a.conf': 'a2\n', 'global/new.conf': 'new\n' }, 'two', T0 + 1));
    const r3 = await r.commit(cs(r2, { 'default/vipmta.conf': CONF + '#3\n' }, 'three', T0 + 2));
    const undo = await r.revertChanges(r2, AUTHOR, T0 + 3);
    expect(undo.base).toBe(r3);
    expect(undo.message).toBe(`Revert "two"\n\nThis reverts commit ${r2}.`);
    expect(undo.files.map((f) => [f.path, f.content?.toString() ?? null])).toEqual([['global/a.conf', 'a1\n'], ['global/new.conf', null]]);
    await r.commit(undo);
    expect(fs.readFileSync(path.join(r.dir, 'global/a.conf'), 'utf8')).toBe('a1\n');
    expect(fs.existsSync(path.join(r.dir, 'global/new.conf'))).toBe(false);
    // r3's file changed after r3? No; but reverting r1 touches default/vipmta.conf, which r3 changed.
    await expect(r.revertChanges(r1, AUTHOR, T0 + 4)).rejects.toThrow(/default\/vipmta\.conf changed since/);
  });

  it('shows a file at a revision and the diff of a revision', async () => {
    const r = await fresh({ 'default/vipmta.conf': CONF });
    const r1 = await r.head();
    const r2 = await r.commit(cs(r1, { 'default/vipmta.conf': CONF + 'Log_Level = "debug"\n' }, 'debug', T0 + 1));
    expect((await r.show(r1, 'default/vipmta.conf')).toString()).toBe(CONF);
    await expect(r.show(r1, 'default/none.conf')).rejects.toThrow(/no file default\/none\.conf/);
    expect(await r.diff(r2)).toMatch(/^\+Log_Level = "debug"$/m);
    expect(await r.diff(r1)).toMatch(/^\+\+\+ b\/default\/vipmta\.conf$/m);
    expect(await r.diff(r1, r2)).toBe(await r.diff(r2));
  });

  it('reports work tree edits and untracked files as drift', async () => {
    const r = await fresh({ 'default/vipmta.conf': CONF, 'default/b.conf': 'b\n' });
    expect(await r.drift()).toEqual([]);
    fs.appendFileSync(path.join(r.dir, 'default/vipmta.conf'), '# local edit\n');
    fs.rmSync(path.join(r.dir, 'default/b.conf'));
    fs.mkdirSync(path.join(r.dir, 'n1'));
    fs.writeFileSync(path.join(r.dir, 'n1/new.conf'), 'x\n');
    expect(await r.drift()).toEqual(['default/b.conf', 'default/vipmta.conf', 'n1/new.conf']);
    // A commit of another file keeps the local edits (they stay drift).
    await r.commit(cs(await r.head(), { 'global/g.conf': 'g\n' }));
    expect(fs.readFileSync(path.join(r.dir, 'global/g.conf'), 'utf8')).toBe('g\n');
    expect(await r.drift()).toEqual(['default/b.conf', 'default/vipmta.conf', 'n1/new.conf']);
  });

  it('persists the running revision', async () => {
    const r = await fresh({ 'default/vipmta.conf': CONF });
    expect(r.readRunning()).toBe('');
    r.writeRunning(await r.head());
    expect((await GitConfigRepository.open(r.dir)).readRunning()).toBe(await r.head());
  });
});

describe('loading a resolved tree', () => {
  it('names errors by their file in the repository', async () => {
    const r = await fresh({ 'default/vipmta.conf': CONF + 'include "conf.d"\n', 'default/conf.d/a.conf': 'Log_Level = "debug"\n', 'n1/conf.d/a.conf': '\nLog_Levle = "debug"\n' });
    const cwd = tempDir('vipmta-repo-cwd-');
    const bad = loadResolved(await r.resolve(await r.head(), 'n1'), { cwd, node: 'n1' });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors.map((e) => `${e.file}:${e.line}:${e.column}`)).toEqual(['n1/conf.d/a.conf:2:1']);
    const good = loadResolved(await r.resolve(await r.head(), 'n2'), { cwd, node: 'n2' });
    expect(good.ok).toBe(true);
    if (good.ok) {
      expect(good.config.global.Nodename).toBe('n2');
      expect(good.config.global.Log_Level).toBe('debug');
      expect(good.config.spool.Directory).toBe(path.join(cwd, 'var/spool'));
    }
  });

  it('refuses a config whose Nodename is not the node it runs on', async () => {
    const r = await fresh({ 'default/vipmta.conf': CONF + 'Nodename = "n9"\n' });
    const res = loadResolved(await r.resolve(await r.head(), 'n1'), { cwd: tempDir('vipmta-repo-cwd-'), node: 'n1' });
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.errors[0]!.file + ':' + res.errors[0]!.line + ': ' + res.errors[0]!.message).toMatch(/^default\/vipmta\.conf:7: Nodename "n9" differs from this node's name "n1"/);
    expect(loadResolved(await r.resolve(await r.head(), 'n9'), { cwd: tempDir('vipmta-repo-cwd-'), node: 'n9' }).ok).toBe(true);
  });

  it('loads a repository whose directory name has quotes and backslashes', async () => {
    const dir = path.join(tempDir('vipmta-repo-'), 'my "conf" \\ repo');
    const r = await GitConfigRepository.init(dir, cs('', { 'default/vipmta.conf': CONF }, 'first'));
    const res = loadResolved(await r.resolve(await r.head(), 'n1'), { cwd: tempDir('vipmta-repo-cwd-'), node: 'n1' });
    expect(res.ok).toBe(true);
  });
});

describe('a change set on the console', () => {
  it('goes through base64 JSON unchanged, binary content and deletions too', () => {
    const c: ChangeSet = { base: 'abc', message: 'm\n\nbody', author: AUTHOR, time: T0, files: [{ path: 'global/a', content: Buffer.from([0, 255, 10]) }, { path: 'n1/b', content: null }] };
    expect(decodeChangeSet(encodeChangeSet(c))).toEqual(c);
    expect(() => decodeChangeSet('!!')).toThrow(/not base64 of JSON/);
    expect(() => decodeChangeSet(Buffer.from('{"base":""}').toString('base64'))).toThrow(/lacks/);
  });
});
