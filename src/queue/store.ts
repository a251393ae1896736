// The queue manager's compact index of delivery parts. A part is one message's recipients in one
// destination domain under one binding: what one SMTP transaction delivers. A message with
// recipients in k domains has k parts, linked in a ring.
//
// Why struct-of-arrays: a million deferred messages as one JS object each (the first index's
// layout) cost about 500 B resident per message (bench/queue-memory.ts, 2026-11-22). Here a part
// is one slot of typed arrays, and no part has a V8 object of its own: the queue id is three
// numbers (queue-id.ts), the sender and the recipients are records in one byte arena (arena.ts),
// names (bindings, listeners, X-Binding values) are interned to small integers. Issue 18: 108 B
// of typed arrays per deferred message, retry heap and id table (id-table.ts) included; 160 B
// resident in bench/queue-memory.ts at 1,000,000 (from 331-336 B), 135 B at 2,000,000.
// Main thread only; every operation is O(1) (amortized: the arena's compaction) except the
// heap's O(log n).
import { ByteArena, EMPTY_REC, NO_REC } from './arena.js';
import { hashBytes, hashCompact, QueueIds } from './queue-id.js';
import { SenderDomains } from './senders.js';

export const FREE = 0;
/** Ready to be sent: in its queue's FIFO. */
export const READY = 1;
/** Handed to a worker; the result is awaited. */
export const INFLIGHT = 2;
/** Waiting for its next attempt: in the retry heap. */
export const DEFERRED = 3;
/** Held by the operator: in no list until released. */
export const HOLD = 4;
export type PartState = typeof FREE | typeof READY | typeof INFLIGHT | typeof DEFERRED | typeof HOLD;

/** Names to small integers and back; 0 is "none". */
export class Interner {
  private readonly names: string[] = [''];
  private readonly index = new Map<string, number>([['', 0]]);
  id(name: string | null | undefined): number {
    if (name === null || name === undefined || name === '') return 0;
    let i = this.index.get(name);
    if (i === undefined) {
      i = this.names.length;
      if (i > 0xffff) throw new RangeError('more than 65535 distinct names interned');
      this.names.push(name);
      this.index.set(name, i);
    }
    return i;
  }
  name(i: number): string | null {
    return i === 0 ? null : (this.names[i] ?? null);
  }
}

const NONE = -1;

/** Bytes for rebuilding a recipient whose domain the store left out (rcptsOf); grows as needed. */
let scratch = Buffer.allocUnsafeSlow(1024);

export class PartStore {
  private cap = 0;
  /** Slots ever used; slots below it are live or on the free list. */
  private used = 0;
  private freeHead = NONE;
  private live = 0;

  readonly ids = new QueueIds();
  private readonly senders = new SenderDomains();

  // The queue id (shared by a message's parts): the spool's node name interned, its segment and
  // sequence (queue-id.ts); an id of another form has idNode 0 and its text's record in idSeg.
  idNode = new Uint16Array(0);
  idSeg = new Uint32Array(0);
  idSeq = new Uint32Array(0);
  /** The sender's record (senders.ts): one per message, shared by its parts (they are all in one
   *  ring, which is what compaction walks to keep it shared). */
  fromAt = new Uint32Array(0);
  /** The recipients' record, joined by "\n"; flagged when each is stored without its "@domain"
   *  (the domain of the part's home queue, which never changes while the part lives: a part's
   *  recipients are all in that domain, so bulk mail to one domain stores local parts only). */
  rcptAt = new Uint32Array(0);
  size = new Uint32Array(0);
  /** Milliseconds since the epoch. */
  arrival = new Float64Array(0);
  /** Next attempt, ms since the epoch (0: as soon as possible). */
  next = new Float64Array(0);
  attempts = new Uint16Array(0);
  state = new Uint8Array(0);
  /** Index of the DestQueue the part is in now: its home, or a #mmove queue (a peer node's). */
  queue = new Int32Array(0);
  /** Index of its home DestQueue: (group, binding, domain) it is assigned to. */
  home = new Int32Array(0);
  /** #mmove hops the message made before it reached this node, and the node that first took it
   *  (interned; 0: this node). Sent along when it moves on. */
  hops = new Uint8Array(0);
  origin = new Uint16Array(0);
  /** Doubly linked FIFO of a queue's ready parts; also the free list (nextLink). */
  prevLink = new Int32Array(0);
  nextLink = new Int32Array(0);
  /** Next part of the same message (a ring; a single part points to itself). */
  ring = new Int32Array(0);
  /** Interned X-Binding value that was trusted at intake (0: none), and the listener name. */
  xBinding = new Uint16Array(0);
  listener = new Uint16Array(0);
  /** 1 when the message has persisted state in the spool (so later changes must be persisted too). */
  persisted = new Uint8Array(0);
  /** The last transient reply of a part that was deferred after an attempt (`message show`). Only
   *  such parts have an entry, so a queue without deferrals pays nothing; not persisted (after a
   *  restart the next attempt tells). Equal texts share one string (setReply). */
  readonly lastReply = new Map<number, string>();
  /** Reply texts seen lately, so a mass deferral ("421 4.7.0 try later" for 100,000 messages)
   *  holds one string, not one per message (each result arrives as its own copy). Cleared when full:
   *  bounded, and strings already stored stay valid. */
  private readonly replyTexts = new Map<string, string>();

