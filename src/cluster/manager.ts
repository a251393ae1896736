// The DuraVIP cluster manager, the orchestrator: membership through a corosync CPG group, the state
// exchange after every view change (view.ts, neighbours.ts), the deterministic election
// (election.ts) at agreed points, and handing this node's share of it to holdings.ts (plumbing and
// ARP). Main thread. Never blocks: corosync calls are queued to the addon's IO thread; netlink and
// ARP calls are single short system calls.
//
// Agreement: every member runs elect() at the same points of the CPG agreed order: when the
// announce round of a view is complete (every member of the view has announced in it), then after
// each later announce, move or tick. `now` is the sender's clock carried in that agreed message and
// viewStableSince is the `now` of the first announce of the view, so every member computes the same.
//
// Handover, break before make (an address is never on two nodes): the old owner deletes the address
// as soon as its election gives it away and says so in agreed order (its announce no longer holds
// it); the new owner plumbs it when that announce arrives, never while another member of the view
// announces holding it. A leaving member (planned shutdown) deletes everything, then announces
// leaving=true with nothing held. The gap is one agreed message (a few ms). If the old owner leaves
// the group instead, its guardian process (guardian.ts) removes its addresses, and the successor
// waits DEPARTED_GUARD_MS (holdings.ts) after the view change before plumbing what it held.

import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { duravipEntries } from '../config/duravip.js';
import { ErrorCode, VipError } from '../errors.js';
import { type CorosyncGroup, type CpgConfChange, type CpgMember, type QuorumState, type TotemView } from '../native/index.js';
import { canonicalAddress } from '../net/address.js';
import type { Route } from '../queue/routes.js';
import { CorosyncWatch } from './corosync-watch.js';
import { checkDrain, DRAIN_FILE, drainTarget, NodeDrain } from './drain.js';
import { checkMove, elect, ownerOf, planFor, type Allocation } from './election.js';
import { Holdings } from './holdings.js';
import { GroupLink } from './group-link.js';
import { decodeMessage, encodeMessage, type ClusterMessage } from './messages.js';
import { localNeighbours, SharedNeighbours } from './neighbours.js';
import { createMemberState, mmoveAddress, type DuravipEntry, type MemberState, type MmoveAddress } from './state.js';
import { clusterSnapshot, type ClusterSnapshot, type OwnershipChange } from './snapshot.js';
import { memberKey as key, View } from './view.js';
import { expireReloadRound, memberReloaded, openReloadRound, RELOAD_WAIT_MS } from './reload-round.js';

export type { ClusterSnapshot, OwnershipChange } from './snapshot.js';
export { mmoveAddress } from './state.js';

/** The CPG group every vipmta of a corosync cluster joins. */
export const CLUSTER_GROUP = 'vipmta-duravip';
/** How long a planned shutdown waits for its leaving announce to come back before it leaves anyway. */
export const LEAVE_TIMEOUT_MS = 3000;

export interface ClusterManagerOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** CPG group name; tests may isolate clusters with their own. */
  readonly group?: string;
  /** Where the drain state persists; default the spool directory's drain.json; null: not persisted. */
  readonly drainFile?: string | null;
}

/**
 * Events: 'ownership' (OwnershipChange) for every address whose owner changes in this member's
 * view of the election; 'allocation' (Allocation) after every election; 'memberLeft' (node name)
 * for a member that left the group (died, partitioned away, or stopped); 'released' (address) for
 * every address this node took off the wire, whatever the reason; 'quorum' (boolean) when
 * `quorate()` may have changed (cluster-wide limits use nothing without quorum); 'drained'
 * (boolean) when this node is drained or undrained (agreed `cluster drain`, or the persisted state
 * at construction: read `drained`).
 */
export class ClusterManager extends EventEmitter {
  readonly node: string;
  private config: Config;
  private readonly logger: Logger;
  private readonly groupName: string;
  private entries: DuravipEntry[];
  /** The entries' addresses (canonical): routeFor runs per group member on every injection. */
  private managed: Set<string>;
  private configSince = Date.now();
  /** What this node holds: plumbing, ARP and handovers. */
  private readonly holdings: Holdings;
  private group: CorosyncGroup | null = null;
  /** Keeps us in the CPG group: joins, retries, rejoins after a loss. */
  private readonly link: GroupLink;
  private checkTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private view: View | null = null;
  private viewCounter = 0;
  private seq = 0;
  private memberSince: number | null = null;
  private alloc: Allocation | null = null;
  private leaving = false;
  /** Whether corosync delivers our messages (the stall watch) and our quorum news is of this ring. */
  private readonly watch: CorosyncWatch;
  private stopped = false;
  private lastAnnounced = '';
  private readonly sharedNeighbours = new SharedNeighbours();
  /** This node's drain (`cluster drain`): owns nothing, takes no mail, moves its queue away. */
  private readonly drainState: NodeDrain;
  /** Issue 16: false while this node's config repository is behind the cluster's (config-group.ts):
   *  it announces itself not quorate, so no election makes it a candidate. Open without a repository. */
  private configGate = true;

