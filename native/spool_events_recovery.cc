// The event journal at open (thread that opens the spool, before the commit thread starts): scans
// every event segment, checks each frame, cuts the torn tail of the last one, reports damaged
// frames (left in place: readers skip them) and continues the sequence numbers. Blocks on the
// file system. A segment whose header is unreadable is moved to corrupt/ and reported.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "spool_core.h"
#include "spool_crc.h"
#include "spool_events.h"
#include "spool_file.h"

namespace vipmta::spool {
namespace {

bool CheckEvtHeader(const uint8_t* p, uint64_t size, uint64_t no, EvtFileHeader* h, const char** why) {
  if (size < sizeof *h) {
    *why = "file shorter than its header";
    return false;
  }
  memcpy(h, p, sizeof *h);
  if (h->magic != kEvtMagic) *why = "bad file magic";
  else if (h->version != kEvtVersion || h->header_len != sizeof *h) *why = "unknown file version";
  else if (h->crc != Crc32c(0, h, offsetof(EvtFileHeader, crc))) *why = "file header checksum mismatch";
  else if (h->number != no) *why = "file number does not match its name";
  else return true;
  return false;
}

// The next offset after a damaged region where a valid frame with a later sequence number starts.
uint64_t FindNextFrame(const uint8_t* p, uint64_t size, uint64_t from, uint64_t after_seq) {
  static const char kMagic[4] = {'V', 'E', 'V', 'T'};
  while (from + sizeof(EvtFrame) <= size) {
    const void* hit = memmem(p + from, size - from, kMagic, 4);
    if (hit == nullptr) return UINT64_MAX;
    uint64_t at = static_cast<const uint8_t*>(hit) - p;
    EvtFrame f;
    const char* why;
    if (ParseEvtFrame(p, size, at, &f, &why) && f.seq > after_seq) return at;
    from = at + 1;
  }
  return UINT64_MAX;
}

}  // namespace

bool EventLog::Open(const std::string& spool_dir, const std::string& node, const EventOptions& o, bool sync,
                    bool prealloc, Error* e, std::vector<RecoveryEvent>* ev) {
  dir_ = spool_dir + "/events";
  node_ = node;
  o_ = o;
  sync_ = sync;
  prealloc_ = prealloc;
  for (const std::string& d : {dir_, dir_ + "/subscribers"}) {
    if (mkdir(d.c_str(), 0750) != 0 && errno != EEXIST) {
      *e = {errno, "mkdir", nullptr, d};
      return false;
    }
  }
  dir_fd_ = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) {
    *e = {errno, "open", nullptr, dir_};
    return false;
  }
  // events/ and events/subscribers/ must outlive a crash before the first frame is acknowledged.
  if (sync_) {
    (void)fsync(dir_fd_);
    int sd = open(spool_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sd >= 0) {
      (void)fsync(sd);
      close(sd);
    }
  }
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) {
    *e = {errno, "opendir", nullptr, dir_};
    return false;
  }
  std::vector<uint64_t> nos;
  while (dirent* de = readdir(d)) {
    uint64_t no;
    if (ParseNumbered(de->d_name, "ev-", ".log", &no)) nos.push_back(no);
  }
  closedir(d);
  std::sort(nos.begin(), nos.end());

  uint64_t last_seq = 0, max_no = 0;
  for (size_t i = 0; i < nos.size(); i++) {
    uint64_t no = nos[i];
    max_no = std::max(max_no, no);
    bool last = i + 1 == nos.size();
    std::string path = PathOf(no), name = "events/" + Base(path);
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      *e = {errno, "open", nullptr, path + " (an event journal segment)"};
      return false;
    }
    MappedFile m;
    const char* sc = "";
    if (int err = MapFile(fd, &m, &sc); err != 0) {
      close(fd);
      *e = {err, sc, nullptr, path + " (an event journal segment)"};
      return false;
    }
    EvtFileHeader h;
    const char* why = "";
    if (m.p == nullptr || !CheckEvtHeader(m.p, m.size, no, &h, &why)) {
      close(fd);
      if (m.p == nullptr || IsZero(m.p, m.size)) {
        unlink(path.c_str());  // created but its header never written: nothing in it was acknowledged
        continue;
      }
      std::string saved = "corrupt/events-" + Base(path) + ".bad";
      rename(path.c_str(), (spool_dir + "/" + saved).c_str());
      ev->push_back({"corrupt", name, 0, m.size, why, saved});
      st_.damaged++;
      continue;
    }
    uint64_t off = sizeof h, prev = h.first_seq - 1, seg_last = 0;
    while (off < m.size) {
      EvtFrame f;
      if (ParseEvtFrame(m.p, m.size, off, &f, &why)) {
        if (f.seq > prev) {
          prev = seg_last = f.seq;
          off += f.total_len;
          continue;
        }
        why = "sequence number goes backwards (a stale frame behind a rolled-back batch)";
      } else if (IsZero(m.p + off, m.size - off)) {
        break;  // the preallocated, never written rest
      }
      uint64_t next = FindNextFrame(m.p, m.size, off + 1, prev);
      if (next == UINT64_MAX && last) {
        // A torn tail: the last write never completed, so nothing in it was acknowledged.
        uint64_t end = m.size;
        while (end > off && m.p[end - 1] == 0) end--;
        ev->push_back({"torn-tail", name, off, end - off, why, ""});
        st_.torn++;
        if (ftruncate(fd, static_cast<off_t>(off)) == 0 && sync) fdatasync(fd);
        break;
      }
      uint64_t stop = next == UINT64_MAX ? m.size : next;
      // Left in place: readers skip it the same way (the next frame with a later sequence number).
      ev->push_back({"corrupt", name, off, stop - off, why, ""});
      st_.damaged++;
      off = stop;
    }
    uint64_t end = std::min(off, m.size);
    if (seg_last != 0) last_seq = std::max(last_seq, seg_last);
    last_seq = std::max(last_seq, h.first_seq - 1);
    segs_[no] = Seg{no, h.first_seq, seg_last, end};
    if (last && end < o_.segment_size) {
      fd_ = fd;  // the active segment: appends continue at its end
    } else {
      close(fd);
    }
  }
  uint64_t ck_max = 0;
  for (auto& [name, seq] : ReadCheckpoints()) ck_max = std::max(ck_max, seq);
  // Never reuse a number a subscriber may have seen (even a frame lost with a torn tail).
  next_seq_ = std::max(last_seq, ck_max) + 1;
  next_no_ = max_no + 1;
  st_.last_seq = next_seq_ - 1;
  if (sync_ && o_.overlap_sync) syncer_ = std::thread([this] { SyncLoop(); });
  return true;
}

}  // namespace vipmta::spool
