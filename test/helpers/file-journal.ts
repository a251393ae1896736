// A JSON-lines JournalSource for the aggregator's unit tests, where each record's time must be
// chosen (the dated layout over several days), which the spool's journal (it stamps the time of
// submission) cannot give: each line {"seq","time","id"?,"data"}; an ack is kept in
// <file>.acks/<subscriber> and trims nothing. Nodes serve their spool's journal
// (src/mmove/journal.ts SpoolJournalSource). Test code only; asynchronous file reads.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { JournalBatch, JournalRecord, JournalSource } from '../../src/mmove/journal.js';

/** The event record a test writes as record `seq` (its data). */
export function eventOf(seq: number): { type: string; queueId: string; n: number } {
  return { type: 'delivery', queueId: `q${seq}`, n: seq };
}

/** Appends records from..to (inclusive), record i at time `time(i)`, each with id "ev-<i>". */
export function appendRecords(file: string, from: number, to: number, time: (seq: number) => number = (s) => 1_796_000_000_000 + s * 1000): void {
  let text = '';
  for (let s = from; s <= to; s++) text += JSON.stringify({ seq: s, time: time(s), id: `ev-${s}`, data: eventOf(s) }) + '\n';
  fs.appendFileSync(file, text);
}

/** The seqs of the aggregated lines in `files` (JSON lines with a "seq"), in file order. */
export function aggregatedSeqs(files: string[]): number[] {
  const out: number[] = [];
  for (const f of files) {
    if (!fs.existsSync(f)) continue;
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) if (line !== '') out.push((JSON.parse(line) as { seq: number }).seq);
  }
  return out;
}

interface Entry {
  seq: number;
  offset: number;
  length: number;
}

export class JsonlJournalSource implements JournalSource {
  /** Complete lines seen so far, in file order. */
  private readonly index: Entry[] = [];
  private scanned = 0;

  constructor(readonly file: string) {}

  async read(fromSeq: number, max: number): Promise<JournalBatch> {
    await this.scan();
    const first = this.index[0]?.seq ?? 1;
    const last = this.index[this.index.length - 1]?.seq ?? 0;
    let lo = 0;
    let hi = this.index.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.index[mid]!.seq < fromSeq) lo = mid + 1;
      else hi = mid;
    }
    const picked = this.index.slice(lo, lo + max);
    if (picked.length === 0) return { records: [], next: Math.max(fromSeq, first), first, last };
    const start = picked[0]!.offset;
    const end = picked[picked.length - 1]!.offset + picked[picked.length - 1]!.length;
    const buf = Buffer.alloc(end - start);
    const fh = await fsp.open(this.file, 'r');
    try {
      await fh.read(buf, 0, buf.length, start);
    } finally {
      await fh.close();
    }
    const records: JournalRecord[] = picked.map((e) => {
      const o = JSON.parse(buf.toString('utf8', e.offset - start, e.offset - start + e.length)) as { seq: number; time: number; id?: string; data: unknown };
      return { seq: o.seq, time: o.time, ...(typeof o.id === 'string' ? { id: o.id } : {}), data: Buffer.from(JSON.stringify(o.data)) };
    });
    return { records, next: picked[picked.length - 1]!.seq + 1, first, last };
  }

  async ack(subscriber: string, seq: number): Promise<void> {
    const dir = `${this.file}.acks`;
    await fsp.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${subscriber}.${process.pid}.${Math.random().toString(36).slice(2)}`);
    await fsp.writeFile(tmp, `${seq}\n`);
    await fsp.rename(tmp, path.join(dir, subscriber));
  }

  /** Indexes the complete lines appended since the last scan (a line being written waits). */
  private async scan(): Promise<void> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      const size = (await fh.stat()).size;
      if (size <= this.scanned) return;
      const buf = Buffer.alloc(size - this.scanned);
      await fh.read(buf, 0, buf.length, this.scanned);
      let pos = 0;
      for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, pos)) {
        if (nl > pos) {
          const seq = (JSON.parse(buf.toString('utf8', pos, nl)) as { seq: number }).seq;
          const prev = this.index[this.index.length - 1];
          if (!Number.isSafeInteger(seq) || (prev !== undefined && seq <= prev.seq)) throw new Error(`${this.file}: seq ${seq} out of order`);
          this.index.push({ seq, offset: this.scanned + pos, length: nl - pos });
        }
        pos = nl + 1;
      }
      this.scanned += pos;
    } finally {
      await fh.close();
    }
  }
}
