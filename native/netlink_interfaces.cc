// Link (interface) queries over rtnetlink: RTM_GETLINK for one link or all, and the JS functions
// listInterfaces() and getInterface(name) that join each link with its addresses (DumpAddrs,
// netlink_addresses.cc). Also registers the module's JS functions (InitNetlink). The Napi functions
// run synchronously on the calling JS thread, main or worker, and block only on the kernel's reply.
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <napi.h>

#include "errors.h"
#include "netlink.h"
#include "netlink_js.h"

namespace vipmta {

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
    if (!req.Attr(IFLA_EXT_MASK, mask)) return NlResult::Fail(EMSGSIZE, req.name(), "request too large");
    auto on = [&](const nlmsghdr* h) { ParseLink(h, out); };
    r = index > 0 ? s.Request(req, on) : s.Dump(req, on);
    if (r.ok() || r.err != EAGAIN || index > 0 || attempt + 1 >= kDumpAttempts) return r;
  }
}

// ---- JS bindings ------------------------------------------------------------------------------

namespace {

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
  errno = 0;
  unsigned index = if_nametoindex(name.c_str());
  // glibc answers ENODEV for an unknown name; anything else (EMFILE, ENOBUFS: it opens a socket
  // for the ioctl) is reported as itself, not as a missing interface.
  if (index == 0) return ThrowErrno(env, errno != 0 ? errno : ENODEV, "if_nametoindex", name);
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

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("listInterfaces", Napi::Function::New(env, ListInterfaces, "listInterfaces"));
  exports.Set("getInterface", Napi::Function::New(env, GetInterface, "getInterface"));
  InitNetlinkAddresses(env, exports);
}

}  // namespace vipmta