  constructor(opts: ClusterManagerOptions) {
    super();
    const cluster = opts.config.cluster;
    if (cluster === null) throw new VipError(ErrorCode.CLUSTER_DISABLED, 'no Cluster stanza in the configuration');
    this.config = opts.config;
    this.node = cluster.options.Nodename;
    this.logger = opts.logger.child({ subsystem: 'cluster' });
    this.groupName = opts.group ?? CLUSTER_GROUP;
    this.entries = duravipEntries(opts.config).map(({ where: _w, what: _x, ...e }) => e);
    this.managed = new Set(this.entries.map((e) => e.address));
    this.holdings = new Holdings(cluster, this.logger, () => this.sharedNeighbours.all(), () => this.apply(), (a) => this.emit('released', a), (a, ifname) => this.emit('taken', a, ifname));
    this.link = new GroupLink({
      name: this.groupName, logger: this.logger, prefix: 'cluster: ', without: 'this node owns no DuraVIP',
      joined: (g) => this.joined(g), lost: (err) => this.onLost(err),
    });
    this.watch = new CorosyncWatch(cluster.options.If_Check_Interval);
    this.drainState = new NodeDrain(opts.drainFile === undefined ? path.join(opts.config.spool.Directory, DRAIN_FILE) : opts.drainFile, this.logger);
  }

  /** Corosync is not delivering our messages: this node holds no address and its DuraVIP mail waits. */
  private get stalled(): boolean {
    return this.watch.stalled;
  }

  /** The queue's count of parts still here, shown as a drain's progress (node/drain.ts). */
  trackQueue(left: () => number): void {
    this.drainState.track(left);
  }

  /** This node is drained: its listeners refuse new sessions, its queue moves to the others. */
  get drained(): boolean {
    return this.drainState.drained;
  }

  /** Removes leftovers of a crashed run, starts the guardian, then joins (retrying while corosync is not there). */
  start(): void {
    const removed = this.holdings.start();
    if (removed.length > 0) this.logger.warn({ removed }, 'DuraVIP: removed addresses a previous run left plumbed');
    this.link.start();
    this.checkTimer = setInterval(() => this.periodicCheck(), this.config.cluster!.options.If_Check_Interval);
    this.checkTimer.unref();
  }

  // --- the small API other subsystems use (#mmove, the queue manager) ---------------------------

  /** Whether this node holds the address now (plumbed and not being handed over). */
  owns(address: string): boolean {
    const a = canonicalAddress(address);
    return a !== null && this.holdings.owns(a);
  }

  /** The owner the last election gave the address, or null (none, no election yet, or not a DuraVIP). */
  ownerOf(address: string): string | null {
    return this.alloc === null ? null : ownerOf(this.alloc, address);
  }

  get allocation(): Allocation | null {
    return this.alloc;
  }

  /**
   * Where mail sent from `address` goes (the queue manager's route): 'local' when it is not a
   * DuraVIP or this node is its elected owner, the owner when that is another node, 'wait' while
   * nobody owns it (before the first election, without quorum, BROKEN).
   */
  routeFor(address: string | null): Route {
    const a = address === null ? null : this.managed.has(address) ? address : canonicalAddress(address);
    if (a === null || !this.managed.has(a)) {
      if (!this.drainState.drained) return { to: 'local' };
      const v = this.view;
      return v === null || !v.complete || this.stalled ? { to: 'wait' } : drainTarget([...v.announces.values()].map((x) => x.state), v.drains, this.node);
    }
    if (this.alloc === null || this.stalled) return { to: 'wait' };
    const owner = ownerOf(this.alloc, a);
    if (owner === null) return { to: 'wait' };
    return owner === this.node ? { to: 'local' } : { to: 'node', node: owner };
  }

