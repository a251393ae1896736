// The process-wide spool engine (one Core per directory, shared by every thread): segments, the
// journal, the id -> location index, recovery, group commit. No Node-API. JS threads call
// Submit*/Lookup/Stats (short critical sections, no I/O under a lock); the commit thread blocks on
// pwritev/fdatasync, the preparer thread zero-fills the next segment. Files: spool_core.cc (open,
// submit, read, close), spool_recovery, _commit (the batch), _journal, _segments, _index, _format,
// _file, _events (the event journal written in the same batch, spool_events.h).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "spool_events.h"
#include "spool_index.h"
#include "spool_wire.h"

namespace vipmta::spool {

// The result of one submitted operation. err == 0 means success.
struct Completion {
  uint64_t token = 0;
  int err = 0;                    // errno of the failing call
  const char* syscall = nullptr;  // the failing system call ("fdatasync", ...)
  const char* code = nullptr;     // our code instead of the errno name (ERR_SPOOL_FULL, ...)
  std::string detail;
  std::string id;  // commit: the queue id
  uint64_t size = 0;
};

// Where completions of one JS thread (Node-API env) go. Implemented in spool.cc on top of a
// thread-safe function; Deliver is called on the commit thread and must not block for long.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void Deliver(std::vector<Completion>&& done) = 0;
};

enum class Prealloc { kNone, kFallocate, kZero };

struct Options {
  std::string directory;
  std::string node_id;  // already sanitized
  bool sync = true;     // false: never fdatasync (tests only)
  int64_t commit_delay_ms = 0;
  uint64_t segment_size = 64ull << 20;
  int64_t copy_forward_ms = 3600 * 1000;  // 0 disables
  uint64_t journal_limit = 64ull << 20;    // compact the journal beyond this many bytes
  Prealloc prealloc = Prealloc::kFallocate;
  EventOptions events;
};

struct Error {
  int err = 0;
  const char* syscall = "";
  const char* code = nullptr;
  std::string detail;
};

// A torn tail cut off, a corrupt region moved to corrupt/, or (kind "deferred") a step of the
// open skipped because the disk is full: the journal snapshot, retried by the commit thread.
struct RecoveryEvent {
  std::string kind;     // "torn-tail" | "corrupt" | "deferred"
  std::string file;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string reason;
  std::string saved_as;  // corrupt/<...>.bad, for kind corrupt
  std::string id = "";   // the queue id the damaged record claims, when its header is readable
};


struct Stats {
  uint64_t messages = 0, bytes = 0, segments = 0, commits = 0, batches = 0, syncs = 0;
  uint64_t journal_entries = 0, copied_forward = 0, reclaimed = 0, full_errors = 0, io_errors = 0;
  uint64_t latency_buckets[12] = {};
  uint64_t latency_sum_us = 0;  // with the buckets, a Prometheus histogram needs the sum too
  uint64_t recovered = 0, corrupt = 0, torn = 0;
};
constexpr int64_t kLatencyBoundsUs[11] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000};

// One segment file. Held by shared_ptr: a reader that looked a body up keeps the fd open even if
// the segment is reclaimed meanwhile (Lookup takes its shared_ptr from the raw pointer an index
// entry holds). live/ids are guarded by Core::idx_mu_.
struct Segment : std::enable_shared_from_this<Segment> {
  uint64_t no = 0;
  std::string path;
  int fd = -1;
  uint64_t live = 0;           // not-done messages whose current location is here
  int64_t sealed_ms = 0;       // when it stopped taking writes (0 while current)
  bool current = false;
  // The index slot of every id with a record in this file (current or stale copy). A slot is
  // freed only when its entry's copies reach 0, i.e. once no segment's list holds it any more
  // (Reclaim), so a slot in a live segment's list never names a newer message.
  std::vector<uint32_t> ids;
  ~Segment();
};

// Start-up recovery in chunks (docs/performance.md "recovery in chunks"): what RecoverBegin lists,
// about 24 B a message plus its id, so a million messages never exist as a million strings at once.
struct RecoverCursor {
  struct Ref {
    uint64_t arrival_ms;
    uint64_t id_off;  // in ids
    uint16_t id_len;
  };
  std::string ids;  // every listed id, back to back
  std::vector<Ref> refs;  // oldest first (arrival, then id)
  size_t next = 0;
  bool all = false;
};

