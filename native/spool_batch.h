// One group-commit batch, shared by the steps of Core::ProcessBatch (spool_commit.cc), the
// journal steps (spool_journal.cc) and copy-forward (spool_segments.cc). Commit thread only.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spool_core.h"
#include "spool_format.h"

namespace vipmta::spool {

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
  int64_t now = 0;             // wall clock of the batch: arrival time of its new messages
  std::vector<Rec> recs;       // new messages first (in submission order), then copy-forwards
  std::vector<Write> writes;   // one per segment touched, normally one
  // The journal part; its entries themselves are encoded into Core::jbuf_ (reused across batches).
  std::vector<int> op_err;     // per op: ENOENT for an update of an unknown or done id
  std::vector<std::string> done_ids;
  int jerr = 0;                // the journal write failed: no done-mark or update of this batch holds
  const char* jsc = nullptr;
  bool closing = false;        // a close is among the ops: no copy-forward
  uint64_t jrn_start = 0;      // where this batch's journal entries begin (undone if the events fail)
  // The event part. refused[i]: op i's events did not fit under the cap (refuse): the op fails
  // and nothing of it is written. everr: the batch had events and some write or sync of it failed,
  // so all of it was undone and every completion fails with everr.
  std::vector<uint8_t> refused;
  bool events = false;
  int everr = 0;
  const char* evsc = nullptr;
  uint64_t trimmed = 0;
};

}  // namespace vipmta::spool
