// The cluster console's text (src/cluster/console.ts) from a real election result: one line per
// address with owner and tags, one line per configuring node with "*" on the owner. Pure.
import { describe, expect, it } from 'vitest';
import { formatAge, formatDuravipShow, formatMembership } from '../../../src/cluster/console.js';
import { elect } from '../../../src/cluster/election.js';
import type { ClusterSnapshot } from '../../../src/cluster/manager.js';
import { buildQueueSummary } from '../../../src/cluster/queue-summary.js';
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

describe('cluster membership with the members\' queues', () => {
  const state = (node: string, nodeid: number, drained: boolean) => ({
    ...createMemberState({ node, nodeid, seq: 1, quorate: true, memberSince: 0, configSince: 0, addresses: [], holds: [] }), drained,
  });
  const snap = {
    node: 'n1', nodeId: 1, viewId: 3, quorate: true, corosync: 'connected', drained: false, drains: new Map(),
    members: [state('n1', 1, false), state('n2', 2, true), state('n3', 3, true)].map((m) => ({ nodeId: m.nodeid, pid: 100 + m.nodeid, state: m })),
  } as unknown as ClusterSnapshot;
  const q = (hold: number, deferred: number) => [{ bindingGroup: 'default', binding: 'b', active: 0, deferred, hold }];

  it('has each member\'s queued parts and, for another drained member, what it has left to move', () => {
    const text = formatMembership(snap, [buildQueueSummary('n1', 0, false, q(1, 2)), buildQueueSummary('n2', 9_000, true, q(400, 12))], 10_000);
    const lines = text.split('\n');
    const cols = (node: string) => lines.find((l) => l.includes(` ${node} `))!.trim().split(/\s+/);
    expect(lines[1]).toMatch(/Drained\s+Queued\s+Load/);
    expect(cols('n1')).toEqual(['*', '1', '101', 'n1', 'yes', 'no', 'no', '3', '0']);
    expect(cols('n2').slice(2, 7)).toEqual(['n2', 'yes', 'no', 'DRAINED', '412']);
    expect(cols('n3').slice(2, 7)).toEqual(['n3', 'yes', 'no', 'DRAINED', '-']);
    expect(text).toMatch(/^n2 is DRAINED: 412 queued part\(s\) left to move \(as of 1\.0s ago\)$/m);
    expect(text).toMatch(/^n3 is DRAINED: its queue is not known here yet$/m);
    expect(formatMembership(snap, [buildQueueSummary('n2', 10_000, true, [])], 10_000)).toMatch(/^n2 is DRAINED: no mail left there: it may be stopped/m);
    // Without summaries (a node without the console group) the column says "-".
    expect(formatMembership(snap)).not.toMatch(/left to move/);
  });
});
