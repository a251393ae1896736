// Queue id -> the first part of the message (its ring's entry point), as an open-addressing hash
// table of slot numbers in one Int32Array: the keys are the parts' own ids in the store (no string
// is kept per message), linear probing, backward-shift deletion (no tombstones), doubled past a
// load of 0.7. A million messages cost 8 MB (2^21 slots) where a Map<string, number> of them cost
// about 80 B each. Main thread only; never blocks; lookups of ids in the spool's form allocate nothing.
import { hashBytes, hashCompact } from './queue-id.js';
import type { PartStore } from './store.js';

const EMPTY = -1;
const MAX_LOAD = 0.7;

export class IdTable {
  private t: Int32Array;
  private mask: number;
  private n = 0;
  /** For ids not in the spool's form: their UTF-8 bytes, to hash and compare without a string. */
  private scratch = Buffer.allocUnsafeSlow(256);

  /** `spread` maps each 32-bit hash before use (tests: a narrow one makes every id collide). */
  constructor(private readonly st: PartStore, private readonly spread: (h: number) => number = (h) => h, cap = 1024) {
    this.t = new Int32Array(cap).fill(EMPTY);
    this.mask = cap - 1;
  }

  /** Messages in the table. */
  get size(): number {
    return this.n;
  }

  /** The first part of the message `id`, or -1. */
  find(id: string): number {
    const st = this.st;
    const ids = st.ids;
    const t = this.t;
    const mask = this.mask;
    if (ids.parse(id, false) && ids.node !== 0) {
      const { node, seg, seq } = ids;
      for (let i = this.spread(hashCompact(node, seg, seq)) & mask; ; i = (i + 1) & mask) {
        const e = t[i]!;
        if (e === EMPTY) return EMPTY;
        if (st.idNode[e] === node && st.idSeg[e] === seg && st.idSeq[e] === seq) return e;
      }
    }
    // Not in the spool's form (or a node never seen, so not stored compact): by its bytes.
    if (this.scratch.length < id.length * 3) this.scratch = Buffer.allocUnsafeSlow(id.length * 3);
    const n = this.scratch.write(id, 0, 'utf8');
    for (let i = this.spread(hashBytes(this.scratch, 0, n)) & mask; ; i = (i + 1) & mask) {
      const e = t[i]!;
      if (e === EMPTY) return EMPTY;
      if (st.textIdIs(e, this.scratch, n)) return e;
    }
  }

  has(id: string): boolean {
    return this.find(id) !== EMPTY;
  }

  /** Adds part `s` as its message's entry (its id must not be in the table). */
  insert(s: number): void {
    if (this.n + 1 > this.t.length * MAX_LOAD) this.resize(this.t.length * 2);
    this.place(s);
    this.n++;
  }

  /** The entry of the message part `s` belongs to (its id), or -1. */
  headOf(s: number): number {
    const i = this.indexOf(s);
    return i === EMPTY ? EMPTY : this.t[i]!;
  }

  /** If the message's entry is part `s`, makes it part `u` (same message): `s` is being freed. */
  replace(s: number, u: number): void {
    const i = this.indexOf(s);
    if (i !== EMPTY && this.t[i] === s) this.t[i] = u;
  }

  /** Takes the message of part `s` out (its id read from the store: call before freeing `s`). */
  remove(s: number): void {
    let i = this.indexOf(s);
    if (i === EMPTY) return;
    const t = this.t;
    const mask = this.mask;
    // Backward shift: each later entry of the run moves into the hole unless its home position
    // lies cyclically in (hole, its position], where moving it would put it before its home.
    for (let j = (i + 1) & mask; t[j] !== EMPTY; j = (j + 1) & mask) {
      const k = this.home(t[j]!);
      if (i <= j ? k <= i || k > j : k <= i && k > j) {
        t[i] = t[j]!;
        i = j;
      }
    }
    t[i] = EMPTY;
    this.n--;
  }

  /** Calls `f` with each message's entry part (table order, not arrival). */
  forEach(f: (s: number) => void): void {
    const t = this.t;
    for (let i = 0; i < t.length; i++) if (t[i] !== EMPTY) f(t[i]!);
  }

  private home(s: number): number {
    return this.spread(this.st.hashOf(s)) & this.mask;
  }

  /** Where the entry with part s's id is, or -1. */
  private indexOf(s: number): number {
    const t = this.t;
    const mask = this.mask;
    for (let i = this.home(s); ; i = (i + 1) & mask) {
      const e = t[i]!;
      if (e === EMPTY) return EMPTY;
      if (e === s || this.st.sameId(e, s)) return i;
    }
  }

  private place(s: number): void {
    const t = this.t;
    let i = this.home(s);
    while (t[i] !== EMPTY) i = (i + 1) & this.mask;
    t[i] = s;
  }

  private resize(cap: number): void {
    const old = this.t;
    this.t = new Int32Array(cap).fill(EMPTY);
    this.mask = cap - 1;
    for (let i = 0; i < old.length; i++) if (old[i] !== EMPTY) this.place(old[i]!);
  }
}
