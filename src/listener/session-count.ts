// One ESMTP listener's open sessions across every worker thread, so `Concurrency` bounds the
// listener as the docs say, not each worker. One SharedArrayBuffer per listener made by the main
// thread (the #mmove dedup table's pattern): word 0 the total, word 1 + w worker w's share, so the
// main thread can take back a dead worker's sessions. Any thread; Atomics only, never blocks.

/** Worker slots a counter has room for (Worker_Threads is at most 1024). */
export const SESSION_SLOTS = 1024;

export function newSessionCount(): SharedArrayBuffer {
  return new SharedArrayBuffer((1 + SESSION_SLOTS) * 4);
}

/** Main thread, before a worker in `slot` starts (first or replacement): its predecessor's
 *  sessions died with it, so they leave the total. */
export function resetSessionSlot(buffer: SharedArrayBuffer, slot: number): void {
  if (slot < 0 || slot >= SESSION_SLOTS) return;
  const a = new Int32Array(buffer);
  Atomics.sub(a, 0, Atomics.exchange(a, 1 + slot, 0));
}

/** A worker's view: takes and gives back session places. Only at connect and close. */
export class SessionCount {
  private readonly a: Int32Array;
  private readonly slot: number;

  constructor(buffer: SharedArrayBuffer, slot: number) {
    this.a = new Int32Array(buffer);
    this.slot = 1 + Math.min(Math.max(slot, 0), SESSION_SLOTS - 1);
  }

  /** Takes a place if the listener has fewer than `max` sessions open on all workers. */
  tryOpen(max: number): boolean {
    if (Atomics.add(this.a, 0, 1) >= max) {
      Atomics.sub(this.a, 0, 1);
      return false;
    }
    Atomics.add(this.a, this.slot, 1);
    return true;
  }

  close(): void {
    Atomics.sub(this.a, this.slot, 1);
    Atomics.sub(this.a, 0, 1);
  }

  get total(): number {
    return Atomics.load(this.a, 0);
  }
}
