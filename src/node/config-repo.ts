// A node started from a config repository (`vipmta start --repo DIR`): opening it at the revision
// the node ran last, the node's side of a change (check it, switch to it through the reload path,
// persist the revision it runs), and the LocalCoordinator that decides changes on a node without a
// Cluster stanza. Main thread; awaits `git` children, config file reads and the reload.
import fs from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import { formatConfigError, type Config, type LoadResult, type SourceLocation } from '../config/index.js';
import { loadResolved, repoFile } from '../config/repo/load.js';
import { GitConfigRepository } from '../config/repo/repository.js';
import type { ChangeSet, ConfigCoordinator, ConfigNodeHost, MemberConfigState, ProposeResult, ResolvedTree } from '../config/repo/types.js';
import { ErrorCode, VipError, errorCode } from '../errors.js';
import { canonicalAddress } from '../net/address.js';
import { listenAddresses } from './listen-check.js';
import type { ReloadResult } from './reload.js';

/** What the node looks at when it checks a change: tests give fakes. */
export interface HostFacts {
  /** Names of the network interfaces on this host (/sys/class/net). */
  interfaces(): ReadonlySet<string>;
  /** Canonical addresses on this host's interfaces. */
  addresses(): ReadonlySet<string>;
}

export const systemFacts: HostFacts = {
  interfaces: () => {
    try {
      return new Set(fs.readdirSync('/sys/class/net'));
    } catch {
      return new Set(Object.keys(os.networkInterfaces()));
    }
  },
  addresses: () => new Set(Object.values(os.networkInterfaces()).flatMap((l) => (l ?? []).map((a) => canonicalAddress(a.address) ?? a.address))),
};

/** The revision a node starts on, resolved and loaded. */
export interface RepoBoot {
  readonly repo: GitConfigRepository;
  readonly node: string;
  readonly rev: string;
  readonly tree: ResolvedTree;
  readonly result: LoadResult;
}

/**
 * Opens the repository at the revision persisted in .git/vipmta/running (the one this node ran
 * last, even when the head moved on while it was down or with Config_Auto_Apply = false), or the
 * head when none is; resolves it for `node` and loads it.
 */
export async function bootFromRepository(dir: string, node: string, cwd: string): Promise<RepoBoot> {
  const repo = await GitConfigRepository.open(dir);
  let rev = repo.readRunning();
  if (rev !== '' && !(await repo.has(rev))) throw new VipError(ErrorCode.CONFIG_REPO, `the revision this node ran (${rev}, in ${repo.stateDir}/running) is not in the repository`);
  if (rev === '') rev = await repo.head();
  if (rev === '') throw new VipError(ErrorCode.CONFIG_REPO, `${repo.dir} has no revision yet; make one with vipmta config init`);
  const tree = await repo.resolve(rev, node);
  return { repo, node, rev: tree.rev, tree, result: loadResolved(tree, { cwd, node }) };
}

/** What the host needs from the daemon. */
export interface NodeConfigDeps {
  readonly boot: RepoBoot;
  readonly cwd: string;
  /** The running config (its Config_Auto_Apply). */
  config(): Config;
  /** The daemon's reload path (src/node/reload.ts) with this loader. */
  reload(load: () => LoadResult): Promise<ReloadResult>;
  readonly logger: Logger;
  readonly facts?: HostFacts;
}

/** The node's side of the config repository: ConfigNodeHost, plus what the daemon and console use. */
export class NodeConfigHost implements ConfigNodeHost {
  readonly repo: GitConfigRepository;
  readonly node: string;
  private tree: ResolvedTree;
  private coord: ConfigCoordinator;
  /** Switches one at a time: a second waits for the first's reload. */
  private switching: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: NodeConfigDeps) {
    this.repo = d.boot.repo;
    this.node = d.boot.node;
    this.tree = d.boot.tree;
    this.coord = new LocalCoordinator(this, d.logger);
  }

  /** Called once the node runs its start revision: from now on a restart starts there. */
  started(): void {
    if (this.repo.readRunning() !== this.tree.rev) this.repo.writeRunning(this.tree.rev);
  }

  /** The cluster's config group replaces the LocalCoordinator when the node has a Cluster stanza. */
  setCoordinator(c: ConfigCoordinator): void {
    this.coord = c;
  }

  coordinator(): ConfigCoordinator {
    return this.coord;
  }

  /** Loads the running revision's tree again (`config reload`, SIGHUP). */
  loadRunning(): LoadResult {
    return loadResolved(this.tree, { cwd: this.d.cwd, node: this.node });
  }

  running(): string {
    return this.tree.rev;
  }

  /** Whether the running config has a Cluster stanza (the LocalCoordinator then refuses). */
  clustered(): boolean {
    return this.d.config().cluster !== null;
  }

  autoApply(): boolean {
    return this.d.config().global.Config_Auto_Apply;
  }

  drift(): Promise<string[]> {
    return this.repo.drift();
  }

  async state(): Promise<MemberConfigState> {
    return { node: this.node, head: await this.repo.head(), running: this.running(), autoApply: this.autoApply(), drift: await this.drift() };
  }

  /**
   * The config's own errors and what only this node knows, each "repo/path:line:column: message".
   * Throws (VipError CONFIG_REPO_STALE, CONFIG_REPO) when the ChangeSet cannot be applied here at
   * all: a base that is not the head, a path outside the repository's layout.
   */
  async check(cs: ChangeSet): Promise<string[]> {
    const tree = await this.repo.preview(cs, this.node);
    const r = loadResolved(tree, { cwd: this.d.cwd, node: this.node });
    if (!r.ok) return r.errors.map(formatConfigError);
    return localErrors(r.config, (w) => ({ ...w, file: repoFile(tree, this.d.cwd, w.file) }), this.d.facts ?? systemFacts);
  }

  switchTo(rev: string): Promise<{ ok: boolean; message: string }> {
    const run = this.switching.then(async () => {
      let tree: ResolvedTree;
      try {
        tree = await this.repo.resolve(rev, this.node);
      } catch (err) {
        return { ok: false, message: (err as Error).message };
      }
      const r = await this.d.reload(() => loadResolved(tree, { cwd: this.d.cwd, node: this.node }));
      if (!r.ok) return { ok: false, message: r.message };
      this.tree = tree;
      this.repo.writeRunning(tree.rev);
      this.d.logger.info({ rev: tree.rev }, 'running config revision');
      return { ok: true, message: `running ${tree.rev}\n${r.message}` };
    });
    this.switching = run.catch(() => undefined);
    return run;
  }
}

