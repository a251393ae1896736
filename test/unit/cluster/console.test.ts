// The cluster console's text (src/cluster/console.ts) from a real election result: one line per
// address with owner and tags, one line per configuring node with "*" on the owner. Pure.
import { describe, expect, it } from 'vitest';
import { formatAge, formatDuravipShow } from '../../../src/cluster/console.js';
import { elect } from '../../../src/cluster/election.js';
import type { ClusterSnapshot } from '../../../src/cluster/manager.js';
import { createMemberState, type DuravipEntry } from '../../../src/cluster/state.js';

const entry = (address: string, binding: string, preference: string | null = null): DuravipEntry =>
  ({ address, services: ['binding'], binding, preference, follow: null });

describe('cluster console text', () => {
  it('formats ages for people', () => {
    expect(formatAge(1234)).toBe('1.2s');
    expect(formatAge(125_000)).toBe('2m05s');
    expect(formatAge(7_380_000)).toBe('2h03m');
  });

  it('shows owner, tags and a line per node with * on the owner', () => {
    const members = [
      createMemberState({ node: 'n1', nodeid: 1, seq: 1, quorate: true, memberSince: 0, configSince: 0, addresses: [entry('198.51.100.1', 'a', 'n1'), entry('198.51.100.2', 'b')], holds: [] }),
      createMemberState({ node: 'n2', nodeid: 2, seq: 1, quorate: true, memberSince: 0, configSince: 0, addresses: [entry('198.51.100.1', 'a', 'n2'), entry('198.51.100.2', 'c')], holds: [] }),
    ];
    const allocation = elect({ members, quorate: true, previous: null, now: 1000, viewStableSince: 1000, viewMatureMs: 5000 });
    const snap = { allocation, viewArrivedAt: 0, viewId: 1, viewComplete: true, corosync: 'connected', quorate: true } as unknown as ClusterSnapshot;
    const text = formatDuravipShow(snap, 10_000);
    expect(text).toMatch(/^view stable for 10\.0s \(2 member\(s\), quorate, not yet mature\); configuration stable for 10\.0s \(members differ\)$/m);
    expect(text).toMatch(/^198\.51\.100\.1 {2}binding a \(binding\) {2}owner n1 {2}owned, safe, in conflict$/m);
    expect(text).toMatch(/^ {2}\* n1\n {4}n2\n/m);
    expect(text).toMatch(/^198\.51\.100\.2 {2}several bindings \(binding\) {2}owner - {2}BROKEN, safe$/m);
  });
});
