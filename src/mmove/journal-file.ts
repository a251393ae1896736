// A stand-in event journal over one append-only JSON-lines file, until the spool's own journal
// (issue 15) is plugged into the ECCluster_Listener: each line {"seq","time","id"?,"data"} with
// ascending seq; an ack is kept in <file>.acks/<subscriber> (written atomically) and trims nothing.
// The integration tests serve it (worker.ts, VIPMTA_TEST_JOURNAL_FILE). Worker thread;
// asynchronous file reads only.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { JournalBatch, JournalRecord, JournalSource } from './journal.js';

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
    const fh = await fs.open(this.file, 'r');
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
    await fs.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${subscriber}.${process.pid}.${Math.random().toString(36).slice(2)}`);
    await fs.writeFile(tmp, `${seq}\n`);
    await fs.rename(tmp, path.join(dir, subscriber));
  }

  /** Indexes the complete lines appended since the last scan (a line being written waits). */
  private async scan(): Promise<void> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.file, 'r');
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
