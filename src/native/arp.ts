// Typed wrappers of native/arp.cc: one gratuitous ARP frame from a raw AF_PACKET socket, and the
// kernel's IPv4 neighbour table. Main thread (the cluster manager's announcer); each call is short
// and synchronous (a socket, two ioctls, one sendto; or one RTM_GETNEIGH dump).
import { binding } from './addon.js';

/** Options of {@link sendArp}. */
export interface SendArpOptions {
  /**
   * 'request' (default): an ARP announcement, RFC 5227 2.3 (sender IP = target IP), as keepalived
   * and `arping -U` send it. 'reply': an unsolicited reply (`arping -A`), for the rare host that
   * only learns from replies.
   */
  op?: 'request' | 'reply';
  /** Unicast the frame to this MAC ("aa:bb:cc:dd:ee:ff") instead of broadcasting (Arp_All_Hosts). */
  destMac?: string | null;
  /**
   * ar$tpa; default the announced address itself (gratuitous). With `destMac`, the host's own
   * address turns the frame into a request for that host, which RFC 826 makes it learn from even
   * when it has no entry for us yet.
   */
  targetAddress?: string | null;
}

/**
 * Sends ONE ARP frame announcing IPv4 `address` with interface `ifname`'s MAC, from a fresh raw
 * AF_PACKET socket. Synchronous and short (a socket, two ioctls, one sendto); pacing and repetition
 * belong to the caller. Frame layout follows keepalived's vrrp_arp.c (see native/arp.h).
 *
 * Returns true when the frame went out, false when the interface has IFF_NOARP: it must not speak
 * ARP, which is an expected configuration, not a failure (keepalived skips such interfaces too).
 *
 * Throws: `ERR_INVALID_ADDRESS` (not an IPv4 literal), `ERR_INVALID_MAC`, `ENODEV`
 * (`if_nametoindex`), `ERR_ARP_UNSUPPORTED_LINK` (not Ethernet: loopback, tun, ...), `EPERM` from
 * `socket` without CAP_NET_RAW, `ENETDOWN` from `sendto` when the link is down.
 */
export function sendArp(ifname: string, address: string, opts: SendArpOptions = {}): boolean {
  return binding.sendArp(ifname, address, {
    op: opts.op ?? 'request',
    destMac: opts.destMac ?? null,
    targetAddress: opts.targetAddress ?? null,
  }) as boolean;
}

/** NUD state of a neighbour entry (ip-neighbour(8)); an unknown combination as its number. */
export type NeighbourState =
  | 'incomplete' | 'reachable' | 'stale' | 'delay' | 'probe' | 'failed' | 'noarp' | 'permanent' | 'none' | number;

/** One IPv4 entry of the kernel's neighbour (ARP) table. */
export interface Neighbour {
  ifindex: number;
  /** Interface name, null if it vanished while listing. */
  interface: string | null;
  address: string;
  /** "aa:bb:..."; null while incomplete or failed. */
  mac: string | null;
  state: NeighbourState;
  /** NTF_ROUTER. */
  router: boolean;
}

/**
 * The IPv4 neighbour table (an RTM_GETNEIGH dump, like `ip -4 neigh show`), optionally for one
 * interface. Synchronous and short. A snapshot the caller owns. Throws `ENODEV` for an unknown name.
 */
export function listNeighbours(ifname: string | null = null): Neighbour[] {
  return binding.listNeighbours(ifname) as Neighbour[];
}
