// The rtnetlink client of netlink.h: building a request (NlRequest) and one NETLINK_ROUTE socket
// per operation that sends it and reads the kernel's replies (RtnlSocket), with kernel errors taken
// from NLMSG_ERROR and the extended-ack text. No Napi: runs on whichever thread calls it (JS thread
// or an AsyncWorker); blocks only on the kernel's reply, bounded by a 5 s receive timeout.
#include "netlink.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

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
  // Kernels before 4.12 lack it (ENOPROTOOPT) and we only lose the error text; any other failure
  // is one of the socket itself, reported like the rest.
  if (setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) < 0 && errno != ENOPROTOOPT) {
    return NlResult::Fail(errno, "setsockopt");
  }
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

}  // namespace vipmta
