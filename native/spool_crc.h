// CRC32C (Castagnoli) for spool records: SSE4.2 crc32 instructions when the CPU has them, a
// slice-by-8 table otherwise. Any thread; pure computation, never blocks, never allocates.
// Chaining works like zlib's crc32(): Crc32c(Crc32c(0, a), b) == Crc32c(0, a || b).
#pragma once
#include <cstddef>
#include <cstdint>

namespace vipmta::spool {

// Hot path (called once per message over envelope+body in the committing thread).
uint32_t Crc32c(uint32_t crc, const void* data, size_t len);

// True when the hardware implementation is in use (reported by stats()).
bool Crc32cHardware();

}  // namespace vipmta::spool