// One message of a chunk, looked up again under the index lock.
struct RecoverItem {
  std::shared_ptr<Segment> seg;  // keeps the fd open even if the segment is reclaimed meanwhile
  uint64_t env_off = 0;          // file offset of the envelope
  uint32_t env_len = 0;
  uint64_t size = 0;
  uint64_t arrival_ms = 0;
  uint64_t id_off = 0;  // in the cursor's ids
  uint16_t id_len = 0;
  bool has_state = false;
  std::string state;
};

// One unit of submitted work.
struct Op {
  enum Kind { kMessage, kDone, kUpdate, kClose, kEvents, kEventsTrim } kind = kMessage;
  std::shared_ptr<Notifier> sink;
  uint64_t token = 0;
  std::unique_ptr<Message> msg;
  std::vector<std::string> ids;
  std::string id;
  std::string data;
  // Events recorded in the same batch; a kMessage's get the queue id the commit assigns. Empty
  // (no allocation) when the caller gave none.
  std::vector<EventIn> events;
};

struct BodyRef {
  std::shared_ptr<Segment> seg;
  int fd = -1;  // valid while seg is held
  std::string path;
  uint64_t offset = 0, length = 0;
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  // Opens (creating if needed), locks and recovers the spool; starts its threads. Main thread.
  static std::shared_ptr<Core> Open(const Options& o, Error* e, std::vector<RecoveryEvent>* events);
  // The open spool of this process for a directory (any spelling of its path), or null.
  static std::shared_ptr<Core> Find(const std::string& directory);

  // Queue work for the next group commit. Return false (and keep nothing) once closing.
  // Any JS thread; takes one mutex briefly.
  bool SubmitMessage(std::unique_ptr<Message> m, std::shared_ptr<Notifier> n, uint64_t token,
                     std::vector<EventIn> events = {});
  bool SubmitDone(std::vector<std::string> ids, std::shared_ptr<Notifier> n, uint64_t token,
                  std::vector<EventIn> events = {});
  bool SubmitUpdate(std::string id, std::string state, std::shared_ptr<Notifier> n, uint64_t token,
                    std::vector<EventIn> events = {});
  // Events alone (group-committed with whatever else is in the batch), and a trim of the event
  // journal (completion size: segments removed).
  bool SubmitEvents(std::vector<EventIn> events, std::shared_ptr<Notifier> n, uint64_t token);
  bool SubmitEventsTrim(std::shared_ptr<Notifier> n, uint64_t token);
  // Drains everything queued before it, closes files, releases the lock; completes token last.
  bool SubmitClose(std::shared_ptr<Notifier> n, uint64_t token);
  // SubmitClose and wait until the commit thread has finished (env cleanup hooks).
  void CloseAndWait();

  int Lookup(const std::string& id, BodyRef* out);  // 0 or ENOENT; any thread
  // Not-done messages, in chunks: those found at open, or (all = true) every live one, including
  // messages committed since open (the main thread reconciles with this after a worker died
  // unreported). RecoverBegin lists them oldest first as compact refs; RecoverNext looks up to
  // `max` of them up again (one done meanwhile is skipped), empty only once all were handed out.
  // ReadEnvelopes preads a chunk's envelopes into dst at offs[i] (segment/offset order).
  std::unique_ptr<RecoverCursor> RecoverBegin(bool all = false);
  std::vector<RecoverItem> RecoverNext(RecoverCursor* cur, size_t max);
  static bool ReadEnvelopes(const std::vector<RecoverItem>& items, uint8_t* dst, const uint32_t* offs, Error* e);
  Stats GetStats();
  EventStats GetEventStats() { return ev_.Stats(); }
  uint64_t EventHead() { return ev_.Head(); }
  const std::string& Directory() const { return dir_; }
  bool Closing();

  ~Core();

 private:
  struct Batch;  // spool_batch.h
  Core() = default;
  bool Submit(Op&& op);

