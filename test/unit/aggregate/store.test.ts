// A member's aggregated files and their mark: records are written once, in files by date; a batch
// written but not marked (the aggregator killed between the file's sync and the mark's rename) or
// a torn last line is cut when the store opens again, so the records after the mark are written
// exactly once when they are read again.
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MemberStore, type Mark } from '../../../src/aggregate/store.js';
import type { JournalRecord } from '../../../src/mmove/journal.js';
import { tempDir } from '../../helpers/tmp.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 3, 12);
const rec = (seq: number, time = T0 + seq * 1000): JournalRecord => ({ seq, time, id: `ev-${seq}`, data: Buffer.from(JSON.stringify({ n: seq })) });
const range = (from: number, to: number, time?: (s: number) => number): JournalRecord[] =>
  Array.from({ length: to - from + 1 }, (_, i) => rec(from + i, time?.(from + i)));

function logger(): { logger: pino.Logger; lines: { msg: string; level: number; cut?: number }[] } {
  const lines: { msg: string; level: number; cut?: number }[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as { msg: string; level: number }) });
  return { logger, lines };
}

function open(dir: string, log = logger().logger): Promise<MemberStore> {
  return MemberStore.open({ directory: dir, logfile: '%Y/%m/%d/%{l}/%{n}', log: 'events', node: 'n2', logger: log });
}

const seqsIn = (file: string): number[] => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { seq: number }).seq);
const day = (dir: string, t: number): string => path.join(dir, new Date(t).toISOString().slice(0, 10).replace(/-/g, '/'), 'events', 'n2');
const markOf = (dir: string): Mark => JSON.parse(fs.readFileSync(MemberStore.markPath(dir, 'n2', 'events'), 'utf8')) as Mark;

describe('MemberStore', () => {
  it('writes each record once, to the file of its date, and marks the last', async () => {
    const dir = tempDir('agg-store-');
    const s = await open(dir);
    expect(s.seq).toBe(0);
    // Records 1-3 on one day, 4-5 the next: one batch, two files.
    const batch = range(1, 5, (q) => (q <= 3 ? T0 : T0 + DAY) + q);
    expect(await s.write(batch)).toBe(5);
    expect(seqsIn(day(dir, T0))).toEqual([1, 2, 3]);
    expect(seqsIn(day(dir, T0 + DAY))).toEqual([4, 5]);
    expect(markOf(dir)).toMatchObject({ seq: 5, time: T0 + DAY + 5 });
    // Records at or below the mark are never written again, even when a batch repeats them.
    expect(await s.write(range(4, 7, () => T0 + DAY))).toBe(2);
    expect(seqsIn(day(dir, T0 + DAY))).toEqual([4, 5, 6, 7]);
    expect(s.seq).toBe(7);
    const again = await open(dir);
    expect(again.seq).toBe(7);
    expect(await again.write(range(1, 7))).toBe(0);
    expect(seqsIn(day(dir, T0))).toEqual([1, 2, 3]);
  });

  it('cuts a batch written after the mark and a torn last line, then takes the records again once', async () => {
    const dir = tempDir('agg-store-');
    const s = await open(dir);
    await s.write(range(1, 10));
    const file = day(dir, T0);
    const marked = fs.statSync(file).size;
    // The aggregator died after writing 11-12 and half of 13 but before the mark moved.
    const lines = range(11, 13).map((r) => JSON.stringify({ node: 'n2', seq: r.seq, time: r.time, record: { n: r.seq } }) + '\n');
    fs.appendFileSync(file, lines[0]! + lines[1]! + lines[2]!.slice(0, 9));
    const { logger: log, lines: logged } = logger();
    const s2 = await open(dir, log);
    expect(s2.seq).toBe(10);
    expect(fs.statSync(file).size).toBe(marked);
    expect(logged.find((l) => l.msg.startsWith('log aggregator: cut what was written after the last mark'))?.cut).toBe(lines[0]!.length + lines[1]!.length + 9);
    await s2.write(range(11, 15));
    expect(seqsIn(file)).toEqual(range(1, 15).map((r) => r.seq));
  });

  it('names a new file in the mark before writing to it, so a crash there is cut too', async () => {
    const dir = tempDir('agg-store-');
    const s = await open(dir);
    await s.write(range(1, 3));
    const next = day(dir, T0 + DAY);
    await s.write([rec(4, T0 + DAY)]);
    expect(markOf(dir).files[path.relative(dir, next)]).toBe(fs.statSync(next).size);
    // A crash after the next day's file was entered (size 0) and written, before the mark moved:
    const m = markOf(dir);
    const rel = path.relative(dir, day(dir, T0 + 2 * DAY));
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), '{"node":"n2","seq":5}\n{"node":"n2","se');
    fs.writeFileSync(MemberStore.markPath(dir, 'n2', 'events'), JSON.stringify({ ...m, files: { ...m.files, [rel]: 0 } }));
    const s2 = await open(dir);
    expect(s2.seq).toBe(4);
    expect(fs.statSync(path.join(dir, rel)).size).toBe(0);
    await s2.write([rec(5, T0 + 2 * DAY)]);
    expect(seqsIn(path.join(dir, rel))).toEqual([5]);
  });
});
