// IP addresses over rtnetlink: the RTM_GETADDR dump (both families) and adding/removing cluster
// addresses (tagged with IFA_PROTO as ours) for DuraVIP with RTM_NEWADDR/RTM_DELADDR, plus the JS
// functions addAddress() and deleteAddress(). The plain C++ part is usable from an AsyncWorker; the
// Napi functions run synchronously on the calling JS thread, main or worker, and block only on the
// kernel's reply (one round trip each).
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include <napi.h>

#include "errors.h"
#include "netlink.h"
#include "netlink_js.h"

namespace vipmta {

namespace {

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

}  // namespace

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

}  // namespace

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

namespace {

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

void InitNetlinkAddresses(Napi::Env env, Napi::Object exports) {
  exports.Set("addAddress", Napi::Function::New(env, AddAddressJs, "addAddress"));
  exports.Set("deleteAddress", Napi::Function::New(env, DeleteAddressJs, "deleteAddress"));
}

}  // namespace vipmta
