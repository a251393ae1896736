// Config repository catch-up over the cluster link (issue 16, docs/config-repository.md "In a
// cluster"): the interface a node's config repository offers the ECCluster_Listener
// (ConfigBundleSource), the XCONFIG wire both ends share, and gitBundleSource, the repository's
// directory read with `git bundle`. The wire functions are pure, any thread; gitBundleSource runs
// in the worker threads that serve the ECCluster_Listener and awaits `git` child processes.
//
// After XMMOVE authenticated the peer (wire.ts: the HMAC keyed by Cluster_Secret, inside TLS-PSK
// when Mmove_TLS is on), it may send:
//
//   XCONFIG BUNDLE <since>          (<since>: a revision, or "-" for the whole history)
//     250 2.0.0 BUNDLE bytes=<b> head=<rev>
//     then exactly <b> octets: a git bundle of every revision after <since> up to <rev>
//
// Refusals: 530 5.7.0 before XMMOVE, 554 5.3.3 when the node runs no config repository, 501 5.5.4
// for a malformed command, 451 4.3.0 when git failed (the member asks another, or again later).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** What the ECCluster_Listener serves XCONFIG from; the host injects it (null: no repository). */
export interface ConfigBundleSource {
  /** A bundle of every revision after `since` ('' : all of them) up to the head, and that head. */
  bundle(since: string): Promise<{ head: string; bundle: Buffer }>;
}

/** A bundle larger than this is refused by the client (a configuration's history is far smaller). */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
const REV = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
/** The config repository's one branch (src/config/repo/repository.ts). */
const BRANCH = 'refs/heads/main';

export type ConfigCommand = { verb: 'BUNDLE'; since: string };

/** The arguments of XCONFIG; null when malformed. */
export function parseConfigCommand(args: string): ConfigCommand | null {
  const p = args.trim().split(/ +/);
  if (p.length !== 2 || p[0]!.toUpperCase() !== 'BUNDLE') return null;
  if (p[1] === '-') return { verb: 'BUNDLE', since: '' };
  return REV.test(p[1]!) ? { verb: 'BUNDLE', since: p[1]! } : null;
}

export function bundleCommand(since: string): string {
  if (since !== '' && !REV.test(since)) throw new TypeError(`config fetch: ${JSON.stringify(since)} is not a revision`);
  return `XCONFIG BUNDLE ${since === '' ? '-' : since}`;
}

export function bundleReply(head: string, bytes: number): string {
  return `250 2.0.0 BUNDLE bytes=${bytes} head=${head}`;
}

const HEAD = /^BUNDLE bytes=(\d{1,10}) head=([0-9a-f]{40}(?:[0-9a-f]{24})?)$/;

/** The reply text after "250 " (with or without the enhanced code); null when it is not one. */
export function parseBundleReply(text: string): { bytes: number; head: string } | null {
  const m = HEAD.exec(text.replace(/^\d\.\d\.\d+ /, '').trim());
  return m === null ? null : { bytes: Number(m[1]), head: m[2]! };
}

function git(dir: string, args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile('git', ['-C', dir, ...args], { encoding: 'buffer', maxBuffer: 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`git ${args[0]}: ${stderr.toString('utf8').trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * The repository in `dir` as a ConfigBundleSource: `git bundle create` of since..HEAD into a
 * temporary file, read back whole, with the head the bundle names. Runs only `git` reading the repository, so it is safe beside
 * the main thread's commits (git's own locking covers a commit racing the bundle: the bundle then
 * ends at whichever head it read, and says so).
 */
export function gitBundleSource(dir: string): ConfigBundleSource {
  return {
    async bundle(since: string): Promise<{ head: string; bundle: Buffer }> {
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'vipmta-bundle-'));
      try {
        const file = path.join(tmp, 'b.bundle');
        // A bundle names refs, not bare ids: the repository's branch (src/config/repo/repository.ts
        // takes that ref from it), whose id the bundle itself then says.
        await git(dir, ['bundle', 'create', '--quiet', file, BRANCH, ...(since === '' ? [] : [`^${since}`])]);
        const heads = (await git(dir, ['bundle', 'list-heads', file])).toString('utf8');
        const head = new RegExp(`^([0-9a-f]{40}(?:[0-9a-f]{24})?) ${BRANCH}$`, 'm').exec(heads)?.[1];
        if (head === undefined) throw new Error(`git bundle names no ${BRANCH} (${heads.trim().slice(0, 200)})`);
        return { head, bundle: await readFile(file) };
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  };
}
