// The spool's on-disk format, version 1: segment files of message records and journal files of
// done-marks and state updates. Little-endian structs and their codec. Any thread.
//
// Segment "seg-<16 hex>.spool": a 64-byte SegHeader, then records back to back, then (when the
// segment was preallocated) zeros. A record is RecHeader | id | body | envelope, where body is the
// message in SMTP wire form (CRLF, dot-stuffed, ends with CRLF) and envelope is opaque bytes from
// TypeScript. RecHeader.crc is CRC32C over body+envelope, extended over the header (crc field
// zero) and then the id: the receiving thread computes the expensive part before the commit
// thread assigns the id. A zero magic ends the segment.
//
// Journal "journal-<16 hex>.log": a 64-byte SegHeader (kind journal), then JrnHeader | id | data
// entries: DONE (data empty) or UPDATE (data = opaque state from TypeScript, latest wins).
// The structs are plain data; the functions at the end (spool_format.cc) encode and validate them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vipmta::spool {

constexpr uint32_t kVersion = 1;
constexpr uint64_t kSegMagic = 0x314C4F4F50535056ull;  // "VPSPOOL1"
constexpr uint64_t kJrnMagic = 0x314C4E524A535056ull;  // "VPSJRNL1"
constexpr uint32_t kRecMagic = 0x43455256u;            // "VREC"
constexpr uint32_t kJrnEntryMagic = 0x4E524A56u;       // "VJRN"

constexpr uint16_t kRecMessage = 1;
constexpr uint16_t kJrnDone = 1;
constexpr uint16_t kJrnUpdate = 2;

constexpr size_t kMaxIdLen = 64;
constexpr size_t kMaxEnvelope = 16u << 20;
constexpr size_t kMaxState = 1u << 20;

struct SegHeader {     // 64 bytes at offset 0 of every segment and journal file
  uint64_t magic;      // kSegMagic or kJrnMagic
  uint32_t version;    // kVersion
  uint32_t header_len; // 64
  uint64_t number;     // segment / journal number (also in the file name)
  uint64_t created_ms; // wall clock at creation
  char node[28];       // node id, NUL padded (informational)
  uint32_t crc;        // CRC32C of the 60 bytes before it
};
static_assert(sizeof(SegHeader) == 64);

struct RecHeader {     // 64 bytes, then id_len bytes of id, body_len of body, env_len of envelope
  uint32_t magic;      // kRecMagic
  uint16_t version;    // kVersion
  uint16_t type;       // kRecMessage
  uint32_t crc;        // see above
  uint32_t header_len; // 64
  uint64_t total_len;  // header + id + envelope + body
  uint64_t arrival_ms; // wall clock when the message was first committed (kept by copy-forward)
  uint16_t id_len;
  uint16_t flags;
  uint32_t env_len;
  uint64_t body_len;
  uint8_t reserved[16];
};
static_assert(sizeof(RecHeader) == 64);

struct JrnHeader {     // 32 bytes, then id_len bytes of id and data_len bytes of data
  uint32_t magic;      // kJrnEntryMagic
  uint16_t version;    // kVersion
  uint16_t type;       // kJrnDone / kJrnUpdate
  uint32_t crc;        // CRC32C over header (crc zero) + id + data
  uint32_t total_len;  // header + id + data
  uint16_t id_len;
  uint16_t reserved;
  uint32_t data_len;
  uint64_t time_ms;
};
static_assert(sizeof(JrnHeader) == 32);

constexpr uint64_t kSegHdr = sizeof(SegHeader);
constexpr uint64_t kRecHdr = sizeof(RecHeader);

// ---- encoding and validation (spool_format.cc): pure functions, any thread ----------------------

// A segment or journal file header (magic kSegMagic / kJrnMagic), with its CRC.
void FillFileHeader(SegHeader* h, uint64_t magic, uint64_t no, const std::string& node);
// Whether the first bytes of a file are a valid header of that kind and number; *why when not.
bool CheckFileHeader(const uint8_t* p, uint64_t size, uint64_t magic, uint64_t no, const char** why);
// A record's CRC from the CRC of its payload (body + envelope), its header and its id.
uint32_t RecordCrc(uint32_t payload_crc, const RecHeader& h, const void* id);
// Validates the record (or journal entry) at off of a mapped file; *why when it is not valid.
bool ParseRecord(const uint8_t* base, uint64_t size, uint64_t off, RecHeader* h, const char** why);
bool ParseJrn(const uint8_t* base, uint64_t size, uint64_t off, JrnHeader* h, const char** why);
// The queue id a record at off claims when its header is readable that far (magic, id length and
// id characters valid), whatever its checksum says; "" otherwise. For reporting damaged records.
std::string ClaimedRecordId(const uint8_t* base, uint64_t size, uint64_t off);
// The next offset at or after `from` where a valid record (entry) starts, or UINT64_MAX.
uint64_t FindNextRecord(const uint8_t* base, uint64_t size, uint64_t from);
uint64_t FindNextJrn(const uint8_t* base, uint64_t size, uint64_t from);
// Appends one journal entry (kJrnDone / kJrnUpdate) to b.
void AppendJrn(std::vector<uint8_t>* b, uint16_t type, const std::string& id, const std::string& data);

}  // namespace vipmta::spool
