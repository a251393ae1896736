// Outbound_Throttle_Messages and _Connections for the scheduler (main thread): each throttled
// queue's window of messages sent (or connections opened), the cluster-wide windows per
// destination (their limit the lease of the moment), and the one timer that wakes the queues
// their windows hold back. Never blocks; at most
// one setTimeout per scheduler, whatever the number of throttled queues.
//
// A message counts from the moment its batch is handed out (pending) until PERIOD after the
// batch's result came back (then it is counted in the window at that moment). The receiver saw
// it somewhere in between, so no window of PERIOD at the receiver holds more than N, however
// long deliveries take and whether they were delivered, deferred or lost; the price is the
// delivery time added to each message's share of the period.
import type { Rate } from '../config/schema.js';
import { SlidingWindow } from '../policy/window.js';

/** What HeldQueues needs of a queue (scheduler.ts's DestQueue). */
export interface Holdable {
  /** Held back until then (ms since the epoch; Infinity: no known moment); 0: not held back. */
  throttledUntil: number;
}

/** Longest wait of one timer (setTimeout's limit is 2^31-1 ms); the queues are looked at again then. */
const MAX_TIMER_MS = 3_600_000;

/** One queue's message budget: its window and the messages handed out whose results are due. */
export class MessageThrottle {
  private window: SlidingWindow;
  /** Messages in batches handed out and not yet reported. */
  pending = 0;

  constructor(rate: Rate) {
    this.window = new SlidingWindow(rate.count, rate.periodMs);
  }

  /** The rate after a config reload (null: unlimited). The same period keeps the window (what
   *  was sent stays counted); a new one starts a window holding what the old one counted now. */
  reconfigure(rate: Rate | null, now: number): void {
    if (rate === null) this.window.limit = Infinity;
    else if (rate.periodMs === this.window.periodMs) this.window.limit = rate.count;
    else {
      const sent = this.window.count(now);
      this.window = new SlidingWindow(rate.count, rate.periodMs);
      if (sent > 0) this.window.take(now, sent);
    }
  }

  /** Messages counted against the budget now (in the window, or handed out and not reported). */
  used(now: number): number {
    return this.window.count(now) + this.pending;
  }

  /** The budget per period (Infinity: unlimited). */
  get limit(): number {
    return this.window.limit;
  }

  /** A cluster-wide window's budget is this node's lease, set each time it is looked at. */
  set limit(n: number) {
    this.window.limit = n;
  }

  get periodMs(): number {
    return this.window.periodMs;
  }

  /** Messages that may be handed out now. */
  available(now: number): number {
    return this.window.available(now, this.pending);
  }

  /** When one may go again: Infinity when the pending messages alone fill the budget (a batch's
   *  end looks again) or the limit is 0 (a reload does). */
  nextAt(now: number): number {
    return this.window.nextAt(now, this.pending);
  }

  /** `n` messages handed out in a batch. */
  begin(n: number): void {
    this.pending += n;
  }

  /** The batch of `n` messages reported (delivered, deferred or lost: each may have been sent);
   *  `happened` of them counted (connections: those a batch allowed to open `n` did open). */
  end(now: number, n: number, happened = n): void {
    this.pending -= n;
    if (happened > 0) this.window.take(now, happened);
  }
}

/** The throttle a queue needs for `rate`: null while it never had one (no work at all for
 *  unthrottled queues); once it had one, the same object (in-flight batches end on it). */
export function throttleFor(t: MessageThrottle | null, rate: Rate | null, now: number): MessageThrottle | null {
  if (t === null) return rate === null ? null : new MessageThrottle(rate);
  t.reconfigure(rate, now);
  return t;
}

/**
 * The queues held back by their windows (each with `throttledUntil` set) and one timer, armed for
 * the earliest of them; when it fires, every queue whose moment came is handed to `wake`.
 */
export class HeldQueues<Q extends Holdable> {
  private readonly held = new Set<Q>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private running = false;

  constructor(private readonly now: () => number, private readonly wake: (q: Q) => void) {}

  /** `q` waits for its window until `until` (Infinity: until a batch ends or a reload). */
  hold(q: Q, until: number): void {
    q.throttledUntil = until;
    this.held.add(q);
    if (until < this.timerAt) this.arm(until);
  }

  /** `q` is looked at again (the pump, a reload): not held any more. The timer stays; it re-arms
   *  for the queues still held when it fires. */
  release(q: Q): void {
    if (q.throttledUntil === 0) return;
    q.throttledUntil = 0;
    this.held.delete(q);
  }

  start(): void {
    this.running = true;
    let at = Infinity;
    for (const q of this.held) at = Math.min(at, q.throttledUntil);
    this.arm(at);
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private arm(at: number): void {
    if (!this.running || at === Infinity) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.now();
    let next = Infinity;
    for (const q of this.held) {
      if (q.throttledUntil <= now) {
        this.release(q);
        this.wake(q);
      } else if (q.throttledUntil < next) next = q.throttledUntil;
    }
    this.arm(next);
  }
}

/** The lower of two rates (messages per ms); null is none. */
export function stricterRate(a: Rate | null, b: Rate | null): Rate | null {
  if (a === null) return b;
  if (b === null) return a;
  return b.count / b.periodMs < a.count / a.periodMs ? b : a;
}
