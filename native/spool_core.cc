// The spool engine (see spool_core.h): open + recovery on the main thread, group commit on the
// commit thread, segment zero-filling on the preparer thread. Blocks on file I/O only on the
// commit and preparer threads (and at open/recovery, on the thread that opens the spool).
// Never touches Node-API; errors are errno values carried back in Completion.
#include "spool_core.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <thread>
#include <unordered_set>

#include "spool_crc.h"
#include "spool_format.h"

namespace vipmta::spool {
namespace {

// Leaked on purpose: a static destructor must never run while a detached commit thread still
// uses a Core at process exit.
std::mutex g_reg_mu;
std::map<std::string, std::shared_ptr<Core>>* const g_registry = new std::map<std::string, std::shared_ptr<Core>>();

constexpr uint64_t kSegHdr = sizeof(SegHeader);
constexpr uint64_t kRecHdr = sizeof(RecHeader);
constexpr uint64_t kCopyForwardBudget = 8u << 20;  // bytes copied forward per batch at most

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int64_t MonoNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Hex16(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}
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

bool ValidIdChars(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  }
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

void FillFileHeader(SegHeader* h, uint64_t magic, uint64_t no, const std::string& node) {
  memset(h, 0, sizeof *h);
  h->magic = magic;
  h->version = kVersion;
  h->header_len = sizeof(SegHeader);
  h->number = no;
  h->created_ms = static_cast<uint64_t>(WallMs());
  memcpy(h->node, node.data(), std::min(node.size(), sizeof h->node));
  h->crc = Crc32c(0, h, offsetof(SegHeader, crc));
}

bool CheckFileHeader(const uint8_t* p, uint64_t size, uint64_t magic, uint64_t no, const char** why) {
  SegHeader h;
  if (size < sizeof h) {
    *why = "file shorter than its header";
    return false;
  }
  memcpy(&h, p, sizeof h);
  if (h.magic != magic) *why = "bad file magic";
  else if (h.version != kVersion || h.header_len != sizeof h) *why = "unknown file version";
  else if (h.crc != Crc32c(0, &h, offsetof(SegHeader, crc))) *why = "file header checksum mismatch";
  else if (h.number != no) *why = "file number does not match its name";
  else return true;
  return false;
}

uint32_t RecordCrc(uint32_t payload_crc, const RecHeader& h, const void* id) {
  RecHeader c = h;
  c.crc = 0;
  return Crc32c(Crc32c(payload_crc, &c, sizeof c), id, h.id_len);
}

// Validates the record at off. Cheap checks first; the CRC last.
bool ParseRecord(const uint8_t* base, uint64_t size, uint64_t off, RecHeader* h, const char** why) {
  if (size - off < kRecHdr) {
    *why = "truncated record header";
    return false;
  }
  memcpy(h, base + off, sizeof *h);
  if (h->magic != kRecMagic) {
    *why = "bad record magic";
    return false;
  }
  if (h->version != kVersion || h->type != kRecMessage || h->header_len != kRecHdr) {
    *why = "unknown record version or type";
    return false;
  }
  if (h->id_len == 0 || h->id_len > kMaxIdLen || h->env_len > kMaxEnvelope || h->body_len > size ||
      h->total_len != kRecHdr + h->id_len + h->env_len + h->body_len) {
    *why = "inconsistent record lengths";
    return false;
  }
  if (h->total_len > size - off) {
    *why = "record extends past the end of the file";
    return false;
  }
  const uint8_t* id = base + off + kRecHdr;
  if (!ValidIdChars(id, h->id_len)) {
    *why = "invalid queue id";
    return false;
  }
  uint32_t pc = Crc32c(0, id + h->id_len, h->env_len + h->body_len);
  if (RecordCrc(pc, *h, id) != h->crc) {
    *why = "checksum mismatch";
    return false;
  }
  return true;
}

// After a bad region, the next offset where a whole, valid entry starts: search for its 4-byte
// magic and accept the first hit that parses (header sanity and CRC). Shared by segment records
// and journal entries, which differ only in magic, minimum length and parser.
template <typename Header>
static uint64_t FindNextValid(const uint8_t* base, uint64_t size, uint64_t from, const char (&magic)[4],
                              bool (*parse)(const uint8_t*, uint64_t, uint64_t, Header*, const char**),
                              uint64_t min_len) {
  while (from + min_len <= size) {
    const void* hit = memmem(base + from, size - from, magic, 4);
    if (hit == nullptr) return UINT64_MAX;
    uint64_t at = static_cast<const uint8_t*>(hit) - base;
    Header h;
    const char* why;
    if (parse(base, size, at, &h, &why)) return at;
    from = at + 1;
  }
  return UINT64_MAX;
}

uint64_t FindNextRecord(const uint8_t* base, uint64_t size, uint64_t from) {
  static const char kMagic[4] = {'V', 'R', 'E', 'C'};
  return FindNextValid<RecHeader>(base, size, from, kMagic, ParseRecord, kRecHdr);
}

bool ParseJrn(const uint8_t* base, uint64_t size, uint64_t off, JrnHeader* h, const char** why) {
  if (size - off < sizeof *h) {
    *why = "truncated journal entry";
    return false;
  }
  memcpy(h, base + off, sizeof *h);
  if (h->magic != kJrnEntryMagic || h->version != kVersion || (h->type != kJrnDone && h->type != kJrnUpdate)) {
    *why = "bad journal entry header";
    return false;
  }
  if (h->id_len == 0 || h->id_len > kMaxIdLen || h->data_len > kMaxState ||
      h->total_len != sizeof *h + h->id_len + h->data_len) {
    *why = "inconsistent journal entry lengths";
    return false;
  }
  if (h->total_len > size - off) {
    *why = "journal entry extends past the end of the file";
    return false;
  }
  JrnHeader c = *h;
  c.crc = 0;
  if (Crc32c(Crc32c(0, &c, sizeof c), base + off + sizeof c, h->id_len + h->data_len) != h->crc) {
    *why = "checksum mismatch";
    return false;
  }
  return true;
}

uint64_t FindNextJrn(const uint8_t* base, uint64_t size, uint64_t from) {
  static const char kMagic[4] = {'V', 'J', 'R', 'N'};
  return FindNextValid<JrnHeader>(base, size, from, kMagic, ParseJrn, sizeof(JrnHeader));
}

void AppendJrn(std::vector<uint8_t>* b, uint16_t type, const std::string& id, const std::string& data) {
  JrnHeader h{};
  h.magic = kJrnEntryMagic;
  h.version = kVersion;
  h.type = type;
  h.id_len = static_cast<uint16_t>(id.size());
  h.data_len = static_cast<uint32_t>(data.size());
  h.total_len = static_cast<uint32_t>(sizeof h + id.size() + data.size());
  h.time_ms = static_cast<uint64_t>(WallMs());
  uint32_t c = Crc32c(0, &h, sizeof h);
  c = Crc32c(c, id.data(), id.size());
  h.crc = Crc32c(c, data.data(), data.size());
  const uint8_t* hp = reinterpret_cast<const uint8_t*>(&h);
  b->insert(b->end(), hp, hp + sizeof h);
  b->insert(b->end(), id.begin(), id.end());
  b->insert(b->end(), data.begin(), data.end());
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

struct Mapped {
  uint8_t* p = nullptr;
  uint64_t size = 0;
  ~Mapped() {
    if (p != nullptr) munmap(p, size);
  }
};

}  // namespace

std::string SanitizeNodeId(const std::string& in) {
  std::string out;
  for (char c : in) {
    if (out.size() >= 32) break;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    out.push_back(ok ? c : '-');
  }
  if (out.empty()) out = "node";
  return out;
}

Segment::~Segment() {
  if (fd >= 0) close(fd);
}

// ---- open and recovery (thread that opens the spool) ------------------------------------------

std::shared_ptr<Core> Core::Find(const std::string& directory) {
  char rp[PATH_MAX];
  if (realpath(directory.c_str(), rp) == nullptr) return nullptr;
  std::lock_guard<std::mutex> g(g_reg_mu);
  auto it = g_registry->find(rp);
  return it == g_registry->end() ? nullptr : it->second;
}

std::shared_ptr<Core> Core::Open(const Options& o, Error* e, std::vector<RecoveryEvent>* events) {
  int err = MkdirP(o.directory);
  if (err != 0) {
    *e = {err, "mkdir", nullptr, o.directory};
    return nullptr;
  }
  char rp[PATH_MAX];
  if (realpath(o.directory.c_str(), rp) == nullptr) {
    *e = {errno, "realpath", nullptr, o.directory};
    return nullptr;
  }
  std::lock_guard<std::mutex> g(g_reg_mu);
  if (g_registry->count(rp) != 0) {
    *e = {EBUSY, "open", nullptr, std::string(rp) + " is already open in this process"};
    return nullptr;
  }
  std::shared_ptr<Core> c(new Core());
  c->o_ = o;
  c->dir_ = rp;
  c->dir_fd_ = open(rp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c->dir_fd_ < 0) {
    *e = {errno, "open", nullptr, c->dir_};
    return nullptr;
  }
  if (mkdir((c->dir_ + "/corrupt").c_str(), 0750) != 0 && errno != EEXIST) {
    *e = {errno, "mkdir", nullptr, c->dir_ + "/corrupt"};
    return nullptr;
  }
  std::string lock = c->dir_ + "/lock";
  c->lock_fd_ = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (c->lock_fd_ < 0) {
    *e = {errno, "open", nullptr, lock};
    return nullptr;
  }
  if (flock(c->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int fe = errno;
    char pid[32] = {0};
    ssize_t n = pread(c->lock_fd_, pid, sizeof pid - 1, 0);
    std::string who = n > 0 ? std::string(pid, strcspn(pid, "\n")) : "?";
    *e = {fe, "flock", nullptr, c->dir_ + " is in use by another process (pid " + who + ")"};
    return nullptr;
  }
  char pid[32];
  int pn = snprintf(pid, sizeof pid, "%d\n", getpid());
  if (ftruncate(c->lock_fd_, 0) != 0 || PwriteAll(c->lock_fd_, reinterpret_cast<uint8_t*>(pid), pn, 0) != 0) {
    *e = {errno, "write", nullptr, lock};
    return nullptr;
  }
  if (!c->Recover(e, events)) return nullptr;
  std::shared_ptr<Core> self = c;
  std::thread([self] { self->Run(); }).detach();
  if (o.prealloc == Prealloc::kZero) {
    std::thread([self] { self->Prepare(); }).detach();
  } else {
    c->prep_done_ = true;
  }
  (*g_registry)[c->dir_] = c;
  return c;
}

bool Core::Recover(Error* e, std::vector<RecoveryEvent>* events) {
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) {
    *e = {errno, "opendir", nullptr, dir_};
    return false;
  }
  std::vector<uint64_t> segs, jrns;
  uint64_t counter = 0;
  while (dirent* de = readdir(d)) {
    uint64_t no;
    std::string name = de->d_name;
    if (ParseNumbered(de->d_name, "seg-", ".spool", &no)) {
      segs.push_back(no);
    } else if (ParseNumbered(de->d_name, "journal-", ".log", &no)) {
      jrns.push_back(no);
    } else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      unlinkat(dir_fd_, de->d_name, 0);  // an unfinished spare segment, counter or journal snapshot
    } else if (name == "next-segment") {
      char buf[32] = {0};
      int fd = openat(dir_fd_, de->d_name, O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        if (read(fd, buf, sizeof buf - 1) > 0) counter = strtoull(buf, nullptr, 10);
        close(fd);
      }
    }
  }
  closedir(d);
  std::sort(segs.begin(), segs.end());
  std::sort(jrns.begin(), jrns.end());

