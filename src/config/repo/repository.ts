// The config repository on one node: a git repository (branch main, work tree checked out at the
// head so operators can read it) whose commits are made with git's plumbing from a ChangeSet, so
// that every member given the same ChangeSets makes the same revision ids (src/config/repo/types.ts).
// Main thread; every method awaits `git` child processes and small file writes, never blocks.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, VipError } from '../../errors.js';
import { git, gitText } from './git.js';
import { resolvedEntries, writeResolved } from './resolve.js';
import type { ChangeSet, ConfigRepository, FileChange, ResolvedTree, RevisionInfo } from './types.js';

const BRANCH = 'refs/heads/main';
const ZERO = '0'.repeat(40);
/** Top-level directories other than a node's: a node may not be named like them. */
export const SHARED_DIRS = ['global', 'default'] as const;

/** A node name as the repository's `NODENAME/` directory (the config's Nodename pattern). */
export function checkNodeName(node: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(node) || (SHARED_DIRS as readonly string[]).includes(node)) {
    throw new VipError(ErrorCode.CONFIG_REPO, `"${node}" cannot name a node's directory in the config repository`);
  }
}

/** A path of a ChangeSet: relative, under a top-level directory, no "..", nothing in .git. */
export function checkRepoPath(p: string): void {
  const parts = p.split('/');
  const bad = p === '' || p.startsWith('/') || parts.length < 2 || parts.some((s) => s === '' || s === '.' || s === '..' || s.toLowerCase() === '.git') || /[\0\n\r\t]/.test(p);
  if (bad) throw new VipError(ErrorCode.CONFIG_REPO, `"${p}" is not a file path in the config repository (global/, NODENAME/ or default/ then a file name)`);
}

/** A revision named by the operator or a peer: never an option to git. */
function checkRev(rev: string): void {
  if (rev === '' || rev.startsWith('-') || /[\s\0]/.test(rev)) throw new VipError(ErrorCode.CONFIG_REPO, `"${rev}" is not a revision`);
}

/** "NAME <EMAIL>" into git's identity variables. */
function identity(author: string): { name: string; email: string } {
  const m = /^([^<>\n]*?)\s*<([^<>\n]*)>$/.exec(author.trim());
  if (m === null || m[1]!.trim() === '') throw new VipError(ErrorCode.CONFIG_REPO, `author "${author}" is not "NAME <EMAIL>"`);
  return { name: m[1]!.trim(), email: m[2]! };
}

/** The message git stores: trailing blanks gone, one final newline (the same on every member). */
function normalMessage(message: string): string {
  const m = message.replace(/\r\n/g, '\n').replace(/[ \t]+$/gm, '').replace(/\s+$/, '');
  if (m === '') throw new VipError(ErrorCode.CONFIG_REPO, 'a commit needs a message');
  return m + '\n';
}

export class GitConfigRepository implements ConfigRepository {
  /** One change of the refs, index or work tree at a time (commit, takeBundle, drift). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string) {}

  /** Opens an existing repository (a non-bare git repository whose work tree is `dir`). */
  static async open(dir: string): Promise<GitConfigRepository> {
    const abs = path.resolve(dir);
    if (!fs.existsSync(path.join(abs, '.git'))) throw new VipError(ErrorCode.CONFIG_REPO, `${abs} is not a config repository (no .git; make one with vipmta config init ${dir})`);
    const top = await gitText(['rev-parse', '--show-toplevel'], { cwd: abs });
    if (path.resolve(top) !== fs.realpathSync(abs)) throw new VipError(ErrorCode.CONFIG_REPO, `${abs} is inside the git repository ${top}, not one of its own`);
    const r = new GitConfigRepository(abs);
    fs.mkdirSync(r.stateDir, { recursive: true });
    return r;
  }

  /** Makes a new repository in `dir` (empty or absent), with `first` as its first commit when given. */
  static async init(dir: string, first?: ChangeSet): Promise<GitConfigRepository> {
    const abs = path.resolve(dir);
    fs.mkdirSync(abs, { recursive: true });
    if (fs.readdirSync(abs).length > 0) throw new VipError(ErrorCode.CONFIG_REPO, `${abs} is not empty`);
    await git(['init', '-q', '-b', 'main', abs], { cwd: abs });
    const r = await GitConfigRepository.open(abs);
    if (first !== undefined) await r.commit(first);
    return r;
  }

