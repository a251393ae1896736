// The queue manager's compact index of delivery parts. A part is one message's recipients in one
// destination domain under one binding: what one SMTP transaction delivers. A message with
// recipients in k domains has k parts, linked in a ring.
//
// Why struct-of-arrays: a million deferred messages as one JS object each (the first index's
// layout) cost about 500 B resident per message (bench/queue-memory.ts, 2026-11-22), over the
// issue's 400 B budget before any link or heap entry. Here a part is one slot: numbers live in
// typed arrays, the strings (queue id, sender, recipients joined by "\n") are the only heap
// objects, and names (bindings, listeners, X-Binding values) are interned to small integers:
// about 325 B per deferred message, retry heap included.
// Main thread only; every operation is O(1) except the heap's O(log n).

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

export class PartStore {
  private cap = 0;
  /** Slots ever used; slots below it are live or on the free list. */
  private used = 0;
  private freeHead = NONE;
  private live = 0;

  // Strings: the queue id (shared by a message's parts), the sender, the recipients joined by "\n".
  readonly id: (string | undefined)[] = [];
  readonly from: (string | undefined)[] = [];
  readonly rcpts: (string | undefined)[] = [];

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
  /** Position in the retry heap, or -1. */
  heapPos = new Int32Array(0);
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
    this.heapPos[s] = NONE;
    this.attempts[s] = 0;
    this.next[s] = 0;
    this.persisted[s] = 0;
    this.xBinding[s] = 0;
    this.listener[s] = 0;
    this.hops[s] = 0;
    this.origin[s] = 0;
    return s;
  }

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

  free(s: number): void {
    if (this.lastReply.size !== 0) this.lastReply.delete(s);
    this.id[s] = undefined;
    this.from[s] = undefined;
    this.rcpts[s] = undefined;
    this.state[s] = FREE;
    this.nextLink[s] = this.freeHead;
    this.freeHead = s;
    this.live--;
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
    // 1.5x keeps the slack (allocated, unused) under a third at any size.
    const cap = Math.max(1024, Math.ceil(this.cap * 1.5));
    const g = <T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(a: T, C: new (n: number) => T): T => {
      const b = new C(cap);
      b.set(a);
      return b;
    };
    this.size = g(this.size, Uint32Array);
    this.arrival = g(this.arrival, Float64Array);
    this.next = g(this.next, Float64Array);
    this.attempts = g(this.attempts, Uint16Array);
    this.state = g(this.state, Uint8Array);
    this.queue = g(this.queue, Int32Array);
    this.home = g(this.home, Int32Array);
    this.hops = g(this.hops, Uint8Array);
    this.origin = g(this.origin, Uint16Array);
    this.prevLink = g(this.prevLink, Int32Array);
    this.nextLink = g(this.nextLink, Int32Array);
    this.ring = g(this.ring, Int32Array);
    this.xBinding = g(this.xBinding, Uint16Array);
    this.listener = g(this.listener, Uint16Array);
    this.heapPos = g(this.heapPos, Int32Array);
    this.persisted = g(this.persisted, Uint8Array);
    this.cap = cap;
  }
}

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
