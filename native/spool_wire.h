// The in-memory message being received: record headroom, the body in SMTP wire form, and (added
// at commit, when the listener knows it) the envelope.
// Lives on the thread that receives DATA (a listener worker) until commit hands it to the commit
// thread. Hot path: Append runs once per DATA chunk; it never blocks and allocates only when the
// buffer must grow (amortised doubling), never per chunk.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace vipmta::spool {

// Room kept in front of the envelope for the record header and the queue id, so a finished record
// is one contiguous buffer (one iovec) without moving the body. See spool_format.h.
constexpr size_t kHeadroom = 128;

struct Message {
  uint8_t* buf = nullptr;  // malloc'd; [kHeadroom) header space, then body, then envelope
  size_t len = 0;          // bytes used, including headroom
  size_t cap = 0;
  uint32_t env_len = 0;       // set by AddEnvelope at commit; the body is complete by then
  bool at_line_start = true;  // the next body byte starts a line (dot-stuffing applies)
  bool pending_cr = false;    // the last input byte was CR; its meaning depends on the next byte
  bool failed = false;        // an allocation failed; commit reports ENOMEM
  int64_t begin_ns = 0;       // monotonic time of commit(), for the latency histogram
  uint32_t payload_crc = 0;   // CRC32C of envelope+body, computed at commit() on the caller's thread

  Message() = default;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message() { free(buf); }

  bool Reserve(size_t need) {
    if (need <= cap) return true;
    size_t ncap = cap ? cap : 16384;
    while (ncap < need) ncap *= 2;
    void* p = realloc(buf, ncap);
    if (p == nullptr) {
      failed = true;
      return false;
    }
    buf = static_cast<uint8_t*>(p);
    cap = ncap;
    return true;
  }

  bool Init(size_t size_hint) {
    if (!Reserve(kHeadroom + (size_hint ? size_hint + size_hint / 16 + 1024 : 16384 - kHeadroom))) return false;
    memset(buf, 0, kHeadroom);
    len = kHeadroom;
    return true;
  }

  // After Finish: the envelope goes behind the body (so the body's place in the record does not
  // depend on the envelope, which the listener only knows at the end of DATA).
  bool AddEnvelope(const uint8_t* env, size_t n) {
    if (failed || !Reserve(len + n)) return false;
    memcpy(buf + len, env, n);
    len += n;
    env_len = static_cast<uint32_t>(n);
    return true;
  }

  size_t BodyLen() const { return len - kHeadroom - env_len; }

  // Converts dot-unstuffed DATA as smtp-server hands it over into wire form (RFC 5321 4.5.2):
  //  - CRLF, bare LF and lone CR all end a line and are written as CRLF. A lone CR is normalised
  //    rather than kept: a bare CR forwarded to a peer that treats it as a line end is an SMTP
  //    smuggling vector ("<CR>.<CR><LF>"), and RFC 5321 2.3.8 forbids sending it anyway.
  //  - A line that starts with "." gets one more "." in front (RFC 5321 4.5.2 transparency).
  //  - Every other byte, NUL and 8-bit included, is copied unchanged.
  // State (at_line_start, pending_cr) carries across chunk boundaries, so a CR at the end of one
  // chunk and the LF at the start of the next make one CRLF. Hot path: memchr to find line ends,
  // memcpy for runs; output is at most 2 bytes per input byte plus 2, reserved up front.
  bool Append(const uint8_t* p, size_t n) {
    if (failed) return false;
    if (!Reserve(len + 2 * n + 4)) return false;
    uint8_t* out = buf + len;
    const uint8_t* end = p + n;
    const uint8_t* next_lf = nullptr;  // cached memchr results; nullptr = not searched yet
    const uint8_t* next_cr = nullptr;
    while (p < end) {
      if (pending_cr) {
        pending_cr = false;
        *out++ = '\r';
        *out++ = '\n';
        at_line_start = true;
        if (*p == '\n') {
          p++;
          continue;
        }
      }
      if (at_line_start) {
        at_line_start = false;
        if (*p == '.') *out++ = '.';
      }
      if (next_lf == nullptr || next_lf < p) {
        next_lf = static_cast<const uint8_t*>(memchr(p, '\n', end - p));
        if (next_lf == nullptr) next_lf = end;
      }
      if (next_cr == nullptr || next_cr < p) {
        next_cr = static_cast<const uint8_t*>(memchr(p, '\r', end - p));
        if (next_cr == nullptr) next_cr = end;
      }
      const uint8_t* stop = next_lf < next_cr ? next_lf : next_cr;
      size_t run = stop - p;
      memcpy(out, p, run);
      out += run;
      p = stop;
      if (p == end) break;
      if (*p == '\n') {
        *out++ = '\r';
        *out++ = '\n';
        at_line_start = true;
      } else {
        pending_cr = true;
      }
      p++;
    }
    len = out - buf;
    return true;
  }

  // Ends the body: a pending CR becomes CRLF and a non-empty body always ends with CRLF, so the
  // sender writes the body and then ".\r\n" (RFC 5321 4.1.1.4). An empty body stays empty.
  bool Finish() {
    if (failed || !Reserve(len + 4)) return false;
    if (pending_cr || !at_line_start) {
      buf[len++] = '\r';
      buf[len++] = '\n';
      pending_cr = false;
      at_line_start = true;
    }
    return true;
  }
};

}  // namespace vipmta::spool
