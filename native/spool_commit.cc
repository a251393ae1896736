// The commit thread: takes the submitted work, runs one group-commit batch over it (one pwritev
// and one fdatasync per segment touched, one pwrite and fdatasync of the journal), publishes the
// result in the index and settles each caller. Blocks on those writes and syncs only.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "spool_batch.h"
#include "spool_core.h"
#include "spool_file.h"
#include "spool_format.h"

namespace vipmta::spool {

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

// One group commit over everything submitted since the last one: each new message and each
// copy-forward is written with one pwritev and one fdatasync per segment touched (normally one),
// done-marks and updates with one pwrite and one fdatasync of the journal, the events that came
// with any of them with one pwrite and one fdatasync of the event journal (overlapped with the
// others, spool_commit_events.cc). Then the index is
// updated and every caller settled, one wake-up per JS thread. The steps, in order:
void Core::ProcessBatch(std::vector<Op>& ops) {
  Batch b;
  b.now = WallMs();
  b.op_err.assign(ops.size(), 0);
  AdmitEvents(ops, &b);            // 0. events under the event journal's cap (else the op fails)
  CollectJournalEntries(ops, &b);  // 1. done-marks and updates, checked against the index
  CollectRecords(ops, &b);         // 2. new messages, then copies of long-lived ones
  PlaceRecords(&b);                // 3. ids, record headers, segment roll-over
  StartEvents(ops, &b);            //    event frames (with the ids): pwrite, fdatasync started
  WriteSegments(&b);               // 4. pwritev + fdatasync per segment
  WriteJournal(&b);                //    pwrite + fdatasync of the journal
  FinishEvents(ops, &b);           //    the event sync's end; any failure undoes the whole batch
  RollBackFailedWrites(&b);        // 5. cut failed segment writes off
  Publish(ops, &b);                // 6. index and counters
  Reclaim();
  Complete(ops, &b);               // 7. settle the callers
  RetryCompaction(&b);             // 8. a journal past its limit, or a snapshot deferred at open
}

void Core::CollectRecords(std::vector<Op>& ops, Batch* b) {
  for (size_t i = 0; i < ops.size(); i++) {
    if (ops[i].kind != Op::kMessage || b->refused[i]) continue;
    Batch::Rec r;
    r.op = &ops[i];
    b->recs.push_back(std::move(r));
  }
  for (auto& op : ops) b->closing = b->closing || op.kind == Op::kClose;
  if (!b->closing && o_.copy_forward_ms > 0 &&
      b->now - last_cf_ms_ >= std::clamp<int64_t>(o_.copy_forward_ms / 4, 10, 60000)) {
    last_cf_ms_ = b->now;
    CollectCopyForward(b, b->now);
  }
}

// Gives each new message its queue id and record header (written into the headroom in front of
// its body, so a record is one iovec) and each record its place; rolls to a new segment when the
// current one is full. A roll that fails fails every record after it.
void Core::PlaceRecords(Batch* b) {
  int roll_err = 0;
  const char* roll_sc = nullptr;
  for (size_t i = 0; i < b->recs.size(); i++) {
    Batch::Rec& r = b->recs[i];
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
    if (b->writes.empty() || b->writes.back().seg != cur_) {
      Batch::Write w;
      w.seg = cur_;
      w.start = cur_off_;
      if (cur_needs_header_) {
        w.fresh = true;
        FillFileHeader(&w.hdr, kSegMagic, cur_->no, o_.node_id);
        cur_off_ = kSegHdr;
        cur_needs_header_ = false;
      }
      b->writes.push_back(std::move(w));
    }
    if (r.op != nullptr) EncodeMessageRecord(b, i);
    r.seg = cur_;
    r.off = cur_off_;
    r.write = b->writes.size() - 1;
    cur_off_ += r.len;
    b->writes.back().recs.push_back(i);
    b->writes.back().end = cur_off_;
  }
}

// The new message's id (node, segment, sequence) and its record header, in place.
void Core::EncodeMessageRecord(Batch* b, size_t rec) {
  Batch::Rec* r = &b->recs[rec];
  int64_t now = b->now;
  Message* m = r->op->msg.get();
  char idb[kMaxIdLen + 1];
  int n = snprintf(idb, sizeof idb, "%s-%08llx-%06x", o_.node_id.c_str(), static_cast<unsigned long long>(cur_->no),
                   ++cur_seq_);
  r->id.assign(idb, std::min<size_t>(n, kMaxIdLen));
  RecHeader h{};
  h.magic = kRecMagic;
  h.version = kVersion;
  h.type = kRecMessage;
  h.header_len = kRecHdr;
  h.id_len = static_cast<uint16_t>(r->id.size());
  h.env_len = m->env_len;
  h.body_len = m->len - kHeadroom - m->env_len;
  h.total_len = kRecHdr + h.id_len + h.env_len + h.body_len;
  h.arrival_ms = static_cast<uint64_t>(now);
  h.crc = RecordCrc(m->payload_crc, h, r->id.data());
  uint8_t* start = m->buf + kHeadroom - h.id_len - kRecHdr;
  memcpy(start, &h, kRecHdr);
  memcpy(start + kRecHdr, r->id.data(), h.id_len);
  r->data = start;
  r->len = h.total_len;
  r->body_len = h.body_len;
}

// One pwritev per segment touched (normally one), one fdatasync each.
void Core::WriteSegments(Batch* b) {
  std::vector<iovec> iov;
  for (auto& w : b->writes) {
    iov.clear();
    if (w.fresh) iov.push_back({&w.hdr, sizeof w.hdr});
    for (size_t ri : w.recs) iov.push_back({const_cast<uint8_t*>(b->recs[ri].data), b->recs[ri].len});
    w.err = PwritevAll(w.seg->fd, iov, w.fresh ? 0 : w.start);
    w.sc = "pwritev";
    if (w.err == 0 && o_.sync) {
      w.err = DataSync(w.seg->fd);
      w.sc = "fdatasync";
      std::unique_lock<std::shared_mutex> g(idx_mu_);
      stats_.syncs++;
    }
  }
}

// Cuts a failed segment write off at the last good offset and seals the segment, so the next
// batch starts clean (a segment created for this batch goes away entirely).
void Core::RollBackFailedWrites(Batch* b) {
  for (auto& w : b->writes) {
    if (w.err == 0) continue;
    for (size_t ri : w.recs) {
      b->recs[ri].err = w.err;
      b->recs[ri].sc = w.sc;
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
      cur_->sealed_ms = b->now;
      cur_.reset();
    }
  }
}

// Makes the batch visible to readers: new entries, moved copies, done-marks, states, counters.
// One exclusive lock for all of it.
void Core::Publish(std::vector<Op>& ops, Batch* b) {
  int64_t done_ns = MonoNs();
  std::unique_lock<std::shared_mutex> g(idx_mu_);
  IndexRecordsLocked(b, done_ns);
  if (b->jerr == 0) ApplyJournalLocked(ops, b);
  if (!b->recs.empty() || !jbuf_.empty()) stats_.batches++;
}

void Core::IndexRecordsLocked(Batch* b, int64_t done_ns) {
  for (auto& r : b->recs) {
    if (r.err != 0) {
      if (r.op != nullptr) {
        if (r.err == ENOSPC || r.err == EDQUOT) stats_.full_errors++;
        else stats_.io_errors++;
      }
      continue;
    }
    if (r.op != nullptr) {
      bool fresh;
      uint32_t slot = index_.FindOrInsert(r.id, &fresh);  // fresh: ids never repeat (next-segment)
      Entry& en = index_.at(slot);
      index_.ClearState(slot);
      en.seg = r.seg.get();
      en.rec_off = r.off;
      en.id_len = r.id.size();
      en.env_len = r.op->msg->env_len;
      en.body_len = r.body_len;
      en.arrival_ms = static_cast<uint64_t>(b->now);
      en.done = false;
      en.recovered = false;
      en.copies = 1;
      r.seg->live++;
      r.seg->ids.push_back(slot);
      stats_.messages++;
      stats_.bytes += r.body_len;
      stats_.commits++;
      int64_t us = (done_ns - r.op->msg->begin_ns) / 1000;
      int bk = 0;
      while (bk < 11 && us > kLatencyBoundsUs[bk]) bk++;
      stats_.latency_buckets[bk]++;
      stats_.latency_sum_us += static_cast<uint64_t>(us < 0 ? 0 : us);
    } else {
      uint32_t slot = index_.Find(r.id);
      if (slot == Index::kNone) continue;
      Entry& en = index_.at(slot);
      if (en.seg == r.old_seg.get()) {
        if (!en.done) {
          r.old_seg->live--;
          r.seg->live++;
        }
        en.seg = r.seg.get();
        en.rec_off = r.off;
      }
      en.copies++;
      r.seg->ids.push_back(slot);
      stats_.copied_forward++;
    }
  }
}

namespace {

void Fail(Completion* c, int err, const char* sc) {
  c->err = err;
  c->syscall = sc;
  if (err == ENOSPC || err == EDQUOT) c->code = "ERR_SPOOL_FULL";
}

}  // namespace

// Settles every caller of the batch, grouped per JS thread: one wake-up per thread per batch.
void Core::Complete(std::vector<Op>& ops, Batch* b) {
  std::vector<std::pair<std::shared_ptr<Notifier>, std::vector<Completion>>> per;
  auto sink_of = [&per](const std::shared_ptr<Notifier>& s) -> std::vector<Completion>& {
    for (auto& p : per)
      if (p.first == s) return p.second;
    per.emplace_back(s, std::vector<Completion>{});
    return per.back().second;
  };
  for (auto& r : b->recs) {
    if (r.op == nullptr || !r.op->sink) continue;
    Completion c;
    c.token = r.op->token;
    if (r.err != 0) {
      Fail(&c, r.err, r.sc);
    } else {
      c.id = r.id;
      c.size = r.body_len;
    }
    sink_of(r.op->sink).push_back(std::move(c));
  }
  for (size_t i = 0; i < ops.size(); i++) {
    Op& op = ops[i];
    if (op.kind == Op::kClose || !op.sink) continue;
    if (op.kind == Op::kMessage && !b->refused[i]) continue;  // settled above, from its record
    Completion c;
    c.token = op.token;
    c.size = op.kind == Op::kEventsTrim ? b->trimmed : 0;
    if (b->refused[i]) {
      Fail(&c, ENOSPC, "events");
      c.detail = "the event journal is at its size cap (Event_Journal_Max_Size): an event that cannot be recorded is not acknowledged";
    } else if (b->op_err[i] != 0) {
      c.err = b->op_err[i];
      c.syscall = "update";
      c.detail = "no queued message " + op.id;
    } else if (b->jerr != 0 && (op.kind == Op::kDone || op.kind == Op::kUpdate)) {
      Fail(&c, b->jerr, b->jsc);
    } else if (b->everr != 0 && op.kind != Op::kEventsTrim && (!op.events.empty() || op.kind == Op::kEvents)) {
      // Only an op whose own events were not written fails for them: a done-mark or an update
      // without events stands on its journal write alone (it was applied).
      Fail(&c, b->everr, b->evsc);
    }
    sink_of(op.sink).push_back(std::move(c));
  }
  for (auto& p : per) p.first->Deliver(std::move(p.second));
}

}  // namespace vipmta::spool
