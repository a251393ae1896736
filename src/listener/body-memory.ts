// Memory for bodies in flight (received, not yet committed), bounded by Max_Body_Memory across all
// listeners and workers (issue 12 section 4): small bodies free, medium grants, large slots that never
// wait again, so the waiting cannot deadlock (see BodyMemory). One SharedArrayBuffer per process, made
// by the main thread like session-count.ts, also holding the listeners' counters. Any thread; Atomics
// only, never blocks (waiters sleep in Atomics.waitAsync).

/** Bodies up to this size are never counted: the hot path (4 KiB to 64 KiB messages) touches no atomics. */
export const FREE_BYTES = 64 * 1024;
/** The most one body takes from the medium pool before it needs a large slot. */
export const MEDIUM_MAX_BYTES = 1024 * 1024;
/** Worker slots (Worker_Threads is at most 1024). */
export const BODY_SLOTS = 1024;
/** Waiters look again this often even without a wake-up (a release that raced their failed take). */
const POLL_MS = 250;

// Word indexes; sizes in KiB so an Int32 holds up to 2 TiB.
const LIMIT = 0;
const MEDIUM = 1;
const LARGE = 2;
const WAKE = 3;
const WAITING = 4;
const COUNTERS = 8;
const SLOTS = 16;

/** Counters kept in the shared buffer (index after COUNTERS). */
export const COUNTER = { commandDeadline: 0, dataDeadline: 1, memoryWaits: 2, memoryTimeouts: 3, junkCommands: 4 } as const;
export type CounterName = keyof typeof COUNTER;

export function newBodyMemory(limitBytes: number): SharedArrayBuffer {
  const b = new SharedArrayBuffer((SLOTS + 2 * BODY_SLOTS) * 4);
  setBodyMemoryLimit(b, limitBytes);
  return b;
}

const kib = (bytes: number): number => Math.ceil(bytes / 1024);

/** Main thread, at start and reload: the budget (Max_Body_Memory). Waiters look again at once. */
export function setBodyMemoryLimit(buffer: SharedArrayBuffer, limitBytes: number): void {
  const a = new Int32Array(buffer);
  Atomics.store(a, LIMIT, Math.min(kib(limitBytes), 0x7fffffff));
  wake(a);
}

/** Main thread, before a worker in `slot` starts (first or replacement): what its predecessor held
 *  died with it. */
export function resetBodyMemorySlot(buffer: SharedArrayBuffer, slot: number): void {
  if (slot < 0 || slot >= BODY_SLOTS) return;
  const a = new Int32Array(buffer);
  Atomics.sub(a, MEDIUM, Atomics.exchange(a, SLOTS + 2 * slot, 0));
  Atomics.sub(a, LARGE, Atomics.exchange(a, SLOTS + 2 * slot + 1, 0));
  wake(a);
}

export interface BodyMemoryStats {
  limitBytes: number;
  /** Bytes granted to bodies in flight (medium grants and large slots; free bodies are not counted). */
  heldBytes: number;
  /** Bodies waiting for memory right now. */
  waiting: number;
  counters: Record<CounterName, number>;
}

export function bodyMemoryStats(buffer: SharedArrayBuffer): BodyMemoryStats {
  const a = new Int32Array(buffer);
  const counters = {} as Record<CounterName, number>;
  for (const [name, i] of Object.entries(COUNTER)) counters[name as CounterName] = Atomics.load(a, COUNTERS + i);
  return {
    limitBytes: Atomics.load(a, LIMIT) * 1024,
    heldBytes: (Atomics.load(a, MEDIUM) + Atomics.load(a, LARGE)) * 1024,
    waiting: Atomics.load(a, WAITING),
    counters,
  };
}

function wake(a: Int32Array): void {
  Atomics.add(a, WAKE, 1);
  Atomics.notify(a, WAKE);
}

/** How a waiter sleeps until a release; tests may replace it. */
export type WaitFn = (a: Int32Array, index: number, value: number, timeoutMs: number) => Promise<unknown>;

