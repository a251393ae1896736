// The spool's compact index (native/spool_index.cc) through the facade: ids past the parsed form
// (a segment number beyond 32 bits goes to the fallback map), node ids that change across opens,
// slots freed by reclaim and reused by later messages (with copy-forward and journal compaction
// in between), and look-ups of ids that are not there. Test process; real files in temp dirs.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Spool, type SpoolOptions } from '../../src/spool/index.js';
import { waitFor } from '../helpers/wait.js';
import { SpoolFixture, commitMessage, segmentFiles, distSpool, root, tempDir, wireBody } from '../unit/spool/helpers.js';

const fx = new SpoolFixture('spool-index');
const dir = (): string => fx.dir();
const openSpool = (opts: Partial<SpoolOptions> & { directory: string }): Spool => fx.openSpool(opts);
const close = (s: Spool): Promise<void> => fx.close(s);
const commit = (s: Spool, body: Buffer, envelope: string): Promise<string> => commitMessage(s, body, envelope);
const until = async (cond: () => boolean, ms = 10_000): Promise<void> => {
  await waitFor('the condition', cond, { timeoutMs: ms, intervalMs: 10 });
};
function expectMissing(s: Spool, id: string): void {
  expect(() => s.read(id)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
}

beforeAll(() => fx.ensureBuilt());
afterEach(() => fx.cleanup());

describe('spool index', () => {
  it('keeps ids whose segment number passes 32 bits (the fallback map) like any other, across done-marks, states, compaction and reopen', async () => {
    const d = dir();
    fs.writeFileSync(path.join(d, 'next-segment'), `${0xffffffff}\n`);
    let s = openSpool({ directory: d, segmentSize: 64 * 1024, preallocate: 'none', journalLimit: 4096 });
    const bodies = new Map<string, Buffer>();
    for (let i = 0; i < 40; i++) {
      const b = wireBody(4000, i + 1);
      bodies.set(await commit(s, b, JSON.stringify({ i })), b);
    }
    const ids = [...bodies.keys()];
    expect(ids[0]).toBe('test-node-ffffffff-000001');
    const wide = ids.filter((id) => id.includes('-100000000-'));
    expect(wide.length).toBeGreaterThan(5);
    for (const id of ids) expect(s.read(id).equals(bodies.get(id)!)).toBe(true);
    // The same id with upper-case hex, or with a segment number written wider, is another id.
    expectMissing(s, ids[0]!.toUpperCase());
    expectMissing(s, ids[0]!.replace('-ffffffff-', '-0ffffffff-'));
    expectMissing(s, wide[0]!.replace('-100000000-', '-0100000000-'));
    expectMissing(s, 'other-node-ffffffff-000001');

    const done = [ids[1]!, wide[0]!, wide[1]!];
    await s.markDone(done);
    for (let n = 0; n < 60; n++) await s.update(wide[2 + (n % 3)]!, Buffer.from(`attempt ${n}`));
    await s.update(ids[2]!, Buffer.from('narrow'));
    await expect(s.update(wide[0]!, Buffer.from('x'))).rejects.toMatchObject({ code: 'ENOENT' });
    for (const id of done) expectMissing(s, id);
    await close(s);

    s = openSpool({ directory: d });
    const rec = s.recover();
    expect(rec.map((r) => r.id)).toEqual(ids.filter((id) => !done.includes(id)));
    const state = new Map(rec.map((r) => [r.id, r.state?.toString() ?? null]));
    expect(state.get(wide[2]!)).toBe('attempt 57');
    expect(state.get(wide[3]!)).toBe('attempt 58');
    expect(state.get(wide[4]!)).toBe('attempt 59');
    expect(state.get(ids[2]!)).toBe('narrow');
    expect(state.get(ids[3]!)).toBe(null);
    for (const r of rec) {
      expect(s.read(r.id).equals(bodies.get(r.id)!)).toBe(true);
      expect(JSON.parse(r.envelope.toString())).toEqual({ i: ids.indexOf(r.id) });
    }
    for (const id of done) expectMissing(s, id);
    expect(s.stats().messages).toBe(40 - done.length);
  });

  it('reuses the slots of reclaimed messages without mixing them up, through copy-forward and node-id changes', async () => {
    const d = dir();
    let s = openSpool({ directory: d, nodeId: 'alpha', segmentSize: 64 * 1024, preallocate: 'none', copyForwardAfterMs: 200 });
    const bodies = new Map<string, Buffer>();
    let k = 0;
    const add = async (sp: Spool): Promise<string> => {
      const b = wireBody(3000, ++k);
      const id = await commit(sp, b, JSON.stringify({ k }));
      bodies.set(id, b);
      return id;
    };
    const first: string[] = [];
    for (let i = 0; i < 30; i++) first.push(await add(s));
    const keep = first[0]!; // long-lived: copied forward out of segment 1
    await s.update(keep, Buffer.from('deferred'));
    const seg1 = first.filter((id) => id.includes('-00000001-'));
    await s.markDone(seg1.filter((id) => id !== keep));
    await until(() => !segmentFiles(d).includes('seg-0000000000000001.spool'));
    expect(s.stats().copiedForward).toBeGreaterThanOrEqual(1);
    // Every slot of segment 1 but keep's was freed; new messages take them.
    const second: string[] = [];
    for (let i = 0; i < 30; i++) second.push(await add(s));
    for (const id of seg1.filter((x) => x !== keep)) expectMissing(s, id);
    for (const id of [keep, ...second]) expect(s.read(id).equals(bodies.get(id)!)).toBe(true);
    await close(s);

    s = openSpool({ directory: d, nodeId: 'beta', segmentSize: 64 * 1024, preallocate: 'none', copyForwardAfterMs: 0 });
    const third: string[] = [];
    for (let i = 0; i < 10; i++) third.push(await add(s));
    expect(third[0]!.startsWith('beta-')).toBe(true);
    const live = [...first.filter((id) => !seg1.includes(id)), keep, ...second, ...third];
    expect(new Set(s.live().map((r) => r.id))).toEqual(new Set(live));
    const rec = new Map(s.live().map((r) => [r.id, r]));
    expect(rec.get(keep)!.state?.toString()).toBe('deferred');
    for (const id of live) {
      expect(s.read(id).equals(bodies.get(id)!)).toBe(true);
      expect(JSON.parse(rec.get(id)!.envelope.toString())).toEqual({ k: [...bodies.keys()].indexOf(id) + 1 });
    }
    // Done everything but one per node id: all their segments but the last ones go away.
    await s.markDone(live.filter((id) => id !== keep && id !== third[9]));
    expect(s.stats().messages).toBe(2);
    await close(s);
    s = openSpool({ directory: d, nodeId: 'gamma' });
    expect(s.recover().map((r) => r.id).sort()).toEqual([keep, third[9]!].sort());
    expect(s.read(keep).equals(bodies.get(keep)!)).toBe(true);
    expectMissing(s, second[0]!);
  });
});