  /** A member's ECCluster_Listener as it announced it (#mmove's peer), or null. */
  peerLink(node: string): MmoveAddress | null {
    return this.view?.peerLink(node) ?? null;
  }

  // --- config ---------------------------------------------------------------------------------

  /** Takes a reloaded config: new entries are announced and the cluster elects again. */
  reconfigure(config: Config): void {
    if (config.cluster === null) {
      this.logger.warn('Cluster stanza removed: takes effect at the next restart');
      return;
    }
    if (config.cluster.options.If_Check_Interval !== this.config.cluster!.options.If_Check_Interval) {
      // The address lifetime is derived from it and already on the wire: changing both safely needs a restart.
      this.logger.warn('If_Check_Interval changed: takes effect at the next restart');
    }
    this.config = config;
    const entries = duravipEntries(config).map(({ where: _w, what: _x, ...e }) => e);
    if (JSON.stringify(entries) !== JSON.stringify(this.entries)) {
      this.entries = entries;
      this.managed = new Set(entries.map((e) => e.address));
      this.configSince = Date.now();
    }
    this.holdings.reconfigure(config.cluster);
    this.announce(true);
  }

  // --- corosync ---------------------------------------------------------------------------------

  /** The group is joined (group-link.ts): listen to it. */
  private joined(g: CorosyncGroup): void {
    this.group = g;
    g.on('confchg', (c: CpgConfChange) => this.onConfchg(c));
    g.on('message', (nodeId: number, pid: number, data: Buffer) => this.onMessage(nodeId, pid, data));
    g.on('quorum', (q: QuorumState) => this.onQuorum(q));
    g.on('totem', (t: TotemView) => {
      this.watch.ring(t.members);
      this.apply(); // the quorum news may have come first: take what was held back
    });
    this.logger.info({ group: this.groupName, nodeId: g.localNodeId, quorate: g.quorum.quorate }, 'cluster: joined the corosync group');
  }

  private onLost(err: Error): void {
    this.logger.error({ err }, 'cluster: lost corosync; releasing every DuraVIP');
    this.group = null;
    this.watch.reset();
    this.resetView(null);
    this.setAllocation(null);
    this.apply();
    this.emit('quorum', false);
  }

  private resetView(members: readonly CpgMember[] | null): void {
    // Agreed drains of the old view now travel in the members' announces (drained).
    if (this.tickTimer !== null) { clearTimeout(this.tickTimer); this.tickTimer = null; }
    this.view = members === null ? null : new View(++this.viewCounter, members, Date.now());
  }

  private onConfchg(c: CpgConfChange): void {
    const g = this.group;
    if (g === null) return;
    // A view change proves corosync delivers again; a ping lost with the old ring is not waited for.
    this.watch.pingAnswered();
    this.updateStalled();
    const left = c.left.map((m) => `${m.nodeId}:${m.pid}(${m.reason})`);
    const joined = c.joined.map((m) => `${m.nodeId}:${m.pid}`);
    this.logger.info({ members: c.members.map((m) => key(m.nodeId, m.pid)), left, joined }, 'cluster: new view');
    // Shared neighbours of members that left are dropped with them.
    this.sharedNeighbours.retain(new Set(c.members.map((m) => key(m.nodeId, m.pid))));
    // Who left, by name (from their last announce): #mmove drops its connections to them.
    const gone: string[] = [];
    for (const m of c.left) {
      const st = this.view?.stateOf(m.nodeId, m.pid);
      if (st !== undefined) gone.push(st.node);
      // What it held may still be on its node for a moment (its guardian, or its quorum loss, removes it).
      this.holdings.memberLeft(key(m.nodeId, m.pid));
    }
    this.resetView(c.members);
    for (const node of gone) this.emit('memberLeft', node);
    this.announce(true);
  }

  private onQuorum(q: QuorumState): void {
    this.logger.info({ quorate: q.quorate, members: q.members }, 'cluster: quorum changed');
    // Local guard at once (a node that loses quorum releases everything without waiting for a round),
    // then tell the others.
    this.apply();
    this.announce(true);
    this.emit('quorum', this.quorate());
  }

  private localQuorate(): boolean {
    return this.group !== null && this.group.quorum.quorate;
  }

  /** Whether this node is in a quorate partition and corosync delivers its messages: what the
   *  cluster-wide limits ask before this node uses any share (the same test as owning addresses). */
  quorate(): boolean {
    return this.localQuorate() && !this.stalled && !this.leaving;
  }