  /** Where vipmta keeps what is not history (resolved trees, the running revision): inside .git,
   *  so that it is never part of the work tree an operator reads. */
  get stateDir(): string {
    return path.join(this.dir, '.git', 'vipmta');
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async head(): Promise<string> {
    const r = await git(['rev-parse', '--verify', '-q', `${BRANCH}^{commit}`], { cwd: this.dir, okStatus: [1] });
    return r.status === 0 ? r.stdout.toString().trim() : '';
  }

  async has(rev: string): Promise<boolean> {
    checkRev(rev);
    const r = await git(['cat-file', '-e', `${rev}^{commit}`], { cwd: this.dir, okStatus: [1, 128] });
    return r.status === 0;
  }

  /** The full id of a revision ("HEAD~1", a short id); throws CONFIG_REPO when there is none. */
  async revParse(rev: string): Promise<string> {
    checkRev(rev);
    const r = await git(['rev-parse', '--verify', '-q', `${rev}^{commit}`], { cwd: this.dir, okStatus: [1, 128] });
    if (r.status !== 0) throw new VipError(ErrorCode.CONFIG_REPO, `no revision "${rev}" in the config repository`);
    return r.stdout.toString().trim();
  }

  commit(cs: ChangeSet): Promise<string> {
    return this.exclusive(async () => {
      const head = await this.head();
      if (cs.base !== head) throw stale(cs.base, head);
      const { name, email } = identity(cs.author);
      if (!Number.isInteger(cs.time) || cs.time < 0) throw new VipError(ErrorCode.CONFIG_REPO, `commit time ${cs.time} is not whole seconds since the epoch`);
      const tree = await this.tree(head, cs.files);
      const date = `${cs.time} +0000`;
      const env = { GIT_AUTHOR_NAME: name, GIT_AUTHOR_EMAIL: email, GIT_AUTHOR_DATE: date, GIT_COMMITTER_NAME: name, GIT_COMMITTER_EMAIL: email, GIT_COMMITTER_DATE: date };
      const rev = await gitText(['commit-tree', tree, ...(head === '' ? [] : ['-p', head])], { cwd: this.dir, env, input: normalMessage(cs.message) });
      // Compare-and-swap: a head moved since we read it (an operator's git commit) is a stale base.
      const moved = await git(['update-ref', '-m', 'vipmta config commit', BRANCH, rev, head === '' ? ZERO : head], { cwd: this.dir, okStatus: [1, 128] });
      if (moved.status !== 0) throw stale(cs.base, await this.head());
      await this.checkout(head, rev);
      return rev;
    });
  }

  async preview(cs: ChangeSet, node: string): Promise<ResolvedTree> {
    checkNodeName(node);
    const head = await this.head();
    if (cs.base !== head) throw stale(cs.base, head);
    const tree = await this.tree(head, cs.files);
    return this.resolveTree(tree, '', node, `tree-${tree}-${node}`);
  }

  async resolve(rev: string, node: string): Promise<ResolvedTree> {
    checkNodeName(node);
    const full = await this.revParse(rev);
    return this.resolveTree(full, full, node, `${full}-${node}`);
  }

  private async resolveTree(treeish: string, rev: string, node: string, name: string): Promise<ResolvedTree> {
    const entries = await resolvedEntries(this.dir, treeish, node);
    return writeResolved(this.dir, path.join(this.stateDir, 'resolved'), name, rev, entries);
  }

  /** The tree `files` make on `base` ('' : on nothing), written with a private index file so that
   *  neither the operator's index nor the work tree takes part. */
  private async tree(base: string, files: readonly FileChange[]): Promise<string> {
    const seen = new Set<string>();
    for (const f of files) {
      checkRepoPath(f.path);
      if (seen.has(f.path)) throw new VipError(ErrorCode.CONFIG_REPO, `${f.path} is twice in one change`);
      seen.add(f.path);
    }
    const index = this.tmpPath('index');
    const env = { GIT_INDEX_FILE: index };
    try {
      if (base !== '') await git(['read-tree', base], { cwd: this.dir, env });
      const lines: string[] = [];
      for (const f of files) {
        if (f.content === null) {
          lines.push(`0 ${ZERO}\t${f.path}`);
        } else {
          const oid = await gitText(['hash-object', '-w', '--stdin'], { cwd: this.dir, input: f.content });
          lines.push(`100644 ${oid}\t${f.path}`);
        }
      }
      if (lines.length > 0) await git(['update-index', '--index-info'], { cwd: this.dir, env, input: lines.join('\n') + '\n' });
      return await gitText(['write-tree'], { cwd: this.dir, env });
    } finally {
      fs.rmSync(index, { force: true });
    }
  }

  private tmpPath(what: string): string {
    const dir = path.join(this.stateDir, 'tmp');
    fs.mkdirSync(dir, { recursive: true });
    return path.join(dir, `${what}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /**
   * Brings the index and work tree from `from` to `to` (a two-tree merge: the operator's edits to
   * files the revision does not change stay, and show as drift). When an edit is in the way the
   * work tree is left as it was: the revision stands, and drift() shows the difference.
   */
  private async checkout(from: string, to: string): Promise<void> {
    const args = from === '' ? ['read-tree', '-m', '-u', to] : ['read-tree', '-m', '-u', from, to];
    await git(args, { cwd: this.dir }).catch(() => undefined);
  }

  async log(opts?: { max?: number; path?: string }): Promise<RevisionInfo[]> {
    if ((await this.head()) === '') return [];
    const args = ['log', '-z', '--name-only', '--format=%x1e%H%x1f%an <%ae>%x1f%at%x1f%B%x1f'];
    if (opts?.max !== undefined) args.push(`--max-count=${Math.max(1, Math.floor(opts.max))}`);
    args.push(BRANCH, '--');
    if (opts?.path !== undefined) args.push(opts.path);
    const out = (await git(args, { cwd: this.dir })).stdout.toString('utf8');
    return out.split('\x1e').filter((s) => s !== '').map((rec) => {
      const [rev, author, time, message, rest] = rec.split('\x1f') as [string, string, string, string, string | undefined];
      return { rev, author, time: Number(time), message: message.replace(/\n+$/, ''), files: (rest ?? '').split(/[\0\n]/).filter((f) => f !== '') };
    });
  }

  async diff(rev: string, to?: string): Promise<string> {
    const a = await this.revParse(rev);
    if (to === undefined) return (await git(['diff-tree', '-p', '--root', '--no-commit-id', a], { cwd: this.dir })).stdout.toString('utf8');
    const b = await this.revParse(to);
    return (await git(['diff', a, b, '--'], { cwd: this.dir })).stdout.toString('utf8');
  }

  async show(rev: string, file: string): Promise<Buffer> {
    const full = await this.revParse(rev);
    const r = await git(['cat-file', 'blob', `${full}:${file}`], { cwd: this.dir, okStatus: [1, 128] });
    if (r.status !== 0) throw new VipError(ErrorCode.CONFIG_REPO, `no file ${file} at ${full.slice(0, 12)}`);
    return r.stdout;
  }

  /** Path to blob id of every file at a revision ('' : none). */
  private async files(rev: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (rev === '') return out;
    const text = (await git(['ls-tree', '-r', '-z', '--full-tree', rev], { cwd: this.dir })).stdout.toString('utf8');
    for (const line of text.split('\0')) {
      const m = /^\d+ blob ([0-9a-f]+)\t(.*)$/s.exec(line);
      if (m !== null) out.set(m[2]!, m[1]!);
    }
    return out;
  }

  async revertChanges(rev: string, author: string, time: number): Promise<ChangeSet> {
    const full = await this.revParse(rev);
    const parents = (await gitText(['rev-list', '--parents', '-n', '1', full], { cwd: this.dir })).split(' ').slice(1);
    const parent = parents[0] ?? '';
    const changed = (await git(['diff-tree', '-r', '-z', '--name-only', '--root', '--no-commit-id', full], { cwd: this.dir })).stdout.toString('utf8').split('\0').filter((p) => p !== '');
    const head = await this.head();
    const [atHead, atRev, atParent] = await Promise.all([this.files(head), this.files(full), this.files(parent)]);
    const files: FileChange[] = [];
    for (const p of changed) {
      if (atHead.get(p) !== atRev.get(p)) {
        throw new VipError(ErrorCode.CONFIG_REPO, `cannot revert ${full.slice(0, 12)}: ${p} changed since; revert it by hand`);
      }
      const oid = atParent.get(p);
      files.push({ path: p, content: oid === undefined ? null : (await git(['cat-file', 'blob', oid], { cwd: this.dir })).stdout });
    }
    const subject = (await gitText(['log', '-1', '--format=%s', full], { cwd: this.dir }));
    return { base: head, message: `Revert "${subject}"\n\nThis reverts commit ${full}.`, author, time, files };
  }

  async bundle(since: string): Promise<Buffer> {
    const head = await this.head();
    if (head === '' || since === head) return Buffer.alloc(0); // git refuses an empty bundle
    const from = since === '' ? [] : [`^${await this.revParse(since)}`];
    const file = this.tmpPath('bundle');
    try {
      await git(['bundle', 'create', '-q', file, BRANCH, ...from], { cwd: this.dir });
      return fs.readFileSync(file);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  takeBundle(bundle: Buffer, expectHead: string): Promise<void> {
    return this.exclusive(async () => {
      const head = await this.head();
      if (head === expectHead) return;
      if (bundle.length === 0) throw new VipError(ErrorCode.CONFIG_REPO, `an empty bundle does not bring ${head || 'an empty repository'} to ${expectHead}`);
      const file = this.tmpPath('bundle');
      const incoming = `refs/vipmta/incoming-${randomBytes(4).toString('hex')}`;
      try {
        fs.writeFileSync(file, bundle);
        await git(['bundle', 'verify', '-q', file], { cwd: this.dir });
        await git(['fetch', '-q', '--no-tags', '--no-write-fetch-head', file, `+${BRANCH}:${incoming}`], { cwd: this.dir });
        const got = await gitText(['rev-parse', '--verify', incoming], { cwd: this.dir });
        if (got !== expectHead) throw new VipError(ErrorCode.CONFIG_REPO, `the bundle ends at ${got}, not at ${expectHead}`);
        if (head !== '') {
          const ff = await git(['merge-base', '--is-ancestor', head, got], { cwd: this.dir, okStatus: [1] });
          if (ff.status !== 0) throw new VipError(ErrorCode.CONFIG_REPO, `the bundle's ${got} does not follow this repository's head ${head}: not a fast-forward`);
        }
        const moved = await git(['update-ref', '-m', 'vipmta config catch-up', BRANCH, got, head === '' ? ZERO : head], { cwd: this.dir, okStatus: [1, 128] });
        if (moved.status !== 0) throw stale(head, await this.head());
        await this.checkout(head, got);
      } finally {
        fs.rmSync(file, { force: true });
        await git(['update-ref', '-d', incoming], { cwd: this.dir, okStatus: [1, 128] });
      }
    });
  }

  drift(): Promise<string[]> {
    return this.exclusive(async () => {
      const out = (await git(['status', '--porcelain', '-z', '--untracked-files=all'], { cwd: this.dir })).stdout.toString('utf8').split('\0');
      const paths: string[] = [];
      for (let i = 0; i < out.length; i++) {
        const e = out[i]!;
        if (e.length < 4) continue;
        paths.push(e.slice(3));
        if (e[0] === 'R' || e[0] === 'C') i++; // the entry after a rename is its old path
      }
      return [...new Set(paths)].sort();
    });
  }

  /** The revision this node runs, persisted across restarts ('' : none recorded). */
  readRunning(): string {
    try {
      return fs.readFileSync(path.join(this.stateDir, 'running'), 'utf8').trim();
    } catch {
      return '';
    }
  }

  /** Persists the revision this node runs: written, synced, then renamed over the old one. */
  writeRunning(rev: string): void {
    const file = path.join(this.stateDir, 'running');
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeSync(fd, rev + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    const dfd = fs.openSync(this.stateDir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  }
}

function stale(base: string, head: string): VipError {
  const short = (r: string): string => (r === '' ? 'an empty repository' : r.slice(0, 12));
  return new VipError(ErrorCode.CONFIG_REPO_STALE, `the change was made against ${short(base)} but the head is ${short(head)}; update the working copy (git pull) and commit again`);
}
