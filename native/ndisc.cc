// Unsolicited Neighbour Advertisements (RFC 4861 7.2.6) for IPv6 DuraVIP takeover: after a failover
// they move every neighbour's cache entry for the address to our MAC at once instead of when it goes
// stale. JS thread (main or worker); each call is one short system call sequence on a fresh raw
// ICMPv6 socket (two ioctls, a few setsockopts, bind, one sendto). Never waits on the network.
// Pacing (how many, how far apart) is policy and lives in TypeScript (src/cluster/arp-schedule.ts).
//
// Why a raw ICMPv6 socket and not an AF_PACKET frame (keepalived's vrrp_ndisc.c builds the whole
// Ethernet + IPv6 frame itself): the kernel computes the ICMPv6 checksum (RFC 3542 3.1), builds the
// IPv6 header, maps ff02::1 to its multicast MAC, and, since we bind the source, refuses an address
// that is not ours or not usable (tentative, dadfailed) with EADDRNOTAVAIL, so we never announce
// an address our own stack would not answer on. The cost: ip6tables OUTPUT sees it, as it sees the
// kernel's own advertisements.
#include "ndisc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <napi.h>

#include "errors.h"

namespace vipmta {

namespace {

// RFC 4861 4.4 flag bits of the Neighbor Advertisement's first word (network order on the wire).
// Solicited is 0x40000000: never set here.
constexpr uint32_t kFlagRouter = 0x80000000u;
constexpr uint32_t kFlagOverride = 0x20000000u;

// /proc/sys/net/ipv6/conf/<ifname>/forwarding of the caller's network namespace: the kernel sets
// the R flag of its own advertisements from it (ndisc_send_unsol_na), and an advertisement with R
// clear makes hosts drop us from their default router list (RFC 4861 7.2.5): match the kernel.
bool Forwarding(const std::string& ifname) {
  std::string path = "/proc/sys/net/ipv6/conf/" + ifname + "/forwarding";
  Fd f;
  f.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) return false;  // IPv6 disabled on the link: the send itself reports that
  char c = '0';
  return read(f.fd, &c, 1) == 1 && c != '0';
}

int SetInt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

}  // namespace

void BuildNeighbourAdvert(const NeighbourAdvertSpec& s, uint8_t* out) {
  memset(out, 0, kNeighbourAdvertLen);
  out[0] = ND_NEIGHBOR_ADVERT;  // type 136
  out[1] = 0;                   // code 0
  // out[2..3]: checksum, filled in by the kernel on a raw ICMPv6 socket (RFC 3542 3.1).
  // RFC 4861 7.2.6: an unsolicited advertisement has Solicited clear, and Override set so that it
  // replaces the link-layer address receivers hold (the dead owner's MAC).
  uint32_t flags = kFlagOverride | (s.router ? kFlagRouter : 0);
  uint32_t wire = htonl(flags);
  memcpy(out + 4, &wire, 4);
  memcpy(out + 8, &s.target, 16);
  // Target Link-Layer Address option (RFC 4861 4.6.1): type 2, length in units of 8 bytes.
  out[24] = ND_OPT_TARGET_LINKADDR;
  out[25] = 1;
  memcpy(out + 26, s.mac, 6);
}

