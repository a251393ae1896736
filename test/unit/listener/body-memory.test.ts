// The budget for bodies in flight (Max_Body_Memory) across workers: free small bodies, medium grants,
// large slots that always finish, waiters woken by a release, and a dead worker's share taken back.
// No clock and no sleeps: a waiter is woken by the release itself (Atomics.notify), or by a test's
// own wait function.
import { describe, expect, it } from 'vitest';
import {
  BodyMemory, bodyMemoryStats, FREE_BYTES, MEDIUM_MAX_BYTES, newBodyMemory, resetBodyMemorySlot, setBodyMemoryLimit, type WaitFn,
} from '../../../src/listener/body-memory.js';

const MiB = 1024 * 1024;

/** A wait function the test resolves by hand: no timer, no real sleep. */
function manualWait(): { fn: WaitFn; wakeAll: () => void; pending: () => number } {
  let resolvers: (() => void)[] = [];
  return {
    fn: () => new Promise<void>((r) => resolvers.push(r)),
    wakeAll: () => {
      const rs = resolvers;
      resolvers = [];
      for (const r of rs) r();
    },
    pending: () => resolvers.length,
  };
}

describe('body memory budget', () => {
  it('does not count bodies up to FREE_BYTES at all', () => {
    const b = newBodyMemory(16 * MiB);
    const m = new BodyMemory(b, 0);
    const l = m.lease(50 * MiB);
    expect(l.cover(FREE_BYTES)).toBe(true);
    expect(bodyMemoryStats(b).heldBytes).toBe(0);
  });

  it('grants medium bodies from a quarter of the budget and gives it back on release', () => {
    const b = newBodyMemory(64 * MiB);
    const m = new BodyMemory(b, 0);
    const l = m.lease(50 * MiB);
    expect(l.cover(FREE_BYTES + 1)).toBe(true);
    expect(l.isLarge).toBe(false);
    const held = bodyMemoryStats(b).heldBytes;
    expect(held).toBeGreaterThan(FREE_BYTES);
    expect(held).toBeLessThanOrEqual(MEDIUM_MAX_BYTES);
    l.release();
    l.release();
    expect(bodyMemoryStats(b).heldBytes).toBe(0);
  });

  it('moves a body past MEDIUM_MAX_BYTES to a large slot of its Max_Message_Size, returning the medium grant', () => {
    const b = newBodyMemory(256 * MiB);
    const m = new BodyMemory(b, 0);
    const l = m.lease(50 * MiB);
    expect(l.cover(MEDIUM_MAX_BYTES)).toBe(true);
    expect(l.cover(MEDIUM_MAX_BYTES + 1)).toBe(true);
    expect(l.isLarge).toBe(true);
    const held = bodyMemoryStats(b).heldBytes;
    expect(held).toBeGreaterThanOrEqual(50 * MiB);
    expect(held).toBeLessThan(50 * MiB + MiB);
    // A slot covers every size up to the message limit without asking again.
    expect(l.cover(50 * MiB)).toBe(true);
    expect(bodyMemoryStats(b).heldBytes).toBe(held);
    l.release();
    expect(bodyMemoryStats(b).heldBytes).toBe(0);
  });

  it('never grants more large slots than fit, across workers', () => {
    // 256 MiB: 64 medium, 192 large -> three slots of 50 MiB.
    const b = newBodyMemory(256 * MiB);
    const w1 = new BodyMemory(b, 1);
    const w2 = new BodyMemory(b, 2);
    const leases = [w1, w2, w1, w2].map((w) => w.lease(50 * MiB));
    const got = leases.map((l) => l.cover(2 * MEDIUM_MAX_BYTES));
    expect(got).toEqual([true, true, true, false]);
    expect(bodyMemoryStats(b).heldBytes).toBeLessThanOrEqual(256 * MiB);
  });

  it('lets one body larger than the whole large pool through when it is alone', () => {
    const b = newBodyMemory(16 * MiB);
    const m = new BodyMemory(b, 0);
    const a = m.lease(50 * MiB);
    const c = m.lease(50 * MiB);
    expect(a.cover(20 * MiB)).toBe(true);
    expect(c.cover(2 * MiB)).toBe(false);
    a.release();
    expect(c.cover(2 * MiB)).toBe(true);
  });

  it('wakes a waiting body when another releases, in arrival order, and cannot deadlock', async () => {
    const b = newBodyMemory(256 * MiB);
    const w = manualWait();
    const m = new BodyMemory(b, 0, w.fn);
    const holders = [0, 1, 2].map(() => m.lease(50 * MiB));
    for (const h of holders) expect(h.cover(10 * MiB)).toBe(true);
    // Two more bodies each hold a medium grant and then need a slot: they wait.
    const waiting = [m.lease(50 * MiB), m.lease(50 * MiB)];
    const admitted: number[] = [];
    waiting.forEach((l, i) => {
      expect(l.cover(MEDIUM_MAX_BYTES)).toBe(true);
      expect(l.cover(5 * MiB)).toBe(false);
      m.wait(() => {
        if (!l.cover(5 * MiB)) return false;
        admitted.push(i);
        return true;
      });
    });
    expect(bodyMemoryStats(b).waiting).toBe(2);
    expect(bodyMemoryStats(b).counters.memoryWaits).toBe(2);
    // Woken without a release: nothing changes, both still wait.
    w.wakeAll();
    await Promise.resolve();
    await Promise.resolve();
    expect(admitted).toEqual([]);
    expect(m.queued).toBe(2);
    // A slot holder finishes: the first waiter gets its slot, the second waits on.
    holders[0]!.release();
    w.wakeAll();
    await Promise.resolve();
    await Promise.resolve();
    expect(admitted).toEqual([0]);
    holders[1]!.release();
    w.wakeAll();
    await Promise.resolve();
    await Promise.resolve();
    expect(admitted).toEqual([0, 1]);
    expect(bodyMemoryStats(b).waiting).toBe(0);
    expect(w.pending()).toBe(0);
  });

  it('is woken by a release in another view through Atomics.notify', async () => {
    const b = newBodyMemory(256 * MiB);
    const w1 = new BodyMemory(b, 1);
    const w2 = new BodyMemory(b, 2);
    const holders = [0, 1, 2].map(() => w1.lease(50 * MiB));
    for (const h of holders) expect(h.cover(10 * MiB)).toBe(true);
    const l = w2.lease(50 * MiB);
    expect(l.cover(10 * MiB)).toBe(false);
    const admitted = new Promise<void>((resolve) =>
      w2.wait(() => {
        if (!l.cover(10 * MiB)) return false;
        resolve();
        return true;
      }),
    );
    holders[2]!.release();
    await admitted;
    expect(l.isLarge).toBe(true);
  });

  it('takes back what a dead worker held, and follows a new limit', () => {
    const b = newBodyMemory(256 * MiB);
    const dead = new BodyMemory(b, 3);
    const l = dead.lease(50 * MiB);
    expect(l.cover(10 * MiB)).toBe(true);
    const m = dead.lease(50 * MiB);
    expect(m.cover(200 * 1024)).toBe(true);
    expect(bodyMemoryStats(b).heldBytes).toBeGreaterThan(50 * MiB);
    resetBodyMemorySlot(b, 3);
    expect(bodyMemoryStats(b).heldBytes).toBe(0);
    setBodyMemoryLimit(b, 64 * MiB);
    expect(bodyMemoryStats(b).limitBytes).toBe(64 * MiB);
    const w = new BodyMemory(b, 4);
    // 64 MiB: 48 MiB large pool, one 50 MiB slot only when empty.
    const x = w.lease(50 * MiB);
    const y = w.lease(50 * MiB);
    expect(x.cover(10 * MiB)).toBe(true);
    expect(y.cover(10 * MiB)).toBe(false);
  });
});
