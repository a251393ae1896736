// The event journal of a spool (<spool>/events/): append-only, checksummed segments of opaque
// event records, written by the spool's commit thread in the same group commit as the messages,
// done-marks and updates they describe, and synced before any completion of that batch. Owned by
// Core (one per spool); commit thread only, except Stats()/Head() (any thread, under mu_) and the
// sync thread, which only runs fdatasync on the fd it is handed. Blocks on the event files only.
//
// Format, version 1 (also in docs/events.md, "The journal on disk"), little-endian:
//   file "ev-<16 hex>.log": EvtFileHeader (64 bytes), then frames back to back, then zeros (the
//   preallocated rest of the active segment; a sealed segment is cut to its last frame).
//   frame: EvtFrame (32 bytes) | id (id_len bytes, the queue id, may be empty) | payload.
//   EvtFrame.crc is CRC32C over the frame header (crc field zero), then id, then payload.
//   seq increases by one per frame across segments; a zero magic ends the data.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vipmta::spool {

struct RecoveryEvent;
struct Error;

constexpr uint64_t kEvtMagic = 0x31544E4556455056ull;  // "VPEVENT1"
constexpr uint32_t kEvtFrameMagic = 0x54564556u;       // "VEVT"
constexpr uint32_t kEvtVersion = 1;
constexpr size_t kMaxEventPayload = 1u << 20;
constexpr size_t kMaxEventId = 64;

struct EvtFileHeader {  // 64 bytes at offset 0 of every event segment
  uint64_t magic;       // kEvtMagic
  uint32_t version;     // kEvtVersion
  uint32_t header_len;  // 64
  uint64_t number;      // segment number (also in the file name)
  uint64_t created_ms;  // wall clock at creation
  uint64_t first_seq;   // the sequence number the first frame of this file has (or would have)
  char node[20];        // node id, NUL padded (informational)
  uint32_t crc;         // CRC32C of the 60 bytes before it
};
static_assert(sizeof(EvtFileHeader) == 64);

struct EvtFrame {      // 32 bytes, then id_len bytes of queue id, then the payload
  uint32_t magic;      // kEvtFrameMagic
  uint32_t total_len;  // header + id + payload
  uint32_t crc;        // see above
  uint16_t id_len;     // 0: no queue id
  uint16_t reserved;   // 0
  uint64_t seq;        // monotonic across segments, from 1
  uint64_t time_ms;    // wall clock when the event was submitted
};
static_assert(sizeof(EvtFrame) == 32);

// One event as submitted: the payload is opaque; id may be empty (a commit's event gets the id
// the commit assigns).
struct EventIn {
  std::string id;
  std::string data;
  int64_t time_ms = 0;
};

enum class AtCap { kRefuse, kDropOldest };

struct EventOptions {
  uint64_t segment_size = 16ull << 20;
  uint64_t max_size = 1ull << 30;    // the cap on the journal's disk use
  uint64_t retention = 128ull << 20;  // history kept beyond what every subscriber has read
  uint32_t alarm_percent = 80;       // stats report alarm at this share of the cap
  AtCap at_cap = AtCap::kRefuse;
  bool overlap_sync = true;          // fdatasync the event file on the sync thread, beside the segment's
};

// A range of records removed at the cap before some subscriber read them (drop_oldest).
struct EventDrop {
  uint64_t from_seq = 0, to_seq = 0;
  int64_t at_ms = 0;
  std::vector<std::string> subscribers;  // those whose checkpoint was below to_seq
};

struct EventStats {
  uint64_t segments = 0, bytes = 0, first_seq = 0, last_seq = 0;  // last_seq: last durable frame (0: none)
  uint64_t next_seq = 1;
  uint64_t appended = 0, refused = 0, write_errors = 0, damaged = 0, torn = 0;
  uint64_t dropped_records = 0, dropped_segments = 0, trimmed_segments = 0;
  uint64_t cap = 0, alarm_bytes = 0, retention = 0;
  bool at_cap_refuse = true;
  std::vector<EventDrop> drops;  // the most recent few
  struct Seg {
    uint64_t no, first_seq, last_seq, bytes;
  };
  std::vector<Seg> segment_list;
};

