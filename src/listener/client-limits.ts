// Per-client-address bookkeeping of one ESMTP listener in one worker: AUTH failures within a window
// (issue 12 section 4: guessing was never cut off) and open connections (a few clients holding every
// session). Small bounded tables, touched at connect, close and AUTH failure only, never in DATA.
// Runs on a worker thread; never blocks. Counts are per worker: workers share no state here.

/** Failed AUTH attempts per client address within a sliding window, at most `capacity` addresses. */
export class AuthFailures {
  private readonly table = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly capacity = 4096,
    private readonly now: () => number = Date.now,
  ) {}

  /** Failures counted for `address` in the current window. */
  count(address: string): number {
    const e = this.table.get(address);
    if (e === undefined) return 0;
    if (this.now() - e.since >= this.windowMs) {
      this.table.delete(address);
      return 0;
    }
    return e.count;
  }

  /** Records one failure; returns the count in the window including it. */
  fail(address: string): number {
    const n = this.count(address) + 1;
    const e = this.table.get(address);
    if (e !== undefined) {
      e.count = n;
      return n;
    }
    // Full: forget the address recorded first (Map order is insertion order), so the table stays
    // bounded whatever number of addresses an attacker uses.
    if (this.table.size >= this.capacity) this.table.delete(this.table.keys().next().value!);
    this.table.set(address, { count: n, since: this.now() });
    return n;
  }
}

/** The delay before the nth failed AUTH of a client is answered: n x base, at most 5 x base. */
export function authFailureDelay(failures: number, baseMs: number): number {
  return Math.min(Math.max(failures, 1), 5) * baseMs;
}

/** Open connections per client address. Entries disappear at zero, so the table holds only live clients. */
export class ConnectionsPerClient {
  private readonly open = new Map<string, number>();

  /** Counts one more connection from `address` if it stays within `max`; false (not counted) otherwise. */
  tryOpen(address: string, max: number): boolean {
    const n = this.open.get(address) ?? 0;
    if (n >= max) return false;
    this.open.set(address, n + 1);
    return true;
  }

  close(address: string): void {
    const n = this.open.get(address) ?? 0;
    if (n <= 1) this.open.delete(address);
    else this.open.set(address, n - 1);
  }

  get size(): number {
    return this.open.size;
  }
}
