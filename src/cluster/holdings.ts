// The DuraVIPs this node holds: plumbs what the election gives it (plumbing.ts) and announces it
// by gratuitous ARP (arp-schedule.ts), hands over what it no longer owns without taking it off the
// wire before the new owner holds it, and re-plumbs what went missing. The manager decides what
// to hold (HoldPlan); this file only carries it out. Main thread; every step is one short netlink
// request or raw-socket send.

import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/build.js';
import { topologyFor } from '../config/duravip.js';
import { cidrContains } from '../net/cidr.js';
import { ArpSchedule, type ArpSettings, type ArpStatus } from './arp-schedule.js';
import type { SharedNeighbour } from './messages.js';
import { Plumbing } from './plumbing.js';

/** How long a leaving or rebalanced owner keeps an address while waiting to see the new owner hold it. */
export const HANDOVER_TIMEOUT_MS = 2000;
/** How long an old owner keeps the address after the new owner confirmed holding it. */
export const HANDOVER_GRACE_MS = 200;

/** What the manager wants held, and what it knows of the cluster to hand the rest over. */
export interface HoldPlan {
  /** What this node should hold now. */
  readonly want: ReadonlySet<string>;
  /** Whether new addresses may be plumbed (our quorum belongs to the current ring). */
  readonly mayTake: boolean;
  /** Whether a handover may wait for the new owner's confirmation: corosync carries our
   *  messages and we are quorate (otherwise nobody will confirm). */
  readonly mayWait: boolean;
  /** The owner the last election gave the address, or null. */
  readonly ownerOf: (address: string) => string | null;
  /** Whether `node` announces holding the address in the current view. */
  readonly heldBy: (address: string, node: string | null) => boolean;
}

/** The console's part of ClusterSnapshot that this file knows. */
export interface HoldingsSnapshot {
  readonly holds: readonly string[];
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
  private topologies: ClusterConfig['topologies'];
  /** Plumbed by us and announced as held. */
  private readonly holds = new Set<string>();
  /** Held but no longer ours: waiting for the new owner to show it holds them. */
  private readonly releasing = new Map<string, { since: number; confirmedAt: number | null }>();

  /**
   * `reapply` runs the manager's apply again when a handover's wait ends (it recomputes the plan
   * and announces what changed); `sharedNeighbours` are the hosts other members know (Arp_All_Hosts).
   */
  constructor(
    private readonly node: string,
    cluster: ClusterConfig,
    private readonly logger: Logger,
    sharedNeighbours: () => Iterable<SharedNeighbour>,
    private readonly reapply: () => void,
  ) {
    this.topologies = cluster.topologies;
    this.plumbing = new Plumbing(cluster.topologies, cluster.options.If_Check_Interval, logger);
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

  /** Removes what a crashed run left plumbed; returns those addresses. */
  removeLeftovers(): string[] {
    return this.plumbing.removeLeftovers();
  }

  /** Whether this node holds the address now (plumbed and not being handed over); canonical form. */
  owns(a: string): boolean {
    return this.holds.has(a) && !this.releasing.has(a);
  }

  /** What we hold, handovers in progress included, in the order we took them. */
  held(): string[] {
    return [...this.holds];
  }

  get count(): number {
    return this.holds.size;
  }

  /** Plumbs what we should hold, hands over what we should not. */
  apply(plan: HoldPlan): void {
    const want = plan.want;
    const mayTake = plan.mayTake;
    for (const a of want) {
      this.releasing.delete(a);
      if (this.holds.has(a) || !mayTake) continue;
      if (!this.plumbing.add(a)) continue;
      this.holds.add(a);
      const place = this.plumbing.placement(a)!;
      this.arp.start(a, place.ifname, this.plumbing.lifetimeSec * 1000 + 500);
      this.logger.info({ address: a, ifname: place.ifname }, 'DuraVIP: plumbed');
    }
    const now = Date.now();
    for (const a of [...this.holds]) {
      if (want.has(a)) continue;
      const to = plan.ownerOf(a);
      // Keep it until the new owner shows it holds it, unless nobody will (no owner, no quorum,
      // corosync lost) or we waited long enough.
      const canWait = to !== null && to !== this.node && plan.mayWait;
      if (canWait) {
        let r = this.releasing.get(a);
        if (r === undefined) {
          this.releasing.set(a, (r = { since: now, confirmedAt: null }));
          // Stop announcing at once: our takeover ARP (it runs for the address lifetime) would
          // otherwise pull clients back from the new owner while we wait for its confirmation
          // (bench/failover.ts saw 100-200 ms of answers from the old owner).
          this.arp.stop(a);
          setTimeout(() => this.reapply(), HANDOVER_TIMEOUT_MS + 10).unref();
        }
        if (r.confirmedAt === null && plan.heldBy(a, to)) {
          // Confirmed: its gratuitous ARP went out before its announce, so clients already send to
          // it. The grace is for connections that reached us just before that: under load their
          // greeting can take longer than the switch (measured: one 500 ms stall with 30 ms).
          r.confirmedAt = now;
          setTimeout(() => this.reapply(), HANDOVER_GRACE_MS + 1).unref();
        }
        if (r.confirmedAt !== null ? now - r.confirmedAt < HANDOVER_GRACE_MS : now - r.since < HANDOVER_TIMEOUT_MS) continue;
        if (r.confirmedAt === null) this.logger.warn({ address: a, to }, 'DuraVIP: the new owner did not confirm in time; releasing anyway');
      }
      this.release(a);
    }
  }

  /** If_Check_Interval: re-plumb what went missing, renew lifetimes, remove strays. */
  check(): void {
    const { readded, removed } = this.plumbing.check(this.holds, new Set(this.releasing.keys()));
    if (readded.length > 0) {
      this.logger.warn({ readded }, 'DuraVIP: re-plumbed addresses that had gone missing');
      for (const a of readded) this.arp.start(a, this.plumbing.placement(a)!.ifname);
    }
    if (removed.length > 0) this.logger.warn({ removed }, 'DuraVIP: removed tagged addresses this node does not hold');
  }

  /** Leaving: deletes everything still held and stops every ARP schedule. */
  releaseAll(): void {
    for (const a of [...this.holds]) this.release(a);
    this.arp.stopAll();
  }

  snapshot(): HoldingsSnapshot {
    return {
      holds: [...this.holds],
      releasing: [...this.releasing.keys()],
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
    this.releasing.delete(a);
    this.logger.info({ address: a }, 'DuraVIP: released');
  }
}
