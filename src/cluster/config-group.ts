// The cluster's config coordinator (issue 16), CPG group "vipmta-config": a commit is a PROPOSE
// decided by every member from the same agreed messages (config-round.ts): each voter checks and
// VOTEs, then all commit the same revision and switch inside a DuraVIP reload round (one election).
// Members say their STATE; one behind fetches a git bundle (config-link.ts) before it takes an address.
// Main thread; nothing blocks (corosync sends are queued to the addon's IO thread, git runs as a child).

import { execFile } from 'node:child_process';
import type { Logger } from 'pino';
import type { ChangeSet, ConfigCoordinator, ConfigNodeHost, MemberConfigState, ProposeResult } from '../config/repo/types.js';
import type { CorosyncGroup, CpgConfChange, QuorumState, TotemView } from '../native/index.js';
import { catchUp, ConfigRound, proposalId, type RoundEnd } from './config-round.js';
import { decodeConfigMessage, encodeConfigMessage, MAX_MESSAGE_BYTES, type ConfigMessage, type StateBody } from './config-wire.js';
import { leftWhy, listen, Refusals, ReplayGuard, unrefTimer } from './group-inbox.js';
import { GroupLink } from './group-link.js';
import { memberKey } from './view.js';

export const CONFIG_GROUP = 'vipmta-config';
/** A proposal not decided within this long is aborted by its proposer (multicast: the end is agreed). */
export const PROPOSE_TIMEOUT_MS = 30_000;
/** A catch-up that failed on every source is tried again after this long. */
export const FETCH_RETRY_MS = 2000;

export interface ConfigGroupOptions {
  readonly host: ConfigNodeHost;
  readonly logger: Logger;
  /** The HMAC key (configKey of Cluster_Secret); null: no secret, the group refuses to work. */
  readonly key: () => Buffer | null;
  /** Fetches a bundle of the revisions after `since` from the member named `node` (config-link.ts
   *  over its ECCluster_Listener). */
  readonly fetch: (node: string, since: string) => Promise<{ head: string; bundle: Buffer }>;
  /** The node's config has caught up with the cluster's (true) or is behind (false, why): the
   *  DuraVIP manager makes it a candidate for no address while it is behind. */
  readonly gate: (open: boolean, why: string) => void;
  /** The DuraVIP reload round: opened by the proposer before its PROPOSE, and each member says
   *  done once its part of the change is over (switched, or nothing to do). */
  readonly reloadRound?: () => { open(): void; done(): void } | null;
  /** Tests: a fake join, this process's pid, timers, the history's height. */
  readonly join?: (name: string) => Promise<CorosyncGroup>;
  readonly pid?: number;
  readonly setTimer?: (fn: () => void, ms: number) => () => void;
  readonly height?: (dir: string) => Promise<number>;
  readonly proposeTimeoutMs?: number;
}

interface Pending {
  readonly resolve: (r: ProposeResult) => void;
  cancel: () => void;
}

/** Commits in the repository's history (`git rev-list --count HEAD`; 0 when it has none). */
export function gitHeight(dir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('git', ['-C', dir, 'rev-list', '--count', 'HEAD'], (err, stdout, stderr) => {
      if (err === null) resolve(Number(stdout.trim()));
      else if (/unknown revision|ambiguous argument 'HEAD'|does not have any commits/.test(stderr)) resolve(0);
      else reject(new Error(`git rev-list: ${stderr.trim() || err.message}`));
    });
  });
}

export class ConfigGroup implements ConfigCoordinator {
  private readonly link: GroupLink;
  private group: CorosyncGroup | null = null;
  private round = new ConfigRound();
  private seq = 0;
  /** A message is taken once: its sequence number must grow for its sender. */
  private readonly replays = new ReplayGuard();
  private readonly pending = new Map<string, Pending>();
  private readonly pid: number;
  private readonly setTimer: (fn: () => void, ms: number) => () => void;
  private ring: number[] | null = null;
  private lastQuorate: boolean | null = null;
  /** STATE sends, one after another (each reads the repository): a later one never overtakes. */
  private stateChain: Promise<void> = Promise.resolve();
  private fetching = false;
  private caughtUp = false;
  /** The head this node last switched to on its own (after a restart or a failed switch): once each. */
  private selfSwitched = '';
  /** What the gate was last told (null: nothing yet). */
  private gateOpen: boolean | null = null;
  private readonly refusals: Refusals;