  private myState(): MemberState {
    const g = this.group!;
    return createMemberState({
      node: this.node,
      nodeid: g.localNodeId,
      seq: ++this.seq,
      quorate: this.localQuorate() && !this.stalled && this.configGate,
      leaving: this.leaving,
      drained: this.drainState.drained,
      memberSince: this.memberSince ?? Date.now(),
      configSince: this.configSince,
      addresses: this.entries,
      holds: this.holdings.held(),
      mmove: mmoveAddress(this.config),
    });
  }

  /** Multicasts our state; unless `force`, only when it changed since the last announce. */
  private announce(force: boolean): void {
    const g = this.group;
    if (g === null || g.closed) return;
    const digest = JSON.stringify([this.localQuorate(), this.configGate, this.stalled, this.leaving, this.drainState.drained, this.holdings.held().sort(), this.entries, this.configSince]);
    if (!force && digest === this.lastAnnounced) return;
    this.lastAnnounced = digest;
    this.send({ type: 'announce', now: Date.now(), state: this.myState(), neighbours: localNeighbours(this.config.cluster) });
  }

  private send(m: ClusterMessage): void {
    try {
      this.group?.send(encodeMessage(m));
    } catch (err) {
      this.logger.error({ err }, 'cluster: cannot send to corosync');
    }
  }

  private onMessage(nodeId: number, pid: number, data: Buffer): void {
    const d = decodeMessage(data);
    if (!d.ok) {
      this.logger.warn({ nodeId, pid, error: d.error }, 'cluster: ignored a malformed message');
      return;
    }
    const m = d.message;
    if (m.type === 'ping') {
      // Our own ping came back through corosync: the whole path works.
      if (nodeId === this.group?.localNodeId && pid === process.pid) {
        this.watch.pingAnswered();
        this.updateStalled();
      }
      return;
    }
    const v = this.view;
    if (v === null || !v.has(nodeId, pid)) return;
    if (m.type === 'announce') {
      if (m.state.nodeid !== nodeId) {
        this.logger.warn({ nodeId, claimed: m.state.nodeid }, 'cluster: ignored an announce with a foreign nodeid');
        return;
      }
      this.holdings.memberHolds(key(nodeId, pid), m.state.holds);
      const complete = v.announce(nodeId, pid, m.now, m.state, m.neighbours);
      this.sharedNeighbours.set(key(nodeId, pid), m.neighbours);
      if (nodeId === this.group?.localNodeId && pid === process.pid && this.memberSince === null) this.memberSince = v.stableSince;
      if (complete) this.runElection(m.now);
    } else if (m.type === 'move') {
      v.moves.set(m.address, m.node);
      if (v.complete) this.runElection(m.now);
    } else if (m.type === 'drain') {
      v.drains.set(m.node, m.drained);
      if (m.node === this.node && this.drainState.set(m.drained)) this.emit('drained', m.drained);
      if (v.complete) this.runElection(m.now);
    } else if (m.type === 'reload') {
      openReloadRound(v, m.node, m.now);
      this.logger.info({ by: m.node }, 'cluster: reload round: elections wait for every member\'s new configuration');
      this.scheduleReloadTick(v);
    } else if (m.type === 'reloaded') {
      if (memberReloaded(v, nodeId, pid)) {
        this.logger.info('cluster: reload round complete: electing with every member\'s new configuration');
        if (v.complete) this.runElection(m.now);
      }
    } else if (m.type === 'tick') {
      const missed = expireReloadRound(v, m.now);
      if (missed !== null) this.logger.warn({ members: missed }, 'cluster: reload round ended without every member\'s reload; electing now');
      if (v.complete) this.runElection(m.now);
    }
  }

  /** The first member of the view ends a reload round that waits too long (one tick, agreed). */
  private scheduleReloadTick(v: View): void {
    const g = this.group;
    const first = v.first();
    if (g === null || first === undefined || first.nodeId !== g.localNodeId || first.pid !== process.pid) return;
    setTimeout(() => {
      if (this.view === v && v.reload !== null) this.send({ type: 'tick', now: Date.now() });
    }, RELOAD_WAIT_MS + 100).unref();
  }

