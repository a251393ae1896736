// Requests in progress across the worker threads (Max_Concurrent_Requests): one Int32 slot per
// worker in a SharedArrayBuffer, so a worker that dies takes its count with it (the host clears its
// slot for the replacement). Any thread; Atomics only, never blocks.

/** Worker slots a buffer holds (Worker_Threads is at most 1024). */
const SLOTS = 1025;

export function newRequestCount(): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT);
}

/** A replacement worker starts at 0: its predecessor's requests died with it. */
export function resetRequestSlot(buf: SharedArrayBuffer, slot: number): void {
  Atomics.store(new Int32Array(buf), slot, 0);
}

export function requestsInProgress(buf: SharedArrayBuffer): number {
  const a = new Int32Array(buf);
  let n = 0;
  for (let i = 0; i < SLOTS; i++) n += Atomics.load(a, i);
  return n;
}

export class RequestCount {
  private readonly a: Int32Array;
  constructor(buf: SharedArrayBuffer, private readonly slot: number) {
    this.a = new Int32Array(buf);
  }

  /** Counts one more request unless `max` are in progress. Two workers racing for the last place
   *  may both see room: the limit can be passed by the number of workers, never more. */
  tryOpen(max: number): boolean {
    if (requestsInProgress(this.a.buffer as SharedArrayBuffer) >= max) return false;
    Atomics.add(this.a, this.slot, 1);
    return true;
  }

  close(): void {
    Atomics.sub(this.a, this.slot, 1);
  }
}
