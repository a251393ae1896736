// Recovery at open (thread that opens the spool, before the commit thread starts): scans every
// segment and journal, rebuilds the index, cuts torn tails, moves corrupt regions to corrupt/,
// and writes the journal snapshot (deferred, not fatal, when the disk is full).
// Blocks on the file system. An unreadable segment is an event for the operator (its file stays
// in place for the next open); an unreadable journal fails the open (see RecoverJournal).
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include "spool_core.h"
#include "spool_file.h"
#include "spool_format.h"

namespace vipmta::spool {

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
  uint64_t last_end = 0;  // where the last journal's good entries end (0: it cannot take more)
  for (uint64_t no : jrns)
    if (!RecoverJournal(JrnPath(dir_, no), events, e, &last_end)) return false;

  index_.ForEach([&](uint32_t slot, Entry& en) {
    if (en.done) {
      index_.ClearState(slot);  // a done message has no state (an update may precede the mark)
      return;
    }
    en.seg->live++;
    stats_.messages++;
    stats_.bytes += en.body_len;
    stats_.recovered++;
  });
  uint64_t max_seg = segs.empty() ? 0 : segs.back();
  next_seg_ = std::max(counter, max_seg + 1);
  if (next_seg_ == 0) next_seg_ = 1;
  jrn_no_ = jrns.empty() ? 0 : jrns.back();
  jrn_files_ = jrns;
  Reclaim();
  const char* sc = "";
  int err = CompactJournal(&sc);
  if (err != 0 && !DeferCompaction(err, sc, last_end, e, events)) return false;
  last_cf_ms_ = WallMs();
  return true;
}

// The snapshot is only an optimisation, so a full disk must not keep the node from starting (it
// could never deliver the mail whose done-marks free the space): the old journals stay, new
// entries go on the end of the last one, and the commit thread retries the snapshot. The skip is
// an event the open reports. Any other error, or a last journal that cannot be reopened, still
// fails the open as before.
bool Core::DeferCompaction(int err, const char* sc, uint64_t last_end, Error* e, std::vector<RecoveryEvent>* ev) {
  if (err != ENOSPC && err != EDQUOT) {
    *e = {err, sc, nullptr, "writing the journal snapshot in " + dir_};
    return false;
  }
  std::string file;
  if (last_end != 0) {
    std::string path = JrnPath(dir_, jrn_no_);
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      *e = {errno, "open", nullptr, path + " (the spool journal, reopened to append while the disk is full)"};
      return false;
    }
    jrn_fd_ = fd;
    jrn_off_ = last_end;
    file = Base(path);
  }
  // Without a journal to append to (none yet, or the last one's header is damaged) jrn_fd_ stays
  // -1: a done-mark or update first retries the snapshot and fails with its error if that fails.
  compact_pending_ = true;
  compact_retry_ms_ = WallMs();
  std::string reason = std::string("journal snapshot not written (") + sc + ": " + strerror(err) +
                       "): the disk is full; the old journal is kept and the snapshot retried";
  ev->push_back({"deferred", file, 0, 0, reason, ""});
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
  std::string id = ClaimedRecordId(p, off + len, off);
  std::string text = "file: " + Base(path) + "\noffset: " + std::to_string(off) + "\nlength: " + std::to_string(len) +
                     "\nreason: " + reason + "\n" + (id.empty() ? "" : "id: " + id + "\n");
  fd = open((full + ".reason").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd >= 0) {
    PwriteAll(fd, reinterpret_cast<const uint8_t*>(text.data()), text.size(), 0);
    fdatasync(fd);
    close(fd);
  }
  ev->push_back({"corrupt", Base(path), off, len, reason, name + ".bad", id});
  stats_.corrupt++;
}