  // Recovery at open (spool_recovery.cc).
  bool Recover(Error* e, std::vector<RecoveryEvent>* events);
  void RecoverSegment(uint64_t no, const std::string& path, std::vector<RecoveryEvent>* ev);
  // Applies done-marks and states straight to the index (entries of ids no segment holds are
  // dropped): no set of id strings at open.
  bool RecoverJournal(const std::string& path, std::vector<RecoveryEvent>* ev, Error* e, uint64_t* end);
  bool DeferCompaction(int err, const char* sc, uint64_t last_end, Error* e, std::vector<RecoveryEvent>* ev);
  void SaveAside(const std::string& path, const uint8_t* p, uint64_t off, uint64_t len, const std::string& reason,
                 std::vector<RecoveryEvent>* ev);

  // The commit thread and one group commit (spool_commit.cc), steps in the order they run.
  void Run();
  void ProcessBatch(std::vector<Op>& ops);
  void CollectJournalEntries(std::vector<Op>& ops, Batch* b);  // spool_journal.cc
  void CollectRecords(std::vector<Op>& ops, Batch* b);
  void PlaceRecords(Batch* b);
  void WriteSegments(Batch* b);
  void WriteJournal(Batch* b);  // spool_journal.cc
  void AdmitEvents(std::vector<Op>& ops, Batch* b);  // spool_commit_events.cc
  void StartEvents(std::vector<Op>& ops, Batch* b);
  void FinishEvents(std::vector<Op>& ops, Batch* b);
  void RollBackFailedWrites(Batch* b);
  void Publish(std::vector<Op>& ops, Batch* b);
  void Complete(std::vector<Op>& ops, Batch* b);
  void EncodeMessageRecord(Batch* b, size_t rec);
  void IndexRecordsLocked(Batch* b, int64_t done_ns);
  void ApplyJournalLocked(std::vector<Op>& ops, Batch* b);  // spool_journal.cc

  // The journal (spool_journal.cc) and segments (spool_segments.cc).
  int CompactJournal(const char** syscall);
  void RetryCompaction(Batch* b);
  int SyncDir();
  int Roll(const char** syscall);
  void CollectCopyForward(Batch* b, int64_t now_ms);
  void Reclaim();
  void Prepare();  // the preparer thread
  void Finish();   // spool_core.cc

  Options o_;
  std::string dir_;
  int dir_fd_ = -1;
  int lock_fd_ = -1;

  // Pending work, guarded by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Op> pending_;
  bool closing_ = false;
  bool finished_ = false;
  std::condition_variable cv_finished_;

  // Index and segments, guarded by idx_mu_ (written by the commit thread, read by JS threads).
  std::shared_mutex idx_mu_;
  Index index_;
  std::map<uint64_t, std::shared_ptr<Segment>> segments_;
  Stats stats_;

  // Commit thread only.
  std::shared_ptr<Segment> cur_;
  uint64_t cur_off_ = 0;
  uint32_t cur_seq_ = 0;
  uint64_t next_seg_ = 1;
  bool cur_needs_header_ = false;
  int jrn_fd_ = -1;
  uint64_t jrn_no_ = 0;
  uint64_t jrn_off_ = 0;
  std::vector<uint64_t> jrn_files_;
  // The snapshot at open failed for lack of space: appending to the last journal meanwhile (or to
  // none: jrn_fd_ < 0 until a snapshot succeeds), retried at most every kCompactRetryMs.
  bool compact_pending_ = false;
  int64_t compact_retry_ms_ = 0;
  int64_t last_cf_ms_ = 0;
  std::vector<uint8_t> jbuf_;
  EventLog ev_;  // the event journal (its own locks; see spool_events.h)

  // Preparer thread handshake, guarded by prep_mu_.
  std::mutex prep_mu_;
  std::condition_variable prep_cv_;
  int spare_fd_ = -1;
  bool spare_wanted_ = true;
  bool prep_stop_ = false;
  bool prep_done_ = false;
  std::atomic<bool> prep_abort_{false};
};

// Sanitizes a node id for queue ids: [A-Za-z0-9-], at most 32 characters, never empty.
std::string SanitizeNodeId(const std::string& in);

}  // namespace vipmta::spool
