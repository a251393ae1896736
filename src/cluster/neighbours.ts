// The hosts members share for each other's Arp_All_Hosts: ours, read from the kernel's neighbour
// table for our announces, and the other members', as their announces carry them (dropped when
// they leave the view). Main thread; listNeighbours is one short netlink dump per interface.

import type { ClusterConfig } from '../config/types.js';
import { listNeighbours } from '../native/index.js';
import { cidrContains } from '../net/cidr.js';
import { MAX_SHARED_NEIGHBOURS, type SharedNeighbour } from './messages.js';

/** Our neighbours in the Topology subnets, shared for the others' Arp_All_Hosts. */
export function localNeighbours(cl: ClusterConfig | null): SharedNeighbour[] {
  if (cl === null || !cl.options.Arp_All_Hosts) return [];
  const out: SharedNeighbour[] = [];
  const ifnames = new Set(cl.topologies.map((t) => t.options.Interface).filter((n): n is string => n !== undefined));
  for (const ifname of ifnames) {
    try {
      for (const n of listNeighbours(ifname)) {
        if (n.mac === null || n.state === 'failed' || n.state === 'incomplete') continue;
        if (cl.topologies.some((t) => t.options.Interface === ifname && cidrContains(t.cidr, n.address))) out.push([n.address, n.mac]);
      }
    } catch {
      // ENODEV: reported by plumbing.
    }
  }
  return out.slice(0, MAX_SHARED_NEIGHBOURS);
}

/** What the members of the view shared, by member key ("nodeid:pid"). */
export class SharedNeighbours {
  private readonly byMember = new Map<string, readonly SharedNeighbour[]>();

  /** A member's announce: an empty list keeps what it shared before. */
  set(member: string, neighbours: readonly SharedNeighbour[]): void {
    if (neighbours.length > 0) this.byMember.set(member, neighbours);
  }

  /** A new view: members that left take their neighbours with them. */
  retain(alive: ReadonlySet<string>): void {
    for (const k of this.byMember.keys()) if (!alive.has(k)) this.byMember.delete(k);
  }

  all(): SharedNeighbour[] {
    return [...this.byMember.values()].flat();
  }
}
