// The sliding-window rate limit: no real window of the period ever holds more than the limit, under
// random arrival patterns and limit changes; the allowance is used (at most one bucket lost); nextAt
// says when the next event may go.
import { describe, expect, it } from 'vitest';
import { BUCKETS, SlidingWindow } from '../../../src/policy/window.js';
import { maxInWindow } from '../../helpers/windows.js';

describe('SlidingWindow', () => {
  it('never lets a real window hold more than the limit, whatever the arrivals and limit changes', () => {
    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (const period of [1000, 60_000, 7]) {
      const w = new SlidingWindow(50, period);
      const sent: number[] = [];
      let now = 1_000_000;
      let maxLimit = 50;
      for (let i = 0; i < 20_000; i++) {
        now += rand(Math.max(1, Math.floor(period / 40)));
        if (rand(500) === 0) { w.limit = 20 + rand(60); maxLimit = Math.max(maxLimit, w.limit); }
        const n = Math.min(w.available(now), 1 + rand(3));
        for (let k = 0; k < n; k++) sent.push(now);
        if (n > 0) w.take(now, n);
      }
      expect(maxInWindow(sent, period)).toBeLessThanOrEqual(maxLimit);
      if (maxLimit === 50) expect(maxInWindow(sent, period)).toBe(50);
    }
  });

  it('holds exactly the limit for a steady sender, losing at most one bucket a period', () => {
    const w = new SlidingWindow(600, 60_000);
    const sent: number[] = [];
    for (let t = 0; t < 600_000; t += 10) {
      const n = w.available(t);
      for (let k = 0; k < n; k++) sent.push(t);
      if (n > 0) w.take(t, n);
    }
    expect(maxInWindow(sent, 60_000)).toBeLessThanOrEqual(600);
    // Ten periods: at least 600 per period less one bucket's share.
    expect(sent.length).toBeGreaterThanOrEqual(10 * 600 * (1 - 1 / BUCKETS) - 600);
  });

  it('says when the next event may go', () => {
    const w = new SlidingWindow(2, 60_000);
    expect(w.nextAt(0)).toBe(0);
    w.take(0, 2);
    expect(w.available(30_000)).toBe(0);
    const at = w.nextAt(30_000);
    expect(at).toBe(61_000); // the bucket [0, 1000) leaves every window from 61 s on
    expect(w.available(at - 1)).toBe(0);
    expect(w.available(at)).toBe(2);
    w.limit = 0;
    expect(w.nextAt(at)).toBe(Infinity);
  });

  it('counts pending events (begun, not yet counted) against the limit and the next moment', () => {
    const w = new SlidingWindow(5, 60_000);
    w.take(0, 2);
    expect(w.available(10_000, 2)).toBe(1);
    expect(w.nextAt(10_000, 2)).toBe(10_000);
    // Three pending fill it: room comes when the two counted at 0 leave the window.
    expect(w.available(10_000, 3)).toBe(0);
    expect(w.nextAt(10_000, 3)).toBe(61_000);
    // Pending events alone fill it: no moment frees room until they are counted.
    expect(w.nextAt(10_000, 5)).toBe(Infinity);
  });
});
