// The spool's on-disk format, version 1: segment files of message records and journal files of
// done-marks and state updates. Plain little-endian structs, no behaviour. Any thread.
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
#pragma once
#include <cstdint>

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

}  // namespace vipmta::spool
