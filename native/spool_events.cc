// The event journal's writing side (see spool_events.h): frames of one batch, segment roll-over,
// the sync thread that runs the event file's fdatasync beside the spool segment's, the cap and
// trimming. Commit thread, except Stats()/Head() (any thread, under mu_) and SyncLoop (the sync
// thread). Blocks on pwrite/fdatasync/ftruncate/unlink of event files and fsync of events/.
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

constexpr size_t kMaxDropsKept = 16;

bool ParseEvtFrame(const uint8_t* base, uint64_t size, uint64_t off, EvtFrame* f, const char** why) {
  if (off > size || size - off < sizeof *f) {
    *why = "truncated frame header";
    return false;
  }
  memcpy(f, base + off, sizeof *f);
  if (f->magic != kEvtFrameMagic || f->reserved != 0) {
    *why = "bad frame magic";
    return false;
  }
  if (f->id_len > kMaxEventId || f->total_len < sizeof *f + f->id_len ||
      f->total_len - sizeof *f - f->id_len > kMaxEventPayload || f->seq == 0) {
    *why = "inconsistent frame lengths";
    return false;
  }
  if (f->total_len > size - off) {
    *why = "frame extends past the end of the file";
    return false;
  }
  EvtFrame c = *f;
  c.crc = 0;
  if (Crc32c(Crc32c(0, &c, sizeof c), base + off + sizeof c, f->total_len - sizeof c) != f->crc) {
    *why = "checksum mismatch";
    return false;
  }
  return true;
}

EventLog::~EventLog() { Close(); }

std::string EventLog::PathOf(uint64_t no) const {
  char b[40];
  snprintf(b, sizeof b, "/ev-%016llx.log", static_cast<unsigned long long>(no));
  return dir_ + b;
}

int EventLog::SyncDir() {
  if (!sync_) return 0;
  while (fsync(dir_fd_) != 0)
    if (errno != EINTR) return errno;
  return 0;
}

uint64_t EventLog::UsedLocked() const {
  uint64_t n = 0;
  for (auto& [no, s] : segs_) n += s.end;
  return n;
}

// ---- the sync thread --------------------------------------------------------------------------

// Runs one fdatasync at a time for the commit thread, so the event file's sync overlaps the spool
// segment's (two syncs of one batch cost about one on a disk that takes both at once).
void EventLog::SyncLoop() {
  std::unique_lock<std::mutex> lk(smu_);
  for (;;) {
    scv_.wait(lk, [this] { return sync_stop_ || sync_req_; });
    if (sync_req_) {
      int fd = sync_fd_;
      lk.unlock();
      int err = DataSync(fd);
      lk.lock();
      sync_err_ = err;
      sync_req_ = false;
      sync_done_ = true;
      scv_.notify_all();
      continue;
    }
    if (sync_stop_) return;
  }
}

// ---- one batch (commit thread) ----------------------------------------------------------------

bool EventLog::Admit(uint64_t bytes, int64_t now_ms) {
  uint64_t pending = buf_.size();
  {
    std::lock_guard<std::mutex> g(mu_);
    if (UsedLocked() + pending + admitted_ + bytes <= o_.max_size) {
      admitted_ += bytes;
      return true;
    }
  }
  if (now_ms != last_admit_trim_ms_) {  // at most once per batch (its ops share now_ms)
    last_admit_trim_ms_ = now_ms;
    Trim();  // subscribers may have read more since the last roll
  }
  std::map<std::string, uint64_t> ck;
  bool have_ck = false;
  std::vector<std::string> unlink_paths;
  bool ok;
  {
    std::lock_guard<std::mutex> g(mu_);
    while (UsedLocked() + pending + admitted_ + bytes > o_.max_size && o_.at_cap == AtCap::kDropOldest &&
           segs_.size() > 1) {
      auto it = segs_.begin();
      if (it->second.last_seq != 0) {
        if (!have_ck) {
          // Reading a few small files under mu_: only on this failure path (a stats() call waits).
          ck = ReadCheckpoints();
          have_ck = true;
        }
        EventDrop d;
        d.from_seq = it->second.first_seq;
        d.to_seq = it->second.last_seq;
        d.at_ms = now_ms;
        for (auto& [name, seq] : ck)
          if (seq < d.to_seq) d.subscribers.push_back(name);
        st_.dropped_records += d.to_seq - d.from_seq + 1;
        drops_.push_back(std::move(d));
        if (drops_.size() > kMaxDropsKept) drops_.pop_front();
      }
      st_.dropped_segments++;
      unlink_paths.push_back(PathOf(it->first));
      segs_.erase(it);
    }
    // drop_oldest never refuses: with only the active segment left the cap is exceeded by it.
    ok = o_.at_cap == AtCap::kDropOldest || UsedLocked() + pending + admitted_ + bytes <= o_.max_size;
    if (ok) admitted_ += bytes;
    else st_.refused++;
  }
  for (auto& p : unlink_paths) unlink(p.c_str());
  return ok;
}

