// What both address announcements share: gratuitous ARP (arp.cc) and unsolicited Neighbour
// Advertisements (ndisc.cc) report one send the same way and read the link they go out on the same
// way. Plain C++; a few ioctls on a socket the caller opened, never blocking.
#pragma once
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace vipmta {

// Closes a socket or file on every path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// Outcome of one announcement: err == 0 and sent == false means the interface has IFF_NOARP (it
// takes part in neither ARP nor neighbour discovery, the kernel skips it too), so nothing was sent.
struct AnnounceResult {
  int err = 0;
  const char* call = "";
  bool sent = false;
  bool notEthernet = false;  // loopback, tun, ...: no link-layer address to announce
};

// Reads the link's flags and Ethernet address through `fd` (any socket) into `mac`. False when the
// caller must stop and return `*r` as it is: an ioctl failed, the link is IFF_NOARP, or it is not
// Ethernet. `ifname` is shorter than IFNAMSIZ (the caller checked).
inline bool ReadEtherLink(int fd, const std::string& ifname, uint8_t mac[6], AnnounceResult* r) {
  ifreq ifr{};
  memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
    *r = AnnounceResult{errno, "ioctl(SIOCGIFFLAGS)"};
    return false;
  }
  if (ifr.ifr_flags & IFF_NOARP) return false;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
    *r = AnnounceResult{errno, "ioctl(SIOCGIFHWADDR)"};
    return false;
  }
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
    r->notEthernet = true;
    return false;
  }
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  return true;
}

// Sends one datagram or frame to `to` (retrying an interrupted call) and fills `*r`: sent, or the
// errno of sendto (the link down or gone is operational, for the caller), EIO for a short send.
inline AnnounceResult SendAnnouncement(int fd, const uint8_t* buf, size_t len, const sockaddr* to, socklen_t tolen) {
  ssize_t n;
  do {
    n = sendto(fd, buf, len, 0, to, tolen);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return AnnounceResult{errno, "sendto"};
  if (static_cast<size_t>(n) != len) return AnnounceResult{EIO, "sendto"};
  AnnounceResult r;
  r.sent = true;
  return r;
}

}  // namespace vipmta
