// The DuraVIPs this node holds: plumbs what the election gives it (plumbing.ts, guarded by the
// guardian process of guardian.ts) and announces it by gratuitous ARP (arp-schedule.ts), removes
// what it no longer owns before the new owner plumbs it (break before make: an address is never on
// two nodes), and re-plumbs what went missing. The manager decides what to hold (HoldPlan); this
// file only carries it out. Main thread; every step is one short netlink request or raw-socket send.

import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/types.js';
import { topologyFor } from '../config/duravip.js';
import { cidrContains } from '../net/cidr.js';
import { ArpSchedule, type ArpSettings, type ArpStatus } from './arp-schedule.js';
import type { SharedNeighbour } from './messages.js';
import { GuardianLink } from './guardian.js';
import { Plumbing } from './plumbing.js';

/**
 * After a member that held addresses leaves the group, how long the others wait before plumbing
 * them: its guardian removes them within milliseconds of its death (a process death reaches the
 * guardian and corosync at the same instant, and corosync still needs a ring round and the others
 * an announce round before anyone elects), and a member cut off by a partition releases on its own
 * quorum loss, at the ring change the others see. The guard covers scheduling delays of both.
 */
export const DEPARTED_GUARD_MS = 50;

/** What the manager wants held, and what it knows of the cluster to take addresses safely. */
export interface HoldPlan {
  /** What this node should hold now. */
  readonly want: ReadonlySet<string>;
  /** Whether new addresses may be plumbed (our quorum belongs to the current ring and every
   *  member has announced what it holds in the current view). */
  readonly mayTake: boolean;
  /** Whether another member of the current view still announces holding the address: the old
   *  owner of a handover has not said (in agreed order) that it removed it yet. */
  readonly heldElsewhere: (address: string) => boolean;
}

/** The console's part of ClusterSnapshot that this file knows. */
export interface HoldingsSnapshot {
  readonly holds: readonly string[];
  /** Given to this node but not plumbed yet: the old holder has not released it, or a departed
   *  member's guard time runs (the console shows them as "handing over"). */
  readonly releasing: readonly string[];
  readonly arp: readonly ArpStatus[];
  readonly knownHosts: (vip: string, ifname: string) => Map<string, string>;
  readonly plumbErrors: ReadonlyMap<string, string>;
  readonly lifetimeSec: number;
  readonly placement: (address: string) => { ifname: string; prefixLength: number } | null;
}

function arpSettings(cluster: ClusterConfig): ArpSettings {
  const o = cluster.options;
  return { count: o.Arp_Count, intervalMs: o.Arp_Interval, refreshMs: o.Arp_Refresh, mode: o.Arp_Mode, allHosts: o.Arp_All_Hosts };
}

export class Holdings {
  private readonly plumbing: Plumbing;
  private readonly arp: ArpSchedule;
  private readonly guardian: GuardianLink;
  private topologies: ClusterConfig['topologies'];
  /** Plumbed by us and announced as held. */
  private readonly holds = new Set<string>();
  /** Wanted but not plumbed yet (HoldPlan.heldElsewhere / notBefore), as of the last apply. */
  private readonly waiting = new Set<string>();
  /** When the pending guard timer fires (ms), 0 for none. */
  private guardTimerAt = 0;
  /** What each group member (view.ts memberKey) announced holding last, across views. */
  private readonly lastHolds = new Map<string, readonly string[]>();
  /** address -> local time before which it must not be plumbed (DEPARTED_GUARD_MS). */
  private readonly departedGuard = new Map<string, number>();

  /**
   * `reapply` runs the manager's apply again when a guard time ends (it recomputes the plan and
   * announces what changed); `sharedNeighbours` are the hosts other members know (Arp_All_Hosts);
   * `released` hears of every address taken off the wire, whatever the reason (an election, a
   * stalled corosync, lost quorum, leaving), so that what was sent from it can be cut at once.
   */
  constructor(
    cluster: ClusterConfig,
    private readonly logger: Logger,
    sharedNeighbours: () => Iterable<SharedNeighbour>,
    private readonly reapply: () => void,
    private readonly released: (address: string) => void = () => {},
    /** Hears of every address plumbed here (the address_taken record). */
    private readonly taken: (address: string, ifname: string) => void = () => {},
  ) {
    this.topologies = cluster.topologies;
    this.guardian = new GuardianLink(logger);
    this.plumbing = new Plumbing(cluster.topologies, cluster.options.If_Check_Interval, logger, this.guardian);
    this.arp = new ArpSchedule(arpSettings(cluster), logger, sharedNeighbours, (vip, host) => {
      const t = topologyFor(this.topologies, vip);
      return t !== null && cidrContains(t.cidr, host);
    });
  }

