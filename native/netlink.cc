// Interface and address management over rtnetlink: listing links and addresses for listeners and
// the console, adding/removing cluster addresses (tagged with IFA_PROTO as ours) for DuraVIP.
// The core (RtnlSocket, DumpLinks, AddAddress, ...) is plain C++ usable from an AsyncWorker; the
// Napi functions at the bottom are synchronous and short (one or two kernel round trips) and run
// on the calling JS thread, main or worker. They block only on the kernel's netlink reply.
#include "netlink.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include <napi.h>

#include "errors.h"

namespace vipmta {

namespace {

const char* RequestName(uint16_t type) {
  switch (type) {
    case RTM_GETLINK: return "RTM_GETLINK";
    case RTM_GETADDR: return "RTM_GETADDR";
    case RTM_NEWADDR: return "RTM_NEWADDR";
    case RTM_DELADDR: return "RTM_DELADDR";
    default: return "rtnetlink";
  }
}

// The extended ack (netlink(7) NETLINK_EXT_ACK, Linux 4.12) puts a human-readable reason after the
// nlmsgerr, e.g. "Invalid prefix length"; it turns a bare EINVAL into something an operator can act on.
std::string ExtAckMessage(const nlmsghdr* h) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return std::string();
  const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
  // Without NLM_F_CAPPED the kernel echoes our whole request after the error before the TLVs.
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
  const auto* base = reinterpret_cast<const unsigned char*>(h);
  while (off + NLA_HDRLEN <= h->nlmsg_len) {
    const auto* a = reinterpret_cast<const nlattr*>(base + off);
    if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len) break;
    if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const char* s = reinterpret_cast<const char*>(a) + NLA_HDRLEN;
      return std::string(s, strnlen(s, a->nla_len - NLA_HDRLEN));
    }
    off += NLA_ALIGN(a->nla_len);
  }
  return std::string();
}

// Walks the rtattrs after a fixed body of `bodyLen` bytes.
template <typename F>
void ForEachAttr(const nlmsghdr* h, size_t bodyLen, F&& f) {
  int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(bodyLen));
  if (len < 0) return;
  const auto* rta = reinterpret_cast<const rtattr*>(static_cast<const char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(bodyLen));
  for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) f(rta->rta_type, RTA_DATA(rta), RTA_PAYLOAD(rta));
}

}  // namespace

// ---- NlRequest --------------------------------------------------------------------------------

NlRequest::NlRequest(uint16_t type, uint16_t flags, const void* body, size_t bodyLen) : name_(RequestName(type)) {
  memset(buf_, 0, sizeof buf_);
  nlmsghdr* h = hdr();
  h->nlmsg_len = NLMSG_LENGTH(bodyLen);
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | flags;
  if (bodyLen > 0) memcpy(NLMSG_DATA(h), body, bodyLen);
}

bool NlRequest::Attr(uint16_t type, const void* data, size_t len) {
  nlmsghdr* h = hdr();
  size_t at = NLMSG_ALIGN(h->nlmsg_len);
  if (at + RTA_SPACE(len) > sizeof buf_) return false;
  auto* rta = reinterpret_cast<rtattr*>(buf_ + at);
  rta->rta_type = type;
  rta->rta_len = RTA_LENGTH(len);
  if (len > 0) memcpy(RTA_DATA(rta), data, len);
  h->nlmsg_len = at + RTA_SPACE(len);
  return true;
}

// ---- RtnlSocket -------------------------------------------------------------------------------

RtnlSocket::~RtnlSocket() {
  if (fd_ >= 0) close(fd_);
}

NlResult RtnlSocket::Open() {
  // A socket per operation rather than one cached per thread: it costs three syscalls, needs no
  // cleanup hook when a worker thread goes away, and can never read a stale reply of an earlier
  // request that was abandoned halfway.
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) return NlResult::Fail(errno, "socket");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;  // nl_pid 0: the kernel assigns our port id
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return NlResult::Fail(errno, "bind");
  int one = 1;
  // Best effort: kernels before 4.12 lack it and we only lose the error text.
  (void)setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  // The kernel always answers a well-formed request at once; the timeout only bounds a thread's
  // worst case should that ever not hold.
  timeval tv{5, 0};
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) return NlResult::Fail(errno, "setsockopt");
  // netlink(7) advises at least 8 KiB; dumps use up to 32 KiB skbs on large-page kernels, and a
  // truncated datagram would silently lose interfaces, so take 64 KiB once per operation.
  rx_.resize(64 * 1024);
  seq_ = static_cast<uint32_t>(time(nullptr));
  return NlResult::Ok();
}

