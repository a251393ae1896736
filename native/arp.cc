// Gratuitous and unicast ARP (RFC 826, RFC 5227 2.3 announcements) from a raw AF_PACKET socket, and
// the IPv4 neighbour table over rtnetlink, for DuraVIP failover, Arp_All_Hosts and `cluster arp show`.
// JS thread (main or worker); each call is one short system call sequence: a fresh packet socket,
// two ioctls and one sendto, or one netlink dump. Never waits on the network. Pacing (how many
// frames, how far apart) is policy and lives in TypeScript.
#include "arp.h"

#include <arpa/inet.h>
#include <net/if_arp.h>
#include <linux/if_ether.h>
#include <netpacket/packet.h>
#include <linux/neighbour.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <napi.h>

#include "errors.h"

namespace vipmta {

namespace {

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

}  // namespace

void BuildArpFrame(const ArpFrameSpec& s, uint8_t* out) {
  // Ethernet II header (IEEE 802.3 / RFC 894): destination, source, EtherType 0x0806.
  memcpy(out, s.destMac, 6);
  memcpy(out + 6, s.sourceMac, 6);
  Put16(out + 12, ETH_P_ARP);
  uint8_t* a = out + 14;
  Put16(a + 0, ARPHRD_ETHER);  // ar$hrd: 1 = Ethernet (RFC 826)
  Put16(a + 2, ETH_P_IP);      // ar$pro: 0x0800 = IPv4
  a[4] = 6;                    // ar$hln
  a[5] = 4;                    // ar$pln
  Put16(a + 6, static_cast<uint16_t>(s.op));
  memcpy(a + 8, s.sourceMac, 6);   // ar$sha
  memcpy(a + 14, &s.senderIp, 4);  // ar$spa
  // ar$tha, see arp.h: keepalived / arping conventions.
  if (s.unicast) {
    memcpy(a + 18, s.destMac, 6);
  } else if (s.op == ArpOp::kReply) {
    memcpy(a + 18, s.sourceMac, 6);
  } else {
    memset(a + 18, 0xff, 6);
  }
  memcpy(a + 24, &s.targetIp, 4);  // ar$tpa
}

ArpSendResult SendArp(int ifindex, const std::string& ifname, ArpFrameSpec* spec) {
  ArpSendResult r;
  Fd s;
  // Protocol 0: this socket receives nothing (packet(7)), so no frames queue up on it while it lives.
  s.fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (s.fd < 0) return ArpSendResult{errno, "socket"};

  // An IFF_NOARP link (ip link set dev X arp off) must not speak ARP; keepalived skips it too.
  if (!ReadEtherLink(s.fd, ifname, spec->sourceMac, &r)) return r;

  uint8_t frame[kArpFrameLen];
  BuildArpFrame(*spec, frame);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  memcpy(to.sll_addr, spec->destMac, 6);
  // ENETDOWN when the link is down, ENXIO when it vanished.
  return SendAnnouncement(s.fd, frame, sizeof frame, reinterpret_cast<sockaddr*>(&to), sizeof to);
}

NlResult DumpNeighbours(int index, std::vector<NeighInfo>* out) {
  RtnlSocket s;
  NlResult r = s.Open();
  if (!r.ok()) return r;
  ndmsg nd{};
  nd.ndm_family = AF_INET;
  NlRequest req(RTM_GETNEIGH, NLM_F_REQUEST, &nd, sizeof nd);
  return s.Dump(req, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWNEIGH || h->nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg))) return;
    const auto* m = static_cast<const ndmsg*>(NLMSG_DATA(h));
    if (m->ndm_family != AF_INET) return;
    if (index > 0 && m->ndm_ifindex != index) return;
    NeighInfo n;
    n.index = m->ndm_ifindex;
    n.state = m->ndm_state;
    n.flags = m->ndm_flags;
    bool hasDst = false;
    int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ndmsg)));
    for (const rtattr* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(m) + NLMSG_ALIGN(sizeof(ndmsg)));
         RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      size_t alen = RTA_PAYLOAD(a);
      if (a->rta_type == NDA_DST && alen == 4) {
        memcpy(&n.addr, RTA_DATA(a), 4);
        hasDst = true;
      } else if (a->rta_type == NDA_LLADDR && alen == 6) {
        memcpy(n.mac, RTA_DATA(a), 6);
        n.hasMac = true;
      }
    }
    if (hasDst) out->push_back(n);
  });
}

// ---- JS bindings ------------------------------------------------------------------------------

