// What the two netlink binding files share on the JS side: turning an NlResult into a thrown
// error, and an address as the object src/native/netlink.ts expects (netlink_interfaces.cc lists
// interfaces with their addresses; netlink_addresses.cc owns addresses). JS thread only.
#pragma once
#include <string>

#include <napi.h>

#include "errors.h"
#include "netlink.h"

namespace vipmta {

// Throws the failed operation's errno (syscall = the failing call or request, e.g. RTM_NEWADDR)
// with `what` and the kernel's extended-ack text as detail; returns undefined.
inline Napi::Value ThrowNl(Napi::Env env, const NlResult& r, const std::string& what) {
  std::string detail = what;
  if (!r.detail.empty()) detail += detail.empty() ? r.detail : " (" + r.detail + ")";
  return ThrowErrno(env, r.err, r.call, detail);
}

// One AddrInfo as an InterfaceAddress. netlink_addresses.cc.
Napi::Object AddrToJs(Napi::Env env, const AddrInfo& a);

// Registers addAddress and deleteAddress; called by InitNetlink (netlink_interfaces.cc).
void InitNetlinkAddresses(Napi::Env env, Napi::Object exports);

}  // namespace vipmta