NlResult RtnlSocket::Request(NlRequest& req, const std::function<void(const nlmsghdr*)>& onMessage) {
  req.hdr()->nlmsg_flags |= NLM_F_ACK;
  return Transact(req, false, onMessage);
}

NlResult RtnlSocket::Dump(NlRequest& req, const std::function<void(const nlmsghdr*)>& onMessage) {
  req.hdr()->nlmsg_flags |= NLM_F_DUMP;
  return Transact(req, true, onMessage);
}

// `dump` only documents intent: both kinds end with a message of our sequence number, NLMSG_DONE
// for a dump and the NLMSG_ERROR ack for a request, so one loop serves both.
NlResult RtnlSocket::Transact(NlRequest& req, bool dump, const std::function<void(const nlmsghdr*)>& onMessage) {
  nlmsghdr* h = req.hdr();
  h->nlmsg_seq = ++seq_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = sendto(fd_, h, h->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return NlResult::Fail(errno, "sendto");

  bool interrupted = false;
  for (;;) {
    sockaddr_nl from{};
    iovec iov{rx_.data(), rx_.size()};
    msghdr mh{};
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    ssize_t n = recvmsg(fd_, &mh, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return NlResult::Fail(errno == EAGAIN ? ETIMEDOUT : errno, "recvmsg");
    }
    if (mh.msg_flags & MSG_TRUNC) return NlResult::Fail(EMSGSIZE, "recvmsg", "netlink reply truncated");
    if (from.nl_pid != 0) continue;  // not from the kernel: ignore

    int len = static_cast<int>(n);
    for (const nlmsghdr* r = reinterpret_cast<const nlmsghdr*>(rx_.data()); NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_seq != h->nlmsg_seq) continue;  // a late reply to something else
      if (r->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
      if (r->nlmsg_type == NLMSG_ERROR) {
        if (r->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return NlResult::Fail(EPROTO, req.name(), "short NLMSG_ERROR");
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(r));
        // error 0 is the ACK (netlink(7)); a negative value is the request's -errno.
        if (e->error == 0) return NlResult::Ok();
        return NlResult::Fail(-e->error, req.name(), ExtAckMessage(r));
      }
      if (r->nlmsg_type == NLMSG_DONE) {
        // A dump's DONE carries an int: a non-zero -errno when the dump failed midway.
        if (r->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
          int err = *static_cast<const int*>(NLMSG_DATA(r));
          if (err < 0) return NlResult::Fail(-err, req.name(), ExtAckMessage(r));
        }
        if (interrupted) return NlResult::Fail(EAGAIN, req.name(), "dump interrupted by a concurrent change");
        return NlResult::Ok();
      }
      if (r->nlmsg_type == NLMSG_NOOP || r->nlmsg_type == NLMSG_OVERRUN) continue;
      if (onMessage) onMessage(r);
    }
  }
}

// ---- links and addresses ----------------------------------------------------------------------

namespace {

void ParseLink(const nlmsghdr* h, std::vector<LinkInfo>* out) {
  if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return;
  const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  LinkInfo l;
  l.index = ifi->ifi_index;
  l.flags = ifi->ifi_flags;
  ForEachAttr(h, sizeof(ifinfomsg), [&](unsigned short type, const void* data, size_t len) {
    switch (type) {
      case IFLA_IFNAME: l.name.assign(static_cast<const char*>(data), strnlen(static_cast<const char*>(data), len)); break;
      case IFLA_MTU: if (len >= 4) memcpy(&l.mtu, data, 4); break;
      case IFLA_ADDRESS: l.mac.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + len); break;
      default: break;
    }
  });
  out->push_back(std::move(l));
}

void ParseAddr(const nlmsghdr* h, int index, std::vector<AddrInfo>* out) {
  if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) return;
  const auto* ifa = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
  if (index > 0 && static_cast<int>(ifa->ifa_index) != index) return;
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) return;
  AddrInfo a;
  a.index = static_cast<int>(ifa->ifa_index);
  a.family = ifa->ifa_family;
  a.prefixLength = ifa->ifa_prefixlen;
  a.scope = ifa->ifa_scope;
  a.flags = ifa->ifa_flags;
  const size_t alen = a.family == AF_INET ? 4 : 16;
  bool haveLocal = false, haveAddress = false;
  ForEachAttr(h, sizeof(ifaddrmsg), [&](unsigned short type, const void* data, size_t len) {
    switch (type) {
      // rtnetlink(7): IFA_LOCAL is our end; IFA_ADDRESS is the peer on point-to-point links and the
      // same as IFA_LOCAL otherwise. IPv6 usually sends only IFA_ADDRESS.
      case IFA_LOCAL:
        if (len == alen) { memcpy(a.addr, data, alen); haveLocal = true; }
        break;
      case IFA_ADDRESS:
        if (len == alen && !haveLocal) { memcpy(a.addr, data, alen); haveAddress = true; }
        break;
      case IFA_LABEL:
        a.hasLabel = true;
        a.label.assign(static_cast<const char*>(data), strnlen(static_cast<const char*>(data), len));
        break;
      case IFA_FLAGS:  // u32 superset of the u8 ifa_flags (Linux 3.14)
        if (len >= 4) memcpy(&a.flags, data, 4);
        break;
      case IFA_CACHEINFO:
        if (len >= sizeof(ifa_cacheinfo)) {
          ifa_cacheinfo ci;
          memcpy(&ci, data, sizeof ci);
          a.hasCacheInfo = true;
          a.validLifetime = ci.ifa_valid;
          a.preferredLifetime = ci.ifa_prefered;
        }
        break;
      case IFA_PROTO:  // u8, Linux 5.18
        if (len >= 1) a.protocol = *static_cast<const uint8_t*>(data);
        break;
      default: break;
    }
  });
  if (!haveLocal && !haveAddress) return;
  out->push_back(std::move(a));
}