void Core::RecoverSegment(uint64_t no, const std::string& path, std::vector<RecoveryEvent>* ev) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    ev->push_back({"corrupt", Base(path), 0, 0, std::string("cannot open: ") + strerror(errno), ""});
    stats_.corrupt++;
    return;
  }
  MappedFile m;
  const char* sc = "";
  if (int err = MapFile(fd, &m, &sc); err != 0) {
    // Left in place, not renamed: the next open tries again (a transient EIO, ENOMEM).
    ev->push_back({"corrupt", Base(path), 0, m.size, std::string("cannot ") + sc + ": " + strerror(err), ""});
    stats_.corrupt++;
    close(fd);
    return;
  }
  uint64_t size = m.size;
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
  seg->sealed_ms = static_cast<int64_t>(m.st.st_mtim.tv_sec) * 1000 + m.st.st_mtim.tv_nsec / 1000000;
  uint64_t off = kSegHdr;
  while (off < size) {
    RecHeader h;
    if (ParseRecord(m.p, size, off, &h, &why)) {
      std::string_view id(reinterpret_cast<const char*>(m.p + off + kRecHdr), h.id_len);
      bool fresh;
      uint32_t slot = index_.FindOrInsert(id, &fresh);
      Entry& en = index_.at(slot);  // a later segment's copy (copy-forward) replaces an earlier one
      en.seg = seg.get();
      en.rec_off = off;
      en.id_len = h.id_len;
      en.env_len = h.env_len;
      en.body_len = h.body_len;
      en.arrival_ms = h.arrival_ms;
      en.copies++;
      en.recovered = true;
      seg->ids.push_back(slot);
      off += h.total_len;
      continue;
    }
    if (IsZero(m.p + off, size - off)) break;  // the preallocated, never written rest
    uint64_t next = FindNextRecord(m.p, size, off + 1);
    if (next == UINT64_MAX && strcmp(why, "checksum mismatch") == 0) {
      // The last record parses up to its checksum: header, id and lengths intact and all of it
      // inside the file. A write torn by a crash leaves its end as the zeros of preallocated
      // space (or short of the file's end); this one's last byte is there (a body ends in CRLF,
      // an envelope in '}'), so it was written whole and synced, hence acknowledged, and damaged
      // since: corruption, saved and reported as such, not cut off as a torn tail.
      RecHeader th;
      memcpy(&th, m.p + off, sizeof th);
      if (m.p[off + th.total_len - 1] != 0) next = off + th.total_len;
    }
    if (next == UINT64_MAX) {
      // A torn tail: the last write never completed, so nothing in it was acknowledged.
      uint64_t end = size;
      while (end > off && m.p[end - 1] == 0) end--;
      ev->push_back({"torn-tail", Base(path), off, end - off, why, "", ClaimedRecordId(m.p, size, off)});
      stats_.torn++;
      if (ftruncate(fd, static_cast<off_t>(off)) == 0) fdatasync(fd);
      break;
    }
    SaveAside(path, m.p, off, next - off, why, ev);
    off = next;
  }
  seg->ids.shrink_to_fit();
  segments_[no] = seg;
}

// A journal that cannot be opened, stat'ed or mapped fails the whole open with that errno (and
// the syscall and path in the message) instead of being skipped. Skipping it would be silent data
// damage an MTA operator would not expect: its done-marks are lost, so every message it marked
// delivered comes back as queued and is delivered again, its retry states are lost, and the
// compaction that follows recovery would delete the unread journal for good. A spool that does not
// open is loud (the daemon does not start and says which file and why), and nothing is lost:
// fix the file (permissions, disk) and start again. A journal whose bytes are readable but
// damaged is different: the damage is saved to corrupt/ as a recovery event, as for segments.
bool Core::RecoverJournal(const std::string& path, std::vector<RecoveryEvent>* ev, Error* e, uint64_t* end) {
  *end = 0;
  const std::string detail = path + " (the spool journal: without its done-marks, delivered messages would be sent again)";
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *e = {errno, "open", nullptr, detail};
    return false;
  }
  MappedFile m;
  const char* sc = "";
  if (int err = MapFile(fd, &m, &sc); err != 0) {
    *e = {err, sc, nullptr, detail};
    close(fd);
    return false;
  }
  uint64_t size = m.size;
  const char* why = "";
  uint64_t no = 0;
  ParseNumbered(Base(path).c_str(), "journal-", ".log", &no);
  if (m.p == nullptr || !CheckFileHeader(m.p, size, kJrnMagic, no, &why)) {
    if (m.p != nullptr && !IsZero(m.p, size)) SaveAside(path, m.p, 0, size, why, ev);
    close(fd);
    return true;
  }
  uint64_t off = kSegHdr;
  while (off < size) {
    JrnHeader h;
    if (ParseJrn(m.p, size, off, &h, &why)) {
      // Marks and states of ids no segment holds any more are dropped. Done is final; the
      // latest state wins (applied to a done entry too, then dropped by Recover).
      uint32_t slot = index_.Find(std::string_view(reinterpret_cast<const char*>(m.p + off + sizeof h), h.id_len));
      if (slot != Index::kNone) {
        if (h.type == kJrnDone) {
          index_.at(slot).done = true;
        } else {
          index_.SetState(slot, std::string(reinterpret_cast<const char*>(m.p + off + sizeof h + h.id_len), h.data_len));
        }
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
  *end = std::min(off, size);
  close(fd);
  return true;
}

}  // namespace vipmta::spool
