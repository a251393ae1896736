// A byte arena for the queue's strings (senders, recipient lists, queue ids that do not parse):
// each record is a varint header (byte length * 2 + a flag bit) then its bytes, so a record costs
// its bytes plus one (two past 63 bytes), with no V8 object per string. Freed records are garbage
// until the owner (store.ts) compacts: it copies the live records into new chunks (move) and
// updates its offsets. Main thread only; never blocks.
//
// In 1 MiB chunks, never grown by copying: a grown buffer's old copies stayed resident in malloc's
// free lists (about 20 B a message at 1,000,000 queued, bench/queue-memory.ts), where a chunk is
// only freed by a compaction, whose new chunks reuse the memory of the old. An offset is
// chunk * 2^20 + position (a Uint32 in the store): 4095 chunks, 4 GiB of addresses, some 30 million
// queued messages with compaction keeping garbage under half. A record never spans chunks; one
// bigger than a chunk has a chunk of its own (and as many chunk numbers as it would fill).

/** No record (an unset reference). */
export const NO_REC = 0xffffffff;
/** The empty string, without a record (the null sender of DSNs costs nothing). */
export const EMPTY_REC = 0xfffffffe;

const SHIFT = 20;
const CHUNK = 1 << SHIFT;
const MASK = CHUNK - 1;
/** Chunk numbers 0..4094: offsets stay below EMPTY_REC. */
const MAX_CHUNKS = 4095;
/** Longest record header (a length up to 2^34). */
const MAX_HEADER = 5;

/** A list of chunks being filled at `pos` of chunk `cur`, with its accounting. */
interface Fill {
  chunks: Buffer[];
  /** Index of the chunk small records go to, -1 before the first. */
  cur: number;
  pos: number;
  /** Bytes taken: records (live and released), chunk tails left unused. */
  used: number;
  /** Bytes of released records and unused tails (reclaimed at the next compaction). */
  garbage: number;
}

const fill = (): Fill => ({ chunks: [], cur: -1, pos: CHUNK, used: 0, garbage: 0 });

export class ByteArena {
  private f = fill();
  /** Compactions done (tests, metrics). */
  compactions = 0;

  /** `minBytes`: below it the arena is never compacted (tests: 0, so that churn compacts). */
  constructor(private readonly minBytes = 4 * CHUNK) {}

  /** During a compaction: the chunks being filled. */
  private g: Fill | null = null;

  get used(): number {
    return this.f.used;
  }

  get garbage(): number {
    return this.f.garbage;
  }

  /** Half the arena is garbage (past its first chunks): time to compact. */
  get wantsCompaction(): boolean {
    return this.f.used > this.minBytes && this.f.garbage * 2 > this.f.used;
  }

  /** The chunk of the record at `at`. */
  chunk(at: number): Buffer {
    return this.f.chunks[at >>> SHIFT]!;
  }

  /** Room for a record of up to `n` bytes (header included) in `f`; returns its offset. */
  private take(f: Fill, n: number): number {
    if (n > CHUNK) {
      // A chunk of its own, exactly its size; small records go on filling the current one.
      const k = f.chunks.length;
      const span = Math.ceil(n / CHUNK);
      if (k + span > MAX_CHUNKS) throw new RangeError('queue arena: over 4 GiB of addresses queued');
      const b = Buffer.allocUnsafeSlow(n);
      for (let i = 0; i < span; i++) f.chunks.push(b);
      return k * CHUNK;
    }
    if (f.pos + n > CHUNK) {
      if (f.cur >= 0) {
        f.used += CHUNK - f.pos;
        f.garbage += CHUNK - f.pos;
      }
      if (f.chunks.length >= MAX_CHUNKS) throw new RangeError('queue arena: over 4 GiB of addresses queued');
      f.cur = f.chunks.length;
      f.chunks.push(Buffer.allocUnsafeSlow(CHUNK));
      f.pos = 0;
    }
    return f.cur * CHUNK + f.pos;
  }

  /** Appends `s` as one record; returns its offset. */
  put(s: string, flag = 0): number {
    if (s.length === 0 && flag === 0) return EMPTY_REC;
    const at = this.begin(s.length * 3);
    return this.end(at, (at & MASK) + 1 + this.chunk(at).write(s, (at & MASK) + 1, 'utf8'), flag);
  }

  /**
   * Starts a record of up to `maxBytes` bytes: the caller writes them into chunk(at) from
   * position (at & 0xfffff) + 1 on (room for a one-byte header: end() moves them if the header
   * needs more), then calls end(). No other record may be begun in between.
   */
  begin(maxBytes: number): number {
    return this.take(this.f, maxBytes + MAX_HEADER);
  }

  /** Ends the record begun at `at` whose bytes end at position `end` of its chunk. */
  end(at: number, end: number, flag: number): number {
    const f = this.f;
    const b = this.chunk(at);
    const p = at & MASK;
    const n = end - p - 1;
    const v = n * 2 + flag;
    const h = v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
    if (h > 1) b.copyWithin(p + h, p + 1, p + 1 + n);
    let x = v;
    let q = p;
    while (x >= 0x80) {
      b[q++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    b[q] = x;
    if (at >>> SHIFT === f.cur) {
      f.pos = p + h + n;
      f.used += h + n;
    } else {
      // In a chunk of its own: the rest of that chunk is garbage from the start.
      f.used += b.length;
      f.garbage += b.length - (h + n);
    }
    return at;
  }

  /** The header of the record at `at`: byte length * 2 + flag. */
  header(at: number): number {
    const b = this.chunk(at);
    let p = at & MASK;
    let x = b[p]!;
    if (x < 0x80) return x;
    let v = x & 0x7f;
    for (let mul = 0x80; ; mul *= 0x80) {
      x = b[++p]!;
      v += (x & 0x7f) * mul;
      if (x < 0x80) return v;
    }
  }

  /** Where the bytes of the record at `at` start in chunk(at). */
  start(at: number): number {
    const b = this.chunk(at);
    let p = at & MASK;
    while (b[p]! >= 0x80) p++;
    return p + 1;
  }

  /** The record at `at` as a string (its flag ignored). */
  str(at: number): string {
    if (at === EMPTY_REC) return '';
    const p = this.start(at);
    return this.chunk(at).toString('utf8', p, p + Math.floor(this.header(at) / 2));
  }

  /** The record's size in the arena, header included. */
  size(at: number): number {
    return at >= EMPTY_REC ? 0 : this.start(at) - (at & MASK) + Math.floor(this.header(at) / 2);
  }

  /** The record at `at` is no longer referenced. */
  release(at: number): void {
    this.f.garbage += this.size(at);
  }

  // --- compaction: begin, move each live record once, finish -------------------------------------

  beginCompaction(): void {
    this.g = fill();
  }

  /** Copies the record at `at` into the new chunks; returns its new offset. */
  move(at: number): number {
    if (at >= EMPTY_REC) return at;
    const g = this.g!;
    const n = this.size(at);
    const to = this.take(g, n);
    const p = at & MASK;
    this.chunk(at).copy(g.chunks[to >>> SHIFT]!, to & MASK, p, p + n);
    if (to >>> SHIFT === g.cur) g.pos = (to & MASK) + n;
    g.used += n;
    return to;
  }

  /** The new chunks replace the old (freed with them: their memory serves the next chunks). */
  finishCompaction(): void {
    this.f = this.g!;
    this.g = null;
    this.compactions++;
  }

  /** Chunks held (tests, metrics). */
  get chunks(): number {
    return this.f.chunks.length;
  }
}
