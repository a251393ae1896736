// The event part of a group commit (commit thread): admits each op's events under the cap, encodes
// their frames once the batch's queue ids are known, writes them and overlaps their fdatasync
// with the segment's, and, when any write or sync of a batch with events failed, undoes all of it
// so that no completion of the batch is delivered without its events on disk (and no event is
// kept for work that failed). Blocks on the event file (spool_events.cc) and the journal.
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "spool_batch.h"
#include "spool_core.h"
#include "spool_file.h"

namespace vipmta::spool {

// Refused ops (cap reached, Event_Journal_At_Cap refuse) are left out of the batch entirely.
void Core::AdmitEvents(std::vector<Op>& ops, Batch* b) {
  b->refused.assign(ops.size(), 0);
  for (size_t i = 0; i < ops.size(); i++) {
    const Op& op = ops[i];
    if (op.events.empty()) continue;
    uint64_t bytes = 0;
    for (const EventIn& e : op.events) {
      size_t id_len = op.kind == Op::kMessage ? kMaxEventId : std::min(e.id.size(), kMaxEventId);
      bytes += sizeof(EvtFrame) + id_len + e.data.size();
    }
    if (!ev_.Admit(bytes, b->now)) b->refused[i] = 1;
  }
}

// Frames in submission order; a commit's events carry the queue id PlaceRecords just assigned,
// an update's events without an id carry the updated id. Ops that already failed (an update of
// an unknown id) record nothing. A record that could not be placed fails the batch before any
// event is written.
void Core::StartEvents(std::vector<Op>& ops, Batch* b) {
  size_t rec = 0;
  for (size_t i = 0; i < ops.size(); i++) {
    Op& op = ops[i];
    if (b->refused[i]) continue;
    if (op.kind == Op::kMessage) {
      const Batch::Rec& r = b->recs[rec++];
      for (const EventIn& e : op.events) ev_.Add(r.id, e.data, e.time_ms);
      continue;
    }
    if (op.events.empty() || b->op_err[i] != 0) continue;
    for (const EventIn& e : op.events)
      ev_.Add(e.id.empty() && op.kind == Op::kUpdate ? op.id : e.id, e.data, e.time_ms);
  }
  if (ev_.Empty()) return;
  b->events = true;
  for (const Batch::Rec& r : b->recs) {
    if (r.err != 0) {
      b->everr = r.err;
      b->evsc = r.sc;
      return;
    }
  }
  b->everr = ev_.Start(&b->evsc);
}

void Core::FinishEvents(std::vector<Op>& ops, Batch* b) {
  if (b->events) {
    if (b->everr == 0) b->everr = ev_.Finish(&b->evsc);
    for (auto& w : b->writes) {
      if (b->everr == 0 && w.err != 0) {
        b->everr = w.err;
        b->evsc = w.sc;
      }
    }
    if (b->everr == 0 && !jbuf_.empty() && b->jerr != 0) {
      b->everr = b->jerr;
      b->evsc = b->jsc;
    }
    if (b->everr != 0) {
      ev_.RollBack();
      for (auto& w : b->writes) {
        if (w.err == 0) {
          w.err = b->everr;
          w.sc = b->evsc;
        }
      }
      if (!jbuf_.empty() && b->jerr == 0) {
        if (ftruncate(jrn_fd_, static_cast<off_t>(b->jrn_start)) == 0 && o_.sync) (void)DataSync(jrn_fd_);
        jrn_off_ = b->jrn_start;
        b->jerr = b->everr;
        b->jsc = b->evsc;
      }
    } else {
      ev_.Commit(b->now);
    }
  } else {
    ev_.RollBack();  // nothing written; forgets what Admit let in
  }
  for (const Op& op : ops) {
    if (op.kind == Op::kEventsTrim) {
      b->trimmed = ev_.Trim();
      break;
    }
  }
}

}  // namespace vipmta::spool
