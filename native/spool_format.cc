// Encoding and validation of the on-disk format (spool_format.h): file headers, message records,
// journal entries, and the search for the next valid entry after a damaged region. Pure functions
// over memory: any thread, no I/O, no locks.
#include <cstring>

#include "spool_crc.h"
#include "spool_file.h"
#include "spool_format.h"

namespace vipmta::spool {
namespace {

bool ValidIdChars(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  }
  return true;
}



// After a bad region, the next offset where a whole, valid entry starts: search for its 4-byte
// magic and accept the first hit that parses (header sanity and CRC). Shared by segment records
// and journal entries, which differ only in magic, minimum length and parser.
template <typename Header>
uint64_t FindNextValid(const uint8_t* base, uint64_t size, uint64_t from, const char (&magic)[4],
                              bool (*parse)(const uint8_t*, uint64_t, uint64_t, Header*, const char**),
                              uint64_t min_len) {
  while (from + min_len <= size) {
    const void* hit = memmem(base + from, size - from, magic, 4);
    if (hit == nullptr) return UINT64_MAX;
    uint64_t at = static_cast<const uint8_t*>(hit) - base;
    Header h;
    const char* why;
    if (parse(base, size, at, &h, &why)) return at;
    from = at + 1;
  }
  return UINT64_MAX;
}

}  // namespace

void FillFileHeader(SegHeader* h, uint64_t magic, uint64_t no, const std::string& node) {
  memset(h, 0, sizeof *h);
  h->magic = magic;
  h->version = kVersion;
  h->header_len = sizeof(SegHeader);
  h->number = no;
  h->created_ms = static_cast<uint64_t>(WallMs());
  memcpy(h->node, node.data(), std::min(node.size(), sizeof h->node));
  h->crc = Crc32c(0, h, offsetof(SegHeader, crc));
}

bool CheckFileHeader(const uint8_t* p, uint64_t size, uint64_t magic, uint64_t no, const char** why) {
  SegHeader h;
  if (size < sizeof h) {
    *why = "file shorter than its header";
    return false;
  }
  memcpy(&h, p, sizeof h);
  if (h.magic != magic) *why = "bad file magic";
  else if (h.version != kVersion || h.header_len != sizeof h) *why = "unknown file version";
  else if (h.crc != Crc32c(0, &h, offsetof(SegHeader, crc))) *why = "file header checksum mismatch";
  else if (h.number != no) *why = "file number does not match its name";
  else return true;
  return false;
}

uint32_t RecordCrc(uint32_t payload_crc, const RecHeader& h, const void* id) {
  RecHeader c = h;
  c.crc = 0;
  return Crc32c(Crc32c(payload_crc, &c, sizeof c), id, h.id_len);
}

// Validates the record at off. Cheap checks first; the CRC last.
bool ParseRecord(const uint8_t* base, uint64_t size, uint64_t off, RecHeader* h, const char** why) {
  if (size - off < kRecHdr) {
    *why = "truncated record header";
    return false;
  }
  memcpy(h, base + off, sizeof *h);
  if (h->magic != kRecMagic) {
    *why = "bad record magic";
    return false;
  }
  if (h->version != kVersion || h->type != kRecMessage || h->header_len != kRecHdr) {
    *why = "unknown record version or type";
    return false;
  }
  if (h->id_len == 0 || h->id_len > kMaxIdLen || h->env_len > kMaxEnvelope || h->body_len > size ||
      h->total_len != kRecHdr + h->id_len + h->env_len + h->body_len) {
    *why = "inconsistent record lengths";
    return false;
  }
  if (h->total_len > size - off) {
    *why = "record extends past the end of the file";
    return false;
  }
  const uint8_t* id = base + off + kRecHdr;
  if (!ValidIdChars(id, h->id_len)) {
    *why = "invalid queue id";
    return false;
  }
  uint32_t pc = Crc32c(0, id + h->id_len, h->env_len + h->body_len);
  if (RecordCrc(pc, *h, id) != h->crc) {
    *why = "checksum mismatch";
    return false;
  }
  return true;
}

std::string ClaimedRecordId(const uint8_t* base, uint64_t size, uint64_t off) {
  if (off > size || size - off < kRecHdr) return "";
  RecHeader h;
  memcpy(&h, base + off, sizeof h);
  if (h.magic != kRecMagic || h.id_len == 0 || h.id_len > kMaxIdLen || h.id_len > size - off - kRecHdr) return "";
  const uint8_t* id = base + off + kRecHdr;
  if (!ValidIdChars(id, h.id_len)) return "";
  return std::string(reinterpret_cast<const char*>(id), h.id_len);
}

uint64_t FindNextRecord(const uint8_t* base, uint64_t size, uint64_t from) {
  static const char kMagic[4] = {'V', 'R', 'E', 'C'};
  return FindNextValid<RecHeader>(base, size, from, kMagic, ParseRecord, kRecHdr);
}

bool ParseJrn(const uint8_t* base, uint64_t size, uint64_t off, JrnHeader* h, const char** why) {
  if (size - off < sizeof *h) {
    *why = "truncated journal entry";
    return false;
  }
  memcpy(h, base + off, sizeof *h);
  if (h->magic != kJrnEntryMagic || h->version != kVersion || (h->type != kJrnDone && h->type != kJrnUpdate)) {
    *why = "bad journal entry header";
    return false;
  }
  if (h->id_len == 0 || h->id_len > kMaxIdLen || h->data_len > kMaxState ||
      h->total_len != sizeof *h + h->id_len + h->data_len) {
    *why = "inconsistent journal entry lengths";
    return false;
  }
  if (h->total_len > size - off) {
    *why = "journal entry extends past the end of the file";
    return false;
  }
  JrnHeader c = *h;
  c.crc = 0;
  if (Crc32c(Crc32c(0, &c, sizeof c), base + off + sizeof c, h->id_len + h->data_len) != h->crc) {
    *why = "checksum mismatch";
    return false;
  }
  return true;
}

uint64_t FindNextJrn(const uint8_t* base, uint64_t size, uint64_t from) {
  static const char kMagic[4] = {'V', 'J', 'R', 'N'};
  return FindNextValid<JrnHeader>(base, size, from, kMagic, ParseJrn, sizeof(JrnHeader));
}

void AppendJrn(std::vector<uint8_t>* b, uint16_t type, const std::string& id, const std::string& data) {
  JrnHeader h{};
  h.magic = kJrnEntryMagic;
  h.version = kVersion;
  h.type = type;
  h.id_len = static_cast<uint16_t>(id.size());
  h.data_len = static_cast<uint32_t>(data.size());
  h.total_len = static_cast<uint32_t>(sizeof h + id.size() + data.size());
  h.time_ms = static_cast<uint64_t>(WallMs());
  uint32_t c = Crc32c(0, &h, sizeof h);
  c = Crc32c(c, id.data(), id.size());
  h.crc = Crc32c(c, data.data(), data.size());
  const uint8_t* hp = reinterpret_cast<const uint8_t*>(&h);
  b->insert(b->end(), hp, hp + sizeof h);
  b->insert(b->end(), id.begin(), id.end());
  b->insert(b->end(), data.begin(), data.end());
}

}  // namespace vipmta::spool