  /** The config group says whether this node's config has caught up with the cluster's: until
   *  it has, it holds nothing and is a candidate for no address. */
  setConfigGate(open: boolean, why: string): void {
    if (open === this.configGate) return;
    this.configGate = open;
    this.logger.info({ why }, open ? 'cluster: config caught up: a candidate for addresses again' : 'cluster: config behind the cluster\'s: a candidate for no address');
    // Before the first join nothing is held or announced: the first announce carries the gate.
    if (this.group === null) return;
    this.apply();
    this.announce(true);
  }

  /** `console --cluster config reload` asks: open a reload round on every member, before the
   *  console group tells each to reload. */
  openReloadRound(): void {
    if (this.group !== null) this.send({ type: 'reload', now: Date.now(), node: this.node });
  }

  /** This node's reload of the round is over (its new configuration, if any, announced first):
   *  the others stop waiting for it. */
  reloadRoundDone(): void {
    if (this.group !== null) this.send({ type: 'reloaded', now: Date.now(), node: this.node });
  }

  private runElection(now: number): void {
    const v = this.view!;
    // A reload round is open: the election runs once it closes, with every new configuration.
    if (v.reload !== null) return;
    const members = v.states();
    const prev = this.alloc;
    const alloc = elect({
      members,
      // Members announce their own quorum; one that is not quorate owns nothing (election.ts), so
      // the partition owns addresses exactly when its members say they are quorate.
      quorate: members.some((m) => m.quorate),
      previous: prev,
      now,
      viewStableSince: v.stableSince!,
      viewMatureMs: this.config.cluster!.options.View_Mature_Time,
      manualMoves: v.moves,
      drains: v.drains,
    });
    this.logger.debug({ view: v.id, now, members: members.length }, 'cluster: election');
    for (const p of alloc.problems) this.logger.warn({ problem: p }, 'DuraVIP election');
    this.setAllocation(alloc);
    this.apply();
    this.scheduleTick(alloc);
  }

  /** Takes a new allocation (null: none, e.g. corosync lost) and reports every owner that changed. */
  private setAllocation(alloc: Allocation | null): void {
    const prev = this.alloc;
    this.alloc = alloc;
    const before = new Map((prev?.addresses ?? []).map((a) => [a.address, a.owner]));
    const after = new Map((alloc?.addresses ?? []).map((a) => [a.address, a]));
    for (const address of new Set([...before.keys(), ...after.keys()])) {
      const was = before.get(address) ?? null;
      const now = after.get(address);
      const owner = now?.owner ?? null;
      if (was === owner) continue;
      this.logger.info({ address, owner, previous: was, reason: now?.reason ?? 'no allocation' }, 'DuraVIP owner');
      const change: OwnershipChange = { address, owner, previous: was, local: owner === this.node };
      this.emit('ownership', change);
    }
    if (alloc !== null) this.emit('allocation', alloc);
  }

  /** The lowest member of the view asks for the maturity re-election (one tick, not one per member). */
  private scheduleTick(alloc: Allocation): void {
    const v = this.view;
    const g = this.group;
    if (v === null || g === null || this.tickTimer !== null || !alloc.rebalancePending || alloc.mature) return;
    const first = v.first();
    if (first === undefined || first.nodeId !== g.localNodeId || first.pid !== process.pid) return;
    const wait = Math.max(100, this.config.cluster!.options.View_Mature_Time - (Date.now() - v.arrivedAt) + 50);
    this.tickTimer = setTimeout(() => {
      this.tickTimer = null;
      if (this.view === v) this.send({ type: 'tick', now: Date.now() });
    }, wait);
    this.tickTimer.unref();
  }

  // --- applying the allocation ------------------------------------------------------------------

  /** What this node should hold now. */
  private wanted(): Set<string> {
    if (this.alloc === null || this.leaving || this.drainState.drained || this.stalled || !this.configGate || !this.localQuorate()) return new Set();
    return new Set(planFor(this.alloc, this.node));
  }

  /**
   * Removes what we should not hold, then plumbs what we should (break before make), and announces
   * if that changed anything: the announce is the agreed word the new owner of a released address
   * waits for.
   */
  private apply(): void {
    const v = this.view;
    this.holdings.apply({
      want: this.wanted(),
      // Only once every member has said what it holds in this view: before that, an old owner's
      // hold may be unknown (the view changed in the middle of a handover).
      mayTake: this.watch.quorumFresh(this.group) && v !== null && v.complete,
      heldElsewhere: (a) => v !== null && v.heldByOther(a, this.node),
    });
    this.announce(false);
  }