  for (uint64_t no : segs) RecoverSegment(no, SegPath(dir_, no), events);
  std::unordered_set<std::string> done;
  std::unordered_map<std::string, std::string> state;
  for (uint64_t no : jrns) RecoverJournal(JrnPath(dir_, no), events, &done, &state);

  for (auto& [id, en] : index_) {
    if (done.count(id) != 0) {
      en.done = true;
      continue;
    }
    auto st = state.find(id);
    if (st != state.end()) {
      en.has_state = true;
      en.state = std::move(st->second);
    }
    en.seg->live++;
    stats_.messages++;
    stats_.bytes += en.body_len;
    stats_.recovered++;
  }
  uint64_t max_seg = segs.empty() ? 0 : segs.back();
  next_seg_ = std::max(counter, max_seg + 1);
  if (next_seg_ == 0) next_seg_ = 1;
  jrn_no_ = jrns.empty() ? 0 : jrns.back();
  jrn_files_ = jrns;
  Reclaim();
  const char* sc = "";
  int err = CompactJournal(&sc);
  if (err != 0) {
    *e = {err, sc, nullptr, "writing the journal snapshot in " + dir_};
    if (err == ENOSPC || err == EDQUOT) e->code = "ERR_SPOOL_FULL";
    return false;
  }
  last_cf_ms_ = WallMs();
  return true;
}

void Core::SaveAside(const std::string& path, const uint8_t* p, uint64_t off, uint64_t len,
                     const std::string& reason, std::vector<RecoveryEvent>* ev) {
  char suffix[40];
  snprintf(suffix, sizeof suffix, "-%012llx", static_cast<unsigned long long>(off));
  std::string name = "corrupt/" + Base(path) + suffix;
  std::string full = dir_ + "/" + name;
  int fd = open((full + ".bad").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd >= 0) {
    PwriteAll(fd, p + off, len, 0);
    fdatasync(fd);
    close(fd);
  }
  std::string text = "file: " + Base(path) + "\noffset: " + std::to_string(off) + "\nlength: " + std::to_string(len) +
                     "\nreason: " + reason + "\n";
  fd = open((full + ".reason").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd >= 0) {
    PwriteAll(fd, reinterpret_cast<const uint8_t*>(text.data()), text.size(), 0);
    fdatasync(fd);
    close(fd);
  }
  ev->push_back({"corrupt", Base(path), off, len, reason, name + ".bad"});
  stats_.corrupt++;
}

void Core::RecoverSegment(uint64_t no, const std::string& path, std::vector<RecoveryEvent>* ev) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    ev->push_back({"corrupt", Base(path), 0, 0, std::string("cannot open: ") + strerror(errno), ""});
    stats_.corrupt++;
    return;
  }
  struct stat st;
  fstat(fd, &st);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  Mapped m;
  m.size = size;
  if (size > 0) {
    void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      ev->push_back({"corrupt", Base(path), 0, size, std::string("cannot map: ") + strerror(errno), ""});
      stats_.corrupt++;
      close(fd);
      return;
    }
    m.p = static_cast<uint8_t*>(p);
  }
  const char* why = "";
  if (size == 0 || !CheckFileHeader(m.p, size, kSegMagic, no, &why)) {
    if (size == 0 || IsZero(m.p, size)) {
      // Created (or a spare renamed into place) but never written: nothing was acknowledged.
      close(fd);
      unlink(path.c_str());
      return;
    }
    std::string name = "corrupt/" + Base(path) + ".bad";
    std::string text = "file: " + Base(path) + "\nreason: " + why + "\n";
    rename(path.c_str(), (dir_ + "/" + name).c_str());
    int rf = open((dir_ + "/corrupt/" + Base(path) + ".reason").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (rf >= 0) {
      PwriteAll(rf, reinterpret_cast<const uint8_t*>(text.data()), text.size(), 0);
      fdatasync(rf);
      close(rf);
    }
    ev->push_back({"corrupt", Base(path), 0, size, why, name});
    stats_.corrupt++;
    close(fd);
    return;
  }
  auto seg = std::make_shared<Segment>();
  seg->no = no;
  seg->path = path;
  seg->fd = fd;
  seg->sealed_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  uint64_t off = kSegHdr;
  while (off < size) {
    RecHeader h;
    if (ParseRecord(m.p, size, off, &h, &why)) {
      std::string id(reinterpret_cast<const char*>(m.p + off + kRecHdr), h.id_len);
      Entry& en = index_[id];  // a later segment's copy (copy-forward) replaces an earlier one
      en.seg = seg;
      en.rec_off = off;
      en.id_len = h.id_len;
      en.env_len = h.env_len;
      en.body_len = h.body_len;
      en.arrival_ms = h.arrival_ms;
      en.copies++;
      en.recovered = true;
      seg->ids.push_back(std::move(id));
      off += h.total_len;
      continue;
    }
    if (IsZero(m.p + off, size - off)) break;  // the preallocated, never written rest
    uint64_t next = FindNextRecord(m.p, size, off + 1);
    if (next == UINT64_MAX) {
      // A torn tail: the last write never completed, so nothing in it was acknowledged.
      uint64_t end = size;
      while (end > off && m.p[end - 1] == 0) end--;
      ev->push_back({"torn-tail", Base(path), off, end - off, why, ""});
      stats_.torn++;
      if (ftruncate(fd, static_cast<off_t>(off)) == 0) fdatasync(fd);
      break;
    }
    SaveAside(path, m.p, off, next - off, why, ev);
    off = next;
  }
  segments_[no] = seg;
}

