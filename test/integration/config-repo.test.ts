// One node run from a config repository (`vipmta start --repo`, loopback only): commits from a
// working copy, a refused commit naming the repository file, revert, edit with $EDITOR,
// Config_Auto_Apply = false with `config apply`, and a restart on the persisted revision.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cliPath, freePort, runCli, VipmtaProcess } from '../helpers/node-process.js';
import { tempDir } from '../helpers/tmp.js';

const started: VipmtaProcess[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.kill()));
});

function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return runCli([cliPath, ...args], cwd, 60_000, env);
}

function startNode(dir: string, repo: string): VipmtaProcess {
  const child = spawn(process.execPath, [cliPath, 'start', '--repo', repo, '--nodename', 'n1'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = new VipmtaProcess(child, dir, null);
  started.push(p);
  return p;
}

/** `config status`'s row for n1: [running, head]. */
async function status(dir: string, socket: string): Promise<{ running: string; head: string; auto: string; drift: string }> {
  const r = await cli(['config', 'status', '-s', socket], dir);
  expect(r.status).toBe(0);
  const row = r.stdout.split('\n').find((l) => l.startsWith('n1 '))!.trim().split(/\s+/);
  return { running: row[1]!, head: row[2]!, auto: row[3]!, drift: row[4]! };
}

const short = (rev: string): string => rev.slice(0, 12);

describe('a node run from a config repository', () => {
  it('runs what a working copy commits, refuses a broken commit by repository file, reverts, edits, and restarts on its revision', async () => {
    const dir = tempDir('vipmta-cfgrepo-');
    const port = await freePort();
    const socket = path.join(dir, 'var/run/vipmta.sock');
    fs.writeFileSync(path.join(dir, 'start.conf'), [
      'Worker_Threads = 1',
      `ESMTP_Listener {\n  Listen "127.0.0.1:${port}" { }\n}`,
      'Spool {\n  Directory = "./var/spool"\n  Sync = none\n}',
      'Control_Listener {\n  Listen "./var/run/vipmta.sock" { }\n}',
      '',
    ].join('\n'));
    const init = await cli(['config', 'init', 'repo', '--from', 'start.conf'], dir);
    expect(init.stderr).toBe('');
    const r1 = /at ([0-9a-f]{40})/.exec(init.stdout)![1]!;
    const repo = path.join(dir, 'repo');
    expect(fs.readFileSync(path.join(repo, 'default/vipmta.conf'), 'utf8')).toBe(fs.readFileSync(path.join(dir, 'start.conf'), 'utf8'));

    let node = startNode(dir, 'repo');
    await node.waitStarted();
    expect(await status(dir, socket)).toEqual({ running: short(r1), head: short(r1), auto: 'yes', drift: '-' });

    // A commit from a working copy changes an option; the node runs it.
    expect((await cli(['config', 'checkout', 'wc', '-s', socket], dir)).status).toBe(0);
    const wc = path.join(dir, 'wc');
    fs.appendFileSync(path.join(wc, 'default/vipmta.conf'), 'Log_Level = "debug"\n# marker-7f3a: files may hold secrets\n');
    const c2 = await cli(['config', 'commit', '-m', 'debug logs', '-s', socket], wc);
    expect(c2.stderr).toBe('');
    expect(c2.status).toBe(0);
    const r2 = /committed ([0-9a-f]{40})/.exec(c2.stdout)![1]!;
    expect(await status(dir, socket)).toMatchObject({ running: short(r2), head: short(r2) });
    expect((await cli(['console', '-s', socket, 'config', 'show'], dir)).stdout).toMatch(/Log_Level = "?debug/);
    // The change's files never reach the log (they may hold Cluster_Secret or tokens): the console
    // line names the command only.
    const proposed = await node.waitForLog((r) => r.msg === 'console command' && String(r.command).startsWith('config propose'));
    expect(proposed.command).toMatch(/^config propose \(\d+ bytes of arguments not logged\)$/);
    expect(node.stdout + node.stderr).not.toContain('marker-7f3a');
    // The working copy was brought to the new revision.
    expect((await cli(['config', 'log', '-n', '1', '-s', socket], dir)).stdout).toMatch(new RegExp(`^\\* ${short(r2)} .* debug logs$`, 'm'));

    // A syntax error is refused with the repository file's line and column; nothing changes.
    fs.appendFileSync(path.join(wc, 'default/vipmta.conf'), 'Spool {\n');
    const bad = await cli(['config', 'commit', '-m', 'broken', '-s', socket], wc);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^n1 rejected it:$/m);
    expect(bad.stderr).toMatch(/^ {2}default\/vipmta\.conf:\d+:\d+: /m);
    expect(await status(dir, socket)).toMatchObject({ running: short(r2), head: short(r2) });
    fs.writeFileSync(path.join(wc, 'default/vipmta.conf'), fs.readFileSync(path.join(repo, 'default/vipmta.conf')));

    // Revert r2: the debug level goes.
    const rv = await cli(['config', 'revert', r2, '-s', socket], dir);
    expect(rv.status).toBe(0);
    const r3 = /committed ([0-9a-f]{40})/.exec(rv.stdout)![1]!;
    expect(await status(dir, socket)).toMatchObject({ running: short(r3), head: short(r3) });
    expect((await cli(['console', '-s', socket, 'config', 'show'], dir)).stdout).not.toMatch(/Log_Level = "?debug/);
    expect((await cli(['config', 'show', `${r3}:default/vipmta.conf`, '-s', socket], dir)).stdout).toBe(fs.readFileSync(path.join(dir, 'start.conf'), 'utf8'));

    // `config edit` with an editor that turns Config_Auto_Apply off.
    const editor = path.join(dir, 'editor.sh');
    fs.writeFileSync(editor, '#!/bin/sh\necho "Config_Auto_Apply = false" >> "$1"\n', { mode: 0o755 });
    const ed = await cli(['config', 'edit', '-m', 'apply by hand', '-s', socket], dir, { EDITOR: editor });
    expect(ed.stderr).toBe('');
    const r4 = /committed ([0-9a-f]{40})/.exec(ed.stdout)![1]!;
    expect(await status(dir, socket)).toEqual({ running: short(r4), head: short(r4), auto: 'no', drift: '-' });

    // With Config_Auto_Apply = false a commit is kept but not run.
    const bump = path.join(dir, 'bump.sh');
    fs.writeFileSync(bump, '#!/bin/sh\necho "Log_Level = \\"warn\\"" >> "$1"\n', { mode: 0o755 });
    const c5 = await cli(['config', 'edit', '-m', 'quieter', '-s', socket], dir, { EDITOR: bump });
    const r5 = /committed ([0-9a-f]{40})/.exec(c5.stdout)![1]!;
    expect(c5.stdout).toMatch(/config apply/);
    expect(await status(dir, socket)).toMatchObject({ running: short(r4), head: short(r5) });

    // A restart runs the revision the node ran, not the head.
    expect((await cli(['console', '-s', socket, 'shutdown'], dir)).status).toBe(0);
    expect((await node.exited).code).toBe(0);
    node = startNode(dir, 'repo');
    await node.waitStarted();
    expect(await status(dir, socket)).toMatchObject({ running: short(r4), head: short(r5) });

    // `config apply` runs it by hand.
    const ap = await cli(['config', 'apply', r5, '-s', socket], dir);
    expect(ap.status).toBe(0);
    expect(await status(dir, socket)).toMatchObject({ running: short(r5), head: short(r5) });
    expect((await cli(['console', '-s', socket, 'config', 'show'], dir)).stdout).toMatch(/Log_Level = "?warn/);
  }, 120_000);

  it('refuses to start on a revision whose Nodename is not the node\'s name, or on a directory that is no repository', async () => {
    const dir = tempDir('vipmta-cfgrepo-');
    fs.writeFileSync(path.join(dir, 'start.conf'), 'Worker_Threads = 1\nNodename = "other"\n');
    expect((await cli(['config', 'init', 'repo', '--from', 'start.conf'], dir)).status).toBe(0);
    const node = startNode(dir, 'repo');
    expect((await node.exited).code).toBe(1);
    expect(node.stderr).toMatch(/invalid configuration at revision [0-9a-f]{40}\n {2}default\/vipmta\.conf:2:1: Nodename "other" differs from this node's name "n1"/);
    fs.mkdirSync(path.join(dir, 'plain'));
    const none = startNode(dir, 'plain');
    expect((await none.exited).code).toBe(1);
    expect(none.stderr).toMatch(/config repository: .*plain is not a config repository/);
    expect((await cli(['start', '--repo', 'repo', '-c', 'start.conf'], dir)).status).toBe(2);
  }, 60_000);
});
