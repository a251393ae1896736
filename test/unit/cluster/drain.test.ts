// `cluster drain`: the election with drained members (owns nothing, its addresses go to the others,
// undrain gives them back per preference), the drain message and the drained field of an announce
// (validated peer input), and the persisted drain state (drain.json, written atomically).
// Pure except the persistence cases, which use a temporary directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { checkDrain, drainTarget, loadDrain, NodeDrain, saveDrain } from '../../../src/cluster/drain.js';
import { elect, isDrained, ownerOf, planFor, type Allocation, type ElectionInput } from '../../../src/cluster/election.js';
import { decodeMessage, encodeMessage, type ClusterMessage } from '../../../src/cluster/messages.js';
import { createMemberState, decodeMemberState, encodeMemberState, type DuravipEntry, type MemberState } from '../../../src/cluster/state.js';

const T0 = 1_000_000;
const MATURE = 10_000;
const A = (i: number): string => `198.51.100.${10 + i}`;
const NODES = ['n1', 'n2', 'n3'];

/** Six binding addresses on every node, two preferred by each node. */
function six(): DuravipEntry[] {
  return [1, 2, 3, 4, 5, 6].map((i) => ({ address: A(i), services: ['binding'], binding: `b${i}`, preference: `n${Math.ceil(i / 2)}`, follow: null }));
}
function member(node: string, o: { holds?: string[]; seq?: number; drained?: boolean } = {}): MemberState {
  return createMemberState({
    node, nodeid: NODES.indexOf(node) + 1, seq: o.seq ?? 1, quorate: true, drained: o.drained ?? false, memberSince: 0,
    configSince: 0, addresses: six(), holds: o.holds ?? [],
  });
}
function run(members: MemberState[], o: Partial<ElectionInput> = {}): Allocation {
  return elect({ members, quorate: true, previous: null, now: T0 + MATURE, viewStableSince: T0, viewMatureMs: MATURE, ...o });
}
/** Every member re-announces what the allocation gave it (seq + 1), as after a handover. */
function applied(ms: MemberState[], a: Allocation, drained: ReadonlySet<string> = new Set()): MemberState[] {
  return ms.map((m) => createMemberState({ ...m, seq: m.seq + 1, holds: [...planFor(a, m.node)], drained: drained.has(m.node) }));
}

describe('election with drained members', () => {
  const settled = (): { ms: MemberState[]; a: Allocation } => {
    const ms0 = NODES.map((n) => member(n));
    const a = run(ms0);
    expect(planFor(a, 'n2')).toEqual([A(3), A(4)]);
    return { ms: applied(ms0, a), a };
  };

  it('a drained member owns nothing: its addresses go to the others, theirs stay', () => {
    const { ms, a } = settled();
    // The agreed drain message (drains) takes effect before n2 has announced drained.
    const d = run(ms, { previous: a, drains: new Map([['n2', true]]) });
    expect(planFor(d, 'n2')).toEqual([]);
    expect(planFor(d, 'n1')).toEqual(expect.arrayContaining([A(1), A(2)]));
    expect(planFor(d, 'n3')).toEqual(expect.arrayContaining([A(5), A(6)]));
    expect(ownerOf(d, A(3))).not.toBeNull();
    expect(ownerOf(d, A(4))).not.toBeNull();
    // Spread: one each (orphans go to the least loaded).
    expect(planFor(d, 'n1').length + planFor(d, 'n3').length).toBe(6);
    expect(Math.abs(planFor(d, 'n1').length - planFor(d, 'n3').length)).toBe(0);
    const x3 = d.addresses.find((x) => x.address === A(3))!;
    expect(x3.eligible).not.toContain('n2');
    // Its announce saying drained does the same without the message (a member that joins later).
    const later = run(applied(ms, d, new Set(['n2'])));
    expect(planFor(later, 'n2')).toEqual([]);
    expect(later.addresses.every((x) => x.owner !== null)).toBe(true);
  });

  it('a move to a drained member is refused with the reason', () => {
    const { ms, a } = settled();
    const d = run(ms, { previous: a, drains: new Map([['n2', true]]), manualMoves: new Map([[A(1), 'n2']]) });
    expect(ownerOf(d, A(1))).toBe('n1');
    expect(d.problems.join('\n')).toMatch(/n2 cannot own it \(it is drained\)/);
  });

  it('undrain: the member takes its preferred addresses back', () => {
    const { ms, a } = settled();
    const d = run(ms, { previous: a, drains: new Map([['n2', true]]) });
    const drainedMs = applied(ms, d, new Set(['n2']));
    const d2 = run(drainedMs, { previous: d });
    expect(planFor(d2, 'n2')).toEqual([]);
    // The agreed undrain overrides its announce at once; its preferred addresses come back (mature view).
    const u = run(drainedMs, { previous: d2, drains: new Map([['n2', false]]) });
    const after = run(applied(drainedMs, u), { previous: u });
    expect(planFor(after, 'n2')).toEqual([A(3), A(4)]);
    expect(planFor(after, 'n1')).toEqual([A(1), A(2)]);
    expect(planFor(after, 'n3')).toEqual([A(5), A(6)]);
  });

  it('the agreed message overrides the announce both ways', () => {
    const m = member('n2', { drained: true });
    expect(isDrained(m)).toBe(true);
    expect(isDrained(m, new Map([['n2', false]]))).toBe(false);
    expect(isDrained(member('n2'), new Map([['n2', true]]))).toBe(true);
    expect(isDrained(member('n2'), new Map([['n1', true]]))).toBe(false);
  });

  it('every member computes the same allocation whatever the order of the announces', () => {
    const { ms, a } = settled();
    const drains = new Map([['n3', true]]);
    const one = run(ms, { previous: a, drains });
    const other = run([...ms].reverse(), { previous: a, drains });
    expect(one.addresses).toEqual(other.addresses);
    expect(planFor(one, 'n3')).toEqual([]);
  });
});

