// Typed wrapper of native/ndisc.cc: one unsolicited IPv6 Neighbour Advertisement (RFC 4861 7.2.6)
// from a raw ICMPv6 socket, the IPv6 counterpart of sendArp. Main thread (the cluster manager's
// announcer); each call is short and synchronous (a socket, two ioctls, bind, one sendto).
import { binding } from './addon.js';

/**
 * Sends ONE unsolicited Neighbour Advertisement for IPv6 `address` to all nodes (ff02::1) on
 * interface `ifname`: Override set, Solicited clear, our MAC as Target Link-Layer Address, hop
 * limit 255, source the address itself; Router set when the interface forwards. Receivers that have
 * an entry for the address move it to our MAC (RFC 4861 7.2.5); like a gratuitous ARP it creates
 * none. Synchronous and short; pacing and repetition belong to the caller.
 *
 * Returns true when it went out, false when the interface has IFF_NOARP (no neighbour discovery
 * there: an expected configuration, not a failure).
 *
 * Throws: `ERR_INVALID_ADDRESS` (not a unicast IPv6 literal), `ENODEV` (`if_nametoindex`),
 * `ERR_NDISC_UNSUPPORTED_LINK` (not Ethernet: loopback, tun, ...), `EPERM` from `socket` without
 * CAP_NET_RAW, `EADDRNOTAVAIL` from `bind` when the address is not on this host or is tentative or
 * dadfailed, `ENETUNREACH` from `sendto` when the link is down.
 */
export function sendNeighbourAdvertisement(ifname: string, address: string): boolean {
  return binding.sendNeighbourAdvertisement(ifname, address) as boolean;
}
