// The #mmove duplicate table: remembers recent (node, id) pairs within a window and a capacity,
// shared across threads through its SharedArrayBuffer.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { DedupTable } from '../../../src/mmove/dedup.js';

describe('mmove dedup table', () => {
  it('finds a recorded id within the window and counts the duplicate', () => {
    const t = new DedupTable({ entries: 1024, windowMs: 60_000 });
    const now = 1_795_000_000_000;
    expect(t.seen('n1', 'id-1', now)).toBe(false);
    t.add('n1', 'id-1', now);
    expect(t.seen('n1', 'id-1', now + 1000)).toBe(true);
    expect(t.seen('n2', 'id-1', now)).toBe(false); // the key includes the sending node
    expect(t.seen('n1', 'id-2', now)).toBe(false);
    expect(t.stats()).toMatchObject({ duplicates: 1, inserts: 1, windowMs: 60_000 });
  });

  it('forgets ids older than the window', () => {
    const t = new DedupTable({ entries: 1024, windowMs: 60_000 });
    t.add('n1', 'old', 1_000_000_000);
    expect(t.seen('n1', 'old', 1_000_000_000 + 61_000)).toBe(false);
  });

  it('keeps about the last N ids: the newest survive, the oldest go', () => {
    const t = new DedupTable({ entries: 1024, windowMs: 3_600_000 });
    const cap = t.stats().capacity;
    const now = 1_795_000_000_000;
    for (let i = 0; i < cap * 4; i++) t.add('n', `id-${i}`, now + i * 1000);
    let newest = 0;
    for (let i = cap * 4 - 256; i < cap * 4; i++) if (t.seen('n', `id-${i}`, now + cap * 4000)) newest++;
    let oldest = 0;
    for (let i = 0; i < 256; i++) if (t.seen('n', `id-${i}`, now + cap * 4000)) oldest++;
    expect(newest).toBe(256);
    expect(oldest).toBe(0);
  });

  it('is shared with another thread through its buffer', async () => {
    const t = new DedupTable({ entries: 1024, windowMs: 60_000 });
    t.add('n1', 'from-main');
    // The worker maps the same memory; plain JS (no TypeScript) so it can run as a worker here.
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      const h = new Int32Array(workerData, 0, 4);
      Atomics.add(h, 0, 5);
      parentPort.postMessage(Atomics.load(h, 1));`;
    const w = new Worker(code, { eval: true, workerData: t.buffer });
    const inserts = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    expect(inserts).toBe(1);
    expect(t.stats().duplicates).toBe(5);
    const mapped = new DedupTable({ buffer: t.buffer });
    expect(mapped.seen('n1', 'from-main')).toBe(true);
  });
});