void EventLog::Add(const std::string& id, const std::string& data, int64_t time_ms) {
  if (buf_.empty()) batch_first_seq_ = next_seq_;
  EvtFrame f{};
  f.magic = kEvtFrameMagic;
  f.id_len = static_cast<uint16_t>(std::min(id.size(), kMaxEventId));
  f.total_len = static_cast<uint32_t>(sizeof f + f.id_len + data.size());
  f.seq = next_seq_++;
  f.time_ms = static_cast<uint64_t>(time_ms);
  uint32_t c = Crc32c(0, &f, sizeof f);
  c = Crc32c(c, id.data(), f.id_len);
  f.crc = Crc32c(c, data.data(), data.size());
  const uint8_t* hp = reinterpret_cast<const uint8_t*>(&f);
  buf_.insert(buf_.end(), hp, hp + sizeof f);
  buf_.insert(buf_.end(), id.begin(), id.begin() + f.id_len);
  buf_.insert(buf_.end(), data.begin(), data.end());
}

// Seals the active segment (cut to its last frame, so a sealed file holds no preallocated zeros)
// and starts the next one, its header naming the first sequence number it will hold. The header
// is written here; the batch's fdatasync covers it, the directory is synced before any frame of
// the new file can be acknowledged.
int EventLog::Roll(const char** sc) {
  uint64_t first = buf_.empty() ? next_seq_ : batch_first_seq_;
  if (fd_ >= 0) {
    uint64_t end;
    {
      std::lock_guard<std::mutex> g(mu_);
      end = segs_.rbegin()->second.end;
    }
    (void)ftruncate(fd_, static_cast<off_t>(end));
    close(fd_);
    fd_ = -1;
  }
  uint64_t no = next_no_++;
  std::string path = PathOf(no);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) {
    *sc = "open";
    return errno;
  }
  if (prealloc_) (void)fallocate(fd, 0, 0, static_cast<off_t>(o_.segment_size));
  EvtFileHeader h{};
  h.magic = kEvtMagic;
  h.version = kEvtVersion;
  h.header_len = sizeof h;
  h.number = no;
  h.created_ms = static_cast<uint64_t>(WallMs());
  h.first_seq = first;
  memcpy(h.node, node_.data(), std::min(node_.size(), sizeof h.node));
  h.crc = Crc32c(0, &h, offsetof(EvtFileHeader, crc));
  int err = PwriteAll(fd, reinterpret_cast<const uint8_t*>(&h), sizeof h, 0);
  *sc = "pwrite";
  if (err == 0) {
    err = SyncDir();
    *sc = "fsync";
  }
  if (err != 0) {
    close(fd);
    unlink(path.c_str());
    return err;
  }
  fd_ = fd;
  rolled_ = true;
  std::lock_guard<std::mutex> g(mu_);
  segs_[no] = Seg{no, first, 0, sizeof h};
  return 0;
}

int EventLog::Start(const char** sc) {
  if (buf_.empty()) return 0;
  uint64_t end = 0;
  if (fd_ >= 0) {
    std::lock_guard<std::mutex> g(mu_);
    end = segs_.rbegin()->second.end;
  }
  if (fd_ < 0 || (end + buf_.size() > o_.segment_size && end > sizeof(EvtFileHeader))) {
    if (int err = Roll(sc); err != 0) return err;
    end = sizeof(EvtFileHeader);
  }
  batch_off_ = end;
  started_ = true;
  if (int err = PwriteAll(fd_, buf_.data(), buf_.size(), batch_off_); err != 0) {
    *sc = "pwrite";
    return err;
  }
  if (!sync_) return 0;
  if (!o_.overlap_sync) {
    int err = DataSync(fd_);
    *sc = "fdatasync";
    std::lock_guard<std::mutex> g(smu_);
    sync_err_ = err;
    sync_done_ = true;
    return 0;
  }
  std::lock_guard<std::mutex> g(smu_);
  sync_fd_ = fd_;
  sync_err_ = 0;
  sync_done_ = false;
  sync_req_ = true;
  scv_.notify_all();
  return 0;
}

