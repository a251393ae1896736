// The spool facade against real files in temp directories: ids, group commit, worker threads
// (including one terminated mid-commit), reclaim, copy-forward, journal compaction, recovery of
// torn tails and corrupt records, locking and close. Worker code imports dist/ (npm test builds it).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Spool, attachSpool, type SpoolOptions } from '../../src/spool/index.js';
import { waitFor } from '../helpers/wait.js';
import { SpoolFixture, commitMessage, segmentFiles, distSpool, distSpoolUrl, root, sha256, tempDir, wireBody } from '../unit/spool/helpers.js';

const fx = new SpoolFixture('spool');
const dir = (): string => fx.dir();
const openSpool = (opts: Partial<SpoolOptions> & { directory: string }): Spool => fx.openSpool(opts);
const commit = commitMessage;
const until = async (cond: () => boolean, ms = 10_000): Promise<void> => {
  await waitFor('the condition', cond, { timeoutMs: ms, intervalMs: 10 });
};

beforeAll(() => fx.ensureBuilt());
afterEach(() => fx.cleanup());

describe('spool', () => {
  it('lists live messages, including those committed since open, while recover() keeps to the open-time set', async () => {
    const d = dir();
    const first = openSpool({ directory: d });
    const old = await commit(first, wireBody(100, 1));
    await fx.close(first);
    const s = openSpool({ directory: d });
    const fresh = await commit(s, wireBody(100, 2), '{"from":"late@b"}');
    expect(s.recover().map((r) => r.id)).toEqual([old]);
    const live = s.live();
    expect(live.map((r) => r.id)).toEqual([old, fresh]);
    expect(live[1]!.envelope.toString()).toBe('{"from":"late@b"}');
    await s.markDone([old]);
    expect(s.live().map((r) => r.id)).toEqual([fresh]);
  });

  it('hands recovery out in columnar chunks, oldest first, states only where saved, skipping a message done after the list was taken', async () => {
    const d = dir();
    const s = openSpool({ directory: d });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await commit(s, wireBody(50 + i, i), `{"n":${i}}`));
    await s.update(ids[2]!, Buffer.from('state two'));
    await s.update(ids[5]!, Buffer.from('state five'));
    const it = s.liveChunks(3);
    const first = it.next().value!;
    expect(first.ids).toEqual(ids.slice(0, 3));
    expect([...first.envOffsets]).toEqual([0, 7, 14, 21]);
    expect(first.envelopes.toString()).toBe('{"n":0}{"n":1}{"n":2}');
    expect([...first.sizes]).toEqual([50, 51, 52].map((n) => wireBody(n, 0).length));
    expect([...first.stateIndex]).toEqual([2]);
    expect(first.states.subarray(first.stateOffsets[0], first.stateOffsets[1]).toString()).toBe('state two');
    // Marked done after the list was taken: the next chunk goes without it.
    await s.markDone([ids[3]!]);
    const second = it.next().value!;
    expect(second.ids).toEqual([ids[4], ids[5]]);
    expect([...second.stateIndex]).toEqual([1]);
    expect(second.states.toString()).toBe('state five');
    expect(second.envelopes.toString()).toBe('{"n":4}{"n":5}');
    const third = it.next().value!;
    expect(third.ids).toEqual([ids[6]]);
    expect(third.stateIndex.length).toBe(0);
    expect(it.next().done).toBe(true);
    // The per-message form: copies, in the same order.
    const live = s.live();
    expect(live.map((r) => r.id)).toEqual([ids[0], ids[1], ids[2], ids[4], ids[5], ids[6]]);
    expect(live.map((r) => r.state?.toString() ?? null)).toEqual([null, null, 'state two', null, 'state five', null]);
  });

  it('gives every message an id that never repeats, across reopen and after every segment was reclaimed', async () => {
    const d = dir();
    const ids = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const s = openSpool({ directory: d, nodeId: 'mx1.example.com' });
      const got = await Promise.all(Array.from({ length: 50 }, (_, i) => commit(s, wireBody(100, i + 1))));
      for (const id of got) {
        expect(id).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
        expect(id.startsWith('mx1-example-com-')).toBe(true);
        ids.add(id);
      }
      await s.markDone(got);
      await s.close();
    }
    expect(ids.size).toBe(150);
    expect(segmentFiles(d).length).toBeLessThanOrEqual(1);
  });

  // How far natural batching goes (no Commit_Delay) depends on load: bench/spool.bench.ts measures
  // it (syncs and average batch per run). Here Commit_Delay makes the batch deterministic.
  it('holds a batch open for Commit_Delay: commits submitted meanwhile share one batch and one fdatasync, durably', async () => {
    const d = dir();
    const s = openSpool({ directory: d, commitDelayMs: 10_000, copyForwardAfterMs: 0 });
    const bodies = Array.from({ length: 400 }, (_, i) => wireBody(1000 + i, i + 1));
    // All 400 are submitted in this one synchronous loop, while the commit thread waits out the
    // delay of the first; close() ends the delay at once and drains them all in that same batch.
    const pending = bodies.map((b, i) => {
      const m = s.writer().begin();
      m.append(b);
      return m.commit(Buffer.from(JSON.stringify({ i })));
    });
    const closed = s.close();
    const ids = (await Promise.all(pending)).map((r) => r.id);
    await closed;
    const st = s.stats();
    expect(st.commits).toBe(400);
    expect(st.batches).toBe(1);
    expect(st.syncs).toBe(1);
    expect(st.averageBatch).toBe(400);
    // Every commit is in the histogram, and the sum agrees with the buckets it was counted in.
    const { boundsUs, counts, sumUs } = st.latency;
    expect(counts.reduce((x, y) => x + y, 0)).toBe(400);
    const low = counts.reduce((acc, c, i) => acc + c * (i === 0 ? 0 : boundsUs[i - 1]!), 0);
    const high = counts.reduce((acc, c, i) => acc + (c === 0 ? 0 : c * (boundsUs[i] ?? Infinity)), 0);
    expect(sumUs).toBeGreaterThan(0);
    expect(sumUs).toBeGreaterThanOrEqual(low);
    expect(sumUs).toBeLessThanOrEqual(high);
    // Acknowledged means on disk: all of them come back after a reopen, bodies and envelopes intact.
    const again = openSpool({ directory: d });
    const rec = again.recover();
    expect(rec.map((r) => r.id).sort()).toEqual([...ids].sort());
    for (const r of rec) {
      const { i } = JSON.parse(r.envelope.toString()) as { i: number };
      expect(r.id).toBe(ids[i]);
      expect(again.read(r.id).equals(bodies[i]!)).toBe(true);
    }
  });

  it('accepts commits from several worker threads at once', async () => {
    const d = dir();
    const s = openSpool({ directory: d });
    const code = `
      import { attachSpool } from ${JSON.stringify(distSpoolUrl)};
      import { parentPort, workerData } from 'node:worker_threads';
      import { createHash } from 'node:crypto';
      const w = attachSpool(workerData.dir);
      const out = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
        const body = Buffer.from('worker ' + workerData.n + ' message ' + i + '\\r\\n'.repeat(1 + (i % 5)));
        const m = w.begin(Buffer.from(JSON.stringify({ n: workerData.n, i })));
        m.append(body.subarray(0, 5));
        m.append(body.subarray(5));
        const r = await m.commit();
        return [r.id, createHash('sha256').update(body).digest('hex')];
      }));
      parentPort.postMessage(out);`;
    const results = await Promise.all(
      [0, 1, 2, 3].map(
        (n) =>
          new Promise<[string, string][]>((resolve, reject) => {
            const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: { dir: d, n } });
            w.once('message', (m: [string, string][]) => {
              resolve(m);
              void w.terminate();
            });
            w.once('error', reject);
          }),
      ),
    );
    const all = results.flat();
    expect(new Set(all.map(([id]) => id)).size).toBe(800);
    for (const [id, h] of all) expect(sha256(s.read(id))).toBe(h);
    const st = s.stats();
    expect(st.commits).toBe(800);
    // One fdatasync per batch (one segment, no journal entries), whatever the batching was.
    expect(st.syncs).toBe(st.batches);
    expect(st.batches).toBeLessThanOrEqual(800);
  });

  it('recovers every committed, not-done message after close, with its envelope and latest state', async () => {
    const d = dir();
    let s = openSpool({ directory: d });
    const bodies = Array.from({ length: 20 }, (_, i) => wireBody(50 + i * 300, i + 1));
    const ids: string[] = [];
    for (const [i, b] of bodies.entries()) ids.push(await commit(s, b, JSON.stringify({ i })));
    await s.markDone(ids.slice(0, 5));
    await s.update(ids[10]!, Buffer.from('attempt 1'));
    await s.update(ids[10]!, Buffer.from('attempt 2'));
    await expect(s.update(ids[0]!, Buffer.from('x'))).rejects.toMatchObject({ code: 'ENOENT' });
    await s.close();
    s = openSpool({ directory: d });
    const rec = s.recover();
    expect(rec.map((r) => r.id)).toEqual(ids.slice(5));
    for (const r of rec) {
      const i = ids.indexOf(r.id);
      expect(JSON.parse(r.envelope.toString())).toEqual({ i });
      expect(r.size).toBe(bodies[i]!.length);
      expect(s.read(r.id).equals(bodies[i]!)).toBe(true);
      expect(r.state?.toString() ?? null).toBe(i === 10 ? 'attempt 2' : null);
      expect(Math.abs(r.arrival - Date.now())).toBeLessThan(60_000);
    }
    expect(s.recoveryEvents).toEqual([]);
    expect(() => s.read(ids[0]!)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('reads a body into a caller buffer when it fits, and only reports the length when it does not', async () => {
    const s = openSpool({ directory: dir() });
    const body = wireBody(5000, 7);
    const id = await commit(s, body);
    const big = Buffer.alloc(8192, 0x21);
    expect(s.readInto(id, big)).toBe(body.length);
    expect(big.subarray(0, body.length).equals(body)).toBe(true);
    expect(big[body.length]).toBe(0x21); // nothing written past the body
    const small = Buffer.alloc(100, 0x21);
    expect(s.readInto(id, small)).toBe(body.length);
    expect(small.equals(Buffer.alloc(100, 0x21))).toBe(true);
    await s.markDone([id]);
    expect(() => s.readInto(id, big)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('reclaims a segment once all its messages are done', async () => {
    const d = dir();
    const s = openSpool({ directory: d, segmentSize: 64 * 1024, preallocate: 'none' });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await commit(s, wireBody(4000, i + 1)));
    const before = segmentFiles(d);
    expect(before.length).toBeGreaterThanOrEqual(3);
    const first = ids.filter((id) => id.includes('-00000001-'));
    expect(first.length).toBeGreaterThan(5);
    await s.markDone(first);
    expect(segmentFiles(d)).toEqual(before.slice(1));
    expect(s.stats().reclaimed).toBe(1);
    expect(s.stats().messages).toBe(40 - first.length);
  });

  it('copies long-lived messages forward, keeping ids, bytes, envelope and state', async () => {
    const d = dir();
    let s = openSpool({ directory: d, segmentSize: 64 * 1024, copyForwardAfterMs: 200 });
    const bodies = new Map<string, Buffer>();
    for (let i = 0; i < 30; i++) {
      const b = wireBody(3000, i + 1);
      bodies.set(await commit(s, b, JSON.stringify({ i })), b);
    }
    const ids = [...bodies.keys()];
    const keep = [ids[0]!, ids[3]!];
    await s.update(keep[1]!, Buffer.from('deferred'));
    await s.markDone(ids.filter((id) => !keep.includes(id) && id.includes('-00000001-')));
    expect(segmentFiles(d)[0]).toBe('seg-0000000000000001.spool');
    // Keep a fresh current segment so segment 1 is sealed, then wait for the copy.
    await until(() => !segmentFiles(d).includes('seg-0000000000000001.spool'));
    expect(s.stats().copiedForward).toBeGreaterThanOrEqual(2);
    for (const id of keep) expect(s.read(id).equals(bodies.get(id)!)).toBe(true);
    await s.close();
    s = openSpool({ directory: d, copyForwardAfterMs: 0 });
    const rec = new Map(s.recover().map((r) => [r.id, r]));
    expect(rec.size).toBe(30 - (ids.filter((id) => id.includes('-00000001-')).length - 2));
    for (const id of keep) {
      expect(s.read(id).equals(bodies.get(id)!)).toBe(true);
      expect(JSON.parse(rec.get(id)!.envelope.toString())).toEqual({ i: ids.indexOf(id) });
    }
    expect(rec.get(keep[1]!)!.state?.toString()).toBe('deferred');
  });

  it('works the same with every preallocation mode', async () => {
    for (const preallocate of ['zero', 'fallocate', 'none'] as const) {
      const d = dir();
      let s = openSpool({ directory: d, segmentSize: 64 * 1024, preallocate });
      const bodies = new Map<string, Buffer>();
      for (let i = 0; i < 40; i++) {
        const b = wireBody(4000, i + 1);
        bodies.set(await commit(s, b), b);
      }
      expect(s.stats().segments).toBeGreaterThanOrEqual(3);
      await s.close();
      s = openSpool({ directory: d });
      expect(s.recoveryEvents).toEqual([]);
      const rec = s.recover();
      expect(rec.map((r) => r.id)).toEqual([...bodies.keys()]);
      for (const r of rec) expect(s.read(r.id).equals(bodies.get(r.id)!)).toBe(true);
      expect(fs.readdirSync(d).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    }
  });

  it('compacts the journal and keeps done-marks and the latest state across it', async () => {
    const d = dir();
    let s = openSpool({ directory: d, journalLimit: 4096 });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await commit(s, wireBody(200, i + 1)));
    await s.markDone(ids.slice(0, 10));
    for (let n = 0; n < 200; n++) await s.update(ids[10 + (n % 10)]!, Buffer.from(`attempt ${n}`));
    const journals = fs.readdirSync(d).filter((f) => f.startsWith('journal-'));
    expect(journals).toHaveLength(1);
    expect(journals[0]).not.toBe('journal-0000000000000001.log');
    expect(fs.statSync(path.join(d, journals[0]!)).size).toBeLessThan(8192);
    await s.close();
    s = openSpool({ directory: d });
    const rec = s.recover();
    expect(rec.map((r) => r.id)).toEqual(ids.slice(10));
    for (const [k, r] of rec.entries()) expect(r.state?.toString()).toBe(`attempt ${190 + k}`);
  });

  it('cuts off a torn tail and keeps everything before it', async () => {
    const d = dir();
    let s = openSpool({ directory: d });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await commit(s, wireBody(1000, i + 1), '{}'));
    const last = s.bodyLocation(ids[4]!);
    fs.closeSync(last.fd);
    const end = last.offset + last.length + 2; // the envelope '{}' follows the body
    await s.close();
    // A partial copy of the first record, as if the next batch had been cut short.
    const seg = path.join(d, 'seg-0000000000000001.spool');
    const fd = fs.openSync(seg, 'r+');
    const head = Buffer.alloc(700);
    fs.readSync(fd, head, 0, 700, 64);
    fs.writeSync(fd, head, 0, 700, end);
    fs.closeSync(fd);
    s = openSpool({ directory: d });
    expect(s.recover().map((r) => r.id)).toEqual(ids);
    expect(s.recoveryEvents).toMatchObject([{ kind: 'torn-tail', file: 'seg-0000000000000001.spool', offset: end, length: 700 }]);
    expect(fs.statSync(seg).size).toBe(end);
    expect(s.stats().tornTails).toBe(1);
  });

  it('moves a corrupt record to corrupt/ with the reason and keeps the others', async () => {
    const d = dir();
    let s = openSpool({ directory: d });
    const bodies = [1, 2, 3].map((i) => wireBody(2000, i));
    const ids: string[] = [];
    for (const b of bodies) ids.push(await commit(s, b));
    const loc = s.bodyLocation(ids[1]!);
    fs.closeSync(loc.fd);
    await s.close();
    const seg = path.join(d, 'seg-0000000000000001.spool');
    const fd = fs.openSync(seg, 'r+');
    fs.writeSync(fd, Buffer.from('X'), 0, 1, loc.offset + 100);
    fs.closeSync(fd);
    s = openSpool({ directory: d });
    expect(s.recover().map((r) => r.id)).toEqual([ids[0], ids[2]]);
    expect(s.read(ids[2]!).equals(bodies[2]!)).toBe(true);
    expect(s.recoveryEvents).toHaveLength(1);
    const ev = s.recoveryEvents[0]!;
    expect(ev).toMatchObject({ kind: 'corrupt', file: 'seg-0000000000000001.spool', reason: 'checksum mismatch' });
    const saved = fs.readFileSync(path.join(d, ev.savedAs!));
    expect(saved.length).toBe(ev.length);
    expect(saved.includes(Buffer.from(ids[1]!))).toBe(true);
    expect(fs.readFileSync(path.join(d, ev.savedAs!.replace(/\.bad$/, '.reason')), 'utf8')).toContain('checksum mismatch');
  });

  it('keeps nothing of an aborted message', async () => {
    const d = dir();
    let s = openSpool({ directory: d });
    const m = s.writer().begin(Buffer.from('{}'));
    m.append(Buffer.from('half a message'));
    m.abort();
    m.abort();
    expect(() => m.append(Buffer.from('more'))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    await expect(m.commit()).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
    const id = await commit(s, wireBody(10, 1));
    expect(s.stats()).toMatchObject({ messages: 1, commits: 1 });
    await s.close();
    s = openSpool({ directory: d });
    expect(s.recover().map((r) => r.id)).toEqual([id]);
  });

  it('hands out the body location for sendfile, with an fd the caller owns', async () => {
    const s = openSpool({ directory: dir() });
    const body = wireBody(5000, 9);
    const id = await commit(s, body);
    const loc = s.bodyLocation(id);
    const buf = Buffer.alloc(loc.length);
    fs.readSync(loc.fd, buf, 0, loc.length, loc.offset);
    fs.closeSync(loc.fd);
    expect(buf.equals(body)).toBe(true);
    expect(path.basename(loc.path)).toBe('seg-0000000000000001.spool');
  });

  it('lets one process use a spool directory at a time', async () => {
    const d = dir();
    openSpool({ directory: d });
    expect(() => Spool.open({ directory: d, nodeId: 'x' })).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    const child = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `import { Spool } from ${JSON.stringify(distSpool)};
        try { Spool.open({ directory: ${JSON.stringify(d)}, nodeId: 'x' }); console.log('opened'); }
        catch (e) { console.log(e.code, e.syscall, e.message); }`],
      { encoding: 'utf8' },
    );
    expect(child.stdout).toMatch(/^EAGAIN flock .*in use by another process \(pid \d+\)/);
  });

  it('refuses work after close with ERR_SPOOL_CLOSED', async () => {
    const d = dir();
    const s = Spool.open({ directory: d, nodeId: 'x' });
    const w = attachSpool(d);
    const m = w.begin();
    m.append(Buffer.from('x\r\n'));
    const pending = commit(s, wireBody(100, 1));
    await s.close();
    await expect(pending).resolves.toMatch(/^x-/);
    await expect(m.commit(Buffer.from('{}'))).rejects.toMatchObject({ code: 'ERR_SPOOL_CLOSED' });
    await expect(s.markDone(['x'])).rejects.toMatchObject({ code: 'ERR_SPOOL_CLOSED' });
    expect(() => attachSpool(d)).toThrow(expect.objectContaining({ code: 'ERR_SPOOL_CLOSED' }));
    await s.close();
    // The lock is released: it opens again.
    openSpool({ directory: d });
  });

  it('survives a worker thread terminated mid-commit', async () => {
    const d = dir();
    const s = openSpool({ directory: d });
    const code = `
      import { attachSpool } from ${JSON.stringify(distSpoolUrl)};
      import { parentPort, workerData } from 'node:worker_threads';
      const w = attachSpool(workerData.dir);
      const body = Buffer.alloc(65536, 97);
      let n = 0;
      for (;;) {
        const ps = [];
        for (let i = 0; i < 32; i++) {
          const m = w.begin();
          m.append(body);
          ps.push(m.commit(Buffer.from('{}')));
        }
        const half = w.begin();
        half.append(body);
        await Promise.all(ps);
        if (++n === 2) parentPort.postMessage('running');
      }`;
    for (let round = 0; round < 5; round++) {
      const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: { dir: d } });
      await new Promise((resolve) => w.once('message', resolve));
      await new Promise((r) => setTimeout(r, round * 3));
      await w.terminate();
    }
    const body = wireBody(1000, 3);
    const id = await commit(s, body);
    expect(s.read(id).equals(body)).toBe(true);
  });
});