// Dumps are retried when a concurrent change made one inconsistent (NLM_F_DUMP_INTR): it is rare,
// and a retried dump is consistent unless addresses churn continuously.
constexpr int kDumpAttempts = 5;

}  // namespace

NlResult DumpLinks(int index, std::vector<LinkInfo>* out) {
  for (int attempt = 0;; attempt++) {
    out->clear();
    RtnlSocket s;
    NlResult r = s.Open();
    if (!r.ok()) return r;
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = index;
    NlRequest req(RTM_GETLINK, 0, &ifi, sizeof ifi);
    // Skip per-VF and statistics blobs we do not read; keeps each message small (iproute2 does this).
    uint32_t mask = RTEXT_FILTER_SKIP_STATS;
    req.Attr(IFLA_EXT_MASK, mask);
    auto on = [&](const nlmsghdr* h) { ParseLink(h, out); };
    r = index > 0 ? s.Request(req, on) : s.Dump(req, on);
    if (r.ok() || r.err != EAGAIN || index > 0 || attempt + 1 >= kDumpAttempts) return r;
  }
}

NlResult DumpAddrs(int index, std::vector<AddrInfo>* out) {
  for (int attempt = 0;; attempt++) {
    out->clear();
    RtnlSocket s;
    NlResult r = s.Open();
    if (!r.ok()) return r;
    ifaddrmsg ifa{};
    ifa.ifa_family = AF_UNSPEC;
    NlRequest req(RTM_GETADDR, 0, &ifa, sizeof ifa);
    r = s.Dump(req, [&](const nlmsghdr* h) { ParseAddr(h, index, out); });
    if (r.ok() || r.err != EAGAIN || attempt + 1 >= kDumpAttempts) return r;
  }
}

namespace {

NlResult AddrRequest(uint16_t type, uint16_t flags, const AddrChange& c) {
  RtnlSocket s;
  NlResult r = s.Open();
  if (!r.ok()) return r;
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<uint8_t>(c.addr.family);
  ifa.ifa_prefixlen = c.prefixLength;
  ifa.ifa_flags = static_cast<uint8_t>(c.flags & 0xff);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(c.index);
  NlRequest req(type, flags, &ifa, sizeof ifa);
  // Like iproute2 without "peer": IFA_LOCAL and IFA_ADDRESS both carry the address.
  bool fits = req.Attr(IFA_LOCAL, c.addr.bytes(), c.addr.size()) && req.Attr(IFA_ADDRESS, c.addr.bytes(), c.addr.size());
  if (type == RTM_NEWADDR) {
    fits = fits && req.Attr(IFA_FLAGS, c.flags);
    ifa_cacheinfo ci{};
    ci.ifa_valid = c.validLifetime;
    ci.ifa_prefered = c.preferredLifetime;
    // Always sent, so a replace can also turn a finite lifetime back into "forever".
    fits = fits && req.Attr(IFA_CACHEINFO, ci);
    if (c.protocol >= 0) fits = fits && req.Attr(IFA_PROTO, static_cast<uint8_t>(c.protocol));
    if (c.addr.family == AF_INET && !c.label.empty()) fits = fits && req.Attr(IFA_LABEL, c.label.c_str(), c.label.size() + 1);
  }
  if (!fits) return NlResult::Fail(EMSGSIZE, req.name(), "request too large");
  return s.Request(req);
}

}  // namespace