  /** `arena`: senders, recipient lists and ids that do not parse, one record each (arena.ts).
   *  `domainOf(s)`: the domain of part s's home queue, which rcptsOf() puts back on recipients
   *  stored without it. Without it (tests of the slots alone) recipients are stored whole. */
  constructor(
    private readonly domainOf: (s: number) => string = () => '',
    readonly arena = new ByteArena(),
  ) {}

  /** Position in the retry heap, or -1. It shares prevLink's array: a part is in its queue's FIFO
   *  (READY) or in the heap (DEFERRED), never both, and each sets its link to -1 when it leaves
   *  (scheduler.leave, RetryHeap.removeAt): 4 bytes a part less. */
  get heapPos(): Int32Array {
    return this.prevLink;
  }

  get count(): number {
    return this.live;
  }

  alloc(): number {
    let s: number;
    if (this.freeHead !== NONE) {
      s = this.freeHead;
      this.freeHead = this.nextLink[s]!;
    } else {
      if (this.used === this.cap) this.grow();
      s = this.used++;
    }
    this.live++;
    this.prevLink[s] = NONE;
    this.nextLink[s] = NONE;
    this.ring[s] = s;
    this.attempts[s] = 0;
    this.next[s] = 0;
    this.persisted[s] = 0;
    this.xBinding[s] = 0;
    this.listener[s] = 0;
    this.hops[s] = 0;
    this.origin[s] = 0;
    this.idNode[s] = 0;
    this.idSeg[s] = NO_REC;
    this.fromAt[s] = NO_REC;
    this.rcptAt[s] = NO_REC;
    return s;
  }

  // --- the strings ---------------------------------------------------------------------------------

  /** Sets a new part's queue id and sender (hot: add; no allocation for an id in the spool's form). */
  setMessage(s: number, id: string, from: string): void {
    const ids = this.ids;
    if (ids.parse(id, true)) {
      this.idNode[s] = ids.node;
      this.idSeg[s] = ids.seg;
      this.idSeq[s] = ids.seq;
    } else {
      this.idNode[s] = 0;
      this.idSeg[s] = this.arena.put(id);
    }
    this.fromAt[s] = this.senders.put(this.arena, from);
  }

  /** Links new part `t` into the ring of `s` (a part of the same message), sharing its id and sender. */
  join(s: number, t: number): void {
    this.link(s, t);
    this.idNode[t] = this.idNode[s]!;
    this.idSeg[t] = this.idSeg[s]!;
    this.idSeq[t] = this.idSeq[s]!;
    this.fromAt[t] = this.fromAt[s]!;
  }

  /** The queue id (a new string each call: cache it where it is used more than once). */
  idOf(s: number): string {
    const node = this.idNode[s]!;
    return node !== 0 ? this.ids.format(node, this.idSeg[s]!, this.idSeq[s]!) : this.arena.str(this.idSeg[s]!);
  }

