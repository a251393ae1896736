// The stall watch and the quorum-freshness check the DuraVIP manager asks (src/cluster/corosync-watch.ts):
// one ping out at a time, a stall only past the limit (twice If_Check_Interval, at least 2 s) of an
// unanswered ping or a waiting send, and quorum news trusted only when it names the current ring.
// Pure over a fake group; the clock is vitest's fake system time.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CorosyncWatch } from '../../../src/cluster/corosync-watch.js';
import type { CorosyncGroup } from '../../../src/native/index.js';

function fakeGroup(o: { closed?: boolean; stalledMs?: number; quorumType?: number; quorumMembers?: number[] } = {}): CorosyncGroup {
  return {
    closed: o.closed ?? false,
    sendState: () => ({ stalledMs: o.stalledMs ?? 0 }),
    quorumType: o.quorumType ?? 1,
    quorum: { quorate: true, members: o.quorumMembers ?? [] },
  } as unknown as CorosyncGroup;
}

describe('CorosyncWatch', () => {
  beforeEach(() => { vi.useFakeTimers(); vi.setSystemTime(1_000_000); });
  afterEach(() => { vi.useRealTimers(); });

  it('sends one ping at a time, stalls only past the limit, and recovers when it comes back', () => {
    const w = new CorosyncWatch(500); // limit: max(2000, 1000) = 2000 ms
    const g = fakeGroup();
    expect(w.pingDue(g)).toBe(1_000_000);
    vi.setSystemTime(1_000_100);
    expect(w.pingDue(g)).toBeNull(); // the first is still out
    vi.setSystemTime(1_002_000);
    expect(w.update(g)).toBeNull(); // waited exactly the limit: not yet
    expect(w.stalled).toBe(false);
    vi.setSystemTime(1_002_001);
    expect(w.update(g)).toBe(2001);
    expect(w.stalled).toBe(true);
    expect(w.update(g)).toBeNull(); // no change, no news
    w.pingAnswered();
    expect(w.update(g)).toBe(0);
    expect(w.stalled).toBe(false);
    expect(w.pingDue(g)).toBe(1_002_001);
  });

  it('counts a waiting send, ignores a closed or missing group, and reset forgets everything', () => {
    const w = new CorosyncWatch(3000); // limit 6000 ms
    expect(w.update(fakeGroup({ stalledMs: 6000 }))).toBeNull();
    expect(w.update(fakeGroup({ stalledMs: 6001 }))).toBe(6001);
    expect(w.pingDue(null)).toBeNull();
    expect(w.pingDue(fakeGroup({ closed: true }))).toBeNull();
    expect(w.update(fakeGroup({ closed: true, stalledMs: 9999 }))).toBe(0);
    expect(w.stalled).toBe(false);
    w.pingDue(fakeGroup());
    vi.setSystemTime(1_010_000);
    expect(w.update(fakeGroup())).toBe(10_000);
    w.reset();
    expect(w.stalled).toBe(false);
    expect(w.pingDue(fakeGroup())).toBe(1_010_000); // the old ping is not waited for
  });

  it('trusts quorum news only when it names the current ring', () => {
    const w = new CorosyncWatch(1000);
    expect(w.quorumFresh(null)).toBe(false);
    expect(w.quorumFresh(fakeGroup({ quorumMembers: [1] }))).toBe(true); // no ring seen yet
    w.ring([3, 1, 2]);
    expect(w.quorumFresh(fakeGroup({ quorumMembers: [1, 2, 3] }))).toBe(true);
    expect(w.quorumFresh(fakeGroup({ quorumMembers: [1] }))).toBe(false); // the old ring's news
    expect(w.quorumFresh(fakeGroup({ quorumType: 0, quorumMembers: [1] }))).toBe(true); // no quorum provider
    w.reset();
    expect(w.quorumFresh(fakeGroup({ quorumMembers: [1] }))).toBe(true);
  });
});
