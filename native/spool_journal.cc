// The journal of done-marks and state updates: the batch steps that collect, write and apply its
// entries (commit thread), and compaction into a fresh snapshot (commit thread, or at open).
// Blocks on pwrite/fdatasync/rename/fsync of the spool directory.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <unordered_set>

#include "spool_batch.h"
#include "spool_core.h"
#include "spool_file.h"
#include "spool_format.h"

namespace vipmta::spool {
namespace {
constexpr int64_t kCompactRetryMs = 5000;  // a snapshot deferred at open (disk full): retry pace
// Space held beyond the journal's end (FALLOC_FL_KEEP_SIZE: the file's size does not change), so
// that on a full disk the done-marks that free it can still be written; renewed every kReserveStep.
constexpr off_t kReserve = 256 * 1024;
constexpr uint64_t kReserveStep = 64 * 1024;

void Reserve(int fd, uint64_t from) {
  if (fd >= 0) (void)fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from), kReserve);
}
}  // namespace

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
    index_.ForEach([&](uint32_t slot, const Entry& en) {
      if (en.done) AppendJrn(&b, kJrnDone, index_.Id(slot), "");
      else if (en.has_state) AppendJrn(&b, kJrnUpdate, index_.Id(slot), index_.State(slot));
    });
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
  compact_pending_ = false;
  Reserve(fd, jrn_off_);
  return 0;
}

// After a batch whose journal part held (or had none): compacts a journal grown past its limit,
// or retries a snapshot the open deferred for lack of space. A failure leaves the old journal
// valid; the next batch (or the idle wake-up) tries again.
void Core::RetryCompaction(Batch* b) {
  if (b->jerr != 0) return;
  bool retry = compact_pending_ && b->now - compact_retry_ms_ >= kCompactRetryMs;
  if (jrn_off_ <= o_.journal_limit && !retry) return;
  if (compact_pending_) compact_retry_ms_ = b->now;
  const char* sc;
  (void)CompactJournal(&sc);
}


// ---- the journal part of a batch (commit thread) ----------------------------------------------

// Encodes the batch's done-marks and updates into jbuf_, checked against the index: a done-mark
// for an unknown or already done id is dropped (harmless), an update of one fails with ENOENT.
void Core::CollectJournalEntries(std::vector<Op>& ops, Batch* b) {
  jbuf_.clear();
  std::unordered_set<uint32_t> seen;  // slots marked done in this batch
  std::shared_lock<std::shared_mutex> g(idx_mu_);
  for (size_t i = 0; i < ops.size(); i++) {
    Op& op = ops[i];
    if (b->refused[i]) continue;
    if (op.kind == Op::kDone) {
      for (auto& id : op.ids) {
        uint32_t slot = index_.Find(id);
        // Unknown or already done: nothing to record (a duplicate mark is harmless).
        if (slot == Index::kNone || index_.at(slot).done || !seen.insert(slot).second) continue;
        AppendJrn(&jbuf_, kJrnDone, id, "");
        b->done_ids.push_back(id);
      }
    } else if (op.kind == Op::kUpdate) {
      uint32_t slot = index_.Find(op.id);
      if (slot == Index::kNone || index_.at(slot).done) {
        b->op_err[i] = ENOENT;
        continue;
      }
      AppendJrn(&jbuf_, kJrnUpdate, op.id, op.data);
    }
  }
}

// One pwrite and one fdatasync of the batch's entries. On failure the journal is cut back to its
// last good entry so a later append does not follow a hole, and b->jerr fails every done-mark
// and update of the batch.
void Core::WriteJournal(Batch* b) {
  if (jbuf_.empty()) return;
  if (jrn_fd_ < 0) {
    // No journal to append to since an open on a full disk: the snapshot must be written first,
    // and if it cannot be, the batch's done-marks and updates fail with its error (never lost:
    // the messages stay queued and may be delivered again).
    b->jerr = CompactJournal(&b->jsc);
    if (b->jerr != 0) return;
  }
  b->jrn_start = jrn_off_;
  b->jerr = PwriteAll(jrn_fd_, jbuf_.data(), jbuf_.size(), jrn_off_);
  b->jsc = "pwrite";
  if (b->jerr == 0 && o_.sync) {
    b->jerr = DataSync(jrn_fd_);
    b->jsc = "fdatasync";
    std::unique_lock<std::shared_mutex> g(idx_mu_);
    stats_.syncs++;
  }
  if (b->jerr != 0) {
    (void)ftruncate(jrn_fd_, static_cast<off_t>(jrn_off_));
  } else {
    uint64_t before = jrn_off_;
    jrn_off_ += jbuf_.size();
    if (before / kReserveStep != jrn_off_ / kReserveStep) Reserve(jrn_fd_, jrn_off_);
  }
}

// The journal written, its effects go into the index. idx_mu_ held exclusively by the caller.
void Core::ApplyJournalLocked(std::vector<Op>& ops, Batch* b) {
  for (auto& id : b->done_ids) {
    uint32_t slot = index_.Find(id);
    if (slot == Index::kNone || index_.at(slot).done) continue;
    Entry& en = index_.at(slot);
    en.done = true;
    index_.ClearState(slot);
    if (en.seg) en.seg->live--;
    stats_.messages--;
    stats_.bytes -= en.body_len;
  }
  for (size_t i = 0; i < ops.size(); i++) {
    if (ops[i].kind != Op::kUpdate || b->op_err[i] != 0) continue;
    uint32_t slot = index_.Find(ops[i].id);
    if (slot == Index::kNone || index_.at(slot).done) continue;
    index_.SetState(slot, std::move(ops[i].data));
  }
  stats_.journal_entries += b->done_ids.size();
}

}  // namespace vipmta::spool