// Atomics.waitAsync (Node 16+) is ES2024; the project's lib is older, so it is typed here.
type WaitAsync = (a: Int32Array, index: number, value: number, timeoutMs: number) => { async: boolean; value: Promise<unknown> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

const atomicsWait: WaitFn = (a, index, value, timeoutMs) => {
  const r = waitAsync(a, index, value, timeoutMs);
  return r.async ? (r.value as Promise<unknown>) : Promise.resolve(r.value);
};

/**
 * A worker's view of the budget, with the queue of this worker's bodies that wait for memory. A body
 * up to FREE_BYTES is not counted (Concurrency bounds those); a larger one takes medium grants from a
 * quarter of the budget, up to MEDIUM_MAX_BYTES; beyond that, or when the medium pool is used up, it
 * needs a large slot: its listener's whole Max_Message_Size from the rest, at once. A slot holder
 * never waits again, so it finishes (or meets its deadline) and frees its slot; a waiter holds at
 * most a medium grant, so the large pool always drains: no deadlock. A waiting body's listener stops
 * reading its socket until a release wakes it.
 */
export class BodyMemory {
  private readonly a: Int32Array;
  private readonly slot: number;
  /** Each returns true once it is done waiting (admitted, or its session went away). */
  private waiters: (() => boolean)[] = [];
  private sleeping = false;

  constructor(
    buffer: SharedArrayBuffer,
    slot: number,
    private readonly waitFn: WaitFn = atomicsWait,
  ) {
    this.a = new Int32Array(buffer);
    this.slot = SLOTS + 2 * Math.min(Math.max(slot, 0), BODY_SLOTS - 1);
  }

  /** A lease for one message; `maxBytes` is its listener's Max_Message_Size (the large slot). */
  lease(maxBytes: number): BodyLease {
    return new BodyLease(this, kib(maxBytes + FREE_BYTES));
  }

  count(name: CounterName): void {
    Atomics.add(this.a, COUNTERS + COUNTER[name], 1);
  }

  /** Takes `n` KiB of a pool if it stays within its share; a large slot is also given to the first
   *  taker of an empty pool, so a Max_Message_Size above the budget still gets through, alone. */
  take(pool: 'medium' | 'large', n: number): boolean {
    if (n <= 0) return true;
    const limit = Atomics.load(this.a, LIMIT);
    const mediumLimit = Math.floor(limit / 4);
    const word = pool === 'medium' ? MEDIUM : LARGE;
    const max = pool === 'medium' ? mediumLimit : limit - mediumLimit;
    const prev = Atomics.add(this.a, word, n);
    if (prev + n <= max || (pool === 'large' && prev === 0)) {
      Atomics.add(this.a, this.slot + (word - MEDIUM), n);
      return true;
    }
    Atomics.sub(this.a, word, n);
    return false;
  }

  give(pool: 'medium' | 'large', n: number): void {
    if (n <= 0) return;
    const word = pool === 'medium' ? MEDIUM : LARGE;
    Atomics.sub(this.a, this.slot + (word - MEDIUM), n);
    Atomics.sub(this.a, word, n);
    wake(this.a);
  }

  get mediumMaxKiB(): number {
    return Math.min(kib(MEDIUM_MAX_BYTES), Math.floor(Atomics.load(this.a, LIMIT) / 16));
  }

  /** Queues `retry` until it returns true; it is called again after every release (or POLL_MS). */
  wait(retry: () => boolean): void {
    this.waiters.push(retry);
    Atomics.add(this.a, WAITING, 1);
    this.count('memoryWaits');
    if (!this.sleeping) this.sleep();
  }

  /** Calls every waiter once, in arrival order; those still short of memory stay queued. */
  admit(): void {
    const q = this.waiters;
    this.waiters = [];
    for (const retry of q) {
      if (retry()) Atomics.sub(this.a, WAITING, 1);
      else this.waiters.push(retry);
    }
  }

  get queued(): number {
    return this.waiters.length;
  }

  private sleep(): void {
    this.sleeping = true;
    const seen = Atomics.load(this.a, WAKE);
    void this.waitFn(this.a, WAKE, seen, POLL_MS).then(() => {
      this.sleeping = false;
      this.admit();
      if (this.waiters.length > 0) this.sleep();
    });
  }
}

/**
 * The memory one message's body holds. The listener calls cover(size) when the body outgrows what
 * it was given (rarely: grants double), and release() once the message is committed or dropped.
 */
export class BodyLease {
  private medium = 0;
  private large = 0;

  constructor(
    private readonly m: BodyMemory,
    private readonly largeKiB: number,
  ) {}

  /** Bytes this body may hold now. */
  get grantedBytes(): number {
    return this.large > 0 ? Infinity : Math.max(FREE_BYTES, this.medium * 1024);
  }

  /** Whether `bytes` are covered (taking more if needed); false: wait (BodyMemory.wait) and retry. */
  cover(bytes: number): boolean {
    if (bytes <= this.grantedBytes) return true;
    const need = kib(bytes);
    const mediumMax = this.m.mediumMaxKiB;
    if (need <= mediumMax) {
      const want = Math.min(mediumMax, Math.max(need, 2 * this.medium));
      if (this.m.take('medium', want - this.medium)) {
        this.medium = want;
        return true;
      }
    }
    if (!this.m.take('large', this.largeKiB)) return false;
    // The slot covers everything the message can hold: its medium grant goes back to the others.
    this.m.give('medium', this.medium);
    this.medium = 0;
    this.large = this.largeKiB;
    return true;
  }

  /** Gives everything back (idempotent). */
  release(): void {
    if (this.medium > 0) this.m.give('medium', this.medium);
    if (this.large > 0) this.m.give('large', this.large);
    this.medium = 0;
    this.large = 0;
  }

  get isLarge(): boolean {
    return this.large > 0;
  }
}