// Checks a frame at off of a buffer of size bytes (header sanity, length, CRC); *why when not.
bool ParseEvtFrame(const uint8_t* base, uint64_t size, uint64_t off, EvtFrame* f, const char** why);

class EventLog {
 public:
  EventLog() = default;
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;
  ~EventLog();

  // At open (before the commit thread starts): creates events/, scans every segment, cuts a torn
  // tail of the last one, reports damaged frames, continues the sequence. False and *e on an
  // error that must fail the open (the directory cannot be created or read).
  bool Open(const std::string& spool_dir, const std::string& node, const EventOptions& o, bool sync, bool prealloc,
            Error* e, std::vector<RecoveryEvent>* ev);

  // ---- one batch, commit thread, in this order ----
  // Whether `bytes` more fit under the cap. drop_oldest removes sealed segments (oldest first)
  // to make room and records the loss; refuse answers false. Counts refusals.
  bool Admit(uint64_t bytes, int64_t now_ms);
  // Encodes one frame into the batch buffer (seq assigned here). id may be empty.
  void Add(const std::string& id, const std::string& data, int64_t time_ms);
  bool Empty() const { return buf_.empty(); }
  // Writes the batch's frames (one pwrite, rolling to a new segment first if the current one is
  // full) and starts their fdatasync (on the sync thread when overlap_sync). 0 or an errno.
  int Start(const char** sc);
  // Waits for the sync started by Start. 0 or an errno (*sc set).
  int Finish(const char** sc);
  // Undoes the batch (a write or sync of the batch failed, here or in the spool): the file is cut
  // back to where the batch began and the sequence numbers are given back. Returns nothing: a
  // failed ftruncate leaves frames the next batch overwrites (same offset).
  void RollBack();
  // The batch is durable: publish it (Head, stats), then trim or apply retention if a roll
  // happened. Commit thread.
  void Commit(int64_t now_ms);

  // Removes sealed segments everyone has read (subscriber checkpoints in events/subscribers/)
  // while the journal is larger than the retention; returns how many. Commit thread.
  uint64_t Trim();

  // Any thread.
  EventStats Stats();
  uint64_t Head();  // the last durable sequence number (0: none)

  void Close();  // commit thread, at the spool's Finish: stops the sync thread, closes the file

  // Checkpoints of the subscribers (name -> seq acknowledged), read from events/subscribers/.
  std::map<std::string, uint64_t> ReadCheckpoints();

 private:
  struct Seg {
    uint64_t no = 0, first_seq = 0, last_seq = 0, end = 0;  // last_seq 0: no frame yet
  };
  int Roll(const char** sc);
  void SyncLoop();
  int SyncDir();
  std::string PathOf(uint64_t no) const;
  void RemoveSegmentLocked(std::map<uint64_t, Seg>::iterator it);
  uint64_t UsedLocked() const;

  std::string dir_, node_;
  EventOptions o_;
  bool sync_ = true, prealloc_ = true;
  int dir_fd_ = -1;

  // Commit thread: the active segment and the batch being built.
  int fd_ = -1;
  uint64_t next_no_ = 1;
  uint64_t next_seq_ = 1;
  std::vector<uint8_t> buf_;
  uint64_t batch_first_seq_ = 0;
  uint64_t batch_off_ = 0;     // where this batch's frames start in the active segment
  bool rolled_ = false;
  bool started_ = false;      // this batch's frames were (or were being) written
  int64_t last_admit_trim_ms_ = 0;
  uint64_t admitted_ = 0;     // bytes Admit() let into the batch being built (frames not yet added)

  // Shared with Stats()/Head(), guarded by mu_.
  std::mutex mu_;
  std::map<uint64_t, Seg> segs_;  // by number; the last one is active
  EventStats st_;
  std::deque<EventDrop> drops_;

  // The sync thread.
  std::thread syncer_;
  std::mutex smu_;
  std::condition_variable scv_;
  int sync_fd_ = -1;
  bool sync_req_ = false, sync_done_ = false, sync_stop_ = false;
  int sync_err_ = 0;
};

}  // namespace vipmta::spool
