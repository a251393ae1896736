// File I/O helpers of the spool engine: whole writes across EINTR and short writes, fdatasync,
// mkdir -p, file naming, and the one helper that maps a file for reading (fstat + mmap, every
// error returned). No Node-API, no locks: any thread; they block on the file system only.
#pragma once
#include <sys/stat.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vipmta::spool {

inline int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
inline int64_t MonoNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "<dir>/seg-<16 hex>.spool" and "<dir>/journal-<16 hex>.log".
std::string SegPath(const std::string& dir, uint64_t no);
std::string JrnPath(const std::string& dir, uint64_t no);
// The last path component.
std::string Base(const std::string& path);
// Parses "<prefix><16 lower-case hex><suffix>" into *no.
bool ParseNumbered(const char* name, const char* prefix, const char* suffix, uint64_t* no);
bool IsZero(const uint8_t* p, size_t n);

// These return 0 or the errno of the failing call.
int PwriteAll(int fd, const uint8_t* p, size_t n, uint64_t off);
// Writes every iovec at off, across IOV_MAX and short writes. iov is consumed (adjusted).
int PwritevAll(int fd, std::vector<iovec>& iov, uint64_t off);
int DataSync(int fd);
int MkdirP(const std::string& path);

// A file mapped read-only in full; unmapped on destruction. p is null for an empty file (and
// after a failed mmap, when size still tells the file's size).
struct MappedFile {
  uint8_t* p = nullptr;
  uint64_t size = 0;
  struct stat st {};
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
};

// The one way the spool maps a file: fstat (its result checked) then mmap of the whole file.
// Returns 0, or the errno with *syscall set to "fstat" or "mmap"; the caller reports it (as an
// error or a recovery event), never ignores it. The fd stays the caller's.
int MapFile(int fd, MappedFile* out, const char** syscall);

}  // namespace vipmta::spool
