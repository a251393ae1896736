// Resolving a revision (or a tree not committed yet) for one node: for each relative path the
// first of global/, NODENAME/, default/ that has it, written to a directory of its own (temp dir
// then rename, so a half-written tree is never read) for the config loader. Main thread; awaits
// `git` children and small file writes.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, VipError } from '../../errors.js';
import { git } from './git.js';
import type { ResolvedTree } from './types.js';

/** One file of a resolved tree. */
export interface ResolvedEntry {
  /** Its path in the resolved tree ("vipmta.conf", "conf.d/b.conf"). */
  readonly rel: string;
  /** Its path in the repository ("global/vipmta.conf"). */
  readonly repoPath: string;
  readonly oid: string;
}

/** Resolved trees kept: the newest ones are reused by a check then a switch; older ones go. */
const KEEP = 16;

/** The order: global/ first, then the node's own directory, then default/. */
export function resolveOrder(node: string): string[] {
  return ['global', node, 'default'];
}

/** The files a tree-ish resolves to for `node`, by `git ls-tree -r`. */
export async function resolvedEntries(dir: string, treeish: string, node: string): Promise<ResolvedEntry[]> {
  const text = (await git(['ls-tree', '-r', '-z', '--full-tree', treeish], { cwd: dir })).stdout.toString('utf8');
  const byTop = new Map<string, Map<string, string>>();
  for (const line of text.split('\0')) {
    // Regular files only: a symlink or submodule in the repository is not config.
    const m = /^100(?:644|755) blob ([0-9a-f]+)\t([^/]+)\/(.+)$/s.exec(line);
    if (m === null) continue;
    let files = byTop.get(m[2]!);
    if (files === undefined) byTop.set(m[2]!, (files = new Map()));
    files.set(m[3]!, m[1]!);
  }
  const out = new Map<string, ResolvedEntry>();
  for (const top of resolveOrder(node)) {
    for (const [rel, oid] of byTop.get(top) ?? []) {
      if (!out.has(rel)) out.set(rel, { rel, repoPath: `${top}/${rel}`, oid });
    }
  }
  return [...out.values()].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/**
 * Writes the entries under `base/name` (kept when already there: a name is made from the revision
 * or tree id and the node, so its content never changes) and returns the tree.
 */
export async function writeResolved(dir: string, base: string, name: string, rev: string, entries: readonly ResolvedEntry[]): Promise<ResolvedTree> {
  const target = path.join(base, name);
  const origin = new Map(entries.map((e) => [path.join(target, e.rel), e.repoPath]));
  const tree: ResolvedTree = { rev, dir: target, entry: path.join(target, 'vipmta.conf'), origin };
  if (fs.existsSync(target)) {
    fs.utimesSync(target, new Date(), new Date()); // newest for prune()
    return tree;
  }
  fs.mkdirSync(base, { recursive: true });
  const tmp = path.join(base, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    fs.mkdirSync(tmp);
    for (const e of entries) {
      const file = path.join(tmp, e.rel);
      if (path.relative(tmp, file).startsWith('..')) throw new VipError(ErrorCode.CONFIG_REPO, `${e.repoPath} is outside the repository`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, (await git(['cat-file', 'blob', e.oid], { cwd: dir })).stdout);
    }
    try {
      fs.renameSync(tmp, target);
    } catch (err) {
      // Another resolve of the same name won the race: its tree is the same.
      if (!fs.existsSync(target)) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  prune(base, target);
  return tree;
}

/** Keeps the KEEP newest resolved trees (and `keep`). */
function prune(base: string, keep: string): void {
  const dirs = fs.readdirSync(base, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.tmp-'))
    .map((d) => ({ p: path.join(base, d.name), t: fs.statSync(path.join(base, d.name)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const d of dirs.slice(KEEP)) if (d.p !== keep) fs.rmSync(d.p, { recursive: true, force: true });
}
