// One member's aggregated records on the aggregator's disk, and the durable high-water mark that
// says how far they go. A batch is appended to its files and fdatasync'ed before the mark moves
// (temp file, fsync, rename, fsync of the directory); the member is acked only after that (the
// caller, aggregator.ts). The mark also lists the files recent batches wrote, each with its size
// at the mark: on open, anything past those sizes (a batch written but not marked when the
// aggregator died, a torn last line) is cut, so the records after the mark are read again and
// written once. A file a batch is about to start is entered in the mark first. Main thread;
// asynchronous file I/O only (the libuv pool), never a synchronous call.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { JournalRecord } from '../mmove/journal.js';
import { logfilePath, recordLine } from './layout.js';

/** What <Directory>/.marks/<node>.<log>.json holds. */
export interface Mark {
  /** Every record of the member through this seq is in the files, durably; 0: none yet. */
  seq: number;
  /** The time of that record (ms since the epoch); 0: none yet. */
  time: number;
  /** Files (relative to the Directory) recent batches wrote, and their size at this mark, oldest first. */
  files: Record<string, number>;
}

/** Files a mark remembers: enough for a batch that crosses a few dates (its own are always kept). */
const MARK_FILES = 8;

export interface StoreOptions {
  directory: string;
  /** Log_Aggregator Logfile. */
  logfile: string;
  /** %{l}. */
  log: string;
  /** %{n}: the member. */
  node: string;
  logger: Logger;
}

export class MemberStore {
  private constructor(
    private readonly o: StoreOptions,
    private mark: Mark,
    private readonly markFile: string,
  ) {}

  /** The mark file of a member's log. */
  static markPath(directory: string, node: string, log: string): string {
    return path.join(directory, '.marks', `${node}.${log}.json`);
  }

  /** Loads the member's mark (none: from the start) and cuts what its files hold past it. */
  static async open(o: StoreOptions): Promise<MemberStore> {
    const markFile = MemberStore.markPath(o.directory, o.node, o.log);
    let mark: Mark = { seq: 0, time: 0, files: {} };
    try {
      mark = parseMark(await fs.readFile(markFile, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`log aggregator: cannot read the mark ${markFile}: ${(err as Error).message}`);
    }
    await fs.mkdir(path.dirname(markFile), { recursive: true });
    const store = new MemberStore(o, mark, markFile);
    await store.reconcile();
    return store;
  }

  get seq(): number {
    return this.mark.seq;
  }

  get time(): number {
    return this.mark.time;
  }

  /** The mark's files with the size recorded for each (tests, status). */
  files(): Readonly<Record<string, number>> {
    return this.mark.files;
  }

  /** Cuts each remembered file back to its size at the mark. */
  private async reconcile(): Promise<void> {
    const { logger, node } = this.o;
    for (const [rel, size] of Object.entries(this.mark.files)) {
      const file = path.join(this.o.directory, rel);
      let actual: number;
      try {
        actual = (await fs.stat(file)).size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        if (size > 0) logger.error({ node, file, size }, 'log aggregator: an aggregated file the mark names is gone (removed outside vipmta?); its records are not written again');
        continue;
      }
      if (actual > size) {
        const fh = await fs.open(file, 'r+');
        try {
          await fh.truncate(size);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        logger.warn({ node, file, cut: actual - size, seq: this.mark.seq }, 'log aggregator: cut what was written after the last mark (it is read from the member again)');
      } else if (actual < size) {
        logger.error({ node, file, size, actual }, 'log aggregator: an aggregated file is shorter than its mark (truncated outside vipmta?); records may be missing from it');
      }
    }
  }

  /**
   * Appends the records past the mark (older ones are skipped: never written twice), syncs the
   * files, then moves the mark. Resolves once the mark is durable; the caller acks after that.
   * Returns how many were written.
   */
  async write(records: readonly JournalRecord[]): Promise<number> {
    const byFile = new Map<string, string[]>();
    let last: JournalRecord | null = null;
    for (const r of records) {
      if (r.seq <= (last?.seq ?? this.mark.seq)) continue;
      const rel = logfilePath(this.o.logfile, { time: r.time, log: this.o.log, node: this.o.node });
      let lines = byFile.get(rel);
      if (lines === undefined) byFile.set(rel, (lines = []));
      lines.push(recordLine(this.o.node, r));
      last = r;
    }
    if (last === null) return 0;
    const files = { ...this.mark.files };
    // A file not in the mark is entered (at its present size) before anything is written to it.
    let started = false;
    for (const rel of byFile.keys()) {
      if (files[rel] !== undefined) continue;
      files[rel] = await this.startFile(rel);
      started = true;
    }
    if (started) await this.save({ ...this.mark, files });
    let n = 0;
    for (const [rel, lines] of byFile) {
      const data = lines.join('');
      const fh = await fs.open(path.join(this.o.directory, rel), 'a');
      try {
        await fh.writeFile(data, 'utf8');
        await fh.datasync();
      } finally {
        await fh.close();
      }
      // Most recently written last: the oldest are forgotten first.
      const size = files[rel]! + Buffer.byteLength(data, 'utf8');
      delete files[rel];
      files[rel] = size;
      n += lines.length;
    }
    const keys = Object.keys(files);
    for (const k of keys.slice(0, Math.max(0, keys.length - Math.max(MARK_FILES, byFile.size)))) delete files[k];
    await this.save({ seq: last.seq, time: last.time, files });
    return n;
  }

  /** Creates the file (and its directories) durably; its size now. */
  private async startFile(rel: string): Promise<number> {
    const file = path.join(this.o.directory, rel);
    const made = await fs.mkdir(path.dirname(file), { recursive: true });
    const fh = await fs.open(file, 'a');
    let size: number;
    try {
      size = (await fh.stat()).size;
    } finally {
      await fh.close();
    }
    // The new entries (file, and any directory just made) must survive a crash before the mark names them.
    let dir = path.dirname(file);
    const top = made === undefined ? dir : path.dirname(made);
    for (;;) {
      await syncDir(dir);
      if (dir === top || dir === this.o.directory || dir === path.dirname(dir)) break;
      dir = path.dirname(dir);
    }
    return size;
  }

  private async save(mark: Mark): Promise<void> {
    const tmp = `${this.markFile}.tmp`;
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(mark) + '\n', 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, this.markFile);
    await syncDir(path.dirname(this.markFile));
    this.mark = mark;
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function parseMark(text: string): Mark {
  const m = JSON.parse(text) as Partial<Mark>;
  const ok = Number.isSafeInteger(m.seq) && m.seq! >= 0 && typeof m.time === 'number' && typeof m.files === 'object' && m.files !== null &&
    Object.values(m.files).every((v) => Number.isSafeInteger(v) && v >= 0);
  if (!ok) throw new Error('malformed mark');
  return { seq: m.seq!, time: m.time!, files: { ...m.files } };
}
