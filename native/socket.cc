// Listening TCP sockets for SMTP and ECCluster listeners: one SO_REUSEPORT socket per worker when
// asked (IP_FREEBIND too, for DuraVIPs only), and a bind-only probe that tells whether another program
// holds an address:port before the workers share it. Synchronous and short
// (socket, setsockopt, bind, listen, getsockname never wait on the network): called on the JS thread
// of whichever thread owns the listener, main or worker. The fd is handed to net.Server.listen({ fd }).
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include <napi.h>

#include "errors.h"
#include "sockaddr.h"

namespace vipmta {

// ---- address parsing (shared with netlink_*.cc through sockaddr.h) ------------------------------

ParseResult ParseIpAddress(const std::string& text, IpAddress* out) {
  *out = IpAddress{};
  std::string host = text;
  std::string scope;
  size_t pct = host.find('%');
  if (pct != std::string::npos) {
    scope = host.substr(pct + 1);
    host.resize(pct);
    if (scope.empty()) return ParseResult::kInvalid;
  }
  // inet_pton(3) rejects leading/trailing junk and the shorthand forms inet_aton accepts
  // ("127.1", "0x7f.1"), so "1.2.3.4 " or "localhost" are invalid rather than surprising.
  if (scope.empty() && inet_pton(AF_INET, host.c_str(), &out->v4) == 1) {
    out->family = AF_INET;
    return ParseResult::kOk;
  }
  if (inet_pton(AF_INET6, host.c_str(), &out->v6) != 1) return ParseResult::kInvalid;
  out->family = AF_INET6;
  if (scope.empty()) return ParseResult::kOk;
  // RFC 4007 11.2: the zone id after '%' is an interface name or a numeric index.
  char* end = nullptr;
  errno = 0;
  unsigned long idx = strtoul(scope.c_str(), &end, 10);
  if (end != nullptr && *end == '\0' && errno == 0 && idx > 0 && idx <= 0xffffffffUL) {
    out->scopeId = static_cast<uint32_t>(idx);
    return ParseResult::kOk;
  }
  out->scopeId = if_nametoindex(scope.c_str());
  if (out->scopeId == 0) return ParseResult::kNoSuchInterface;
  return ParseResult::kOk;
}

std::string FormatIpAddress(int family, const void* addr, uint32_t scopeId) {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (inet_ntop(family, addr, buf, INET6_ADDRSTRLEN) == nullptr) return std::string();
  std::string s(buf);
  if (family == AF_INET6 && scopeId != 0) {
    char name[IF_NAMESIZE];
    s += '%';
    s += if_indextoname(scopeId, name) != nullptr ? std::string(name) : std::to_string(scopeId);
  }
  return s;
}

// Validates text as an address and throws the matching JS error when it is not one. Returns false
// when an exception is pending.
bool ParseIpAddressOrThrow(Napi::Env env, const std::string& text, IpAddress* out) {
  switch (ParseIpAddress(text, out)) {
    case ParseResult::kOk:
      return true;
    case ParseResult::kInvalid:
      ThrowCode(env, "ERR_INVALID_ADDRESS", "not an IPv4 or IPv6 address: \"" + text + "\"");
      return false;
    case ParseResult::kNoSuchInterface:
      // The zone names an interface this machine does not have (now): an operational error, like
      // getInterface() on an absent name, not a malformed address.
      ThrowErrno(env, ENODEV, "if_nametoindex", text);
      return false;
  }
  return false;
}

namespace {

// Reads an optional boolean property; returns false when an exception is pending.
bool OptBool(Napi::Env env, const std::string& fn, const Napi::Object& o, const char* key, bool dflt, bool* out) {
  Napi::Value v = o.Get(key);
  if (env.IsExceptionPending()) return false;
  if (v.IsUndefined() || v.IsNull()) {
    *out = dflt;
    return true;
  }
  if (!v.IsBoolean()) {
    ThrowType(env, fn + ": " + key + " must be a boolean");
    return false;
  }
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

// Reads an integer property in [lo, hi]; returns false when an exception is pending.
bool IntInRange(Napi::Env env, Napi::Value v, const char* what, double lo, double hi, int64_t* out) {
  if (!v.IsNumber()) {
    ThrowType(env, std::string(what) + " must be an integer");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || d < lo || d > hi) {
    // A TypeError, as the brief asks (Node's net uses a RangeError for ERR_SOCKET_BAD_PORT); the
    // code is Node's ERR_INVALID_ARG_VALUE, which Node also raises as a TypeError.
    Napi::TypeError te = Napi::TypeError::New(
        env, std::string(what) + " must be an integer in " + std::to_string(static_cast<int64_t>(lo)) +
                 ".." + std::to_string(static_cast<int64_t>(hi)) + ", got " + v.ToString().Utf8Value());
    te.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
    te.ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

// Closes fd keeping errno: used on error paths so the errno we report is the one that failed.
void CloseKeepErrno(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

int SetInt(int fd, int level, int opt, int value) {
  return setsockopt(fd, level, opt, &value, sizeof value);
}

// What listenTcp and probeBind read from their options object, and the address to bind.
struct BindRequest {
  std::string host;
  int64_t port = 0;
  int64_t backlog = 511;
  bool reusePort = false;
  bool freeBind = false;
  bool v6Only = true;
  bool reuseAddr = true;  // off only for holdPort
  int family = AF_INET;
  sockaddr_storage ss{};
  socklen_t sslen = 0;
};

// Reads { host, port, backlog?, reusePort?, freeBind?, v6Only? } into req; returns false when an
// exception is pending. Makes no syscall: a malformed address is a programmer/config error and must
// not cost a socket (nor leak one).
bool ReadBindRequest(const Napi::CallbackInfo& info, const char* fn, BindRequest* req) {
  Napi::Env env = info.Env();
  const std::string f(fn);
  if (info.Length() < 1 || !info[0].IsObject()) {
    ThrowType(env, f + ": options must be an object");
    return false;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value hostV = o.Get("host");
  if (env.IsExceptionPending()) return false;
  if (!hostV.IsString()) {
    ThrowType(env, f + ": host must be a string");
    return false;
  }
  req->host = hostV.As<Napi::String>().Utf8Value();
  if (!IntInRange(env, o.Get("port"), (f + ": port").c_str(), 0, 65535, &req->port)) return false;
  // 511 is Node's and nginx's default; the kernel silently caps it at net.core.somaxconn.
  Napi::Value backlogV = o.Get("backlog");
  if (!backlogV.IsUndefined() && !backlogV.IsNull() &&
      !IntInRange(env, backlogV, (f + ": backlog").c_str(), 0, 2147483647, &req->backlog)) {
    return false;
  }
  // Exclusive unless asked: a port is shared only among sockets that all opted in, and only a
  // DuraVIP may be bound before it is on this host (issue 12).
  if (!OptBool(env, f, o, "reusePort", false, &req->reusePort)) return false;
  if (!OptBool(env, f, o, "freeBind", false, &req->freeBind)) return false;
  if (!OptBool(env, f, o, "v6Only", true, &req->v6Only)) return false;

  IpAddress addr;
  if (!ParseIpAddressOrThrow(env, req->host, &addr)) return false;
  req->family = addr.family;
  if (addr.family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&req->ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(req->port));
    sin->sin_addr = addr.v4;
    req->sslen = sizeof *sin;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&req->ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(req->port));
    sin6->sin6_addr = addr.v6;
    sin6->sin6_scope_id = addr.scopeId;
    req->sslen = sizeof *sin6;
  }
  return true;
}

// socket + options + bind. Returns the bound fd, or -1 with the JS error thrown and no fd open.
int OpenBound(Napi::Env env, const BindRequest& req) {
  // SOCK_CLOEXEC: children we spawn (sendmail-compatible pipes, tests) must not inherit listeners.
  // SOCK_NONBLOCK: libuv expects it and would otherwise set it itself with one more syscall.
  int fd = socket(req.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) {
    ThrowErrno(env, errno, "socket", req.host);
    return -1;
  }
  // socket(7): SO_REUSEADDR lets us rebind while old connections sit in TIME_WAIT after a restart.
  // It never lets us bind next to another listening socket (Linux refuses that unless both set
  // SO_REUSEPORT), so it does not weaken the exclusivity below.
  if (req.reuseAddr && SetInt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) {
    CloseKeepErrno(fd);
    ThrowErrno(env, errno, "setsockopt", "SO_REUSEADDR");
    return -1;
  }
  // socket(7): SO_REUSEPORT lets each worker own its own accept queue on the same ip:port; the
  // kernel spreads new connections over them by hash. Every socket in the group must set it and
  // belong to the same effective uid -- which is also the limit of its protection: any process of
  // our uid that sets it can join. Callers check with probeBind first that nobody else holds the port.
  if (req.reusePort && SetInt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) {
    CloseKeepErrno(fd);
    ThrowErrno(env, errno, "setsockopt", "SO_REUSEPORT");
    return -1;
  }
  if (req.family == AF_INET6) {
    // ipv6(7): IPV6_V6ONLY keeps "::" from also taking the IPv4 port, so a v4 listener on the same
    // port can coexist; the sysctl default (bindv6only=0) would make it dual-stack.
    if (SetInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, req.v6Only ? 1 : 0) < 0) {
      CloseKeepErrno(fd);
      ThrowErrno(env, errno, "setsockopt", "IPV6_V6ONLY");
      return -1;
    }
  }
  if (req.freeBind) {
    // ip(7) IP_FREEBIND / ipv6(7) IPV6_FREEBIND (Linux 4.15): bind to an address that is not (yet)
    // on any interface. Only for DuraVIPs: every node listens on every cluster address, and the
    // socket starts receiving as soon as this node plumbs the address, with no listener restart.
    // Any other address must be on the host, so a typo fails with EADDRNOTAVAIL instead of a
    // listener that never receives anything.
    int rc = req.family == AF_INET ? SetInt(fd, IPPROTO_IP, IP_FREEBIND, 1)
                                   : SetInt(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1);
    if (rc < 0) {
      CloseKeepErrno(fd);
      ThrowErrno(env, errno, "setsockopt", req.family == AF_INET ? "IP_FREEBIND" : "IPV6_FREEBIND");
      return -1;
    }
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&req.ss), req.sslen) < 0) {
    CloseKeepErrno(fd);
    // EADDRINUSE: a listening socket overlaps (same address, or either is a wildcard) and not both
    // set SO_REUSEPORT with one uid; EADDRNOTAVAIL: not a local address and no freeBind; EACCES:
    // port < 1024 without CAP_NET_BIND_SERVICE.
    ThrowErrno(env, errno, "bind", req.host + " port " + std::to_string(req.port));
    return -1;
  }
  return fd;
}

// listenTcp({ host, port, backlog?, reusePort?, freeBind?, v6Only? }) -> fd
Napi::Value ListenTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BindRequest req;
  if (!ReadBindRequest(info, "listenTcp", &req)) return env.Undefined();
  int fd = OpenBound(env, req);
  if (fd < 0) return env.Undefined();
  if (listen(fd, static_cast<int>(req.backlog)) < 0) {
    CloseKeepErrno(fd);
    // EADDRINUSE here: two SO_REUSEPORT sockets bound to port 0 and one got the other's port, or a
    // listener without SO_REUSEPORT appeared between bind and listen.
    return ThrowErrno(env, errno, "listen", req.host + " port " + std::to_string(req.port));
  }
  return Napi::Number::New(env, fd);
}

// probeBind({ host, port, freeBind?, v6Only? }) -> undefined. Binds without SO_REUSEPORT and
// closes again, never listening: a connection cannot land on the probe. Throws what bind threw.
Napi::Value ProbeBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BindRequest req;
  if (!ReadBindRequest(info, "probeBind", &req)) return env.Undefined();
  if (req.reusePort) return ThrowType(env, "probeBind: reusePort must not be set (the probe must be exclusive)");
  int fd = OpenBound(env, req);
  if (fd < 0) return env.Undefined();
  close(fd);
  return env.Undefined();
}

