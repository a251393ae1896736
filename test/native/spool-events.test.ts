// The spool's event journal (issue 15) against real files: events written in the same group
// commit as commits, done-marks and updates (the commit's queue id in the frame), read back by
// EventJournal; torn tails and damaged frames at open; subscribers, checkpoints, trimming; the cap
// (refuse and drop_oldest); appendEvents from a worker thread. Worker code imports dist/.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { EventJournal, Spool, type SpoolOptions } from '../../src/spool/index.js';
import { distSpool, distSpoolUrl, root, tempDir, wireBody } from '../unit/spool/helpers.js';

const dirs: string[] = [];
const open: Spool[] = [];

function dir(): string {
  const d = tempDir('spool-events');
  dirs.push(d);
  return d;
}
function openSpool(opts: Partial<SpoolOptions> & { directory: string }): Spool {
  const s = Spool.open({ nodeId: 'ev-node', sync: 'none', ...opts });
  open.push(s);
  return s;
}
async function closeSpool(s: Spool): Promise<void> {
  await s.close();
  open.splice(open.indexOf(s), 1);
}
async function commit(s: Spool, body: Buffer, event?: Buffer): Promise<string> {
  const m = s.writer().begin();
  m.append(body);
  return (await m.commit(Buffer.from('{"from":"a@b"}'), event)).id;
}
function eventFiles(d: string): string[] {
  return fs.readdirSync(path.join(d, 'events')).filter((f) => f.endsWith('.log')).sort();
}
function logger(): { lines: { level: string; obj: Record<string, unknown>; msg: string }[]; warn: (o: object, m: string) => void; error: (o: object, m: string) => void } {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  return {
    lines,
    warn: (obj, msg) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
}
const ev = (s: string): Buffer => Buffer.from(s);

beforeAll(() => {
  if (!fs.existsSync(distSpool)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('event journal: writing with the spool', () => {
  it('records a commit\'s event with the queue id the commit assigned, and nothing for a commit without one', async () => {
    const d = dir();
    const s = openSpool({ directory: d, sync: 'fdatasync' });
    const a = await commit(s, wireBody(100, 1), ev('{"e":"received","n":1}'));
    const b = await commit(s, wireBody(100, 2));
    const c = await commit(s, wireBody(100, 3), ev('{"e":"received","n":3}'));
    const j = new EventJournal({ directory: d });
    const r = j.read(1, 100);
    expect(r.records.map((x) => [x.seq, x.id, x.data.toString()])).toEqual([
      [1, a, '{"e":"received","n":1}'],
      [2, c, '{"e":"received","n":3}'],
    ]);
    expect(r.next).toBe(3);
    expect(r.records.some((x) => x.id === b)).toBe(false);
    expect(r.records[0]!.time).toBeGreaterThan(0);
  });

  it('records markDone, update and appendEvents events in their batches; an update of an unknown id records nothing', async () => {
    const d = dir();
    const s = openSpool({ directory: d });
    const id = await commit(s, wireBody(100, 1));
    await s.update(id, ev('state-1'), ev('deferred'));
    await expect(s.update('no-such-id', ev('x'), ev('never'))).rejects.toMatchObject({ code: 'ENOENT' });
    await s.markDone([id], [{ id, data: ev('delivered') }, { data: ev('no id') }]);
    await s.appendEvents([{ data: ev('rejected at RCPT') }, { id: 'custom-1', data: ev('other') }]);
    const recs = new EventJournal({ directory: d }).read(1, 100).records;
    expect(recs.map((x) => [x.seq, x.id, x.data.toString()])).toEqual([
      [1, id, 'deferred'],
      [2, id, 'delivered'],
      [3, null, 'no id'],
      [4, null, 'rejected at RCPT'],
      [5, 'custom-1', 'other'],
    ]);
    expect(s.live()).toEqual([]);
  });

  it('reads in pages from any sequence number, across segments', async () => {
    const d = dir();
    const s = openSpool({ directory: d, eventSegmentSize: 4096, eventRetention: 1 << 30 });
    for (let i = 1; i <= 300; i++) await s.appendEvents([{ data: ev(`event ${i} `.padEnd(40, '.')) }]);
    expect(eventFiles(d).length).toBeGreaterThan(2);
    const j = new EventJournal({ directory: d });
    const seen: number[] = [];
    let next = 1;
    for (;;) {
      const r = j.read(next, 17);
      if (r.records.length === 0) break;
      for (const x of r.records) seen.push(Number(/event (\d+)/.exec(x.data.toString())![1]));
      next = r.next;
    }
    expect(seen).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(j.read(150, 1).records[0]!.seq).toBe(150);
    expect(j.read(301, 10)).toEqual({ records: [], next: 301 });
  });
});

describe('event journal: recovery at open', () => {
  it('cuts a torn tail, says so, and continues the sequence', async () => {
    const d = dir();
    let s = openSpool({ directory: d, preallocate: 'none' });
    await s.appendEvents([{ data: ev('one') }, { data: ev('two') }]);
    await closeSpool(s);
    const file = path.join(d, 'events', eventFiles(d).at(-1)!);
    const good = fs.statSync(file).size;
    // Half a frame: a header claiming 200 bytes, then only a few of them.
    const torn = Buffer.alloc(50, 7);
    torn.write('VEVT', 0, 'latin1');
    torn.writeUInt32LE(200, 4);
    fs.appendFileSync(file, torn);
    const log = logger();
    s = openSpool({ directory: d, preallocate: 'none', logger: log });
    expect(s.recoveryEvents).toContainEqual(
      expect.objectContaining({ kind: 'torn-tail', file: `events/${path.basename(file)}`, offset: good }),
    );
    expect(log.lines.some((l) => l.level === 'warn' && /event journal: torn tail/.test(l.msg))).toBe(true);
    expect(fs.statSync(file).size).toBe(good);
    await s.appendEvents([{ data: ev('three') }]);
    const recs = new EventJournal({ directory: d }).read(1, 10).records;
    expect(recs.map((x) => [x.seq, x.data.toString()])).toEqual([
      [1, 'one'],
      [2, 'two'],
      [3, 'three'],
    ]);
  });

  it('reports a damaged frame in the middle with its position, counts it, and readers skip it', async () => {
    const d = dir();
    let s = openSpool({ directory: d, preallocate: 'none' });
    await s.appendEvents([{ data: ev('first') }]);
    await s.appendEvents([{ data: ev('second-payload') }]);
    await s.appendEvents([{ data: ev('third') }]);
    await closeSpool(s);
    const file = path.join(d, 'events', eventFiles(d).at(-1)!);
    const bytes = fs.readFileSync(file);
    const second = bytes.indexOf('second-payload');
    const frameStart = 64 + 32 + 'first'.length;
    bytes[second + 3] = bytes[second + 3]! ^ 0xff;
    fs.writeFileSync(file, bytes);
    const log = logger();
    s = openSpool({ directory: d, preallocate: 'none', logger: log });
    const bad = s.recoveryEvents.filter((e) => e.kind === 'corrupt');
    expect(bad).toEqual([expect.objectContaining({ file: `events/${path.basename(file)}`, offset: frameStart, reason: 'checksum mismatch' })]);
    expect(log.lines.some((l) => l.level === 'error' && /damaged frame/.test(l.msg))).toBe(true);
    expect(s.eventStats().damaged).toBe(1);
    await s.appendEvents([{ data: ev('fourth') }]);
    const rlog = logger();
    const j = new EventJournal({ directory: d, logger: rlog });
    expect(j.read(1, 10).records.map((x) => [x.seq, x.data.toString()])).toEqual([
      [1, 'first'],
      [3, 'third'],
      [4, 'fourth'],
    ]);
    expect(rlog.lines).toEqual([expect.objectContaining({ level: 'error', obj: expect.objectContaining({ offset: frameStart }) })]);
    expect(j.stats().damagedSkipped).toBe(1);
  });
});

describe('event journal: recovery at open (segments and numbering)', () => {
  it('moves a segment whose header is unreadable to corrupt/ and reads on past it', async () => {
    const d = dir();
    let s = openSpool({ directory: d, eventSegmentSize: 4096, eventRetention: 1 << 30 });
    for (let i = 1; i <= 100; i++) await s.appendEvents([{ data: ev(`e${i}`.padEnd(60, '-')) }]);
    await closeSpool(s);
    const files = eventFiles(d);
    const victim = path.join(d, 'events', files[1]!);
    const b = fs.readFileSync(victim);
    b[20] = b[20]! ^ 0xff; // inside the header: its checksum no longer holds
    fs.writeFileSync(victim, b);
    s = openSpool({ directory: d, eventSegmentSize: 4096 });
    expect(s.recoveryEvents).toEqual([
      expect.objectContaining({ kind: 'corrupt', file: `events/${files[1]}`, savedAs: `corrupt/events-${files[1]}.bad` }),
    ]);
    expect(fs.existsSync(path.join(d, 'corrupt', `events-${files[1]}.bad`))).toBe(true);
    expect(eventFiles(d)).toEqual([files[0], ...files.slice(2)]);
    const j = new EventJournal({ directory: d });
    const first = j.read(1, 1000);
    const gapStart = first.records.findIndex((x, k) => k > 0 && x.seq !== first.records[k - 1]!.seq + 1);
    expect(gapStart).toBeGreaterThan(0);
    expect(first.records.at(-1)!.seq).toBe(100);
  });

  it('never gives a record a number a subscriber checkpoint already names', async () => {
    const d = dir();
    let s = openSpool({ directory: d });
    await s.appendEvents([{ data: ev('one') }]);
    await closeSpool(s);
    // As if a reader in another process had seen (and acknowledged) records a failed batch undid.
    fs.writeFileSync(path.join(d, 'events', 'subscribers', 'other.json'), JSON.stringify({ name: 'other', seq: 50 }));
    s = openSpool({ directory: d });
    await s.appendEvents([{ data: ev('next') }]);
    expect(new EventJournal({ directory: d }).read(1, 10).records.map((x) => [x.seq, x.data.toString()])).toEqual([
      [1, 'one'],
      [51, 'next'],
    ]);
  });
});

describe('event journal: subscribers', () => {
  it('keeps checkpoints across reopen; readFor continues where ack left it', async () => {
    const d = dir();
    let s = openSpool({ directory: d });
    await s.appendEvents([{ data: ev('a1') }, { data: ev('a2') }]);
    let j = new EventJournal({ directory: d });
    expect(j.subscribe('archive', { from: 'start' })).toBe(0);
    expect(j.subscribe('tail')).toBe(2);
    await s.appendEvents([{ data: ev('a3') }]);
    const r = j.readFor('archive', 2);
    expect(r.records.map((x) => x.data.toString())).toEqual(['a1', 'a2']);
    await j.ack('archive', r.records.at(-1)!.seq);
    expect(j.readFor('tail', 10).records.map((x) => x.data.toString())).toEqual(['a3']);
    await closeSpool(s);
    s = openSpool({ directory: d });
    j = new EventJournal({ directory: d });
    expect([...j.subscribers()].sort()).toEqual([
      ['archive', 2],
      ['tail', 2],
    ]);
    expect(j.readFor('archive', 10).records.map((x) => x.data.toString())).toEqual(['a3']);
    expect(j.subscribe('archive', { from: 'end' })).toBe(2); // existing: kept
    j.unsubscribe('tail');
    expect([...j.subscribers().keys()]).toEqual(['archive']);
    expect(() => j.checkpoint('tail')).toThrow(/no subscriber/);
    expect(() => j.subscribe('../x')).toThrow(RangeError);
  });

  it('trims a segment only once every subscriber has passed it, never the active one', async () => {
    const d = dir();
    const s = openSpool({ directory: d, eventSegmentSize: 4096, eventRetention: 0 });
    const j = new EventJournal({ directory: d });
    j.subscribe('fast', { from: 'start' });
    j.subscribe('slow', { from: 'start' });
    for (let i = 0; i < 200; i++) await s.appendEvents([{ data: Buffer.alloc(100, 120) }]);
    const before = eventFiles(d);
    expect(before.length).toBeGreaterThan(4);
    const last = j.stats().lastSeq;
    await j.ack('fast', last);
    expect(eventFiles(d)).toEqual(before);
    const mid = s.eventStats().segmentList[2]!;
    await j.ack('slow', mid.lastSeq);
    const after = eventFiles(d);
    expect(after).toEqual(before.slice(3));
    expect(j.read(1, 1).records[0]!.seq).toBe(mid.lastSeq + 1);
    await j.ack('slow', last);
    expect(eventFiles(d)).toEqual([before.at(-1)]); // the active segment stays
    const st = j.stats();
    expect(st.subscribers.map((x) => [x.name, x.checkpoint, x.lagRecords])).toEqual([
      ['fast', last, 0],
      ['slow', last, 0],
    ]);
  });

  it('with no subscriber keeps the retention and removes older segments as new ones start', async () => {
    const d = dir();
    const s = openSpool({ directory: d, eventSegmentSize: 4096, eventRetention: 12 * 1024 });
    for (let i = 0; i < 400; i++) await s.appendEvents([{ data: Buffer.alloc(100, 120) }]);
    const st = s.eventStats();
    expect(st.trimmedSegments).toBeGreaterThan(0);
    expect(st.bytes).toBeLessThanOrEqual(12 * 1024 + 4096);
    expect(eventFiles(d).length).toBe(st.segments);
  });
});

describe('event journal: the cap', () => {
  it('refuse: an event that does not fit fails its commit (ERR_SPOOL_FULL), nothing of it is kept; space returns with acks', async () => {
    const d = dir();
    const s = openSpool({ directory: d, eventSegmentSize: 4096, eventMaxSize: 16 * 1024, eventRetention: 0 });
    const j = new EventJournal({ directory: d });
    j.subscribe('reader', { from: 'start' });
    const queued = await commit(s, wireBody(100, 9));
    let refused: unknown = null;
    for (let i = 0; i < 400 && refused === null; i++) {
      await s.appendEvents([{ data: Buffer.alloc(200, 120) }]).catch((e: unknown) => (refused = e));
    }
    expect(refused).toMatchObject({ code: 'ERR_SPOOL_FULL', syscall: 'events' });
    const live = s.live().length;
    await expect(commit(s, wireBody(100, 1), Buffer.alloc(200, 1))).rejects.toMatchObject({ code: 'ERR_SPOOL_FULL' });
    expect(s.live().length).toBe(live);
    await expect(s.markDone([queued], [{ id: queued, data: Buffer.alloc(200, 1) }])).rejects.toMatchObject({ code: 'ERR_SPOOL_FULL' });
    expect(s.live().map((m) => m.id)).toContain(queued); // the done-mark was not kept either
    const plain = await commit(s, wireBody(100, 2)); // a commit without an event still works
    expect(s.live().map((m) => m.id)).toContain(plain);
    const st = j.stats();
    expect(st.alarm).toBe(true);
    expect(st.bytes).toBeLessThanOrEqual(16 * 1024);
    expect(st.native!.refused).toBeGreaterThanOrEqual(3);
    await j.ack('reader', st.lastSeq);
    await s.appendEvents([{ data: Buffer.alloc(200, 120) }]);
    expect(j.stats().alarm).toBe(false);
  });

  it('drop_oldest: never refuses; removes the oldest segment and the reader logs what the subscriber lost', async () => {
    const d = dir();
    const s = openSpool({ directory: d, eventSegmentSize: 4096, eventMaxSize: 16 * 1024, eventRetention: 0, eventAtCap: 'drop_oldest' });
    const log = logger();
    const j = new EventJournal({ directory: d, logger: log });
    j.subscribe('laggard', { from: 'start' });
    for (let i = 0; i < 400; i++) await s.appendEvents([{ data: Buffer.alloc(200, 120) }]);
    const st = j.stats();
    expect(st.bytes).toBeLessThanOrEqual(16 * 1024 + 4096);
    expect(st.native!.droppedRecords).toBeGreaterThan(0);
    expect(st.drops.length).toBeGreaterThan(0);
    expect(st.native!.droppedRecords).toBe(st.firstSeq - 1);
    expect(st.drops.at(-1)).toMatchObject({ toSeq: st.firstSeq - 1, subscribers: ['laggard'] });
    const r = j.readFor('laggard', 5);
    expect(r.missing).toEqual([1, st.firstSeq - 1]);
    expect(r.records[0]!.seq).toBe(st.firstSeq);
    expect(log.lines).toContainEqual(
      expect.objectContaining({ level: 'error', obj: { subscriber: 'laggard', fromSeq: 1, toSeq: st.firstSeq - 1 } }),
    );
    const fresh = j.logNewDrops();
    expect(fresh.length).toBe(st.drops.length);
    expect(log.lines.filter((l) => /before these subscribers read them/.test(l.msg)).map((l) => l.obj['subscribers'])).toEqual(fresh.map(() => ['laggard']));
    expect(j.logNewDrops()).toEqual([]);
  });
});

describe('event journal: worker threads', () => {
  it('appendEvents from a worker thread through attachSpool', async () => {
    const d = dir();
    const s = openSpool({ directory: d });
    const code = `
      import { parentPort, workerData } from 'node:worker_threads';
      import { attachSpool } from ${JSON.stringify(distSpoolUrl)};
      const w = attachSpool(workerData.dir);
      await Promise.all(Array.from({ length: 50 }, (_, i) => w.appendEvents([{ data: Buffer.from('worker rejection ' + i) }])));
      const m = w.begin(Buffer.from('{}'));
      m.append(Buffer.from('hi\\r\\n'));
      const { id } = await m.commit(undefined, Buffer.from('worker received'));
      parentPort.postMessage(id);`;
    const id = await new Promise<string>((resolve, reject) => {
      const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: { dir: d } });
      w.once('message', (m: string) => {
        resolve(m);
        void w.terminate();
      });
      w.once('error', reject);
    });
    const recs = new EventJournal({ directory: d }).read(1, 100).records;
    expect(recs.length).toBe(51);
    expect(new Set(recs.filter((x) => x.id === null).map((x) => x.data.toString())).size).toBe(50);
    expect(recs.at(-1)).toMatchObject({ seq: 51, id });
    expect(recs.at(-1)!.data.toString()).toBe('worker received');
    expect(s.eventStats().appended).toBe(51);
  });
});

describe('event journal: acks', () => {
  it('refuses an ack past the last record, and never moves a checkpoint backwards', async () => {
    const d = dir();
    const s = openSpool({ directory: d });
    await s.appendEvents([{ data: ev('1') }, { data: ev('2') }]);
    const j = new EventJournal({ directory: d });
    j.subscribe('x', { from: 'start' });
    await expect(j.ack('x', 3)).rejects.toThrow(RangeError);
    await j.ack('x', 2);
    await j.ack('x', 1);
    expect(j.checkpoint('x')).toBe(2);
  });
});

describe('event journal: without the spool open in this process', () => {
  it('reads, subscribes and reports from the files alone; trim is left to the process that has the spool', async () => {
    const d = dir();
    const s = openSpool({ directory: d, eventSegmentSize: 4096, eventRetention: 1 << 30 });
    for (let i = 1; i <= 100; i++) await s.appendEvents([{ data: ev(`e${i}`.padEnd(60, '-')) }]);
    await closeSpool(s);
    const j = new EventJournal({ directory: d });
    expect(j.lastSeq()).toBe(100);
    expect(j.subscribe('late')).toBe(100);
    expect(j.subscribe('all', { from: 'start' })).toBe(0);
    const r = j.readFor('all', 1000);
    expect(r.records.map((x) => x.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    await j.ack('all', 40);
    expect(await j.trim()).toBe(0);
    const st = j.stats();
    expect(st.native).toBeNull();
    expect(st.lastSeq).toBe(100);
    expect(st.segments).toBe(eventFiles(d).length);
    expect(st.subscribers.find((x) => x.name === 'all')).toMatchObject({ checkpoint: 40, lagRecords: 60 });
    expect(st.subscribers.find((x) => x.name === 'all')!.lagBytes).toBeGreaterThan(0);
    expect(st.subscribers.find((x) => x.name === 'late')).toMatchObject({ lagRecords: 0, lagBytes: 0 });
  });
});