  constructor(private readonly o: ConfigGroupOptions) {
    this.pid = o.pid ?? process.pid;
    this.setTimer = o.setTimer ?? unrefTimer;
    this.refusals = new Refusals(o.logger, 'config group: ignored a message that does not authenticate or decode');
    this.link = new GroupLink({
      name: CONFIG_GROUP, logger: o.logger, prefix: 'config group: ', without: 'config commits are refused and this node takes no address',
      joined: (g) => this.joined(g), lost: () => this.lost(),
      ...(o.join ? { join: o.join } : {}),
    });
  }

  start(): void {
    if (this.o.key() === null) {
      // Without the secret nothing here authenticates: the group cannot decide, and holding the
      // node back from every address for it would cost more than a config that may be behind.
      this.o.logger.error('config group: no Cluster_Secret: commits are refused on this node and it does not compare its config with the cluster');
    } else {
      // Closed until the first complete view says this node is not behind.
      this.setGate(false, 'its config repository has not compared its head with the cluster yet');
    }
    this.link.start();
  }

  stop(): void {
    this.link.stop();
    this.group = null;
    this.endAll('this node left the config group; the change may or may not have been committed: see config log');
  }

  private get self(): string | null {
    return this.group === null ? null : memberKey(this.group.localNodeId, this.pid);
  }

  // --- ConfigCoordinator -----------------------------------------------------------------------

  propose(cs: ChangeSet): Promise<ProposeResult> {
    const refuse = (message: string): Promise<ProposeResult> => Promise.resolve({ ok: false, message, rejected: [] });
    const g = this.group;
    const key = this.o.key();
    if (g === null || this.self === null) return refuse(`refused: not in the config group (corosync: ${this.link.joinError ?? 'not joined yet'})`);
    if (key === null) return refuse('refused: a cluster commit needs Cluster_Secret (it authenticates the config group)');
    if (!this.caughtUp) return refuse('refused: this node is catching up with the cluster\'s config repository; commit from another node or wait');
    if (!this.quorate()) return refuse('refused: this partition has no quorum; a commit is accepted only where a majority of the cluster is');
    const seq = ++this.seq;
    const id = proposalId(this.self, seq);
    let msg: Buffer;
    try {
      msg = encodeConfigMessage(key, { type: 'propose', from: this.self, node: this.o.host.node, seq, id, cs });
    } catch (err) {
      return refuse(`refused: ${(err as Error).message}`);
    }
    return new Promise<ProposeResult>((resolve) => {
      const p: Pending = { resolve, cancel: () => undefined };
      this.pending.set(id, p);
      const timeout = this.o.proposeTimeoutMs ?? PROPOSE_TIMEOUT_MS;
      // The abort is multicast: every member ends the proposal at the same point of the order.
      p.cancel = this.setTimer(() => this.send({ type: 'abort', id, why: `no decision within ${timeout / 1000} s` }), timeout);
      // Before the PROPOSE: the members' switches close the round, and the cluster elects once.
      this.o.reloadRound?.()?.open();
      try {
        g.send(msg);
      } catch (err) {
        this.pending.delete(id);
        p.cancel();
        resolve({ ok: false, message: `refused: cannot multicast the change: ${(err as Error).message}`, rejected: [] });
      }
    });
  }