describe('where a drained node sends the mail of its own bindings, and the console check', () => {
  const withMmove = (node: string, o: { drained?: boolean; quorate?: boolean } = {}): MemberState =>
    createMemberState({ ...member(node, { drained: o.drained ?? false }), quorate: o.quorate ?? true, mmove: { host: `192.0.2.${NODES.indexOf(node) + 1}`, port: 4802 } });

  it('the first member in name order that may own addresses and has a #mmove address, never itself', () => {
    const ms = [withMmove('n3'), withMmove('n2'), withMmove('n1')];
    expect(drainTarget(ms, new Map(), 'n2')).toEqual({ to: 'node', node: 'n1' });
    expect(drainTarget(ms, new Map(), 'n1')).toEqual({ to: 'node', node: 'n2' });
    // n1 drained (agreed message), or not quorate, or without #mmove: the next one.
    expect(drainTarget(ms, new Map([['n1', true]]), 'n2')).toEqual({ to: 'node', node: 'n3' });
    expect(drainTarget([withMmove('n1', { quorate: false }), withMmove('n2'), withMmove('n3')], new Map(), 'n2')).toEqual({ to: 'node', node: 'n3' });
    expect(drainTarget([member('n1'), withMmove('n2'), withMmove('n3')], new Map(), 'n2')).toEqual({ to: 'node', node: 'n3' });
    // Nobody left: the mail waits.
    expect(drainTarget([withMmove('n2'), withMmove('n3', { drained: true })], new Map(), 'n2')).toEqual({ to: 'wait' });
  });

  it('refuses a node outside the view and the last member not drained; a repeat sends nothing', () => {
    const ms = NODES.map((n) => member(n));
    expect(checkDrain(ms, new Map(), 'n9', true).refused).toMatch(/n9 is not a member of this view \(members: n1, n2, n3\)/);
    expect(checkDrain(ms, new Map(), 'n2', true)).toMatchObject({ send: true, answer: expect.stringMatching(/^draining n2/) });
    expect(checkDrain(ms, new Map([['n2', true]]), 'n2', true)).toEqual({ send: false, answer: 'n2 is already drained\n' });
    expect(checkDrain(ms, new Map(), 'n2', false)).toEqual({ send: false, answer: 'n2 is not drained\n' });
    expect(checkDrain(ms, new Map([['n1', true], ['n3', true]]), 'n2', true).refused).toMatch(/last member that is not drained/);
    expect(checkDrain(ms, new Map([['n2', true]]), 'n2', false)).toMatchObject({ send: true, answer: 'undraining n2\n' });
  });
});

describe('drain message and announce', () => {
  it('round-trips drain and undrain', () => {
    const msgs: ClusterMessage[] = [
      { type: 'drain', now: 7, node: 'n2', drained: true },
      { type: 'drain', now: 8, node: 'mta-3.example', drained: false },
    ];
    for (const m of msgs) expect(decodeMessage(encodeMessage(m))).toEqual({ ok: true, message: m });
  });

  it('refuses a malformed drain with a reason', () => {
    for (const input of [
      '{"t":"D","now":1,"node":"n2"}\n',
      '{"t":"D","now":1,"node":"n2","drained":"yes"}\n',
      '{"t":"D","now":1,"node":"bad name","drained":true}\n',
      '{"t":"D","now":1,"drained":true}\n',
    ]) {
      const d = decodeMessage(Buffer.from(input));
      expect(d.ok, input).toBe(false);
      if (!d.ok) expect(d.error).toMatch(/drain needs a node name and drained true or false/);
    }
  });

  it('an announce carries drained; one without the field is not drained; a non-boolean is refused', () => {
    const s = member('n2', { drained: true });
    expect(decodeMemberState(encodeMemberState(s))).toEqual({ ok: true, state: s });
    const plain = member('n2');
    const wire = JSON.parse(encodeMemberState(plain).toString()) as Record<string, unknown>;
    expect('drained' in wire).toBe(false); // what members that never drain understood before
    expect(decodeMemberState(encodeMemberState(plain))).toMatchObject({ ok: true, state: { drained: false } });
    expect(decodeMemberState(Buffer.from(JSON.stringify({ ...wire, drained: 1 })))).toMatchObject({ ok: false, error: /drained is not a boolean/ });
  });
});

