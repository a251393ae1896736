// A small rtnetlink (NETLINK_ROUTE, rtnetlink(7)) client: one socket per operation, replies matched
// by sequence number, kernel errors from NLMSG_ERROR with the extended-ack text, dumps read to
// NLMSG_DONE (netlink_socket.cc); on it, link queries (netlink_interfaces.cc) and address list/add/
// delete (netlink_addresses.cc). No Napi: callable from the JS thread or an AsyncWorker's Execute().
// Blocks only on the kernel's reply (bounded by a receive timeout); never on the network.
#pragma once
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sockaddr.h"

namespace vipmta {

// The outcome of a netlink operation: err == 0 on success, else a positive errno. `call` names what
// failed (a syscall such as "socket"/"recvmsg", or the request type such as "RTM_NEWADDR" when the
// kernel refused it), `detail` carries the kernel's extended-ack message when there is one.
struct NlResult {
  int err = 0;
  const char* call = "";
  std::string detail;
  bool ok() const { return err == 0; }
  static NlResult Ok() { return NlResult{}; }
  static NlResult Fail(int e, const char* c, std::string d = std::string()) { return NlResult{e, c, std::move(d)}; }
};

// One request message under construction: header, fixed body (ifinfomsg, ifaddrmsg, ...), then
// attributes. Fixed capacity: our requests are a few attributes; Attr() fails rather than grows.
class NlRequest {
 public:
  NlRequest(uint16_t type, uint16_t flags, const void* body, size_t bodyLen);
  bool Attr(uint16_t type, const void* data, size_t len);
  template <typename T>
  bool Attr(uint16_t type, const T& v) { return Attr(type, &v, sizeof v); }
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_); }
  const char* name() const { return name_; }

 private:
  alignas(nlmsghdr) unsigned char buf_[1024];
  const char* name_;
};

// One NETLINK_ROUTE socket. Closed by the destructor on every path.
class RtnlSocket {
 public:
  RtnlSocket() = default;
  ~RtnlSocket();
  RtnlSocket(const RtnlSocket&) = delete;
  RtnlSocket& operator=(const RtnlSocket&) = delete;

  NlResult Open();
  // Sends req with NLM_F_ACK and waits for the ACK; any reply messages before it go to onMessage
  // (a non-dump RTM_GET* answers with one message, then the ACK).
  NlResult Request(NlRequest& req, const std::function<void(const nlmsghdr*)>& onMessage = nullptr);
  // Sends req with NLM_F_DUMP and hands every message to onMessage until NLMSG_DONE. Returns EAGAIN
  // when the kernel flagged the dump as inconsistent (NLM_F_DUMP_INTR): the caller may retry.
  NlResult Dump(NlRequest& req, const std::function<void(const nlmsghdr*)>& onMessage);

 private:
  NlResult Transact(NlRequest& req, bool dump, const std::function<void(const nlmsghdr*)>& onMessage);
  int fd_ = -1;
  uint32_t seq_ = 0;
  std::vector<unsigned char> rx_;
};

// Walks the rtattrs of a reply after its fixed body of `bodyLen` bytes (ifinfomsg, ifaddrmsg, ...),
// calling f(type, data, len) for each.
template <typename F>
void ForEachAttr(const nlmsghdr* h, size_t bodyLen, F&& f) {
  int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(bodyLen));
  if (len < 0) return;
  const auto* rta = reinterpret_cast<const rtattr*>(static_cast<const char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(bodyLen));
  for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) f(rta->rta_type, RTA_DATA(rta), RTA_PAYLOAD(rta));
}

// Dumps are retried when a concurrent change made one inconsistent (NLM_F_DUMP_INTR): it is rare,
// and a retried dump is consistent unless addresses churn continuously.
constexpr int kDumpAttempts = 5;

// ---- interfaces and addresses, as plain C++ data ----------------------------------------------

struct LinkInfo {
  int index = 0;
  std::string name;
  uint32_t mtu = 0;
  std::vector<uint8_t> mac;  // IFLA_ADDRESS; empty when the link has none (tun, ip6tnl, ...)
  unsigned flags = 0;        // IFF_* from ifinfomsg
};

struct AddrInfo {
  int index = 0;
  int family = 0;
  uint8_t addr[16] = {};
  uint8_t prefixLength = 0;
  uint8_t scope = 0;  // RT_SCOPE_*
  bool hasLabel = false;
  std::string label;
  uint32_t flags = 0;  // IFA_FLAGS when present (u32), else ifaddrmsg.ifa_flags (u8)
  int protocol = -1;   // IFA_PROTO, -1 when absent
  bool hasCacheInfo = false;
  uint32_t validLifetime = 0;      // seconds, 0xFFFFFFFF = forever
  uint32_t preferredLifetime = 0;  // seconds, 0xFFFFFFFF = forever
};

// RTM_GETLINK dump (or one link by index when index > 0). netlink_interfaces.cc.
NlResult DumpLinks(int index, std::vector<LinkInfo>* out);
// RTM_GETADDR dump, both families; when index > 0 only that interface's addresses are kept.
// This and the rest: netlink_addresses.cc.
NlResult DumpAddrs(int index, std::vector<AddrInfo>* out);

// What to add or delete. Lifetimes in seconds; kForever is INFINITY_LIFE_TIME (include/net/addrconf.h).
constexpr uint32_t kForever = 0xFFFFFFFFu;
struct AddrChange {
  int index = 0;
  IpAddress addr;
  uint8_t prefixLength = 0;
  uint32_t validLifetime = kForever;
  uint32_t preferredLifetime = kForever;
  int protocol = -1;  // IFA_PROTO (Linux 5.18); -1 = do not send
  std::string label;  // IPv4 only; empty = kernel default (the interface name)
  uint32_t flags = 0; // IFA_F_* (e.g. IFA_F_NODAD)
  bool replace = false;
};

// RTM_NEWADDR. *created is false when the address already existed (EEXIST, only without replace).
NlResult AddAddress(const AddrChange& c, bool* created);
// RTM_DELADDR. *deleted is false when there was nothing to delete (EADDRNOTAVAIL / ENODEV).
NlResult DeleteAddress(const AddrChange& c, bool* deleted);

}  // namespace vipmta
