// The spool's compact id -> location index (see spool_index.h). Called under Core::idx_mu_ from
// the commit thread, the opening thread and JS threads (Find only, under the shared lock).
// Pure memory work: never blocks.
#include "spool_index.h"

#include <cstring>

#include "spool_format.h"

namespace vipmta::spool {
namespace {

// The Entry fields' widths (spool_index.h) against the format's limits.
static_assert(kMaxIdLen < (1u << 8), "Entry::id_len is 8 bits");
static_assert(kMaxEnvelope <= UINT32_MAX, "Entry::env_len is 32 bits");

// A spool sees one node id, a few after renames; past this many, ids go to the fallback map
// (FindNode is a linear scan).
constexpr size_t kMaxNodes = 64;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is not what snprintf %x writes
}

bool ParseHex(std::string_view s, uint32_t* out) {
  uint32_t v = 0;
  for (char c : s) {
    int d = HexDigit(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint32_t>(d);
  }
  *out = v;
  return true;
}

void PutHex(std::string* out, uint32_t v, int min_digits) {
  char b[8];
  int n = 0;
  do {
    b[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  while (n < min_digits) b[n++] = '0';
  while (n > 0) out->push_back(b[--n]);
}

}  // namespace

bool Index::Parse(std::string_view id, std::string_view* node, uint32_t* seg, uint32_t* seq) {
  size_t p2 = id.rfind('-');
  if (p2 == std::string_view::npos || p2 < 9) return false;
  std::string_view sq = id.substr(p2 + 1);
  // %06x: six digits, or up to eight without a leading zero.
  if (sq.size() < 6 || sq.size() > 8 || (sq.size() > 6 && sq[0] == '0')) return false;
  if (id[p2 - 9] != '-') return false;
  // %08llx of a number below 2^32: exactly eight digits (larger segments use the fallback).
  if (!ParseHex(id.substr(p2 - 8, 8), seg) || !ParseHex(sq, seq)) return false;
  *node = id.substr(0, p2 - 9);
  return true;
}

uint64_t Index::Hash(uint32_t seg, uint32_t seq, uint16_t node) {
  uint64_t x = (static_cast<uint64_t>(seg) << 32 | seq) ^ (static_cast<uint64_t>(node) * 0x9E3779B97F4A7C15ull);
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

uint32_t Index::FindNode(std::string_view node) const {
  for (size_t i = 0; i < nodes_.size(); i++)
    if (nodes_[i] == node) return static_cast<uint32_t>(i);
  return kNone;
}

uint32_t Index::Probe(const Key& k, size_t* pos) const {
  if (table_.empty()) {
    *pos = 0;
    return kNone;
  }
  size_t mask = table_.size() - 1;
  for (size_t i = Hash(k.seg, k.seq, k.node) & mask;; i = (i + 1) & mask) {
    uint32_t s = table_[i];
    if (s == kNone) {
      *pos = i;
      return kNone;
    }
    const Entry& en = at(s);
    if (en.key_seg == k.seg && en.key_seq == k.seq && en.key_node == k.node) return s;
  }
}

uint32_t Index::Find(std::string_view id) const {
  std::string_view node;
  Key k;
  if (Parse(id, &node, &k.seg, &k.seq)) {
    uint32_t n = FindNode(node);
    if (n != kNone) {
      k.node = static_cast<uint16_t>(n);
      size_t pos;
      return Probe(k, &pos);
    }
    if (nodes_.size() < kMaxNodes) return kNone;  // a node never seen: not here
  }
  if (fallback_.empty()) return kNone;
  auto it = fallback_.find(std::string(id));
  return it == fallback_.end() ? kNone : it->second;
}

uint32_t Index::Allocate() {
  uint32_t s;
  if (free_ != kNone) {
    s = free_;
    free_ = at(s).key_seg;
  } else {
    s = next_++;
    if ((s >> kChunkBits) >= chunks_.size()) chunks_.emplace_back(new Entry[1u << kChunkBits]);
  }
  at(s) = Entry{};
  at(s).used = 1;
  count_++;
  return s;
}

void Index::Grow() {
  std::vector<uint32_t> old;
  old.swap(table_);
  table_.assign(old.empty() ? 1024 : old.size() * 2, kNone);
  size_t mask = table_.size() - 1;
  for (uint32_t s : old) {
    if (s == kNone) continue;
    size_t i = HashOf(at(s)) & mask;
    while (table_[i] != kNone) i = (i + 1) & mask;
    table_[i] = s;
  }
}

uint32_t Index::FindOrInsert(std::string_view id, bool* inserted) {
  *inserted = false;
  std::string_view node;
  Key k;
  if (Parse(id, &node, &k.seg, &k.seq)) {
    uint32_t n = FindNode(node);
    if (n == kNone && nodes_.size() < kMaxNodes) {
      n = static_cast<uint32_t>(nodes_.size());
      nodes_.emplace_back(node);
    }
    if (n != kNone) {
      k.node = static_cast<uint16_t>(n);
      // Load at most 0.6: linear probing stays short, 4 bytes per slot, 7-13 per entry.
      if ((keyed_ + 1) * 5 > table_.size() * 3) Grow();
      size_t pos;
      uint32_t s = Probe(k, &pos);
      if (s != kNone) return s;
      s = Allocate();
      Entry& en = at(s);
      en.key_seg = k.seg;
      en.key_seq = k.seq;
      en.key_node = k.node;
      table_[pos] = s;
      keyed_++;
      *inserted = true;
      return s;
    }
  }
  auto [it, fresh] = fallback_.try_emplace(std::string(id), kNone);
  if (!fresh) return it->second;
  uint32_t s = Allocate();
  at(s).fallback = 1;
  it->second = s;
  fallback_ids_.emplace(s, it->first);
  *inserted = true;
  return s;
}

void Index::Erase(uint32_t slot) {
  Entry& en = at(slot);
  if (!en.used) return;
  if (en.has_state) states_.erase(slot);
  if (en.fallback) {
    auto it = fallback_ids_.find(slot);
    fallback_.erase(it->second);
    fallback_ids_.erase(it);
  } else {
    // Backward-shift deletion: no tombstones, probes stay as short as the load allows.
    size_t mask = table_.size() - 1;
    size_t i = HashOf(en) & mask;
    while (table_[i] != slot) i = (i + 1) & mask;
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
      uint32_t s = table_[j];
      if (s == kNone) break;
      size_t home = HashOf(at(s)) & mask;
      // s may move into the hole at i unless its home lies cyclically in (i, j].
      bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
      if (stays) continue;
      table_[i] = s;
      i = j;
    }
    table_[i] = kNone;
    keyed_--;
  }
  en = Entry{};
  en.key_seg = free_;
  free_ = slot;
  count_--;
}

void Index::Clear() {
  chunks_.clear();
  next_ = 0;
  free_ = kNone;
  count_ = 0;
  table_.clear();
  table_.shrink_to_fit();
  keyed_ = 0;
  nodes_.clear();
  fallback_.clear();
  fallback_ids_.clear();
  states_.clear();
}

std::string Index::Id(uint32_t slot) const {
  const Entry& en = at(slot);
  if (en.fallback) return fallback_ids_.at(slot);
  const std::string& node = nodes_[en.key_node];
  std::string id;
  id.reserve(node.size() + 18);
  id.append(node);
  id.push_back('-');
  PutHex(&id, en.key_seg, 8);
  id.push_back('-');
  PutHex(&id, en.key_seq, 6);
  return id;
}

const std::string& Index::State(uint32_t slot) const {
  static const std::string kEmpty;
  if (!at(slot).has_state) return kEmpty;
  auto it = states_.find(slot);
  return it == states_.end() ? kEmpty : it->second;
}

void Index::SetState(uint32_t slot, std::string&& state) {
  states_[slot] = std::move(state);
  at(slot).has_state = 1;
}

void Index::ClearState(uint32_t slot) {
  if (at(slot).has_state) states_.erase(slot);
  at(slot).has_state = 0;
}

}  // namespace vipmta::spool