NlResult AddAddress(const AddrChange& c, bool* created) {
  *created = false;
  // NLM_F_EXCL makes an existing address an EEXIST instead of a silent success, so we learn that
  // someone (an operator, a crashed earlier run) plumbed it; NLM_F_REPLACE is the lifetime renewal.
  uint16_t flags = NLM_F_CREATE | (c.replace ? NLM_F_REPLACE : NLM_F_EXCL);
  NlResult r = AddrRequest(RTM_NEWADDR, flags, c);
  // Expected: the address is already there (a restart after a crash, or a takeover racing a renewal).
  // Not an error for the caller, who asked for the address to be present.
  if (r.err == EEXIST) return NlResult::Ok();
  if (r.ok()) *created = true;
  return r;
}

NlResult DeleteAddress(const AddrChange& c, bool* deleted) {
  *deleted = false;
  NlResult r = AddrRequest(RTM_DELADDR, 0, c);
  // Expected: EADDRNOTAVAIL means the address is already gone (its valid lifetime ran out, or an
  // operator removed it); ENODEV means the interface itself is gone, taking its addresses with it.
  // Either way the caller's goal, the address not being there, holds.
  if (r.err == EADDRNOTAVAIL || r.err == ENODEV) return NlResult::Ok();
  if (r.ok()) *deleted = true;
  return r;
}

// ---- JS bindings ------------------------------------------------------------------------------

namespace {

Napi::Value ThrowNl(Napi::Env env, const NlResult& r, const std::string& what) {
  std::string detail = what;
  if (!r.detail.empty()) detail += detail.empty() ? r.detail : " (" + r.detail + ")";
  return ThrowErrno(env, r.err, r.call, detail);
}

Napi::Value ScopeValue(Napi::Env env, uint8_t scope) {
  // rtnetlink(7) / include/uapi/linux/rtnetlink.h enum rt_scope_t.
  switch (scope) {
    case RT_SCOPE_UNIVERSE: return Napi::String::New(env, "global");
    case RT_SCOPE_SITE: return Napi::String::New(env, "site");
    case RT_SCOPE_LINK: return Napi::String::New(env, "link");
    case RT_SCOPE_HOST: return Napi::String::New(env, "host");
    case RT_SCOPE_NOWHERE: return Napi::String::New(env, "nowhere");
    default: return Napi::Number::New(env, scope);
  }
}

Napi::Value Lifetime(Napi::Env env, const AddrInfo& a, uint32_t v) {
  if (!a.hasCacheInfo || v == kForever) return env.Null();
  return Napi::Number::New(env, v);
}

Napi::Object AddrToJs(Napi::Env env, const AddrInfo& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", Napi::Number::New(env, a.family == AF_INET ? 4 : 6));
  o.Set("address", FormatIpAddress(a.family, a.addr, 0));
  o.Set("prefixLength", Napi::Number::New(env, a.prefixLength));
  o.Set("scope", ScopeValue(env, a.scope));
  o.Set("label", a.hasLabel ? Napi::Value(Napi::String::New(env, a.label)) : env.Null());
  Napi::Object f = Napi::Object::New(env);
  f.Set("permanent", Napi::Boolean::New(env, a.flags & IFA_F_PERMANENT));
  f.Set("secondary", Napi::Boolean::New(env, a.flags & IFA_F_SECONDARY));
  f.Set("tentative", Napi::Boolean::New(env, a.flags & IFA_F_TENTATIVE));
  f.Set("deprecated", Napi::Boolean::New(env, a.flags & IFA_F_DEPRECATED));
  o.Set("flags", f);
  o.Set("protocol", a.protocol >= 0 ? Napi::Value(Napi::Number::New(env, a.protocol)) : env.Null());
  o.Set("validLifetime", Lifetime(env, a, a.validLifetime));
  o.Set("preferredLifetime", Lifetime(env, a, a.preferredLifetime));
  return o;
}

Napi::Object LinkToJs(Napi::Env env, const LinkInfo& l, const std::vector<AddrInfo>& addrs) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, l.index));
  o.Set("name", l.name);
  o.Set("mtu", Napi::Number::New(env, l.mtu));
  if (l.mac.empty()) {
    o.Set("mac", env.Null());
  } else {
    std::string mac;
    char hex[4];
    for (size_t i = 0; i < l.mac.size(); i++) {
      snprintf(hex, sizeof hex, i == 0 ? "%02x" : ":%02x", l.mac[i]);
      mac += hex;
    }
    o.Set("mac", mac);
  }
  Napi::Object f = Napi::Object::New(env);
  f.Set("up", Napi::Boolean::New(env, l.flags & IFF_UP));
  f.Set("running", Napi::Boolean::New(env, l.flags & IFF_RUNNING));
  f.Set("loopback", Napi::Boolean::New(env, l.flags & IFF_LOOPBACK));
  f.Set("noarp", Napi::Boolean::New(env, l.flags & IFF_NOARP));
  f.Set("broadcast", Napi::Boolean::New(env, l.flags & IFF_BROADCAST));
  f.Set("multicast", Napi::Boolean::New(env, l.flags & IFF_MULTICAST));
  o.Set("flags", f);
  Napi::Array list = Napi::Array::New(env);
  uint32_t n = 0;
  for (const AddrInfo& a : addrs) {
    if (a.index == l.index) list.Set(n++, AddrToJs(env, a));
  }
  o.Set("addresses", list);
  return o;
}

