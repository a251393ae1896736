// The per-network connection counter workers share (Cluster_Max_Inbound_Connections): places taken
// and given back against the limit word the main thread writes, refusals counted, a dead worker's
// places taken back. Pure Atomics on one buffer; the workers are two views of it.
import { describe, expect, it } from 'vitest';
import { InboundCount, inboundState, newInboundCount, resetInboundSlot, setInboundLimit } from '../../../src/listener/inbound-count.js';

describe('InboundCount', () => {
  it('takes places up to the limit across workers and counts what it refuses', () => {
    const b = newInboundCount(3);
    const w0 = new InboundCount(b, 0);
    const w1 = new InboundCount(b, 1);
    expect([w0.tryOpen(), w1.tryOpen(), w1.tryOpen(), w0.tryOpen()]).toEqual([true, true, true, false]);
    expect(inboundState(b)).toEqual({ open: 3, limit: 3, refused: 1 });
    w1.close();
    expect(w0.tryOpen()).toBe(true);
    expect(inboundState(b)).toEqual({ open: 3, limit: 3, refused: 1 });
  });

  it('follows the limit word: a lower one refuses new connections and closes none', () => {
    const b = newInboundCount(2);
    const w = new InboundCount(b, 0);
    expect(w.tryOpen() && w.tryOpen()).toBe(true);
    setInboundLimit(b, 1);
    expect(w.tryOpen()).toBe(false);
    expect(inboundState(b).open).toBe(2);
    w.close();
    expect(w.tryOpen()).toBe(false);
    w.close();
    expect(w.tryOpen()).toBe(true);
    setInboundLimit(b, 0);
    expect(w.tryOpen()).toBe(false);
    setInboundLimit(b, 5);
    expect(w.tryOpen()).toBe(true);
  });

  it('gives back a dead worker\'s places and only its own', () => {
    const b = newInboundCount(4);
    const w0 = new InboundCount(b, 0);
    const w1 = new InboundCount(b, 1);
    w0.tryOpen();
    w1.tryOpen();
    w1.tryOpen();
    w1.tryOpen();
    expect(w0.tryOpen()).toBe(false);
    resetInboundSlot(b, 1);
    expect(inboundState(b).open).toBe(1);
    const again = new InboundCount(b, 1);
    expect(again.tryOpen()).toBe(true);
    resetInboundSlot(b, 1);
    resetInboundSlot(b, 7);
    resetInboundSlot(b, -1);
    expect(inboundState(b).open).toBe(1);
  });
});