  /** A 32-bit hash of part s's queue id (id-table.ts); equal ids hash equal. */
  hashOf(s: number): number {
    const node = this.idNode[s]!;
    if (node !== 0) return hashCompact(node, this.idSeg[s]!, this.idSeq[s]!);
    const at = this.idSeg[s]!;
    if (at === EMPTY_REC) return hashBytes(scratch, 0, 0);
    const p = this.arena.start(at);
    return hashBytes(this.arena.chunk(at), p, p + Math.floor(this.arena.header(at) / 2));
  }

  /** Parts `a` and `b` have the same queue id. */
  sameId(a: number, b: number): boolean {
    const node = this.idNode[a]!;
    if (node !== this.idNode[b]) return false;
    if (node !== 0) return this.idSeg[a] === this.idSeg[b] && this.idSeq[a] === this.idSeq[b];
    const x = this.idSeg[a]!;
    const y = this.idSeg[b]!;
    if (x === y) return true;
    if (x === EMPTY_REC || y === EMPTY_REC) return false;
    const ar = this.arena;
    const hx = ar.header(x);
    if (hx !== ar.header(y)) return false;
    const px = ar.start(x);
    const py = ar.start(y);
    const n = Math.floor(hx / 2);
    return ar.chunk(x).compare(ar.chunk(y), py, py + n, px, px + n) === 0;
  }

  /** Part s's queue id is not in the spool's form and equals bytes [0, n) of `buf` (UTF-8). */
  textIdIs(s: number, buf: Buffer, n: number): boolean {
    if (this.idNode[s] !== 0) return false;
    const at = this.idSeg[s]!;
    if (at === EMPTY_REC) return n === 0;
    const ar = this.arena;
    if (Math.floor(ar.header(at) / 2) !== n) return false;
    const p = ar.start(at);
    return buf.compare(ar.chunk(at), p, p + n, 0, n) === 0;
  }

  fromOf(s: number): string {
    return this.senders.str(this.arena, this.fromAt[s]!);
  }

  /** Sets (or replaces) part s's recipients: all in the domain of its home queue, which must be
   *  set first. Hot (add, each deferral): no allocation. */
  setRcpts(s: number, rcpts: readonly string[]): void {
    const ar = this.arena;
    const old = this.rcptAt[s]!;
    if (old !== NO_REC) {
      this.rcptAt[s] = NO_REC;
      ar.release(old);
      if (ar.wantsCompaction) this.compact();
    }
    const d = this.domainOf(s);
    let max = rcpts.length;
    let elide = d.length > 0 && rcpts.length > 0 ? 1 : 0;
    for (const r of rcpts) {
      max += r.length * 3;
      if (elide === 1 && !(r.length > d.length + 1 && r.charCodeAt(r.length - d.length - 1) === 64 && r.endsWith(d))) elide = 0;
    }
    const drop = elide === 1 ? 1 + Buffer.byteLength(d, 'utf8') : 0;
    const at = ar.begin(max);
    const buf = ar.chunk(at);
    let pos = (at & 0xfffff) + 1;
    for (let i = 0; i < rcpts.length; i++) {
      if (i > 0) buf[pos++] = 10;
      pos += buf.write(rcpts[i]!, pos, 'utf8') - drop;
    }
    this.rcptAt[s] = ar.end(at, pos, elide);
  }

  /** Part s's recipients, as given to setRcpts (one string each, one array). */
  rcptsOf(s: number): string[] {
    const ar = this.arena;
    const at = this.rcptAt[s]!;
    const out: string[] = [];
    if (at === NO_REC) return out;
    const h = ar.header(at);
    let p = ar.start(at);
    const end = p + Math.floor(h / 2);
    const buf = ar.chunk(at);
    const d = h % 2 === 1 ? this.domainBytes(s) : null;
    for (;;) {
      let q = p;
      while (q < end && buf[q] !== 10) q++;
      if (d === null) out.push(buf.toString('utf8', p, q));
      else {
        // Local part, '@', domain, copied in a loop (short: cheaper than native calls), one string.
        const n = q - p;
        if (scratch.length < n + 1 + d.length) scratch = Buffer.allocUnsafeSlow(2 * (n + 1 + d.length));
        for (let i = 0; i < n; i++) scratch[i] = buf[p + i]!;
        scratch[n] = 64;
        for (let i = 0; i < d.length; i++) scratch[n + 1 + i] = d[i]!;
        out.push(scratch.toString('utf8', 0, n + 1 + d.length));
      }
      if (q >= end) return out;
      p = q + 1;
    }
  }

