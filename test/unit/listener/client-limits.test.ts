// The listener's per-client tables: AUTH failures in a window (bounded, with an injected clock),
// the growing failure delay, and open connections per address.
import { describe, expect, it } from 'vitest';
import { AuthFailures, authFailureDelay, ConnectionsPerClient } from '../../../src/listener/client-limits.js';

describe('per-client limits', () => {
  it('counts AUTH failures per address within the window and forgets them after it', () => {
    let now = 0;
    const t = new AuthFailures(1000, 4096, () => now);
    expect(t.fail('a')).toBe(1);
    expect(t.fail('a')).toBe(2);
    expect(t.fail('b')).toBe(1);
    now = 999;
    expect(t.count('a')).toBe(2);
    now = 1000;
    expect(t.count('a')).toBe(0);
    expect(t.fail('a')).toBe(1);
  });

  it('stays bounded: the oldest address is forgotten when the table is full', () => {
    const t = new AuthFailures(1000, 2, () => 0);
    t.fail('a');
    t.fail('b');
    t.fail('c');
    expect(t.count('a')).toBe(0);
    expect(t.count('b')).toBe(1);
    expect(t.count('c')).toBe(1);
  });

  it('delays a failure more with each failure of the client, up to five times the base', () => {
    expect([1, 2, 3, 5, 9].map((n) => authFailureDelay(n, 1000))).toEqual([1000, 2000, 3000, 5000, 5000]);
    expect(authFailureDelay(4, 0)).toBe(0);
  });

  it('counts open connections per address up to the limit, and frees the slot on close', () => {
    const c = new ConnectionsPerClient();
    expect(c.tryOpen('a', 2)).toBe(true);
    expect(c.tryOpen('a', 2)).toBe(true);
    expect(c.tryOpen('a', 2)).toBe(false);
    expect(c.tryOpen('b', 2)).toBe(true);
    c.close('a');
    expect(c.tryOpen('a', 2)).toBe(true);
    c.close('a');
    c.close('a');
    c.close('b');
    expect(c.size).toBe(0);
  });
});