  async status(): Promise<MemberConfigState[]> {
    const states = this.round.allStates();
    const out: MemberConfigState[] = states.map(({ node, head, running, autoApply, drift }) => ({ node, head, running, autoApply, drift }));
    if (!states.some((s) => s.node === this.o.host.node)) {
      const h = this.o.host;
      out.push({ node: h.node, head: await h.repo.head(), running: h.running(), autoApply: h.autoApply(), drift: await h.drift() });
      out.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    }
    return out;
  }

  // --- corosync ----------------------------------------------------------------------------------

  private joined(g: CorosyncGroup): void {
    this.group = g;
    listen(g, (c) => this.onConfchg(g, c), (from, data) => this.onMessage(g, from, data));
    g.on('quorum', (_q: QuorumState) => this.quorumMaybeChanged());
    g.on('totem', (t: TotemView) => {
      this.ring = t.members;
      this.quorumMaybeChanged();
    });
    this.o.logger.info({ group: CONFIG_GROUP }, 'config group: joined');
  }

  private lost(): void {
    this.group = null;
    this.ring = null;
    this.round = new ConfigRound();
    this.endAll('this node lost corosync before the change was decided; it may or may not have been committed: see config log');
  }

  /** Quorate for the current ring (a cut-off node may see its new view before its quorum news). */
  private quorate(): boolean {
    const g = this.group;
    if (g === null || !g.quorum.quorate) return false;
    if (g.quorumType === 0 || this.ring === null) return true;
    const q = [...g.quorum.members].sort((a, b) => a - b).join(',');
    return q === [...this.ring].sort((a, b) => a - b).join(',');
  }

  private quorumMaybeChanged(): void {
    if (this.quorate() !== this.lastQuorate) this.sendState();
  }

  private onConfchg(g: CorosyncGroup, c: CpgConfChange): void {
    if (this.group !== g) return;
    const left = c.left.map((l) => ({ key: memberKey(l.nodeId, l.pid), why: leftWhy(l.reason) }));
    // A node coming back from a minority (or alone) may have missed commits: it takes no address
    // until the new view says it has the cluster's head. One that was in the quorate view keeps its
    // gate, or every view change would move addresses.
    const wasQuorate = this.round.agreed().quorate;
    const end = this.round.view(c.members.map((m) => memberKey(m.nodeId, m.pid)), c.joined.map((m) => memberKey(m.nodeId, m.pid)), left);
    if (end !== null) this.ended(end);
    if (!wasQuorate) this.setGate(false, 'it joined a new view: comparing its config repository\'s head with the cluster\'s');
    this.updateGate();
    this.sendState();
  }

  private send(m: DistributiveOmit<ConfigMessage, 'from' | 'node' | 'seq'>): void {
    const g = this.group;
    const key = this.o.key();
    if (g === null || key === null) return;
    try {
      g.send(encodeConfigMessage(key, { ...m, from: memberKey(g.localNodeId, this.pid), node: this.o.host.node, seq: ++this.seq } as ConfigMessage));
    } catch (err) {
      this.o.logger.warn({ err, type: m.type }, 'config group: cannot multicast');
    }
  }

  /** Multicasts this node's state (after the sends queued before it). */
  private sendState(): void {
    this.stateChain = this.stateChain.then(async () => {
      if (this.group === null) return;
      const h = this.o.host;
      const quorate = this.quorate();
      const [head, drift] = await Promise.all([h.repo.head(), h.drift()]);
      const height = await (this.o.height ?? gitHeight)(h.repo.dir);
      this.lastQuorate = quorate;
      const state: StateBody = { node: h.node, head, running: h.running(), autoApply: h.autoApply(), drift: drift.slice(0, 1000), height, quorate };
      this.send({ type: 'state', state });
    }).catch((err: unknown) => this.o.logger.error({ err }, 'config group: cannot read the repository for this node\'s state'));
  }