void Core::RecoverJournal(const std::string& path, std::vector<RecoveryEvent>* ev,
                          std::unordered_set<std::string>* done,
                          std::unordered_map<std::string, std::string>* state) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  fstat(fd, &st);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  Mapped m;
  m.size = size;
  if (size > 0) {
    void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) m.p = static_cast<uint8_t*>(p);
  }
  const char* why = "";
  uint64_t no = 0;
  ParseNumbered(Base(path).c_str(), "journal-", ".log", &no);
  if (m.p == nullptr || !CheckFileHeader(m.p, size, kJrnMagic, no, &why)) {
    if (m.p != nullptr && !IsZero(m.p, size)) SaveAside(path, m.p, 0, size, why, ev);
    close(fd);
    return;
  }
  uint64_t off = kSegHdr;
  while (off < size) {
    JrnHeader h;
    if (ParseJrn(m.p, size, off, &h, &why)) {
      std::string id(reinterpret_cast<const char*>(m.p + off + sizeof h), h.id_len);
      if (h.type == kJrnDone) {
        done->insert(id);
      } else {
        (*state)[id].assign(reinterpret_cast<const char*>(m.p + off + sizeof h + h.id_len), h.data_len);
      }
      off += h.total_len;
      continue;
    }
    if (IsZero(m.p + off, size - off)) break;
    uint64_t next = FindNextJrn(m.p, size, off + 1);
    if (next == UINT64_MAX) {
      ev->push_back({"torn-tail", Base(path), off, size - off, why, ""});
      stats_.torn++;
      if (ftruncate(fd, static_cast<off_t>(off)) == 0) fdatasync(fd);
      break;
    }
    SaveAside(path, m.p, off, next - off, why, ev);
    off = next;
  }
  close(fd);
}