bool FdArg(const Napi::CallbackInfo& info, const char* fn, int* fd) {
  int64_t v = 0;
  if (info.Length() < 1) {
    ThrowType(info.Env(), std::string(fn) + ": fd must be an integer");
    return false;
  }
  if (!IntInRange(info.Env(), info[0], (std::string(fn) + ": fd").c_str(), 0, 2147483647, &v)) return false;
  *fd = static_cast<int>(v);
  return true;
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!FdArg(info, "closeFd", &fd)) return env.Undefined();
  // close(2): on Linux the fd is released even when close fails with EINTR; retrying could close
  // an fd another thread just opened. So EINTR is success, anything else (EBADF) is reported.
  if (close(fd) < 0 && errno != EINTR) return ThrowErrno(env, errno, "close", "fd " + std::to_string(fd));
  return env.Undefined();
}

Napi::Value SocketLocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!FdArg(info, "socketLocalAddress", &fd)) return env.Undefined();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
    return ThrowErrno(env, errno, "getsockname", "fd " + std::to_string(fd));
  }
  Napi::Object out = Napi::Object::New(env);
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    out.Set("address", FormatIpAddress(AF_INET, &sin->sin_addr, 0));
    out.Set("port", Napi::Number::New(env, ntohs(sin->sin_port)));
    out.Set("family", Napi::Number::New(env, 4));
  } else if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    out.Set("address", FormatIpAddress(AF_INET6, &sin6->sin6_addr, sin6->sin6_scope_id));
    out.Set("port", Napi::Number::New(env, ntohs(sin6->sin6_port)));
    out.Set("family", Napi::Number::New(env, 6));
  } else {
    // A unix or packet socket: not something listenTcp made.
    return ThrowErrno(env, EAFNOSUPPORT, "getsockname", "fd " + std::to_string(fd) + " is not an IP socket");
  }
  return out;
}

// holdPort({ host, port, freeBind?, v6Only? }) -> fd. A bound socket that never listens, with
// SO_REUSEPORT and without SO_REUSEADDR: while it is open, Linux refuses every other bind of the
// address:port (a probe, a plain listener) except SO_REUSEPORT sockets of our uid -- our workers.
// Without SO_REUSEADDR a bind that sets it cannot pass it as "both reuse, neither listening".
Napi::Value HoldPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BindRequest req;
  if (!ReadBindRequest(info, "holdPort", &req)) return env.Undefined();
  req.reusePort = true;
  req.reuseAddr = false;
  int fd = OpenBound(env, req);
  if (fd < 0) return env.Undefined();
  return Napi::Number::New(env, fd);
}

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("listenTcp", Napi::Function::New(env, ListenTcp, "listenTcp"));
  exports.Set("probeBind", Napi::Function::New(env, ProbeBind, "probeBind"));
  exports.Set("holdPort", Napi::Function::New(env, HoldPort, "holdPort"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("socketLocalAddress", Napi::Function::New(env, SocketLocalAddress, "socketLocalAddress"));
}

}  // namespace vipmta
