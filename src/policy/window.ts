// A rate limit "N per PERIOD" that holds for every sliding window, not on average: events are
// counted in buckets of PERIOD/BUCKETS, and a window's count includes the whole of every bucket it
// touches, so the count can only be over-estimated: no real window of PERIOD ever holds more than
// N events, at the price of up to one bucket's width of unused allowance. Memory is BUCKETS
// numbers per limit whatever N is (a ring of timestamps would cost N). The limit can change at
// any time (a cluster lease moving); what was sent stays counted. Events begun but not yet counted
// (a batch in flight) are the caller's `pending`. Pure; the caller passes the clock.

export const BUCKETS = 60;
/** A window touches BUCKETS + 1 buckets (its oldest only in part): one slot each. */
const SLOTS = BUCKETS + 1;

export class SlidingWindow {
  private readonly counts = new Float64Array(SLOTS);
  /** The bucket number (time / width) each slot last counted for. */
  private readonly slots = new Float64Array(SLOTS).fill(-Infinity);
  private readonly width: number;

  constructor(public limit: number, readonly periodMs: number) {
    if (!(periodMs > 0)) throw new RangeError('SlidingWindow: the period must be > 0');
    this.width = periodMs / BUCKETS;
  }

  /** Events counted in the window ending at `now` (over-estimated by at most one bucket). */
  count(now: number): number {
    const cur = Math.floor(now / this.width);
    let n = 0;
    // The window (now - period, now] touches buckets cur - BUCKETS .. cur, the oldest in part:
    // all of it is counted.
    for (let i = 0; i < SLOTS; i++) {
      const b = this.slots[i]!;
      if (b >= cur - BUCKETS && b <= cur) n += this.counts[i]!;
    }
    return n;
  }

  /** How many events may happen now, when `pending` more (started, not yet counted) are coming. */
  available(now: number, pending = 0): number {
    return Math.max(0, this.limit - this.count(now) - pending);
  }

  /** Counts `n` events at `now` (the caller checked `available`). */
  take(now: number, n = 1): void {
    const cur = Math.floor(now / this.width);
    const i = ((cur % SLOTS) + SLOTS) % SLOTS;
    if (this.slots[i] !== cur) {
      this.slots[i] = cur;
      this.counts[i] = 0;
    }
    this.counts[i]! += n;
  }

  /**
   * When at least one event may happen again (`now` if it may now); Infinity if the limit is 0,
   * or if the `pending` events alone fill it (then only counting them and time can make room).
   * For a timer: the earliest moment the oldest counted bucket leaves the window.
   */
  nextAt(now: number, pending = 0): number {
    if (this.available(now, pending) > 0) return now;
    if (this.limit - pending <= 0) return Infinity;
    const cur = Math.floor(now / this.width);
    let need = this.count(now) + pending - this.limit + 1;
    for (let b = cur - BUCKETS; b <= cur; b++) {
      const i = ((b % SLOTS) + SLOTS) % SLOTS;
      if (this.slots[i] !== b) continue;
      need -= this.counts[i]!;
      // Bucket b is out of every window that starts after its end.
      if (need <= 0) return (b + 1) * this.width + this.periodMs;
    }
    return now + this.periodMs;
  }
}