  /** If_Check_Interval: corosync stall watch, re-plumb, renew lifetimes, remove strays. */
  private periodicCheck(): void {
    // A ping we must see delivered back: a stopped corosync still lets libqb take a few sends
    // into its ring, so only the echo proves it is alive, on a quiet cluster too.
    const ping = this.watch.pingDue(this.group);
    if (ping !== null) this.send({ type: 'ping', now: ping });
    this.updateStalled();
    // A safety net for anything held back (quorum news, handover timers): applying is idempotent.
    this.apply();
    this.holdings.check();
  }

  /** Stalled: our ping has not come back, or a send has waited, for longer than the limit (corosync-watch.ts). */
  private updateStalled(): void {
    const waited = this.watch.update(this.group);
    if (waited === null) return;
    if (this.stalled) this.logger.error({ waitedMs: waited }, 'cluster: corosync is not delivering our messages; releasing every DuraVIP until it does');
    else this.logger.info('cluster: corosync delivers our messages again');
    this.apply();
    this.announce(true);
    this.emit('quorum', this.quorate());
  }

  // --- console ----------------------------------------------------------------------------------

  /** `cluster duravip move IP to NODE`: checked here, then multicast so every member applies it. */
  move(address: string, node: string): string {
    if (this.alloc === null || this.group === null || this.view === null) throw new VipError(ErrorCode.CLUSTER_REFUSED, 'no election has run yet (is corosync up?)');
    const why = checkMove(this.alloc, address, node);
    if (why !== null) throw new VipError(ErrorCode.CLUSTER_REFUSED, why);
    const a = canonicalAddress(address)!;
    this.send({ type: 'move', now: Date.now(), address: a, node });
    return `moving ${a} to ${node}\n`;
  }

  /**
   * `cluster drain NODE` / `cluster undrain NODE`: checked here, then multicast so every member
   * treats NODE as drained (or not) from the same point of the agreed order.
   */
  drain(node: string, drained: boolean): string {
    const v = this.view;
    if (this.group === null || v === null || !v.complete) throw new VipError(ErrorCode.CLUSTER_REFUSED, 'no complete view yet (is corosync up?)');
    const check = checkDrain([...v.announces.values()].map((a) => a.state), v.drains, node, drained);
    if (check.refused !== undefined) throw new VipError(ErrorCode.CLUSTER_REFUSED, check.refused);
    if (check.send) this.send({ type: 'drain', now: Date.now(), node, drained });
    return check.answer;
  }

  /** `cluster duravip announce view`: announce our state again, so every member elects again. */
  announceView(): string {
    if (this.group === null) throw new VipError(ErrorCode.CLUSTER_REFUSED, `not connected to corosync (${this.link.joinError ?? 'unknown'})`);
    this.announce(true);
    return 'announced\n';
  }

  /** A snapshot of everything the console shows (snapshot.ts). */
  snapshot(): ClusterSnapshot {
    return clusterSnapshot({
      node: this.node, groupName: this.groupName, group: this.group, link: this.link, quorate: this.localQuorate(),
      stalled: this.stalled, leaving: this.leaving, drain: this.drainState, view: this.view, allocation: this.alloc,
      configSince: this.configSince, entries: this.entries, holdings: this.holdings,
    });
  }

  // --- leaving ----------------------------------------------------------------------------------

  /**
   * Planned shutdown: delete every address (break before make), announce leaving=true with nothing
   * held, wait until that announce is delivered back to us (agreed order: every member has it, and
   * the new owners plumb on it), then leave the group. Resolves when done.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.leaving = true;
    if (this.group !== null && this.holdings.count > 0) {
      this.logger.info({ holds: this.holdings.held() }, 'cluster: leaving; handing over DuraVIPs');
      this.apply(); // wanted() is empty now: removes everything, then announces leaving with nothing held
      const g = this.group;
      const deadline = Date.now() + LEAVE_TIMEOUT_MS;
      await new Promise<void>((resolve) => {
        const check = (): void => {
          const mine = g === null ? undefined : this.view?.stateOf(g.localNodeId, process.pid);
          if ((mine?.leaving === true && mine.holds.length === 0) || this.group !== g || Date.now() >= deadline) { resolve(); return; }
          setTimeout(check, 2);
        };
        check();
      });
    }
    this.stopped = true;
    this.holdings.releaseAll();
    if (this.tickTimer !== null) clearTimeout(this.tickTimer);
    if (this.checkTimer !== null) clearInterval(this.checkTimer);
    this.link.stop();
    this.group = null;
  }
}
