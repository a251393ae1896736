// File I/O helpers of the spool engine (see spool_file.h). Any thread; they block on the file
// system only and report every failure as an errno.
#include "spool_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

namespace vipmta::spool {
namespace {

std::string Hex16(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

std::string SegPath(const std::string& dir, uint64_t no) { return dir + "/seg-" + Hex16(no) + ".spool"; }
std::string JrnPath(const std::string& dir, uint64_t no) { return dir + "/journal-" + Hex16(no) + ".log"; }
std::string Base(const std::string& path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

bool ParseNumbered(const char* name, const char* prefix, const char* suffix, uint64_t* no) {
  size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(name);
  if (n != pl + 16 + sl || strncmp(name, prefix, pl) != 0 || strcmp(name + pl + 16, suffix) != 0) return false;
  uint64_t v = 0;
  for (size_t i = pl; i < pl + 16; i++) {
    char c = name[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v * 16 + d;
  }
  *no = v;
  return true;
}

bool IsZero(const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    if (v != 0) return false;
    p += 8;
    n -= 8;
  }
  while (n--)
    if (*p++ != 0) return false;
  return true;
}

int PwriteAll(int fd, const uint8_t* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= w;
    off += w;
  }
  return 0;
}

// Writes every iovec at off, across IOV_MAX and short writes. iov is consumed (adjusted).
int PwritevAll(int fd, std::vector<iovec>& iov, uint64_t off) {
  size_t i = 0;
  while (i < iov.size()) {
    int cnt = static_cast<int>(std::min<size_t>(iov.size() - i, IOV_MAX));
    ssize_t w = pwritev(fd, &iov[i], cnt, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    off += w;
    size_t ww = static_cast<size_t>(w);
    while (i < iov.size() && ww >= iov[i].iov_len) {
      ww -= iov[i].iov_len;
      i++;
    }
    if (ww > 0) {
      iov[i].iov_base = static_cast<uint8_t*>(iov[i].iov_base) + ww;
      iov[i].iov_len -= ww;
    }
  }
  return 0;
}

int DataSync(int fd) {
  while (fdatasync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

int MkdirP(const std::string& path) {
  if (mkdir(path.c_str(), 0750) == 0 || errno == EEXIST) return 0;
  if (errno != ENOENT) return errno;
  size_t s = path.rfind('/');
  if (s == std::string::npos || s == 0) return ENOENT;
  int e = MkdirP(path.substr(0, s));
  if (e != 0) return e;
  if (mkdir(path.c_str(), 0750) == 0 || errno == EEXIST) return 0;
  return errno;
}

MappedFile::~MappedFile() {
  if (p != nullptr) munmap(p, size);
}

int MapFile(int fd, MappedFile* out, const char** syscall) {
  if (fstat(fd, &out->st) != 0) {
    *syscall = "fstat";
    return errno;
  }
  out->size = static_cast<uint64_t>(out->st.st_size);
  if (out->size == 0) return 0;
  void* p = mmap(nullptr, out->size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    *syscall = "mmap";
    return errno;
  }
  out->p = static_cast<uint8_t*>(p);
  return 0;
}

}  // namespace vipmta::spool