  /** The UTF-8 bytes of part s's home domain (the last one's kept: a batch is all one domain). */
  private domainBytes(s: number): Uint8Array {
    const d = this.domainOf(s);
    if (d !== this.lastDomain) {
      this.lastDomain = d;
      this.lastDomainBytes = Buffer.from(d, 'utf8');
    }
    return this.lastDomainBytes;
  }

  private lastDomain = '';
  private lastDomainBytes: Uint8Array = new Uint8Array(0);

  /** Copies the live records into a new arena (O(live), when half the arena is garbage: so
   *  amortized O(1) per byte freed). Walks each ring once, so that the id and sender its parts
   *  share stay one record. */
  private compact(): void {
    const ar = this.arena;
    ar.beginCompaction();
    const seen = new Uint8Array(this.used);
    for (let s = 0; s < this.used; s++) {
      if (seen[s] === 1) continue;
      let oldFrom = NO_REC;
      let newFrom = NO_REC;
      let oldId = NO_REC;
      let newId = NO_REC;
      let t = s;
      do {
        seen[t] = 1;
        this.rcptAt[t] = ar.move(this.rcptAt[t]!);
        const f = this.fromAt[t]!;
        if (f === oldFrom) this.fromAt[t] = newFrom;
        else this.fromAt[t] = newFrom = ar.move((oldFrom = f));
        if (this.idNode[t] === 0) {
          const i = this.idSeg[t]!;
          if (i === oldId) this.idSeg[t] = newId;
          else this.idSeg[t] = newId = ar.move((oldId = i));
        }
        t = this.ring[t]!;
      } while (t !== s);
    }
    ar.finishCompaction();
  }

  // --- replies, freeing, rings ---------------------------------------------------------------------

  /** Records part `s`'s last reply (a deferral's); shares the text with equal earlier ones. */
  setReply(s: number, text: string): void {
    let t = this.replyTexts.get(text);
    if (t === undefined) {
      if (this.replyTexts.size >= 4096) this.replyTexts.clear();
      this.replyTexts.set(text, text);
      t = text;
    }
    this.lastReply.set(s, t);
  }

  /** Takes part `s` out of its ring and frees its slot and records (the id and sender with the
   *  ring's last part). Returns another part of the message, or -1 if it was the last. */
  free(s: number): number {
    if (this.lastReply.size !== 0) this.lastReply.delete(s);
    const other = this.unlink(s);
    const ar = this.arena;
    const r = this.rcptAt[s]!;
    if (r !== NO_REC) ar.release(r);
    if (other === NONE) {
      const f = this.fromAt[s]!;
      if (f !== NO_REC) ar.release(f);
      if (this.idNode[s] === 0 && this.idSeg[s] !== NO_REC) ar.release(this.idSeg[s]!);
    }
    this.rcptAt[s] = NO_REC;
    this.fromAt[s] = NO_REC;
    this.idNode[s] = 0;
    this.idSeg[s] = NO_REC;
    this.state[s] = FREE;
    this.nextLink[s] = this.freeHead;
    this.freeHead = s;
    this.live--;
    if (ar.wantsCompaction) this.compact();
    return other;
  }

  /** Every live slot (for mailq-style scans that need per-part detail; O(slots)). */
  *slots(): IterableIterator<number> {
    for (let s = 0; s < this.used; s++) if (this.state[s] !== FREE) yield s;
  }

  /** The slots of a message's ring, starting at `s`. */
  ringOf(s: number): number[] {
    const out = [s];
    for (let t = this.ring[s]!; t !== s; t = this.ring[t]!) out.push(t);
    return out;
  }

  /** Joins `t` into the ring of `s`. */
  link(s: number, t: number): void {
    this.ring[t] = this.ring[s]!;
    this.ring[s] = t;
  }

