// Loads a resolved tree with the config loader and names every error and warning by the file the
// operator edits in the repository ("default/vipmta.conf:12:5: ..."), not the resolved copy.
// Main thread; synchronous file reads only (as loadConfigFile).
import path from 'node:path';
import { loadConfigFile, loadConfigText, type ConfigError, type LoadResult } from '../index.js';
import { parseFile, type ParseContext } from '../parser.js';
import type { ResolvedTree } from './types.js';

export interface LoadResolvedOptions {
  /** Relative paths in the config (Spool Directory, sockets) resolve against it, as for a file. */
  readonly cwd?: string;
  /** The node the tree is resolved for: its Nodename when the config sets none, and an error when
   *  the config sets another. */
  readonly node?: string;
}

/** Loads `tree.entry` and what it includes. */
export function loadResolved(tree: ResolvedTree, opts: LoadResolvedOptions = {}): LoadResult {
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  if (![...tree.origin.keys()].includes(tree.entry)) {
    return { ok: false, errors: [{ file: '<repository>', line: 1, column: 1, message: `no vipmta.conf in global/${opts.node === undefined ? '' : `, ${opts.node}/`} or default/ at ${tree.rev === '' ? 'the proposed change' : tree.rev.slice(0, 12)}` }] };
  }
  const named = opts.node !== undefined ? nodenameSet(tree.entry, cwd) : null;
  let result: LoadResult;
  if (opts.node !== undefined && named === null) {
    // The config names no node: this node's name is its Nodename (an include keeps every error's
    // file and line as they are).
    const quoted = tree.entry.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
    result = loadConfigText(`Nodename = "${opts.node}"\ninclude "${quoted}"\n`, `<repository, node ${opts.node}>`, { cwd, baseDir: tree.dir });
  } else {
    result = loadConfigFile(tree.entry, { cwd });
  }
  const map = (e: ConfigError): ConfigError => ({ ...e, file: repoFile(tree, cwd, e.file) });
  if (!result.ok) return { ok: false, errors: result.errors.map(map) };
  if (opts.node !== undefined && result.config.global.Nodename !== opts.node) {
    const where = named ?? { file: tree.entry, line: 1, column: 1 };
    return { ok: false, errors: [map({ ...where, message: `Nodename "${result.config.global.Nodename}" differs from this node's name "${opts.node}" (the repository's ${opts.node}/ directory it runs); remove it or start with --nodename ${result.config.global.Nodename}` })] };
  }
  return { ok: true, config: result.config, warnings: result.warnings.map(map) };
}

/** A file as the config loader names it (relative to cwd, or absolute) to its repository path;
 *  unchanged when it is not in the tree (the shipped shaping rules). */
export function repoFile(tree: ResolvedTree, cwd: string, file: string): string {
  return tree.origin.get(path.resolve(cwd, file)) ?? file;
}

/** Where the config sets Nodename (top level or in Cluster), read leniently; null when it does not. */
function nodenameSet(entry: string, cwd: string): ConfigError | null {
  const ctx: ParseContext = { errors: [], files: [], cwd, stack: [] };
  for (const n of parseFile(entry, null, ctx)) {
    if (n.type === 'option' && n.keyword.toLowerCase() === 'nodename') return { ...n.where, message: '' };
    if (n.type === 'stanza' && n.keyword.toLowerCase() === 'cluster') {
      for (const c of n.body) if (c.type === 'option' && c.keyword.toLowerCase() === 'nodename') return { ...c.where, message: '' };
    }
  }
  return null;
}