// listInterfaces() -> NetInterface[]
Napi::Value ListInterfaces(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<LinkInfo> links;
  std::vector<AddrInfo> addrs;
  NlResult r = DumpLinks(0, &links);
  if (!r.ok()) return ThrowNl(env, r, "dump");
  r = DumpAddrs(0, &addrs);
  if (!r.ok()) return ThrowNl(env, r, "dump");
  // Two dumps are not one snapshot: an address of a link created between them is dropped, which
  // is what the next listing would show consistently anyway.
  Napi::Array out = Napi::Array::New(env, links.size());
  for (size_t i = 0; i < links.size(); i++) out.Set(static_cast<uint32_t>(i), LinkToJs(env, links[i], addrs));
  return out;
}

// getInterface(name) -> NetInterface
Napi::Value GetInterface(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "getInterface: name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IF_NAMESIZE) return ThrowErrno(env, ENODEV, "if_nametoindex", name);
  unsigned index = if_nametoindex(name.c_str());
  if (index == 0) return ThrowErrno(env, ENODEV, "if_nametoindex", name);
  std::vector<LinkInfo> links;
  std::vector<AddrInfo> addrs;
  NlResult r = DumpLinks(static_cast<int>(index), &links);
  // ENODEV here: the interface went away between if_nametoindex and the request.
  if (!r.ok()) return ThrowNl(env, r, name);
  if (links.empty()) return ThrowErrno(env, ENODEV, "RTM_GETLINK", name);
  r = DumpAddrs(static_cast<int>(index), &addrs);
  if (!r.ok()) return ThrowNl(env, r, name);
  return LinkToJs(env, links[0], addrs);
}

// Reads (ifindex, address, prefixLength) shared by add and delete. False with an exception pending.
bool AddrArgs(const Napi::CallbackInfo& info, const char* fn, AddrChange* c) {
  Napi::Env env = info.Env();
  auto isInt = [](Napi::Value v, double lo, double hi) {
    if (!v.IsNumber()) return false;
    double d = v.As<Napi::Number>().DoubleValue();
    return std::isfinite(d) && std::trunc(d) == d && d >= lo && d <= hi;
  };
  if (info.Length() < 3 || !isInt(info[0], 1, 2147483647)) {
    ThrowType(env, std::string(fn) + ": ifindex must be a positive integer");
    return false;
  }
  if (!info[1].IsString()) {
    ThrowType(env, std::string(fn) + ": address must be a string");
    return false;
  }
  c->index = info[0].As<Napi::Number>().Int32Value();
  if (!ParseIpAddressOrThrow(env, info[1].As<Napi::String>().Utf8Value(), &c->addr)) return false;
  double maxPrefix = c->addr.family == AF_INET ? 32 : 128;
  if (!isInt(info[2], 0, maxPrefix)) {
    ThrowType(env, std::string(fn) + ": prefixLength must be an integer in 0.." + std::to_string(static_cast<int>(maxPrefix)));
    return false;
  }
  c->prefixLength = static_cast<uint8_t>(info[2].As<Napi::Number>().Uint32Value());
  return true;
}