int Core::SyncDir() {
  if (!o_.sync) return 0;
  while (fsync(dir_fd_) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// Writes a fresh journal holding only what still matters (done-marks of ids that some segment
// file still holds, the latest state of live messages), then drops the old journals. Commit
// thread (or open). The directory is synced first so that reclaimed segments stay gone before
// the done-marks for their messages disappear.
int Core::CompactJournal(const char** sc) {
  int err = SyncDir();
  if (err != 0) {
    *sc = "fsync";
    return err;
  }
  uint64_t no = jrn_no_ + 1;
  std::string path = JrnPath(dir_, no);
  std::string tmp = path + ".tmp";
  std::vector<uint8_t> b(kSegHdr);
  FillFileHeader(reinterpret_cast<SegHeader*>(b.data()), kJrnMagic, no, o_.node_id);
  {
    std::shared_lock<std::shared_mutex> g(idx_mu_);
    for (auto& [id, en] : index_) {
      if (en.done) AppendJrn(&b, kJrnDone, id, "");
      else if (en.has_state) AppendJrn(&b, kJrnUpdate, id, en.state);
    }
  }
  int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) {
    *sc = "open";
    return errno;
  }
  err = PwriteAll(fd, b.data(), b.size(), 0);
  *sc = "pwrite";
  if (err == 0 && o_.sync) {
    err = DataSync(fd);
    *sc = "fdatasync";
  }
  if (err == 0 && rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    *sc = "rename";
  }
  if (err == 0) {
    err = SyncDir();
    *sc = "fsync";
  }
  if (err != 0) {
    close(fd);
    unlink(tmp.c_str());
    return err;
  }
  if (jrn_fd_ >= 0) close(jrn_fd_);
  for (uint64_t old : jrn_files_) unlink(JrnPath(dir_, old).c_str());
  jrn_files_.assign(1, no);
  jrn_fd_ = fd;
  jrn_no_ = no;
  jrn_off_ = b.size();
  return 0;
}

// ---- submission (any JS thread) ---------------------------------------------------------------

bool Core::Submit(Op&& op) {
  std::lock_guard<std::mutex> g(mu_);
  if (closing_) return false;
  if (op.kind == Op::kClose) closing_ = true;
  pending_.push_back(std::move(op));
  cv_.notify_one();
  return true;
}

bool Core::SubmitMessage(std::unique_ptr<Message> m, std::shared_ptr<Notifier> n, uint64_t token) {
  Op op;
  op.kind = Op::kMessage;
  op.msg = std::move(m);
  op.sink = std::move(n);
  op.token = token;
  return Submit(std::move(op));
}

bool Core::SubmitDone(std::vector<std::string> ids, std::shared_ptr<Notifier> n, uint64_t token) {
  Op op;
  op.kind = Op::kDone;
  op.ids = std::move(ids);
  op.sink = std::move(n);
  op.token = token;
  return Submit(std::move(op));
}

bool Core::SubmitUpdate(std::string id, std::string state, std::shared_ptr<Notifier> n, uint64_t token) {
  Op op;
  op.kind = Op::kUpdate;
  op.id = std::move(id);
  op.data = std::move(state);
  op.sink = std::move(n);
  op.token = token;
  return Submit(std::move(op));
}

bool Core::SubmitClose(std::shared_ptr<Notifier> n, uint64_t token) {
  Op op;
  op.kind = Op::kClose;
  op.sink = std::move(n);
  op.token = token;
  return Submit(std::move(op));
}

void Core::CloseAndWait() {
  SubmitClose(nullptr, 0);
  std::unique_lock<std::mutex> lk(mu_);
  cv_finished_.wait(lk, [this] { return finished_; });
}

bool Core::Closing() {
  std::lock_guard<std::mutex> g(mu_);
  return closing_;
}

// ---- reads (any JS thread) --------------------------------------------------------------------

int Core::Lookup(const std::string& id, BodyRef* out) {
  std::shared_lock<std::shared_mutex> g(idx_mu_);
  auto it = index_.find(id);
  if (it == index_.end() || it->second.done || !it->second.seg) return ENOENT;
  const Entry& en = it->second;
  out->seg = en.seg;
  out->fd = en.seg->fd;
  out->path = en.seg->path;
  out->offset = en.rec_off + kRecHdr + en.id_len;
  out->length = en.body_len;
  return 0;
}

std::vector<Recovered> Core::RecoveredMessages(Error* e, bool all) {
  struct Want {
    std::shared_ptr<Segment> seg;
    uint64_t off;
    Recovered r;
  };
  std::vector<Want> want;
  {
    std::shared_lock<std::shared_mutex> g(idx_mu_);
    for (auto& [id, en] : index_) {
      if ((!all && !en.recovered) || en.done || !en.seg) continue;
      Want w{en.seg, en.rec_off + kRecHdr + en.id_len + en.body_len, {}};
      w.r.id = id;
      w.r.envelope.resize(en.env_len);
      w.r.has_state = en.has_state;
      w.r.state = en.state;
      w.r.size = en.body_len;
      w.r.arrival_ms = en.arrival_ms;
      want.push_back(std::move(w));
    }
  }
  std::sort(want.begin(), want.end(), [](const Want& a, const Want& b) {
    return a.r.arrival_ms != b.r.arrival_ms ? a.r.arrival_ms < b.r.arrival_ms : a.r.id < b.r.id;
  });
  std::vector<Recovered> out;
  out.reserve(want.size());
  for (auto& w : want) {
    size_t got = 0;
    while (got < w.r.envelope.size()) {
      ssize_t n = pread(w.seg->fd, w.r.envelope.data() + got, w.r.envelope.size() - got, w.off + got);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        *e = {n < 0 ? errno : EIO, "pread", nullptr, w.seg->path};
        return {};
      }
      got += n;
    }
    out.push_back(std::move(w.r));
  }
  return out;
}

