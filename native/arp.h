// ARP for DuraVIP: building and sending one gratuitous or unicast ARP frame from a raw AF_PACKET
// socket, and reading the kernel's IPv4 neighbour table over rtnetlink. Plain C++ (no Napi): callable
// from the JS thread or an AsyncWorker. Sending never blocks (one sendto on a fresh socket); the
// neighbour dump blocks only on the kernel's netlink reply.
#pragma once
#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

#include "announce.h"
#include "netlink.h"

namespace vipmta {

// RFC 826 packet format on Ethernet: 14-byte Ethernet header + 28-byte ARP body for IPv4.
constexpr size_t kArpFrameLen = 14 + 28;

enum class ArpOp : uint16_t { kRequest = 1, kReply = 2 };  // RFC 826 ar$op: ares_op$REQUEST, REPLY

struct ArpFrameSpec {
  ArpOp op = ArpOp::kRequest;
  uint8_t sourceMac[6] = {};  // our interface's address: Ethernet source and ar$sha
  uint8_t destMac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};  // Ethernet destination
  in_addr senderIp{};         // ar$spa: the address being announced
  in_addr targetIp{};         // ar$tpa: == senderIp for a gratuitous ARP
  bool unicast = false;       // destMac is one host, not broadcast
};

// Fills `out` (kArpFrameLen bytes). The target hardware address (ar$tha) follows the conventions of
// keepalived (vrrp_arp.c) and iputils arping: broadcast for a broadcast request (arping -U), our own
// MAC for a reply (arping -A), the host's MAC for a unicast frame. RFC 5227 2.3 says the announcement's
// tha "is ignored and SHOULD be set to all zeroes"; every receiver we care about ignores it, and
// matching keepalived keeps captures of the two comparable.
void BuildArpFrame(const ArpFrameSpec& spec, uint8_t* out);

// Outcome of SendArp (announce.h).
using ArpSendResult = AnnounceResult;

// Sends one frame on interface `ifindex` (name `ifname` for the ioctls). spec.sourceMac is filled
// from the interface. Needs CAP_NET_RAW (else EPERM from socket).
ArpSendResult SendArp(int ifindex, const std::string& ifname, ArpFrameSpec* spec);

// One IPv4 entry of the neighbour table (RTM_NEWNEIGH, rtnetlink(7) / ip-neighbour(8)).
struct NeighInfo {
  int index = 0;
  in_addr addr{};
  bool hasMac = false;
  uint8_t mac[6] = {};
  uint16_t state = 0;  // NUD_* (include/uapi/linux/neighbour.h)
  uint8_t flags = 0;   // NTF_*
};

// RTM_GETNEIGH dump of AF_INET; when index > 0 only that interface's entries are kept.
NlResult DumpNeighbours(int index, std::vector<NeighInfo>* out);

}  // namespace vipmta