/**
 * What only this node can tell about a config that loads: every Interface it names exists here, and
 * every listening address is on this host or a DuraVIP (bound with IP_FREEBIND). Checked against
 * the host's interfaces and addresses, without binding: a check must not disturb the running node.
 */
export function localErrors(cfg: Config, locate: (w: SourceLocation) => SourceLocation, facts: HostFacts): string[] {
  const out: string[] = [];
  const say = (w: SourceLocation, message: string): void => {
    out.push(formatConfigError({ ...locate(w), message }));
  };
  const ifs = facts.interfaces();
  for (const t of cfg.cluster?.topologies ?? []) {
    const name = t.options.Interface;
    if (name !== undefined && !ifs.has(name)) say(t.where, `Topology "${t.cidr}" names Interface "${name}", which this node (${cfg.global.Nodename}) does not have`);
  }
  const addrs = facts.addresses();
  const wild = new Set(['0.0.0.0', '::']);
  const byName = new Map([...cfg.esmtpListeners, ...cfg.ecclusterListeners].map((l) => [`${l.name}`, l.where]));
  for (const a of listenAddresses(cfg)) {
    const c = canonicalAddress(a.host) ?? a.host;
    if (a.freeBind || wild.has(c) || c.startsWith('127.') || addrs.has(c)) continue;
    say(byName.get(a.name) ?? { file: '<repository>', line: 1, column: 1 }, `${a.kind} Listen "${a.name}": ${a.host} is not an address of this node (${cfg.global.Nodename}) and not a DuraVIP`);
  }
  return out;
}

/** Decides changes on a node without a Cluster stanza: it alone checks, commits and switches. */
export class LocalCoordinator implements ConfigCoordinator {
  constructor(private readonly host: NodeConfigHost, private readonly logger: Logger) {}

  async propose(cs: ChangeSet): Promise<ProposeResult> {
    // A member that committed alone would fork the cluster's history: with a Cluster stanza only
    // the cluster's config group (setCoordinator) may decide.
    if (this.host.clustered()) {
      return { ok: false, message: `refused: ${this.host.node} runs with a Cluster stanza, so changes are agreed by the cluster's config group, which is not running on it`, rejected: [] };
    }
    let errors: string[];
    try {
      errors = await this.host.check(cs);
    } catch (err) {
      return refused(err);
    }
    if (errors.length > 0) {
      return { ok: false, message: `refused: ${this.host.node} rejected the change; nothing was committed`, rejected: [{ node: this.host.node, errors }] };
    }
    let rev: string;
    try {
      rev = await this.host.repo.commit(cs);
    } catch (err) {
      return refused(err);
    }
    this.logger.info({ rev, author: cs.author, files: cs.files.map((f) => f.path) }, 'config revision committed');
    if (!this.host.autoApply()) return { ok: true, rev, message: `committed ${rev}; Config_Auto_Apply = false on ${this.host.node}: run "config apply ${rev}" to run it` };
    const s = await this.host.switchTo(rev);
    return { ok: true, rev, message: s.ok ? `committed ${rev}; ${this.host.node} runs it` : `committed ${rev}; ${this.host.node} could not switch to it and keeps ${this.host.running()}:\n${s.message}` };
  }

  async status(): Promise<MemberConfigState[]> {
    return [await this.host.state()];
  }
}

function refused(err: unknown): ProposeResult {
  const code = errorCode(err);
  if (code === ErrorCode.CONFIG_REPO_STALE || code === ErrorCode.CONFIG_REPO) return { ok: false, message: `refused: ${(err as Error).message}`, rejected: [] };
  throw err;
}
