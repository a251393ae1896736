// Rate-limit checks for the tests: the most events in any sliding window of a period.
// Pure; any test.

/** The most events in any window (t - period, t] of `times` (exact: sorted, then two pointers). */
export function maxInWindow(times: readonly number[], period: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < t.length; hi++) {
    while (t[lo]! <= t[hi]! - period) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}