Stats Core::GetStats() {
  std::shared_lock<std::shared_mutex> g(idx_mu_);
  Stats s = stats_;
  s.segments = segments_.size();
  return s;
}

Core::~Core() {
  if (jrn_fd_ >= 0) close(jrn_fd_);
  if (lock_fd_ >= 0) close(lock_fd_);
  if (dir_fd_ >= 0) close(dir_fd_);
}

// ---- the preparer thread ----------------------------------------------------------------------

// Preallocate 'zero': zero-fills the next segment ahead of time. Writing into already-written
// blocks lets fdatasync skip block allocation and size updates: a bare write+fdatasync loop on
// ext4 here did ~1.5x the syncs/s with 64 KiB-1 MiB writes (fallocate ~1.1x, 2026-11-22). But
// every byte goes to disk twice, and end to end the gain vanished in the noise, so the default
// is 'fallocate' (Roll). Blocks on write/fdatasync.
void Core::Prepare() {
  std::string path = dir_ + "/spare.tmp";
  std::vector<uint8_t> zeros(1u << 20);
  std::unique_lock<std::mutex> lk(prep_mu_);
  while (!prep_stop_) {
    prep_cv_.wait(lk, [this] { return prep_stop_ || (spare_wanted_ && spare_fd_ < 0); });
    if (prep_stop_) break;
    lk.unlock();
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    int err = fd < 0 ? errno : 0;
    for (uint64_t off = 0; err == 0 && off < o_.segment_size && !prep_abort_.load(); off += zeros.size()) {
      err = PwriteAll(fd, zeros.data(), std::min<uint64_t>(zeros.size(), o_.segment_size - off), off);
    }
    if (err == 0 && o_.sync) err = DataSync(fd);
    lk.lock();
    if (err != 0 || prep_stop_) {
      if (fd >= 0) close(fd);
      unlink(path.c_str());
      // Out of space (or another error): back off; the commit thread creates plain segments
      // meanwhile, and a full disk is reported there.
      if (!prep_stop_) prep_cv_.wait_for(lk, std::chrono::seconds(5), [this] { return prep_stop_; });
      continue;
    }
    spare_fd_ = fd;
    spare_wanted_ = false;
  }
  if (spare_fd_ >= 0) {
    close(spare_fd_);
    spare_fd_ = -1;
    unlink(path.c_str());
  }
  prep_done_ = true;
  prep_cv_.notify_all();
}

// ---- the commit thread ------------------------------------------------------------------------

struct Core::Batch {
  struct Rec {
    Op* op = nullptr;                   // null: a copy-forward of an existing message
    std::string id;
    const uint8_t* data = nullptr;      // the whole record: header | id | body | envelope
    uint64_t len = 0;
    uint64_t body_len = 0;
    std::vector<uint8_t> copy;          // copy-forward: the record read back from its old segment
    std::shared_ptr<Segment> old_seg;   // copy-forward: where it came from
    std::shared_ptr<Segment> seg;       // where it goes
    uint64_t off = 0;
    size_t write = SIZE_MAX;            // index into writes
    int err = 0;
    const char* sc = nullptr;
  };
  struct Write {
    std::shared_ptr<Segment> seg;
    uint64_t start = 0, end = 0;
    bool fresh = false;  // the segment was created for this batch: header included
    SegHeader hdr{};
    std::vector<size_t> recs;
    int err = 0;
    const char* sc = nullptr;
  };
  std::vector<Rec> recs;
  std::vector<Write> writes;
};

void Core::Run() {
  std::vector<Op> ops;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      while (pending_.empty()) {
        if (o_.copy_forward_ms > 0) {
          int64_t interval = std::clamp<int64_t>(o_.copy_forward_ms / 4, 10, 60000);
          int64_t wait = last_cf_ms_ + interval - WallMs();
          if (wait <= 0) break;
          cv_.wait_for(lk, std::chrono::milliseconds(wait));
        } else {
          cv_.wait(lk);
        }
      }
      if (o_.commit_delay_ms > 0 && !pending_.empty() && !closing_) {
        // Commit_Delay: let more commits join this batch (fewer syncs, more latency).
        cv_.wait_for(lk, std::chrono::milliseconds(o_.commit_delay_ms), [this] { return closing_; });
      }
      ops.swap(pending_);
    }
    bool close = false;
    for (auto& op : ops) close = close || op.kind == Op::kClose;
    ProcessBatch(ops);
    if (close) {
      Finish();
      std::vector<Completion> c(1);
      std::shared_ptr<Notifier> sink;
      for (auto& op : ops) {
        if (op.kind == Op::kClose && op.sink) {
          c[0].token = op.token;
          op.sink->Deliver(std::move(c));
          c.assign(1, Completion{});
        }
      }
      ops.clear();
      std::lock_guard<std::mutex> g(mu_);
      finished_ = true;
      cv_finished_.notify_all();
      return;
    }
    ops.clear();
  }
}