  private onMessage(g: CorosyncGroup, from: string, data: Buffer): void {
    if (this.group !== g) return;
    const key = this.o.key();
    if (key === null) return;
    const m = this.refusals.take(decodeConfigMessage(key, data, from), from);
    if (m === null) return;
    if (!this.replays.take(from, m.seq)) {
      this.o.logger.warn({ from, seq: m.seq }, 'config group: ignored a replayed message');
      return;
    }
    switch (m.type) {
      case 'state':
        this.round.state(from, m.state);
        this.updateGate();
        break;
      case 'propose': {
        const out = this.round.propose(from, m.id, m.cs);
        if (!out.open) this.ended(out.end);
        else if (out.voters.includes(memberKey(g.localNodeId, this.pid))) this.check(m.id, m.cs);
        break;
      }
      case 'vote': {
        const end = this.round.vote(from, m.id, m.ok, m.errors);
        if (end !== null) this.ended(end);
        break;
      }
      case 'abort': {
        const end = this.round.abort(from, m.id, m.why);
        if (end !== null) this.ended(end);
        else {
          // The proposer's own abort of a proposal this member did not see open only ends its wait.
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          p?.resolve({ ok: false, message: `no answer: ${m.why}; the change may have been committed: see config log`, rejected: [] });
        }
        break;
      }
    }
  }

  /** This member checks the proposal and votes. */
  private check(id: string, cs: ChangeSet): void {
    // The agreed states may lag a quorum change by a message: a voter that knows it has lost
    // quorum says no, so a partition that has just become a minority cannot commit.
    if (!this.quorate()) {
      this.send({ type: 'vote', id, ok: false, errors: [`${this.o.host.node}: this node's partition has no quorum (now)`] });
      return;
    }
    void this.o.host.check(cs).then((errors) => errors, (err: unknown) => [`${this.o.host.node}: cannot check the change: ${(err as Error).message}`]).then((errors) => {
      let list = errors.slice(0, 200).map((e) => (e.length > 4000 ? `${e.slice(0, 4000)}...` : e));
      // The vote must fit one message.
      while (list.length > 1 && Buffer.byteLength(JSON.stringify(list)) > MAX_MESSAGE_BYTES - 4096) list = list.slice(0, Math.ceil(list.length / 2));
      this.send({ type: 'vote', id, ok: errors.length === 0, errors: list });
    });
  }

  /** A proposal ended (the same on every member): commit and switch when agreed, answer the proposer. */
  private ended(end: RoundEnd): void {
    const self = this.self;
    const mine = this.pending.get(end.id);
    if (mine !== undefined) {
      this.pending.delete(end.id);
      mine.cancel();
    }
    const done = (): void => this.o.reloadRound?.()?.done();
    if (!end.ok) {
      this.o.logger.info({ id: end.id, message: end.message, rejected: end.rejected }, 'config group: a change was refused');
      mine?.resolve({ ok: false, message: end.message, rejected: end.rejected });
      done();
      return;
    }
    if (self === null || !end.voters.includes(self)) {
      mine?.resolve({ ok: false, message: 'the change was agreed while this node was not a voter: see config log', rejected: [] });
      done();
      return;
    }
    void this.commit(end).then((r) => {
      mine?.resolve(r);
      done();
    });
  }

  private async commit(end: Extract<RoundEnd, { ok: true }>): Promise<ProposeResult> {
    const h = this.o.host;
    const names = end.voters.map((k) => this.round.stateOf(k)?.node ?? k).sort();
    let rev: string;
    try {
      rev = await h.repo.commit(end.cs);
    } catch (err) {
      this.o.logger.error({ err, id: end.id }, 'config group: the cluster agreed on a change this node cannot commit; it will fetch it from a member');
      this.sendState();
      return { ok: false, message: `agreed by ${names.join(', ')}, but this node could not commit it: ${(err as Error).message}`, rejected: [] };
    }
    this.o.logger.info({ rev, members: names }, 'config group: committed an agreed change');
    // Said before the switch (a reload may take a while): the others see the new head at once.
    this.sendState();
    let switched = '';
    if (h.autoApply()) {
      this.selfSwitched = rev; // runHead must not switch a second time meanwhile
      const s = await h.switchTo(rev).catch((err: unknown) => ({ ok: false, message: (err as Error).message }));
      switched = s.ok ? '; running it here' : `; this node could not run it: ${s.message}`;
      if (!s.ok) this.o.logger.error({ rev, message: s.message }, 'config group: switching to an agreed revision failed; the running config stays');
    }
    this.sendState();
    return { ok: true, rev, message: `committed ${rev} on ${names.join(', ')}${switched} (the members with Auto_Apply switch to it; see config status)` };
  }

