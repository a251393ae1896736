// Duplicate suppression for #mmove receivers: which (sending node, original queue id) pairs this
// node has spooled recently. A sender retries a message whose 250 it never saw (the link died
// after our commit); the retry may land on another worker (SO_REUSEPORT), so the table lives in
// one SharedArrayBuffer that the main thread makes and every worker maps. Any thread; lock-free
// (Atomics), never blocks; one SHA-1 of a short key per lookup.
//
// Layout: Int32 header [duplicates, inserts, capacity, windowSec], then `capacity` slots of three
// Uint32 words [hashHi, hashLo, seconds], grouped in buckets of WAYS slots. A key goes to one bucket
// and replaces the bucket's oldest slot, so the table holds about the last `capacity` keys (older
// ones go first) and forgets keys older than the window. A lookup that misses a real duplicate
// costs one spooled copy (at-least-once); a false hit would lose a message, so keys are compared
// on 64 bits of SHA-1 and a slot is invalidated (seconds = 0) before it is rewritten.
import crypto from 'node:crypto';

const HEADER_WORDS = 4;
const SLOT_WORDS = 3;
const WAYS = 8;

export interface DedupStats {
  /** Messages answered 250 without spooling again, since the table was made. */
  duplicates: number;
  /** Keys recorded since the table was made. */
  inserts: number;
  capacity: number;
  windowMs: number;
}

export class DedupTable {
  readonly buffer: SharedArrayBuffer;
  private readonly header: Int32Array;
  private readonly slots: Uint32Array;
  private readonly buckets: number;

  /**
   * Makes a table for about `entries` keys and `windowMs` (main thread), or maps `buffer` made
   * elsewhere (a worker): then the other arguments are ignored.
   */
  constructor(opts: { entries: number; windowMs: number } | { buffer: SharedArrayBuffer }) {
    if ('buffer' in opts) {
      this.buffer = opts.buffer;
    } else {
      if (!Number.isInteger(opts.entries) || opts.entries < WAYS) throw new RangeError(`dedup entries must be an integer >= ${WAYS}`);
      if (!(opts.windowMs >= 1000)) throw new RangeError('dedup window must be >= 1 s');
      const buckets = 2 ** Math.ceil(Math.log2(Math.ceil(opts.entries / WAYS)));
      const capacity = buckets * WAYS;
      this.buffer = new SharedArrayBuffer((HEADER_WORDS + capacity * SLOT_WORDS) * 4);
      const h = new Int32Array(this.buffer, 0, HEADER_WORDS);
      h[2] = capacity;
      h[3] = Math.floor(opts.windowMs / 1000);
    }
    this.header = new Int32Array(this.buffer, 0, HEADER_WORDS);
    const capacity = this.header[2]!;
    this.slots = new Uint32Array(this.buffer, HEADER_WORDS * 4, capacity * SLOT_WORDS);
    this.buckets = capacity / WAYS;
  }

  /** The 64-bit hash a key is stored under: computed once, passed to seenKey/addKey. */
  static key(node: string, id: string): DedupKey {
    return hash(node, id);
  }

  /** True when `node`/`id` was recorded within the window; counts it as a duplicate then. */
  seen(node: string, id: string, now = Date.now()): boolean {
    return this.seenKey(hash(node, id), now);
  }

  /** seen() for a key from DedupTable.key(): the receiver hashes once per message, not twice. */
  seenKey([hi, lo]: DedupKey, now = Date.now()): boolean {
    const base = (lo & (this.buckets - 1)) * WAYS * SLOT_WORDS;
    const oldest = nowSec(now) - Atomics.load(this.header, 3);
    for (let i = 0; i < WAYS; i++) {
      const s = base + i * SLOT_WORDS;
      const t = Atomics.load(this.slots, s + 2);
      if (t === 0 || t < oldest) continue;
      if (Atomics.load(this.slots, s) === hi && Atomics.load(this.slots, s + 1) === lo && Atomics.load(this.slots, s + 2) === t) {
        Atomics.add(this.header, 0, 1);
        return true;
      }
    }
    return false;
  }

  /** Records `node`/`id` as spooled now. Call only after the commit is durable. */
  add(node: string, id: string, now = Date.now()): void {
    this.addKey(hash(node, id), now);
  }

  /** add() for a key from DedupTable.key(). */
  addKey([hi, lo]: DedupKey, now = Date.now()): void {
    const base = (lo & (this.buckets - 1)) * WAYS * SLOT_WORDS;
    let victim = base;
    let victimT = Number.MAX_SAFE_INTEGER;
    for (let i = 0; i < WAYS; i++) {
      const s = base + i * SLOT_WORDS;
      const t = Atomics.load(this.slots, s + 2);
      if (t < victimT) {
        victimT = t;
        victim = s;
      }
    }
    // Invalidate first so a concurrent reader never pairs the new hash with the old time.
    Atomics.store(this.slots, victim + 2, 0);
    Atomics.store(this.slots, victim, hi);
    Atomics.store(this.slots, victim + 1, lo);
    Atomics.store(this.slots, victim + 2, nowSec(now));
    Atomics.add(this.header, 1, 1);
  }

  stats(): DedupStats {
    return {
      duplicates: Atomics.load(this.header, 0),
      inserts: Atomics.load(this.header, 1),
      capacity: this.header[2]!,
      windowMs: Atomics.load(this.header, 3) * 1000,
    };
  }
}

/**
 * The id a move is remembered by: the original queue id and its recipients (sorted). One message
 * can be moved in parts (its recipient domains may be queued on #mmove at different times); each
 * part is its own move, so the same id with other recipients is not a duplicate. A retry of one
 * move sends the same recipients and is.
 */
export function moveKey(originalId: string, rcpt: readonly string[]): string {
  return `${originalId}\n${[...rcpt].map((r) => r.toLowerCase()).sort().join('\n')}`;
}

function nowSec(now: number): number {
  // Never 0: 0 marks an empty slot.
  return Math.max(1, Math.floor(now / 1000));
}

/** 64 bits of SHA-1 over `node`, NUL, `id` (UTF-8): [first word, second word], little-endian. */
export type DedupKey = readonly [number, number];

// One-shot crypto.hash (Node >= 20.12) where there is one: no Hash object per lookup. The digest
// is the same bytes as createHash().update(node).update('\0').update(id).
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'buffer') => Buffer }).hash;

function hash(node: string, id: string): DedupKey {
  const d = oneShot !== undefined ? oneShot('sha1', `${node}\0${id}`, 'buffer') : crypto.createHash('sha1').update(node).update('\0').update(id).digest();
  return [d.readUInt32LE(0), d.readUInt32LE(4)];
}
