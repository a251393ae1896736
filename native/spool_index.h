// The spool's id -> location index (Core::index_), sized for millions of queued messages: about
// 60 B per message instead of ~250 B for an unordered_map<std::string, Entry>. Not thread-safe:
// guarded by Core::idx_mu_ like the rest of the index. No I/O, never blocks.
//
// Entries live in a chunked slab addressed by a uint32 slot (chunks never move, so growing never
// copies and never doubles). A queue id this spool writes, "<node>-<8 hex seg>-<6+ hex seq>"
// (EncodeMessageRecord), is keyed by its parsed parts (node as an index into a small table of
// node-id strings, segment, sequence) in an open-addressing table of slots; any other id (never
// expected: another format, upper-case hex, a segment number past 32 bits) goes to a fallback
// string map, so every id behaves as before. Retry states live in a side table keyed by slot: only
// deferred-after-attempt messages have one.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vipmta::spool {

struct Segment;

// Where a message is and what TypeScript last told us about it. 48 bytes.
struct Entry {
  // Current location; null once that segment is reclaimed (done). A raw pointer: an entry points
  // only at a segment in Core::segments_ (Reclaim clears it before the segment leaves the map).
  Segment* seg = nullptr;
  uint32_t key_seg = 0;  // the id's parts (parsed ids); next free slot while the slot is free
  uint32_t key_seq = 0;
  // Record offsets and body lengths are file offsets (48 bits: 256 TiB); ms since 1970 fits 48
  // bits until the year 10889.
  uint64_t rec_off : 48 = 0;
  uint64_t key_node : 16 = 0;  // index into Index::nodes_
  uint64_t arrival_ms : 48 = 0;
  uint64_t id_len : 8 = 0;  // <= kMaxIdLen (64)
  uint64_t done : 1 = 0;
  uint64_t recovered : 1 = 0;
  uint64_t has_state : 1 = 0;  // the state is in Index's side table
  uint64_t fallback : 1 = 0;   // keyed by its string in the fallback map
  uint64_t used : 1 = 0;       // the slot holds an entry (not on the free list)
  uint64_t body_len = 0;
  uint32_t env_len = 0;  // <= kMaxEnvelope (16 MiB)
  uint32_t copies = 0;   // segment files holding a record of this id (>1 after copy-forward)
};
static_assert(sizeof(Entry) == 48);

class Index {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // The slot of id, or kNone.
  uint32_t Find(std::string_view id) const;
  // The slot of id, a fresh zeroed entry (inserted = true) when it had none.
  uint32_t FindOrInsert(std::string_view id, bool* inserted);
  // Removes the entry (and its state); its slot may be reused by the next insert.
  void Erase(uint32_t slot);
  void Clear();

  Entry& at(uint32_t slot) { return chunks_[slot >> kChunkBits][slot & kChunkMask]; }
  const Entry& at(uint32_t slot) const { return chunks_[slot >> kChunkBits][slot & kChunkMask]; }
  size_t size() const { return count_; }
  // The queue id of a used slot, as it was inserted.
  std::string Id(uint32_t slot) const;

  // The state TypeScript last stored for the entry (has_state), "" without one.
  const std::string& State(uint32_t slot) const;
  void SetState(uint32_t slot, std::string&& state);
  void ClearState(uint32_t slot);

  // f(slot, entry) for every used slot, in slot order.
  template <class F>
  void ForEach(F&& f) {
    for (uint32_t s = 0; s < next_; s++) {
      Entry& en = at(s);
      if (en.used) f(s, en);
    }
  }

 private:
  static constexpr uint32_t kChunkBits = 12;  // 4096 entries (192 KiB) per chunk
  static constexpr uint32_t kChunkMask = (1u << kChunkBits) - 1;
  struct Key {
    uint32_t seg = 0, seq = 0;
    uint16_t node = 0;
  };
  // Splits a canonical id into node / segment / sequence (exactly what snprintf "%s-%08llx-%06x"
  // yields for a segment below 2^32), false for anything else.
  static bool Parse(std::string_view id, std::string_view* node, uint32_t* seg, uint32_t* seq);
  static uint64_t Hash(uint32_t seg, uint32_t seq, uint16_t node);
  uint64_t HashOf(const Entry& en) const { return Hash(en.key_seg, en.key_seq, static_cast<uint16_t>(en.key_node)); }
  uint32_t FindNode(std::string_view node) const;  // index into nodes_, or kNone
  uint32_t Probe(const Key& k, size_t* pos) const;  // the slot with key k, else kNone and *pos empty
  uint32_t Allocate();
  void Grow();

  std::vector<std::unique_ptr<Entry[]>> chunks_;
  uint32_t next_ = 0;        // slots below this have been handed out once
  uint32_t free_ = kNone;    // head of the free list (through Entry::key_seg)
  size_t count_ = 0;         // used slots
  std::vector<uint32_t> table_;  // open addressing, linear probing: slot or kNone; power of two
  size_t keyed_ = 0;             // slots in table_
  std::vector<std::string> nodes_;
  std::unordered_map<std::string, uint32_t> fallback_;       // ids that do not parse -> slot
  std::unordered_map<uint32_t, std::string> fallback_ids_;   // and back
  std::unordered_map<uint32_t, std::string> states_;
};

}  // namespace vipmta::spool