  private endAll(why: string): void {
    for (const [id, p] of [...this.pending]) {
      this.pending.delete(id);
      p.cancel();
      p.resolve({ ok: false, message: why, rejected: [] });
    }
  }

  // --- catching up -------------------------------------------------------------------------------

  /** Opens the gate when this node has the cluster's head; starts a fetch when it is behind. */
  private updateGate(): void {
    const self = this.self;
    // While a change is committed, a member is behind for a moment by design: its own commit, not
    // a fetch, brings it level.
    if (self === null || !this.round.agreed().complete || this.round.busy) return;
    const behind = catchUp(this.round, self);
    if (behind === null) {
      this.caughtUp = true;
      this.setGate(true, 'its config repository has the cluster\'s head');
      this.runHead();
      return;
    }
    this.caughtUp = false;
    this.setGate(false, `its config repository is behind the cluster's (head ${behind.head.slice(0, 12)}, ${behind.height} revisions): fetching`);
    if (this.fetching) return;
    this.fetching = true;
    void this.fetchFrom(behind.sources.filter((k) => k !== self).map((k) => this.round.stateOf(k)!.node), behind.head).finally(() => {
      this.fetching = false;
    });
  }

  /**
   * With Auto_Apply, a node that has the cluster's head but runs another revision (it was killed
   * between the commit and its switch, or restarted) switches to it: the agreed revision, once per
   * head so that one its config refuses is not tried in a loop.
   */
  private runHead(): void {
    const h = this.o.host;
    const self = this.self;
    const head = self === null ? undefined : this.round.stateOf(self)?.head;
    if (head === undefined || head === '' || !h.autoApply() || h.running() === head || this.selfSwitched === head || this.round.busy) return;
    this.selfSwitched = head;
    void h.switchTo(head).then((s) => {
      if (s.ok) this.o.logger.info({ rev: head }, 'config group: now running the cluster\'s head');
      else this.o.logger.error({ rev: head, message: s.message }, 'config group: the cluster\'s head does not run here; the running config stays');
      this.sendState();
    }, (err: unknown) => this.o.logger.error({ err, rev: head }, 'config group: switching to the cluster\'s head failed'));
  }

  private setGate(open: boolean, why: string): void {
    if (open === this.gateOpen) return;
    this.gateOpen = open;
    this.o.logger.info({ open }, `config group: this node ${open ? 'may take addresses' : 'takes no address'}: ${why}`);
    this.o.gate(open, why);
  }

  private async fetchFrom(nodes: string[], target: string): Promise<void> {
    const h = this.o.host;
    for (const node of nodes) {
      try {
        const since = await h.repo.head();
        const { head, bundle } = await this.o.fetch(node, since);
        await h.repo.takeBundle(bundle, head);
        this.o.logger.info({ from: node, head, bytes: bundle.length }, 'config group: caught up with the cluster\'s config repository');
        if (h.autoApply()) {
          this.selfSwitched = head;
          const s = await h.switchTo(head);
          if (!s.ok) this.o.logger.error({ rev: head, message: s.message }, 'config group: the cluster\'s revision does not run here; the running config stays');
        }
        this.sendState();
        return;
      } catch (err) {
        this.o.logger.warn({ err, from: node, target }, 'config group: cannot fetch the missing revisions from this member');
      }
    }
    // Every source failed: try again (the STATE it sends makes every member re-evaluate).
    this.setTimer(() => this.sendState(), FETCH_RETRY_MS);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
