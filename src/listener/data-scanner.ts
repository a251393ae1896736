// Reads one message's DATA stream chunk by chunk on its way to the spool: captures the header
// fields policy reads (X-Binding, ...), counts Received: hops (RFC 5321 6.3 loop detection) over the
// whole header section however long it is (the capture stops at 64 KB, the count does not) and
// tracks line lengths (RFC 5322 2.1.1), without ever joining the body in JavaScript.
// Hot path (every chunk of every message): no allocation per chunk beyond the bounded header
// buffer; Buffer.indexOf does the scanning natively.

/** Header fields captured for policy, lower-case. */
export const CAPTURED_HEADERS = ['x-binding', 'message-id'] as const;
/** RFC 5321 6.3: a message with more Received: fields than this is looping. Postfix uses 50. */
export const MAX_HOPS = 50;
/** RFC 5322 2.1.1: at most 998 characters per line, excluding the CRLF. */
export const MAX_LINE = 998;
/** Header sections larger than this are not parsed further (the message is still accepted). */
const MAX_HEADER_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
/** "received:" as bytes, lower case; the letters of a line start are compared with `byte | 0x20`. */
const RECEIVED = Buffer.from('received:', 'latin1');

export class DataScanner {
  /** Captured header values (first occurrence), by lower-case name. */
  readonly headers: Record<string, string> = {};
  hops = 0;
  longestLine = 0;
  private lineLen = 0;
  private pendingCR = false;
  private tail: Buffer = Buffer.alloc(0);
  private inHeader = true;
  private headerParts: Buffer[] = [];
  private headerBytes = 0;
  /** Still in the header section, for the hop count (independent of the bounded capture). */
  private hopHeader = true;
  /** Bytes of "received:" matched at the start of the current line; -1 once the line cannot match. */
  private hopMatch = 0;

  /** Feeds one chunk. Hot path. */
  scan(chunk: Buffer): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) {
        if (this.hopHeader) this.matchHop(chunk, pos, n);
        this.lineLen += n - pos;
        break;
      }
      let len = this.lineLen + (nl - pos);
      // A CR right before the LF (possibly at the end of the previous chunk) is part of the line end.
      if (nl > pos ? chunk[nl - 1] === CR : this.pendingCR) len -= 1;
      if (len > this.longestLine) this.longestLine = len;
      if (this.hopHeader) {
        // RFC 5322 2.1: the header section ends at the first empty line.
        if (len <= 0) this.hopHeader = false;
        else this.matchHop(chunk, pos, nl);
        this.hopMatch = 0;
      }
      this.lineLen = 0;
      pos = nl + 1;
    }
    // A line still open at the chunk end may end in a CR whose LF comes next: count it without.
    if (this.lineLen - 1 > this.longestLine) this.longestLine = this.lineLen - 1;
    this.pendingCR = n > 0 && chunk[n - 1] === CR;
    if (this.inHeader) this.collectHeader(chunk);
  }

  /** Compares the start of the current header line (bytes from..to of it in chunk) with "received:". */
  private matchHop(chunk: Buffer, from: number, to: number): void {
    let m = this.hopMatch;
    for (let i = from; m >= 0 && m < RECEIVED.length && i < to; i++) m = (m < 8 ? chunk[i]! | 0x20 : chunk[i]) === RECEIVED[m] ? m + 1 : -1;
    if (m === RECEIVED.length) {
      this.hops++;
      m = -1;
    }
    this.hopMatch = m;
  }

  /** Call at the end of the stream to parse what was captured. */
  finish(): void {
    if (this.headerParts.length > 0) this.parseHeaders(Buffer.concat(this.headerParts).toString('latin1'));
    this.headerParts = [];
  }

  private collectHeader(chunk: Buffer): void {
    // The header section ends at the first empty line (CRLF CRLF, or LF LF from bare-LF clients),
    // which may straddle two chunks: search the last 3 bytes of the previous chunk too.
    const off = this.tail.length;
    const probe = off > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
    let end = -1;
    if (this.headerBytes === 0 && (chunk[0] === LF || (chunk[0] === CR && chunk[1] === LF))) {
      end = off; // no header section at all
    } else {
      const a = probe.indexOf('\r\n\r\n');
      const b = probe.indexOf('\n\n');
      if (a >= 0 && (b < 0 || a < b)) end = a + 2;
      else if (b >= 0) end = b + 1;
    }
    const take = end < 0 ? chunk : chunk.subarray(0, Math.max(0, end - off));
    if (this.headerBytes + take.length > MAX_HEADER_BYTES) {
      this.inHeader = false;
      return;
    }
    // Copy: we keep only the header bytes, never a reference to the stream's chunk.
    this.headerParts.push(Buffer.from(take));
    this.headerBytes += take.length;
    if (end >= 0) this.inHeader = false;
    else this.tail = Buffer.from(probe.subarray(Math.max(0, probe.length - 3)));
  }

  private parseHeaders(text: string): void {
    // Unfold (RFC 5322 2.2.3) then split into fields.
    const unfolded = text.replace(/\r?\n[ \t]/g, ' ');
    for (const line of unfolded.split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      if ((CAPTURED_HEADERS as readonly string[]).includes(name) && !(name in this.headers)) {
        this.headers[name] = line.slice(colon + 1).trim();
      }
    }
  }
}
