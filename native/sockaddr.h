// IP address text <-> binary, shared by socket.cc (listeners) and netlink_*.cc (interface addresses).
// Pure functions over inet_pton/inet_ntop plus if_nametoindex for an IPv6 zone; callable from any
// thread (ParseIpAddressOrThrow only on the JS thread). Never blocks.
#pragma once
#include <netinet/in.h>

#include <cstdint>
#include <string>

#include <napi.h>

namespace vipmta {

struct IpAddress {
  int family = 0;  // AF_INET or AF_INET6
  in_addr v4{};
  in6_addr v6{};
  uint32_t scopeId = 0;  // IPv6 zone ("fe80::1%eth0"), 0 when none

  const void* bytes() const { return family == AF_INET ? static_cast<const void*>(&v4) : &v6; }
  int size() const { return family == AF_INET ? 4 : 16; }
};

enum class ParseResult { kOk, kInvalid, kNoSuchInterface };

// Parses "192.0.2.1", "2001:db8::1", "fe80::1%eth0" or "fe80::1%2". No DNS, no inet_aton shorthand.
ParseResult ParseIpAddress(const std::string& text, IpAddress* out);

// inet_ntop plus "%ifname" for a non-zero IPv6 scope; empty string when family is unknown.
std::string FormatIpAddress(int family, const void* addr, uint32_t scopeId);

// ParseIpAddress that throws ERR_INVALID_ADDRESS (malformed) or ENODEV/if_nametoindex (unknown
// zone). Returns false with the exception pending.
bool ParseIpAddressOrThrow(Napi::Env env, const std::string& text, IpAddress* out);

}  // namespace vipmta