describe('drain persistence', () => {
  const logger = pino({ level: 'silent' });
  const dirs: string[] = [];
  const tmp = (): string => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vipmta-drain-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('not drained without a file; drained after a save, until undrained', () => {
    const file = path.join(tmp(), 'spool', 'drain.json');
    expect(loadDrain(file, logger)).toEqual({ drained: false, since: 0 });
    expect(saveDrain(file, { drained: true, since: 1234 }, logger)).toBe(true);
    expect(loadDrain(file, logger)).toEqual({ drained: true, since: 1234 });
    expect(fs.existsSync(`${file}.tmp`)).toBe(false); // written whole, then renamed
    expect(saveDrain(file, { drained: false, since: 0 }, logger)).toBe(true);
    expect(loadDrain(file, logger)).toEqual({ drained: false, since: 0 });
  });

  it('an unreadable file reads as drained (the node must not take back what it gave up)', () => {
    const file = path.join(tmp(), 'drain.json');
    fs.writeFileSync(file, '{"version":1,"drai');
    expect(loadDrain(file, logger).drained).toBe(true);
    fs.writeFileSync(file, '{"version":2,"drained":false}');
    expect(loadDrain(file, logger).drained).toBe(true);
  });

  it('NodeDrain: persisted on change only, read back by the next run', () => {
    const file = path.join(tmp(), 'drain.json');
    const a = new NodeDrain(file, logger);
    expect(a.snapshot()).toEqual({ drained: false, drainedSince: 0, queueLeft: null });
    expect(a.set(false)).toBe(false);
    expect(fs.existsSync(file)).toBe(false);
    a.track(() => 12);
    expect(a.set(true)).toBe(true);
    expect(a.snapshot()).toMatchObject({ drained: true, queueLeft: 12 });
    expect(new NodeDrain(file, logger).drained).toBe(true); // a restart
    expect(a.set(true)).toBe(false);
    expect(a.set(false)).toBe(true);
    expect(new NodeDrain(file, logger).drained).toBe(false);
  });

  it('a failed write says so and leaves the old state', () => {
    const dir = tmp();
    const file = path.join(dir, 'drain.json');
    saveDrain(file, { drained: true, since: 1 }, logger);
    fs.mkdirSync(`${file}.tmp`); // the temporary name is taken: open fails
    expect(saveDrain(file, { drained: false, since: 0 }, logger)).toBe(false);
    expect(loadDrain(file, logger).drained).toBe(true);
  });
});

describe('drain in the console', () => {
  it('membership has a DRAINED column and this node\'s progress; duravip show marks the drained node', async () => {
    const { formatDuravipShow, formatMembership } = await import('../../../src/cluster/console.js');
    const ms = NODES.map((n) => member(n, { drained: n === 'n2' }));
    const allocation = run(ms);
    const snap = {
      node: 'n2', nodeId: 2, viewId: 4, quorate: true, corosync: 'connected', viewArrivedAt: 0, viewComplete: true, allocation,
      drained: true, drainedSince: T0, queueLeft: 17, drains: new Map(),
      members: ms.map((m) => ({ nodeId: m.nodeid, pid: 100 + m.nodeid, state: m })),
    } as unknown as Parameters<typeof formatMembership>[0];
    const text = formatMembership(snap);
    expect(text).toMatch(/Drained/);
    expect(text).toMatch(/\bn2\b.*\bDRAINED\b/);
    expect(text).toMatch(/\bn1\b[^\n]*\bno\b/);
    expect(text).toMatch(/this node is DRAINED for .*: 17 queued part\(s\) left to move/);
    expect(formatMembership({ ...snap, queueLeft: 0 })).toMatch(/no mail left here: it may be stopped/);
    const show = formatDuravipShow(snap, T0 + 20_000);
    expect(show).toMatch(/^drained \(own nothing\): n2$/m);
    expect(show).toMatch(/^ {4}n2 \((preferred, )?not eligible, drained\)$/m);
  });
});
