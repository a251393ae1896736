// Senders in the queue's byte arena with their domain interned: bulk mail comes from a few
// domains ("bounce-<n>@news.example.com"), so a sender's record holds its local part and the
// domain's number (a varint), 16 bytes less a message for a typical one. Flagged records; the
// others (no '@', a domain past the table's room) hold the whole address. Main thread only.
import type { ByteArena } from './arena.js';

/** Distinct sender domains kept (never forgotten: at most some 6 MB of names). */
const MAX_DOMAINS = 1 << 16;

export class SenderDomains {
  private readonly names: string[] = [];
  /** Each name's UTF-8 bytes: str() copies them with the local part (short: a loop beats a native call). */
  private readonly bytes: Uint8Array[] = [];
  private readonly index = new Map<string, number>();
  private last = -1;
  private scratch = Buffer.allocUnsafeSlow(1024);

  /** The number of the domain of `from` (after its last '@'), or -1 (none, or no room). No
   *  allocation when it is the domain of the sender before. */
  private domainOf(from: string, at: number): number {
    const l = this.last;
    if (l >= 0) {
      const d = this.names[l]!;
      if (d.length === from.length - at - 1 && from.endsWith(d)) return l;
    }
    const d = from.slice(at + 1);
    let i = this.index.get(d);
    if (i === undefined) {
      if (this.names.length >= MAX_DOMAINS || d.length === 0) return -1;
      i = this.names.length;
      this.names.push(d);
      this.bytes.push(Buffer.from(d, 'utf8'));
      this.index.set(d, i);
    }
    return (this.last = i);
  }

  /** Appends sender `from` to the arena; returns its record's offset. */
  put(ar: ByteArena, from: string): number {
    const at = from.lastIndexOf('@');
    const d = at < 0 ? -1 : this.domainOf(from, at);
    if (d < 0) return ar.put(from);
    const rec = ar.begin(from.length * 3 + 5);
    const b = ar.chunk(rec);
    let p = (rec & 0xfffff) + 1;
    for (let x = d; ; x = Math.floor(x / 0x80)) {
      if (x < 0x80) {
        b[p++] = x;
        break;
      }
      b[p++] = (x % 0x80) | 0x80;
    }
    // The whole address, then back over "@domain": its bytes are the domain's plus one.
    p += b.write(from, p, 'utf8') - 1 - this.bytes[d]!.length;
    return ar.end(rec, p, 1);
  }

  /** The sender of the record at `rec`. */
  str(ar: ByteArena, rec: number): string {
    if (rec >= 0xfffffffe || ar.header(rec) % 2 === 0) return ar.str(rec);
    const b = ar.chunk(rec);
    let p = ar.start(rec);
    const end = p + Math.floor(ar.header(rec) / 2);
    let d = 0;
    for (let mul = 1; ; mul *= 0x80) {
      const x = b[p++]!;
      d += (x & 0x7f) * mul;
      if (x < 0x80) break;
    }
    const name = this.bytes[d]!;
    const n = end - p;
    const need = n + 1 + name.length;
    if (this.scratch.length < need) this.scratch = Buffer.allocUnsafeSlow(2 * need);
    const out = this.scratch;
    for (let i = 0; i < n; i++) out[i] = b[p + i]!;
    out[n] = 64;
    for (let i = 0; i < name.length; i++) out[n + 1 + i] = name[i]!;
    return out.toString('utf8', 0, need);
  }
}