int EventLog::Finish(const char** sc) {
  if (buf_.empty() || !sync_) return 0;
  std::unique_lock<std::mutex> lk(smu_);
  scv_.wait(lk, [this] { return sync_done_; });
  sync_done_ = false;
  *sc = "fdatasync";
  return sync_err_;
}

void EventLog::RollBack() {
  admitted_ = 0;
  if (buf_.empty()) return;
  if (started_ && fd_ >= 0) {
    // Not preallocated again: the write failed, most often for lack of space, and whatever the
    // cut gives back is what the spool's done-marks need to free the disk (a full spool delivers
    // its mail and reclaims its segments). The next segment is preallocated as usual.
    if (ftruncate(fd_, static_cast<off_t>(batch_off_)) == 0) {
      if (sync_) (void)DataSync(fd_);
    }
  }
  next_seq_ = batch_first_seq_;
  buf_.clear();
  started_ = false;
  std::lock_guard<std::mutex> g(mu_);
  st_.write_errors++;
}

void EventLog::Commit(int64_t now_ms) {
  admitted_ = 0;
  if (buf_.empty()) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    Seg& s = segs_.rbegin()->second;
    s.end = batch_off_ + buf_.size();
    s.last_seq = next_seq_ - 1;
    st_.appended += next_seq_ - batch_first_seq_;
    st_.last_seq = next_seq_ - 1;
  }
  buf_.clear();
  started_ = false;
  if (rolled_) {
    rolled_ = false;
    Trim();
  }
}

// ---- trimming (commit thread) -----------------------------------------------------------------

std::map<std::string, uint64_t> EventLog::ReadCheckpoints() {
  std::map<std::string, uint64_t> out;
  std::string sub = dir_ + "/subscribers";
  DIR* d = opendir(sub.c_str());
  if (d == nullptr) return out;
  while (dirent* de = readdir(d)) {
    std::string name = de->d_name;
    if (name.size() <= 5 || name.compare(name.size() - 5, 5, ".json") != 0) continue;
    int fd = open((sub + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[512] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    const char* p = strstr(buf, "\"seq\":");
    if (p == nullptr) continue;
    out[name.substr(0, name.size() - 5)] = strtoull(p + 6, nullptr, 10);
  }
  closedir(d);
  return out;
}

uint64_t EventLog::Trim() {
  std::map<std::string, uint64_t> ck = ReadCheckpoints();
  uint64_t passed = UINT64_MAX;  // every subscriber has acknowledged this far
  for (auto& [name, seq] : ck) passed = std::min(passed, seq);
  std::vector<std::string> paths;
  {
    std::lock_guard<std::mutex> g(mu_);
    while (segs_.size() > 1 && UsedLocked() > o_.retention) {
      auto it = segs_.begin();
      if (it->second.last_seq > passed) break;
      paths.push_back(PathOf(it->first));
      segs_.erase(it);
      st_.trimmed_segments++;
    }
  }
  for (auto& p : paths) unlink(p.c_str());
  return paths.size();
}

// ---- any thread -------------------------------------------------------------------------------

EventStats EventLog::Stats() {
  std::lock_guard<std::mutex> g(mu_);
  EventStats s = st_;
  s.segments = segs_.size();
  s.bytes = UsedLocked();
  s.first_seq = segs_.empty() ? st_.last_seq + 1 : segs_.begin()->second.first_seq;
  s.cap = o_.max_size;
  s.alarm_bytes = o_.max_size / 100 * o_.alarm_percent;
  s.retention = o_.retention;
  s.at_cap_refuse = o_.at_cap == AtCap::kRefuse;
  s.drops.assign(drops_.begin(), drops_.end());
  for (auto& [no, sg] : segs_) s.segment_list.push_back({no, sg.first_seq, sg.last_seq, sg.end});
  return s;
}

uint64_t EventLog::Head() {
  std::lock_guard<std::mutex> g(mu_);
  return st_.last_seq;
}

void EventLog::Close() {
  if (syncer_.joinable()) {
    {
      std::lock_guard<std::mutex> g(smu_);
      sync_stop_ = true;
      scv_.notify_all();
    }
    syncer_.join();
  }
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (dir_fd_ >= 0) close(dir_fd_);
  dir_fd_ = -1;
}

}  // namespace vipmta::spool