NeighbourAdvertResult SendNeighbourAdvert(int ifindex, const std::string& ifname, NeighbourAdvertSpec* spec) {
  NeighbourAdvertResult r;
  Fd s;
  s.fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (s.fd < 0) return NeighbourAdvertResult{errno, "socket"};

  // An IFF_NOARP link has no neighbour discovery (the kernel skips it there too): nothing to send.
  if (!ReadEtherLink(s.fd, ifname, spec->mac, &r)) return r;
  spec->router = Forwarding(ifname);

  // Receive nothing: a raw ICMPv6 socket gets a copy of every ICMPv6 packet until it is closed.
  icmp6_filter filter;
  ICMP6_FILTER_SETBLOCKALL(&filter);
  if (setsockopt(s.fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) < 0) return NeighbourAdvertResult{errno, "setsockopt(ICMP6_FILTER)"};
  // RFC 4861 7.1.2: receivers drop neighbour discovery whose hop limit is not 255 (proof that it
  // comes from the link). Multicast hops for ff02::1; unicast set too so no path ever sends less.
  if (SetInt(s.fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255) < 0) return NeighbourAdvertResult{errno, "setsockopt(IPV6_MULTICAST_HOPS)"};
  if (SetInt(s.fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255) < 0) return NeighbourAdvertResult{errno, "setsockopt(IPV6_UNICAST_HOPS)"};
  if (SetInt(s.fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex) < 0) return NeighbourAdvertResult{errno, "setsockopt(IPV6_MULTICAST_IF)"};
  // Not back to ourselves: our own stack would only log "advertised our address".
  if (SetInt(s.fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0) < 0) return NeighbourAdvertResult{errno, "setsockopt(IPV6_MULTICAST_LOOP)"};

  // RFC 4861 7.2.6 wants the source to be an address of the interface; the announced one is the
  // obvious choice (receivers use the target, not the source). bind() fails with EADDRNOTAVAIL
  // for an address that is tentative or dadfailed (see the top of this file).
  sockaddr_in6 from{};
  from.sin6_family = AF_INET6;
  from.sin6_addr = spec->target;
  if (IN6_IS_ADDR_LINKLOCAL(&spec->target)) from.sin6_scope_id = static_cast<uint32_t>(ifindex);
  if (bind(s.fd, reinterpret_cast<sockaddr*>(&from), sizeof from) < 0) return NeighbourAdvertResult{errno, "bind"};

  uint8_t msg[kNeighbourAdvertLen];
  BuildNeighbourAdvert(*spec, msg);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);  // all-nodes, RFC 4291 2.7.1
  to.sin6_scope_id = static_cast<uint32_t>(ifindex);
  // ENETUNREACH when the link is down (no multicast route on it), ENODEV when it vanished.
  return SendAnnouncement(s.fd, msg, sizeof msg, reinterpret_cast<sockaddr*>(&to), sizeof to);
}

// ---- JS bindings ------------------------------------------------------------------------------

namespace {

// sendNeighbourAdvertisement(ifname, address) -> true when sent, false when the interface is
// IFF_NOARP (nothing sent).
Napi::Value SendNeighbourAdvertJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    return ThrowType(env, "sendNeighbourAdvertisement(ifname, address): bad arguments");
  }
  std::string ifname = info[0].As<Napi::String>().Utf8Value();
  std::string text = info[1].As<Napi::String>().Utf8Value();
  NeighbourAdvertSpec spec;
  // RFC 4861 7.1.2: the target of an advertisement is never a multicast address.
  if (inet_pton(AF_INET6, text.c_str(), &spec.target) != 1 || IN6_IS_ADDR_MULTICAST(&spec.target) ||
      IN6_IS_ADDR_UNSPECIFIED(&spec.target) || IN6_IS_ADDR_V4MAPPED(&spec.target)) {
    return ThrowCode(env, "ERR_INVALID_ADDRESS", "not a unicast IPv6 address: \"" + text + "\" (Neighbour Advertisements are IPv6 only)");
  }
  unsigned index = (ifname.empty() || ifname.size() >= IF_NAMESIZE) ? 0 : if_nametoindex(ifname.c_str());
  if (index == 0) return ThrowErrno(env, ENODEV, "if_nametoindex", ifname);
  NeighbourAdvertResult r = SendNeighbourAdvert(static_cast<int>(index), ifname, &spec);
  if (r.err != 0) return ThrowErrno(env, r.err, r.call, strcmp(r.call, "bind") == 0 ? text : ifname);
  if (r.notEthernet) {
    return ThrowCode(env, "ERR_NDISC_UNSUPPORTED_LINK", "interface " + ifname + " is not Ethernet: it has no neighbour discovery to announce on");
  }
  return Napi::Boolean::New(env, r.sent);
}

}  // namespace

void InitNdisc(Napi::Env env, Napi::Object exports) {
  exports.Set("sendNeighbourAdvertisement", Napi::Function::New(env, SendNeighbourAdvertJs, "sendNeighbourAdvertisement"));
}

}  // namespace vipmta