  /** Takes `s` out of its ring; returns another member, or -1 if it was the last. */
  unlink(s: number): number {
    const nextInRing = this.ring[s]!;
    if (nextInRing === s) return NONE;
    let p = nextInRing;
    while (this.ring[p] !== s) p = this.ring[p]!;
    this.ring[p] = nextInRing;
    this.ring[s] = s;
    return nextInRing;
  }

  private grow(): void {
    // 1.5x keeps the slack (allocated, unused) under a third at any size. All columns in one
    // ArrayBuffer: one allocation per growth, which past 32 MB glibc always maps apart and gives
    // back when it is freed; twenty columns apart left their old copies in malloc's free lists
    // (about 40 B a message resident at 1,000,000, bench/queue-memory.ts).
    const cap = Math.max(1024, Math.ceil(this.cap * 1.5));
    const buf = new ArrayBuffer(COLUMNS.reduce((n, [, C]) => n + cap * C.BYTES_PER_ELEMENT, 0));
    let at = 0;
    const self = this as unknown as Record<string, Column>;
    // Widest first: each column's offset stays a multiple of its element size.
    for (const [name, C] of COLUMNS) {
      const b = new C(buf, at, cap);
      b.set(self[name]!);
      self[name] = b;
      at += cap * C.BYTES_PER_ELEMENT;
    }
    this.cap = cap;
  }
}

type Column = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;
type ColumnType = (new (buf: ArrayBuffer, at: number, n: number) => Column) & { BYTES_PER_ELEMENT: number };
/** PartStore's per-slot columns, widest element first. */
const COLUMNS: [string, ColumnType][] = [
  ['arrival', Float64Array], ['next', Float64Array],
  ['idSeg', Uint32Array], ['idSeq', Uint32Array], ['fromAt', Uint32Array], ['rcptAt', Uint32Array], ['size', Uint32Array],
  ['queue', Int32Array], ['home', Int32Array], ['prevLink', Int32Array], ['nextLink', Int32Array], ['ring', Int32Array],
  ['idNode', Uint16Array], ['attempts', Uint16Array], ['origin', Uint16Array], ['xBinding', Uint16Array], ['listener', Uint16Array],
  ['state', Uint8Array], ['hops', Uint8Array], ['persisted', Uint8Array],
];

/** A min-heap of slots ordered by store.next: the deferred parts, earliest retry first. */
export class RetryHeap {
  private heap = new Int32Array(1024);
  private n = 0;
  constructor(private readonly store: PartStore) {}

  get size(): number {
    return this.n;
  }

  /** The earliest part's slot, or -1. */
  peek(): number {
    return this.n === 0 ? NONE : this.heap[0]!;
  }

  push(s: number): void {
    if (this.n === this.heap.length) {
      const h = new Int32Array(this.heap.length * 2);
      h.set(this.heap);
      this.heap = h;
    }
    this.heap[this.n] = s;
    this.store.heapPos[s] = this.n;
    this.up(this.n++);
  }

  pop(): number {
    if (this.n === 0) return NONE;
    const top = this.heap[0]!;
    this.removeAt(0);
    return top;
  }

  /** Takes `s` out wherever it is (hold, rebind). */
  remove(s: number): void {
    const i = this.store.heapPos[s]!;
    if (i >= 0) this.removeAt(i);
  }

  private removeAt(i: number): void {
    const s = this.heap[i]!;
    this.store.heapPos[s] = NONE;
    const last = this.heap[--this.n]!;
    if (i === this.n) return;
    this.heap[i] = last;
    this.store.heapPos[last] = i;
    this.down(i);
    this.up(this.store.heapPos[last]!);
  }

  private less(a: number, b: number): boolean {
    return this.store.next[this.heap[a]!]! < this.store.next[this.heap[b]!]!;
  }

  private swap(a: number, b: number): void {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    this.heap[a] = y;
    this.heap[b] = x;
    this.store.heapPos[y] = a;
    this.store.heapPos[x] = b;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.n) return;
      const r = l + 1;
      const m = r < this.n && this.less(r, l) ? r : l;
      if (!this.less(m, i)) return;
      this.swap(m, i);
      i = m;
    }
  }
}