// addAddress(ifindex, address, prefixLength, { validLifetime, preferredLifetime, protocol, label,
// noDad, replace }) -> true when added, false when it already existed.
Napi::Value AddAddressJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddrChange c;
  if (!AddrArgs(info, "addAddress", &c)) return env.Undefined();
  bool noDad = c.addr.family == AF_INET6;
  if (info.Length() >= 4 && info[3].IsObject()) {
    Napi::Object o = info[3].As<Napi::Object>();
    // The facade validates types; here we only guard against values the kernel would misread.
    auto life = [&](const char* key, uint32_t* out) {
      Napi::Value v = o.Get(key);
      if (v.IsNumber()) {
        double d = v.As<Napi::Number>().DoubleValue();
        if (!(d >= 1 && d < kForever)) {
          ThrowType(env, std::string("addAddress: ") + key + " must be 1.." + std::to_string(kForever - 1) + " seconds or null");
          return false;
        }
        *out = static_cast<uint32_t>(d);
      }
      return true;
    };
    if (!life("validLifetime", &c.validLifetime) || !life("preferredLifetime", &c.preferredLifetime)) return env.Undefined();
    // Kernel rule (inet_rtm_newaddr/inet6_rtm_newaddr): preferred may not exceed valid.
    if (c.preferredLifetime > c.validLifetime) c.preferredLifetime = c.validLifetime;
    Napi::Value p = o.Get("protocol");
    if (p.IsNumber()) {
      double d = p.As<Napi::Number>().DoubleValue();
      if (!(d >= 0 && d <= 255 && std::trunc(d) == d)) return ThrowType(env, "addAddress: protocol must be an integer in 0..255");
      c.protocol = static_cast<int>(d);
    }
    Napi::Value l = o.Get("label");
    if (l.IsString()) {
      c.label = l.As<Napi::String>().Utf8Value();
      if (c.label.size() >= IF_NAMESIZE) return ThrowType(env, "addAddress: label must be at most 15 bytes");
    }
    Napi::Value nd = o.Get("noDad");
    if (nd.IsBoolean()) noDad = nd.As<Napi::Boolean>().Value();
    Napi::Value rp = o.Get("replace");
    if (rp.IsBoolean()) c.replace = rp.As<Napi::Boolean>().Value();
  }
  // RFC 4862 5.4: duplicate address detection would keep a taken-over address tentative (unusable
  // as a source) for about a second; the cluster election already guarantees a single owner.
  if (noDad && c.addr.family == AF_INET6) c.flags |= IFA_F_NODAD;
  bool created = false;
  NlResult r = AddAddress(c, &created);
  if (!r.ok()) return ThrowNl(env, r, info[1].As<Napi::String>().Utf8Value() + "/" + std::to_string(c.prefixLength));
  return Napi::Boolean::New(env, created);
}

// deleteAddress(ifindex, address, prefixLength) -> true when deleted, false when it was not there.
Napi::Value DeleteAddressJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddrChange c;
  if (!AddrArgs(info, "deleteAddress", &c)) return env.Undefined();
  bool deleted = false;
  NlResult r = DeleteAddress(c, &deleted);
  if (!r.ok()) return ThrowNl(env, r, info[1].As<Napi::String>().Utf8Value() + "/" + std::to_string(c.prefixLength));
  return Napi::Boolean::New(env, deleted);
}

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("listInterfaces", Napi::Function::New(env, ListInterfaces, "listInterfaces"));
  exports.Set("getInterface", Napi::Function::New(env, GetInterface, "getInterface"));
  exports.Set("addAddress", Napi::Function::New(env, AddAddressJs, "addAddress"));
  exports.Set("deleteAddress", Napi::Function::New(env, DeleteAddressJs, "deleteAddress"));
}

}  // namespace vipmta