  /** Takes a reloaded Cluster stanza (If_Check_Interval needs a restart: the manager says so). */
  reconfigure(cluster: ClusterConfig): void {
    this.topologies = cluster.topologies;
    this.plumbing.setTopologies(cluster.topologies);
    this.arp.setSettings(arpSettings(cluster));
  }

  /** Removes what a crashed run left plumbed (returns those addresses), then starts the guardian. */
  start(): string[] {
    const removed = this.plumbing.removeLeftovers();
    this.guardian.start();
    return removed;
  }

  /** Whether this node holds the address now (plumbed); canonical form. */
  owns(a: string): boolean {
    return this.holds.has(a);
  }

  /** What we hold, in the order we took them. */
  held(): string[] {
    return [...this.holds];
  }

  get count(): number {
    return this.holds.size;
  }

  /** A member's agreed announce: what it holds now (kept for the guard if it leaves). */
  memberHolds(member: string, holds: readonly string[]): void {
    this.lastHolds.set(member, holds);
  }

  /** A member left the group: what it held last is not plumbed here for DEPARTED_GUARD_MS. */
  memberLeft(member: string): void {
    const now = Date.now();
    for (const a of this.lastHolds.get(member) ?? []) this.departedGuard.set(a, now + DEPARTED_GUARD_MS);
    this.lastHolds.delete(member);
    for (const [a, until] of this.departedGuard) if (until <= now) this.departedGuard.delete(a);
  }

  /**
   * Break before make: first removes what we should no longer hold (the caller then announces it,
   * in agreed order), then plumbs what we should hold unless another member still announces it or
   * a departed member's guard time runs.
   */
  apply(plan: HoldPlan): void {
    for (const a of [...this.holds]) if (!plan.want.has(a)) this.release(a);
    this.waiting.clear();
    if (!plan.mayTake) return;
    const now = Date.now();
    for (const a of plan.want) {
      if (this.holds.has(a)) continue;
      if (plan.heldElsewhere(a)) {
        // Its holder's announce without it (agreed order) runs apply again.
        this.waiting.add(a);
        continue;
      }
      const notBefore = this.departedGuard.get(a) ?? 0;
      if (notBefore > now) {
        this.waiting.add(a);
        this.wakeAt(notBefore);
        continue;
      }
      if (!this.plumbing.add(a)) continue;
      this.holds.add(a);
      const place = this.plumbing.placement(a)!;
      this.arp.start(a, place.ifname, this.plumbing.lifetimeSec * 1000 + 500);
      this.logger.info({ address: a, ifname: place.ifname }, 'DuraVIP: plumbed');
      this.taken(a, place.ifname);
    }
  }

  /** One timer for the earliest guard end (the reapply takes every address whose time has come). */
  private wakeAt(at: number): void {
    if (this.guardTimerAt !== 0 && this.guardTimerAt <= at) return;
    this.guardTimerAt = at;
    setTimeout(() => {
      if (this.guardTimerAt === at) this.guardTimerAt = 0;
      this.reapply();
    }, Math.max(0, at - Date.now()) + 1).unref();
  }

  /** If_Check_Interval: re-plumb what went missing, renew lifetimes, remove strays. */
  check(): void {
    const { readded, removed } = this.plumbing.check(this.holds);
    if (readded.length > 0) {
      this.logger.warn({ readded }, 'DuraVIP: re-plumbed addresses that had gone missing');
      for (const a of readded) this.arp.start(a, this.plumbing.placement(a)!.ifname);
    }
    if (removed.length > 0) this.logger.warn({ removed }, 'DuraVIP: removed tagged addresses this node does not hold');
  }

  /** Leaving: deletes everything still held, stops every ARP schedule, and ends the guardian. */
  releaseAll(): void {
    for (const a of [...this.holds]) this.release(a);
    this.arp.stopAll();
    this.guardian.stop();
  }

  snapshot(): HoldingsSnapshot {
    return {
      holds: [...this.holds],
      releasing: [...this.waiting],
      arp: this.arp.list(),
      knownHosts: (vip: string, ifname: string) => this.arp.knownHosts(vip, ifname),
      plumbErrors: new Map(this.plumbing.errors),
      lifetimeSec: this.plumbing.lifetimeSec,
      placement: (a: string) => this.plumbing.placement(a),
    };
  }

  private release(a: string): void {
    this.arp.stop(a);
    this.plumbing.remove(a);
    this.holds.delete(a);
    this.logger.info({ address: a }, 'DuraVIP: released');
    this.released(a);
  }
}