int Core::Roll(const char** sc) {
  if (cur_) {
    std::unique_lock<std::shared_mutex> g(idx_mu_);
    cur_->current = false;
    cur_->sealed_ms = WallMs();
  }
  cur_.reset();
  uint64_t no = next_seg_;
  // Persist the high-water mark first: queue ids embed the segment number and must never repeat,
  // even after every segment has been reclaimed.
  {
    std::string tmp = dir_ + "/next-segment.tmp";
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%llu\n", static_cast<unsigned long long>(no + 1));
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
      *sc = "open";
      return errno;
    }
    int err = PwriteAll(fd, reinterpret_cast<uint8_t*>(buf), n, 0);
    *sc = "pwrite";
    if (err == 0 && o_.sync) {
      err = DataSync(fd);
      *sc = "fdatasync";
    }
    close(fd);
    if (err == 0 && rename(tmp.c_str(), (dir_ + "/next-segment").c_str()) != 0) {
      err = errno;
      *sc = "rename";
    }
    if (err != 0) {
      unlink(tmp.c_str());
      return err;
    }
  }
  next_seg_ = no + 1;
  std::string path = SegPath(dir_, no);
  int fd = -1;
  {
    std::lock_guard<std::mutex> g(prep_mu_);
    if (spare_fd_ >= 0 && rename((dir_ + "/spare.tmp").c_str(), path.c_str()) == 0) {
      fd = spare_fd_;
      spare_fd_ = -1;
    }
    spare_wanted_ = true;
    prep_cv_.notify_all();
  }
  if (fd < 0) {
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
      *sc = "open";
      return errno;
    }
    // Best effort: without the space reserved we still work, we only sync a little slower.
    if (o_.prealloc == Prealloc::kFallocate) (void)fallocate(fd, 0, 0, static_cast<off_t>(o_.segment_size));
  }
  int err = SyncDir();
  if (err != 0) {
    close(fd);
    unlink(path.c_str());
    *sc = "fsync";
    return err;
  }
  auto seg = std::make_shared<Segment>();
  seg->no = no;
  seg->path = path;
  seg->fd = fd;
  seg->current = true;
  {
    std::unique_lock<std::shared_mutex> g(idx_mu_);
    segments_[no] = seg;
  }
  cur_ = seg;
  cur_off_ = 0;
  cur_seq_ = 0;
  cur_needs_header_ = true;
  return 0;
}

