// Unsolicited Neighbour Advertisements for IPv6 DuraVIPs (RFC 4861 7.2.6), the IPv6 counterpart of
// the gratuitous ARP in arp.h: building one advertisement and sending it to all nodes from a raw
// ICMPv6 socket. Plain C++ (no Napi): callable from the JS thread or an AsyncWorker. Sending never
// blocks (a fresh socket, a few ioctls and setsockopts, one sendto).
#pragma once
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "announce.h"

namespace vipmta {

// RFC 4861 4.4: the 24-byte Neighbor Advertisement plus one Target Link-Layer Address option,
// which is 8 bytes on Ethernet (RFC 2464 6: type, length 1, 6-byte MAC).
constexpr size_t kNeighbourAdvertLen = 24 + 8;

struct NeighbourAdvertSpec {
  in6_addr target{};    // the address being announced; also the IPv6 source
  uint8_t mac[6] = {};  // our interface's MAC, the Target Link-Layer Address option
  bool router = false;  // R flag: set when the interface forwards (as the kernel's own NAs say)
};

// Fills `out` (kNeighbourAdvertLen bytes) with an unsolicited advertisement: Override set,
// Solicited clear (RFC 4861 7.2.6), the checksum left 0 for the kernel to fill in.
void BuildNeighbourAdvert(const NeighbourAdvertSpec& spec, uint8_t* out);

// Outcome of SendNeighbourAdvert (announce.h).
using NeighbourAdvertResult = AnnounceResult;

// Sends one advertisement for spec->target to ff02::1 on interface `ifindex` (name `ifname` for the
// ioctls and the forwarding sysctl); spec->mac and spec->router are filled from the interface.
// Needs CAP_NET_RAW (else EPERM from socket). EADDRNOTAVAIL from bind when the address is not on
// this host or is tentative or dadfailed: we never announce an address we cannot use.
NeighbourAdvertResult SendNeighbourAdvert(int ifindex, const std::string& ifname, NeighbourAdvertSpec* spec);

}  // namespace vipmta