namespace {

bool ParseMac(const std::string& text, uint8_t out[6]) {
  unsigned v[6];
  char tail;
  if (text.size() != 17) return false;
  if (sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6) return false;
  for (int i = 0; i < 6; i++) out[i] = static_cast<uint8_t>(v[i]);
  return true;
}

std::string FormatMac(const uint8_t* m) {
  char buf[18];
  snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

bool ParseV4OrThrow(Napi::Env env, Napi::Value v, const char* what, in_addr* out) {
  if (!v.IsString()) {
    ThrowType(env, std::string("sendArp: ") + what + " must be a string");
    return false;
  }
  std::string text = v.As<Napi::String>().Utf8Value();
  if (inet_pton(AF_INET, text.c_str(), out) != 1) {
    ThrowCode(env, "ERR_INVALID_ADDRESS", std::string("not an IPv4 address: \"") + text + "\" (ARP is IPv4 only)");
    return false;
  }
  return true;
}

// Resolves an interface name; false with ENODEV pending (same shape as getInterface()).
bool IfIndexOrThrow(Napi::Env env, const std::string& name, int* index) {
  unsigned i = (name.empty() || name.size() >= IF_NAMESIZE) ? 0 : if_nametoindex(name.c_str());
  if (i == 0) {
    ThrowErrno(env, ENODEV, "if_nametoindex", name);
    return false;
  }
  *index = static_cast<int>(i);
  return true;
}

// sendArp(ifname, address, { op: 'request'|'reply', destMac: string|null, targetAddress: string|null })
//   -> true when sent, false when the interface is IFF_NOARP (nothing sent).
Napi::Value SendArpJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[2].IsObject()) {
    return ThrowType(env, "sendArp(ifname, address, options): bad arguments");
  }
  std::string ifname = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[2].As<Napi::Object>();
  ArpFrameSpec spec;
  if (!ParseV4OrThrow(env, info[1], "address", &spec.senderIp)) return env.Undefined();
  spec.targetIp = spec.senderIp;

  Napi::Value op = o.Get("op");
  std::string ops = op.IsString() ? op.As<Napi::String>().Utf8Value() : "";
  if (ops == "request") spec.op = ArpOp::kRequest;
  else if (ops == "reply") spec.op = ArpOp::kReply;
  else return ThrowType(env, "sendArp: op must be \"request\" or \"reply\"");

  Napi::Value dest = o.Get("destMac");
  if (!dest.IsNull() && !dest.IsUndefined()) {
    std::string text = dest.IsString() ? dest.As<Napi::String>().Utf8Value() : "";
    if (!ParseMac(text, spec.destMac)) {
      return ThrowCode(env, "ERR_INVALID_MAC", "not a MAC address (aa:bb:cc:dd:ee:ff): \"" + text + "\"");
    }
    static const uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    spec.unicast = memcmp(spec.destMac, kBroadcast, 6) != 0;
  }
  Napi::Value target = o.Get("targetAddress");
  if (!target.IsNull() && !target.IsUndefined()) {
    if (!ParseV4OrThrow(env, target, "targetAddress", &spec.targetIp)) return env.Undefined();
  }

  int index = 0;
  if (!IfIndexOrThrow(env, ifname, &index)) return env.Undefined();
  ArpSendResult r = SendArp(index, ifname, &spec);
  if (r.err != 0) return ThrowErrno(env, r.err, r.call, ifname);
  if (r.notEthernet) {
    return ThrowCode(env, "ERR_ARP_UNSUPPORTED_LINK", "interface " + ifname + " is not Ethernet: it has no ARP to send");
  }
  return Napi::Boolean::New(env, r.sent);
}

const char* NudName(uint16_t state) {
  switch (state) {
    case NUD_INCOMPLETE: return "incomplete";
    case NUD_REACHABLE: return "reachable";
    case NUD_STALE: return "stale";
    case NUD_DELAY: return "delay";
    case NUD_PROBE: return "probe";
    case NUD_FAILED: return "failed";
    case NUD_NOARP: return "noarp";
    case NUD_PERMANENT: return "permanent";
    case NUD_NONE: return "none";
    default: return nullptr;
  }
}

// listNeighbours(ifname | null) -> [{ ifindex, interface, address, mac, state, router }]
Napi::Value ListNeighboursJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int index = 0;
  if (info.Length() >= 1 && info[0].IsString()) {
    if (!IfIndexOrThrow(env, info[0].As<Napi::String>().Utf8Value(), &index)) return env.Undefined();
  } else if (info.Length() >= 1 && !info[0].IsNull() && !info[0].IsUndefined()) {
    return ThrowType(env, "listNeighbours: interface must be a string or null");
  }
  std::vector<NeighInfo> list;
  NlResult r;
  // NLM_F_DUMP_INTR: the table changed under the dump; a second try almost always succeeds.
  for (int attempt = 0; attempt < 3; attempt++) {
    list.clear();
    r = DumpNeighbours(index, &list);
    if (r.err != EAGAIN) break;
  }
  if (!r.ok()) return ThrowErrno(env, r.err, r.call, r.detail);
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    const NeighInfo& n = list[i];
    Napi::Object e = Napi::Object::New(env);
    char name[IF_NAMESIZE] = {};
    char addr[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &n.addr, addr, sizeof addr);
    e.Set("ifindex", Napi::Number::New(env, n.index));
    e.Set("interface", if_indextoname(static_cast<unsigned>(n.index), name) != nullptr ? Napi::Value(Napi::String::New(env, name)) : env.Null());
    e.Set("address", Napi::String::New(env, addr));
    e.Set("mac", n.hasMac ? Napi::Value(Napi::String::New(env, FormatMac(n.mac))) : env.Null());
    const char* st = NudName(n.state);
    e.Set("state", st != nullptr ? Napi::Value(Napi::String::New(env, st)) : Napi::Value(Napi::Number::New(env, n.state)));
    e.Set("router", Napi::Boolean::New(env, (n.flags & NTF_ROUTER) != 0));
    out.Set(static_cast<uint32_t>(i), e);
  }
  return out;
}

}  // namespace

void InitArp(Napi::Env env, Napi::Object exports) {
  exports.Set("sendArp", Napi::Function::New(env, SendArpJs, "sendArp"));
  exports.Set("listNeighbours", Napi::Function::New(env, ListNeighboursJs, "listNeighbours"));
}

}  // namespace vipmta