void Core::CollectCopyForward(Batch* b, int64_t now) {
  struct Cand {
    std::string id;
    std::shared_ptr<Segment> seg;
    uint64_t off, len;
  };
  std::vector<Cand> cands;
  uint64_t budget = std::min<uint64_t>(kCopyForwardBudget, o_.segment_size);
  {
    std::shared_lock<std::shared_mutex> g(idx_mu_);
    for (auto& [no, seg] : segments_) {
      if (seg->current || seg->live == 0 || seg->sealed_ms + o_.copy_forward_ms > now) continue;
      for (auto& id : seg->ids) {
        auto it = index_.find(id);
        if (it == index_.end() || it->second.done || it->second.seg != seg) continue;
        const Entry& en = it->second;
        uint64_t len = kRecHdr + en.id_len + en.env_len + en.body_len;
        if (!cands.empty() && len > budget) break;
        cands.push_back({id, seg, en.rec_off, len});
        budget = len > budget ? 0 : budget - len;
      }
      if (budget == 0) break;
    }
  }
  for (auto& c : cands) {
    Batch::Rec r;
    r.copy.resize(c.len);
    size_t got = 0;
    while (got < c.len) {
      ssize_t n = pread(c.seg->fd, r.copy.data() + got, c.len - got, static_cast<off_t>(c.off + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += n;
    }
    RecHeader h;
    const char* why;
    if (got != c.len || !ParseRecord(r.copy.data(), c.len, 0, &h, &why)) {
      // Left where it is (still readable or not): never dropped, counted for the operator.
      std::unique_lock<std::shared_mutex> g(idx_mu_);
      stats_.io_errors++;
      continue;
    }
    r.id = c.id;
    r.data = r.copy.data();
    r.len = c.len;
    r.body_len = h.body_len;
    r.old_seg = c.seg;
    b->recs.push_back(std::move(r));
  }
}

void Core::ProcessBatch(std::vector<Op>& ops) {
  int64_t now = WallMs();
  Batch b;

  // 1. Journal entries: done-marks and state updates, checked against the index.
  jbuf_.clear();
  std::vector<int> op_err(ops.size(), 0);
  std::vector<std::string> done_ids;
  {
    std::unordered_set<std::string> seen;
    std::shared_lock<std::shared_mutex> g(idx_mu_);
    for (size_t i = 0; i < ops.size(); i++) {
      Op& op = ops[i];
      if (op.kind == Op::kDone) {
        for (auto& id : op.ids) {
          auto it = index_.find(id);
          // Unknown or already done: nothing to record (a duplicate mark is harmless).
          if (it == index_.end() || it->second.done || !seen.insert(id).second) continue;
          AppendJrn(&jbuf_, kJrnDone, id, "");
          done_ids.push_back(id);
        }
      } else if (op.kind == Op::kUpdate) {
        auto it = index_.find(op.id);
        if (it == index_.end() || it->second.done) {
          op_err[i] = ENOENT;
          continue;
        }
        AppendJrn(&jbuf_, kJrnUpdate, op.id, op.data);
      }
    }
  }

  // 2. Records: new messages, then copies of long-lived ones.
  for (size_t i = 0; i < ops.size(); i++) {
    if (ops[i].kind != Op::kMessage) continue;
    Batch::Rec r;
    r.op = &ops[i];
    b.recs.push_back(std::move(r));
  }
  bool closing = false;
  for (auto& op : ops) closing = closing || op.kind == Op::kClose;
  if (!closing && o_.copy_forward_ms > 0 &&
      now - last_cf_ms_ >= std::clamp<int64_t>(o_.copy_forward_ms / 4, 10, 60000)) {
    last_cf_ms_ = now;
    CollectCopyForward(&b, now);
  }

  // 3. Placement: ids, headers, segment roll-over.
  int roll_err = 0;
  const char* roll_sc = nullptr;
  for (size_t i = 0; i < b.recs.size(); i++) {
    Batch::Rec& r = b.recs[i];
    uint64_t len;
    if (r.op != nullptr) {
      Message* m = r.op->msg.get();
      len = kRecHdr + kMaxIdLen + m->len - kHeadroom;  // upper bound: the id is not known yet
    } else {
      len = r.len;
    }
    if (roll_err == 0 && (!cur_ || (cur_off_ + len > o_.segment_size && cur_off_ > kSegHdr))) {
      roll_err = Roll(&roll_sc);
    }
    if (roll_err != 0) {
      r.err = roll_err;
      r.sc = roll_sc;
      continue;
    }
    if (b.writes.empty() || b.writes.back().seg != cur_) {
      Batch::Write w;
      w.seg = cur_;
      w.start = cur_off_;
      if (cur_needs_header_) {
        w.fresh = true;
        FillFileHeader(&w.hdr, kSegMagic, cur_->no, o_.node_id);
        cur_off_ = kSegHdr;
        cur_needs_header_ = false;
      }
      b.writes.push_back(std::move(w));
    }
    if (r.op != nullptr) {
      Message* m = r.op->msg.get();
      char idb[kMaxIdLen + 1];
      int n = snprintf(idb, sizeof idb, "%s-%08llx-%06x", o_.node_id.c_str(),
                       static_cast<unsigned long long>(cur_->no), ++cur_seq_);
      r.id.assign(idb, std::min<size_t>(n, kMaxIdLen));
      RecHeader h{};
      h.magic = kRecMagic;
      h.version = kVersion;
      h.type = kRecMessage;
      h.header_len = kRecHdr;
      h.id_len = static_cast<uint16_t>(r.id.size());
      h.env_len = m->env_len;
      h.body_len = m->len - kHeadroom - m->env_len;
      h.total_len = kRecHdr + h.id_len + h.env_len + h.body_len;
      h.arrival_ms = static_cast<uint64_t>(now);
      h.crc = RecordCrc(m->payload_crc, h, r.id.data());
      uint8_t* start = m->buf + kHeadroom - h.id_len - kRecHdr;
      memcpy(start, &h, kRecHdr);
      memcpy(start + kRecHdr, r.id.data(), h.id_len);
      r.data = start;
      r.len = h.total_len;
      r.body_len = h.body_len;
    }
    r.seg = cur_;
    r.off = cur_off_;
    r.write = b.writes.size() - 1;
    cur_off_ += r.len;
    b.writes.back().recs.push_back(i);
    b.writes.back().end = cur_off_;
  }

  // 4. Write and sync: one pwritev per segment touched (normally one), one fdatasync each.
  std::vector<iovec> iov;
  for (auto& w : b.writes) {
    iov.clear();
    if (w.fresh) iov.push_back({&w.hdr, sizeof w.hdr});
    for (size_t ri : w.recs) iov.push_back({const_cast<uint8_t*>(b.recs[ri].data), b.recs[ri].len});
    w.err = PwritevAll(w.seg->fd, iov, w.fresh ? 0 : w.start);
    w.sc = "pwritev";
    if (w.err == 0 && o_.sync) {
      w.err = DataSync(w.seg->fd);
      w.sc = "fdatasync";
      std::unique_lock<std::shared_mutex> g(idx_mu_);
      stats_.syncs++;
    }
  }
  int jerr = 0;
  const char* jsc = nullptr;
  if (!jbuf_.empty()) {
    jerr = PwriteAll(jrn_fd_, jbuf_.data(), jbuf_.size(), jrn_off_);
    jsc = "pwrite";
    if (jerr == 0 && o_.sync) {
      jerr = DataSync(jrn_fd_);
      jsc = "fdatasync";
      std::unique_lock<std::shared_mutex> g(idx_mu_);
      stats_.syncs++;
    }
    if (jerr != 0) {
      // Roll back to the last good entry so a later append does not follow a hole.
      (void)ftruncate(jrn_fd_, static_cast<off_t>(jrn_off_));
    } else {
      jrn_off_ += jbuf_.size();
    }
  }

  // 5. Roll back failed segment writes: cut the segment at the last good offset and seal it, so
  //    the next batch starts clean (a segment created for this batch goes away entirely).
  for (auto& w : b.writes) {
    if (w.err == 0) continue;
    for (size_t ri : w.recs) {
      b.recs[ri].err = w.err;
      b.recs[ri].sc = w.sc;
    }
    if (w.fresh) {
      unlink(w.seg->path.c_str());
      std::unique_lock<std::shared_mutex> g(idx_mu_);
      segments_.erase(w.seg->no);
    } else {
      (void)ftruncate(w.seg->fd, static_cast<off_t>(w.start));
      if (o_.sync) (void)DataSync(w.seg->fd);
    }
    if (cur_ == w.seg) {
      std::unique_lock<std::shared_mutex> g(idx_mu_);
      cur_->current = false;
      cur_->sealed_ms = now;
      cur_.reset();
    }
  }

  // 6. Publish: index, counters.
  int64_t done_ns = MonoNs();
  {
    std::unique_lock<std::shared_mutex> g(idx_mu_);
    for (auto& r : b.recs) {
      if (r.err != 0) {
        if (r.op != nullptr) {
          if (r.err == ENOSPC || r.err == EDQUOT) stats_.full_errors++;
          else stats_.io_errors++;
        }
        continue;
      }
      if (r.op != nullptr) {
        Entry en;
        en.seg = r.seg;
        en.rec_off = r.off;
        en.id_len = static_cast<uint16_t>(r.id.size());
        en.env_len = r.op->msg->env_len;
        en.body_len = r.body_len;
        en.arrival_ms = static_cast<uint64_t>(now);
        en.copies = 1;
        index_[r.id] = std::move(en);
        r.seg->live++;
        r.seg->ids.push_back(r.id);
        stats_.messages++;
        stats_.bytes += r.body_len;
        stats_.commits++;
        int64_t us = (done_ns - r.op->msg->begin_ns) / 1000;
        int bk = 0;
        while (bk < 11 && us > kLatencyBoundsUs[bk]) bk++;
        stats_.latency_buckets[bk]++;
        stats_.latency_sum_us += static_cast<uint64_t>(us < 0 ? 0 : us);
      } else {
        auto it = index_.find(r.id);
        if (it == index_.end()) continue;
        Entry& en = it->second;
        if (en.seg == r.old_seg) {
          if (!en.done) {
            r.old_seg->live--;
            r.seg->live++;
          }
          en.seg = r.seg;
          en.rec_off = r.off;
        }
        en.copies++;
        r.seg->ids.push_back(r.id);
        stats_.copied_forward++;
      }
    }
    if (jerr == 0) {
      for (auto& id : done_ids) {
        auto it = index_.find(id);
        if (it == index_.end() || it->second.done) continue;
        it->second.done = true;
        it->second.has_state = false;
        it->second.state.clear();
        if (it->second.seg) it->second.seg->live--;
        stats_.messages--;
        stats_.bytes -= it->second.body_len;
      }
      for (size_t i = 0; i < ops.size(); i++) {
        if (ops[i].kind != Op::kUpdate || op_err[i] != 0) continue;
        auto it = index_.find(ops[i].id);
        if (it == index_.end() || it->second.done) continue;
        it->second.has_state = true;
        it->second.state = std::move(ops[i].data);
      }
      stats_.journal_entries += done_ids.size();
    }
    if (!b.recs.empty() || !jbuf_.empty()) stats_.batches++;
  }
  Reclaim();

  // 7. Completions, grouped per JS thread: one wake-up per thread per batch.
  std::vector<std::pair<std::shared_ptr<Notifier>, std::vector<Completion>>> per;
  auto sink_of = [&per](const std::shared_ptr<Notifier>& s) -> std::vector<Completion>& {
    for (auto& p : per)
      if (p.first == s) return p.second;
    per.emplace_back(s, std::vector<Completion>{});
    return per.back().second;
  };
  auto fail = [](Completion* c, int err, const char* sc) {
    c->err = err;
    c->syscall = sc;
    if (err == ENOSPC || err == EDQUOT) c->code = "ERR_SPOOL_FULL";
  };
  for (auto& r : b.recs) {
    if (r.op == nullptr || !r.op->sink) continue;
    Completion c;
    c.token = r.op->token;
    if (r.err != 0) {
      fail(&c, r.err, r.sc);
    } else {
      c.id = r.id;
      c.size = r.body_len;
    }
    sink_of(r.op->sink).push_back(std::move(c));
  }
  for (size_t i = 0; i < ops.size(); i++) {
    Op& op = ops[i];
    if ((op.kind != Op::kDone && op.kind != Op::kUpdate) || !op.sink) continue;
    Completion c;
    c.token = op.token;
    if (op_err[i] != 0) {
      c.err = op_err[i];
      c.syscall = "update";
      c.detail = "no queued message " + op.id;
    } else if (jerr != 0) {
      fail(&c, jerr, jsc);
    }
    sink_of(op.sink).push_back(std::move(c));
  }
  for (auto& p : per) p.first->Deliver(std::move(p.second));

  if (jerr == 0 && jrn_off_ > o_.journal_limit) {
    const char* sc;
    (void)CompactJournal(&sc);  // on failure the old journal stays valid; retried next batch
  }
}

void Core::Reclaim() {
  std::vector<std::shared_ptr<Segment>> gone;
  {
    std::unique_lock<std::shared_mutex> g(idx_mu_);
    for (auto it = segments_.begin(); it != segments_.end();) {
      if (!it->second->current && it->second->live == 0) {
        gone.push_back(it->second);
        it = segments_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& seg : gone) {
      for (auto& id : seg->ids) {
        auto e = index_.find(id);
        if (e == index_.end()) continue;
        if (e->second.seg == seg) e->second.seg.reset();
        if (--e->second.copies == 0) index_.erase(e);
      }
      seg->ids.clear();
      stats_.reclaimed++;
    }
  }
  // The unlinks need no directory sync here: a reclaimed segment that comes back after a crash
  // only holds done messages, and the journal keeps their done-marks until a compaction, which
  // syncs the directory first.
  for (auto& seg : gone) unlink(seg->path.c_str());
}

void Core::Finish() {
  {
    std::unique_lock<std::mutex> lk(prep_mu_);
    prep_stop_ = true;
    prep_abort_.store(true);
    prep_cv_.notify_all();
    prep_cv_.wait(lk, [this] { return prep_done_; });
  }
  if (jrn_fd_ >= 0) close(jrn_fd_);
  jrn_fd_ = -1;
  cur_.reset();
  {
    std::unique_lock<std::shared_mutex> g(idx_mu_);
    segments_.clear();
    index_.clear();
  }
  {
    std::lock_guard<std::mutex> g(g_reg_mu);
    auto it = g_registry->find(dir_);
    if (it != g_registry->end() && it->second.get() == this) g_registry->erase(it);
  }
  if (lock_fd_ >= 0) {
    flock(lock_fd_, LOCK_UN);
    close(lock_fd_);
    lock_fd_ = -1;
  }
  if (dir_fd_ >= 0) close(dir_fd_);
  dir_fd_ = -1;
}

}  // namespace vipmta::spool
