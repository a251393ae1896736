// The replicated config repository's contract (issue 16): what the local git repository offers
// (src/config/repo/repository.ts implements it) and what the cluster's config group exchanges
// (src/cluster/config-*.ts). Types only. Main thread.
//
// The trick that gives one history without a server: a commit is made from a ChangeSet that every
// member receives in corosync's agreed order, with the author, time and message fixed by the
// proposer. Git's object ids depend only on the tree, the parent, the author, the committer, the
// dates and the message, so every member that applies the same ChangeSet on the same head gets the
// same revision id, and `git log` is the same everywhere. A member that missed revisions fetches
// them as a git bundle from a member over the cluster link before it takes part.

/** One file of a change, by its path in the repository ("global/vipmta.conf", "n1/listeners.conf"). */
export interface FileChange {
  readonly path: string;
  /** The new content; null deletes the file. */
  readonly content: Buffer | null;
}

/** A proposed commit: everything a member needs to make the same revision as every other member. */
export interface ChangeSet {
  /** The revision the change was made against ('' for the first commit of an empty repository).
   *  A member whose head differs refuses it (ErrorCode.CONFIG_REPO_STALE). */
  readonly base: string;
  readonly message: string;
  /** Author and committer, "NAME <EMAIL>" (the CLI's user at the node it ran on). */
  readonly author: string;
  /** Author and committer date, whole seconds since the epoch, chosen by the proposer. */
  readonly time: number;
  readonly files: readonly FileChange[];
}

/** One revision in `config log`. */
export interface RevisionInfo {
  readonly rev: string;
  readonly author: string;
  readonly time: number;
  readonly message: string;
  /** Paths the revision changed. */
  readonly files: readonly string[];
}

/**
 * A revision resolved for one node: the files of `global/`, `NODENAME/` and `default/`, the first
 * found in that order for each relative path, written to a directory of their own, so that the
 * config loader (and its `include`) reads them as one tree.
 */
export interface ResolvedTree {
  /** The revision ('' when the tree was made from a ChangeSet that is not committed yet). */
  readonly rev: string;
  /** The directory holding the resolved files. */
  readonly dir: string;
  /** The entry file in it (dir + "/vipmta.conf"). */
  readonly entry: string;
  /** Each resolved file (absolute path under dir) to its path in the repository ("default/vipmta.conf"),
   *  so that errors name the file the operator edits. */
  readonly origin: ReadonlyMap<string, string>;
}

/** The local repository. Every method runs `git` (Debian's package) as a child process. */
export interface ConfigRepository {
  /** The repository's directory (a git work tree the operator can read with git). */
  readonly dir: string;
  /** The newest revision, '' when there is none. */
  head(): Promise<string>;
  /** Whether the revision is in this repository. */
  has(rev: string): Promise<boolean>;
  /** Makes the revision of a ChangeSet (deterministic: same id on every member); returns its id.
   *  Throws VipError CONFIG_REPO_STALE when `cs.base` is not the head. */
  commit(cs: ChangeSet): Promise<string>;
  /** The tree the ChangeSet would make, resolved for `node`, without committing (for checking). */
  preview(cs: ChangeSet, node: string): Promise<ResolvedTree>;
  /** A committed revision resolved for `node`. */
  resolve(rev: string, node: string): Promise<ResolvedTree>;
  /** Newest first. */
  log(opts?: { max?: number; path?: string }): Promise<RevisionInfo[]>;
  /** Unified diff: of `rev` against its parent, or of the whole repository between two revisions. */
  diff(rev: string, to?: string): Promise<string>;
  /** A file's content at a revision ("REV:PATH"). */
  show(rev: string, path: string): Promise<Buffer>;
  /** A ChangeSet on the head that undoes `rev` (as `git revert` would); throws when it conflicts. */
  revertChanges(rev: string, author: string, time: number): Promise<ChangeSet>;
  /** A git bundle of every revision after `since` ('' : all of them) up to the head. */
  bundle(since: string): Promise<Buffer>;
  /** Takes a bundle's revisions; afterwards `head()` is `expectHead`, or it throws and changes nothing. */
  takeBundle(bundle: Buffer, expectHead: string): Promise<void>;
  /** Paths whose files in the work tree differ from the head (an operator's local edits: drift). */
  drift(): Promise<string[]>;
}

/** What each member of the cluster says about its configuration (the config group's sync). */
export interface MemberConfigState {
  readonly node: string;
  /** Its repository's head. */
  readonly head: string;
  /** The revision it runs ('' : it runs a local file, not the repository). */
  readonly running: string;
  readonly autoApply: boolean;
  /** Paths that differ locally from the head (drift). */
  readonly drift: readonly string[];
}

/** What the node offers whoever coordinates a change (the node alone, or the cluster's config group). */
export interface ConfigNodeHost {
  readonly repo: ConfigRepository;
  /** This node's name (the `NODENAME/` directory it resolves). */
  readonly node: string;
  /** What this node would say of the ChangeSet applied on its head: the config's own errors
   *  (file:line:column with repository paths, "n3/vipmta.conf:4:7: ...") and what only this node
   *  can know (interfaces, local addresses, files it includes). [] : it would run it.
   *  Throws VipError CONFIG_REPO_STALE when `cs.base` is not this node's head, CONFIG_REPO when a
   *  path is outside the layout (src/node/config-repo.ts NodeConfigHost). */
  check(cs: ChangeSet): Promise<string[]>;
  /** Runs a committed revision: a reload from its resolved tree (src/node/reload.ts, so a bad one
   *  keeps the running config); on success the revision is persisted as the one this node runs. */
  switchTo(rev: string): Promise<{ ok: boolean; message: string }>;
  /** The revision this node runs ('' : none, it runs a local file). */
  running(): string;
  /** Auto_Apply: whether a new revision is switched to as soon as it is agreed. */
  autoApply(): boolean;
  /** Paths that differ locally from the head. */
  drift(): Promise<string[]>;
}

/** The answer to `config commit` / `config revert`. */
export type ProposeResult =
  | { readonly ok: true; readonly rev: string; readonly message: string }
  | { readonly ok: false; readonly message: string; readonly rejected: readonly { readonly node: string; readonly errors: readonly string[] }[] };

/** Who decides a change: LocalCoordinator (src/node/config-repo.ts) on a node without a Cluster
 *  stanza; the cluster's config group (src/cluster/config-group.ts) otherwise. */
export interface ConfigCoordinator {
  /** Checks the ChangeSet on every member, commits it on every member and switches those with
   *  Auto_Apply, or refuses it (no quorum, a stale base, a member's errors) and changes nothing. */
  propose(cs: ChangeSet): Promise<ProposeResult>;
  /** Every member's state (this node's alone without a cluster), for `config status`. */
  status(): Promise<MemberConfigState[]>;
}
