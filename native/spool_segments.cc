// Segment lifecycle on the commit thread: roll-over to a new segment, copy-forward of long-lived
// messages, reclaim of segments with no live message; and the preparer thread that zero-fills the
// next segment ahead of time. Blocks on open/rename/fsync/pread/unlink (and write on the preparer).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "spool_batch.h"
#include "spool_core.h"
#include "spool_file.h"
#include "spool_format.h"

namespace vipmta::spool {
namespace {
constexpr uint64_t kCopyForwardBudget = 8u << 20;  // bytes copied forward per batch at most
}  // namespace

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


int Core::Roll(const char** sc) {
  if (cur_) {
    std::unique_lock<std::shared_mutex> g(idx_mu_);
    cur_->current = false;
    cur_->sealed_ms = WallMs();
    cur_->ids.shrink_to_fit();  // sealed: no more slots (up to half its capacity was spare)
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
    uint32_t slot;
    std::shared_ptr<Segment> seg;
    uint64_t off, len;
  };
  std::vector<Cand> cands;
  uint64_t budget = std::min<uint64_t>(kCopyForwardBudget, o_.segment_size);
  {
    std::shared_lock<std::shared_mutex> g(idx_mu_);
    for (auto& [no, seg] : segments_) {
      if (seg->current || seg->live == 0 || seg->sealed_ms + o_.copy_forward_ms > now) continue;
      for (uint32_t slot : seg->ids) {
        const Entry& en = index_.at(slot);  // used: this live segment lists it (Segment::ids)
        if (en.done || en.seg != seg.get()) continue;
        uint64_t len = kRecHdr + en.id_len + en.env_len + en.body_len;
        if (!cands.empty() && len > budget) break;
        cands.push_back({slot, seg, en.rec_off, len});
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
    // The id as the record holds it (the index's copy of it, for a parsed id, is the same bytes).
    r.id.assign(reinterpret_cast<const char*>(r.copy.data() + kRecHdr), h.id_len);
    r.data = r.copy.data();
    r.len = c.len;
    r.body_len = h.body_len;
    r.old_seg = c.seg;
    b->recs.push_back(std::move(r));
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
      for (uint32_t slot : seg->ids) {
        Entry& en = index_.at(slot);
        if (!en.used) continue;
        if (en.seg == seg.get()) en.seg = nullptr;
        // copies counts the lists holding the slot: at 0 none does, and the slot may be reused.
        if (--en.copies == 0) index_.Erase(slot);
      }
      seg->ids.clear();
      seg->ids.shrink_to_fit();
      stats_.reclaimed++;
    }
  }
  // The unlinks need no directory sync here: a reclaimed segment that comes back after a crash
  // only holds done messages, and the journal keeps their done-marks until a compaction, which
  // syncs the directory first.
  for (auto& seg : gone) unlink(seg->path.c_str());
}


}  // namespace vipmta::spool
