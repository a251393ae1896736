// The event journal's reader: records of <spool>/events/ (written by the spool's commit thread,
// native/spool_events.h) read back with their frame checks, named subscribers with durable
// checkpoints, trimming and stats. Any thread (pure file reads; the spool's own counters and trim
// when the spool is open in this process). Blocks on small synchronous reads, and on fsync when a
// checkpoint is written.
import fs from 'node:fs';
import path from 'node:path';
import {
  spoolAttach,
  spoolCrc32c,
  spoolEventsHead,
  spoolEventsStats,
  spoolEventsTrim,
  type NativeEventDrop,
  type NativeEventStats,
  type NativeSpoolHandle,
} from '../native/index.js';

/** One record as stored: its sequence number, when it was submitted, the queue id its frame
 *  carries (null: none) and the payload, opaque here. */
export interface EventRecord {
  seq: number;
  /** ms since the epoch. */
  time: number;
  id: string | null;
  data: Buffer;
}

export interface EventReadResult {
  records: EventRecord[];
  /** The sequence number to read from next. */
  next: number;
  /** Sequence numbers asked for that are not in the journal any more (dropped at the cap,
   *  removed, or in a damaged frame): [from, to], inclusive. */
  missing?: [number, number];
}

export interface SubscriberStats {
  name: string;
  /** The last sequence number it acknowledged. */
  checkpoint: number;
  lagRecords: number;
  /** Estimated: whole segments after its position plus a share of the one it is in. */
  lagBytes: number;
}

export interface EventJournalStats {
  segments: number;
  bytes: number;
  /** First sequence number on disk, last durable one (0: none yet). */
  firstSeq: number;
  lastSeq: number;
  /** Event_Journal_Max_Size, the alarm threshold (bytes), and whether it is reached. */
  cap: number | null;
  alarmBytes: number | null;
  alarm: boolean;
  atCap: 'refuse' | 'drop_oldest' | null;
  subscribers: SubscriberStats[];
  /** The spool's counters (null when the spool is not open in this process). */
  native: NativeEventStats | null;
  /** Recent ranges removed at the cap before some subscriber read them. */
  drops: NativeEventDrop[];
  /** Damaged frames this reader skipped. */
  damagedSkipped: number;
}

export interface EventJournalOptions {
  /** The spool directory (the journal is its events/ subdirectory). */
  directory: string;
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

const FILE_MAGIC = 0x31544e4556455056n; // "VPEVENT1"
const FRAME_MAGIC = 0x54564556; // "VEVT"
const FILE_HDR = 64;
const FRAME_HDR = 32;
const MAX_PAYLOAD = 1 << 20;
const MAX_ID = 64;
const CHUNK = 256 * 1024;
const CHECKPOINT_BYTES = 128;
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;

interface SegmentFile {
  no: number;
  file: string;
  firstSeq: number;
}

export class EventJournal {
  readonly directory: string;
  private readonly spoolDir: string;
  private readonly logger: EventJournalOptions['logger'];
  private readonly headers = new Map<number, number>(); // segment no -> first seq (immutable)
  private cursor: { no: number; off: number; seq: number } | null = null;
  private damagedSkipped = 0;
  private reportedDropTo = 0;
  private readonly reported = new Set<string>();

  constructor(opts: EventJournalOptions) {
    this.spoolDir = opts.directory;
    this.directory = path.join(opts.directory, 'events');
    this.logger = opts.logger;
    fs.mkdirSync(path.join(this.directory, 'subscribers'), { recursive: true });
  }

  /** The spool's handle when it is open in this process (any thread), else null. */
  private handle(): NativeSpoolHandle | null {
    try {
      return spoolAttach(this.spoolDir);
    } catch {
      return null;
    }
  }

  private segmentFiles(): SegmentFile[] {
    const out: SegmentFile[] = [];
    for (const f of fs.readdirSync(this.directory)) {
      const m = /^ev-([0-9a-f]{16})\.log$/.exec(f);
      if (m === null) continue;
      const no = Number.parseInt(m[1]!, 16);
      let first = this.headers.get(no);
      if (first === undefined) {
        const h = this.readHeader(path.join(this.directory, f), no);
        if (h === null) continue;
        first = h;
        this.headers.set(no, first);
      }
      out.push({ no, file: path.join(this.directory, f), firstSeq: first });
    }
    return out.sort((a, b) => a.no - b.no);
  }

  private readHeader(file: string, no: number): number | null {
    const b = Buffer.alloc(FILE_HDR);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return null; // removed meanwhile
    }
    try {
      if (fs.readSync(fd, b, 0, FILE_HDR, 0) !== FILE_HDR) return null;
    } finally {
      fs.closeSync(fd);
    }
    if (b.readBigUInt64LE(0) !== FILE_MAGIC || b.readUInt32LE(8) !== 1 || b.readUInt32LE(12) !== FILE_HDR) return null;
    if (b.readUInt32LE(60) !== spoolCrc32c(b, 0, 60) || Number(b.readBigUInt64LE(16)) !== no) return null;
    return Number(b.readBigUInt64LE(32));
  }

  /**
   * Up to `max` records with seq >= fromSeq, in order. Damaged frames are skipped (logged once,
   * counted); a partial frame at the end of the active segment is the end for now. When the spool
   * is open in this process, nothing past its last durable record is returned.
   */
  read(fromSeq: number, max: number): EventReadResult {
    const h = this.handle();
    const head = h === null ? Number.MAX_SAFE_INTEGER : spoolEventsHead(h);
    const segs = this.segmentFiles();
    const records: EventRecord[] = [];
    if (segs.length === 0 || max <= 0) return { records, next: fromSeq };
    let i = segs.length - 1;
    while (i > 0 && segs[i]!.firstSeq > fromSeq) i--;
    let off = FILE_HDR;
    const c = this.cursor;
    if (c !== null && c.seq === fromSeq) {
      const k = segs.findIndex((s) => s.no === c.no);
      if (k >= 0) {
        i = k;
        off = c.off;
      }
    }
    let lastSeq = 0;
    for (; i < segs.length && records.length < max; i++, off = FILE_HDR) {
      const seg = segs[i]!;
      const end = this.scan(seg, off, fromSeq, head, max - records.length, records, i === segs.length - 1);
      if (end !== null) {
        this.cursor = { no: seg.no, off: end.off, seq: end.seq };
        lastSeq = end.seq - 1;
        if (end.stop) break;
      }
    }
    const next = records.length > 0 ? records[records.length - 1]!.seq + 1 : Math.max(fromSeq, lastSeq + 1);
    const res: EventReadResult = { records, next };
    if (records.length > 0 && records[0]!.seq > fromSeq) res.missing = [fromSeq, records[0]!.seq - 1];
    return res;
  }

  // Reads frames of one segment from `off`; returns where it stopped (offset and the next seq),
  // with stop = true when the caller must not go on to the next segment (max reached, head).
  private scan(
    seg: SegmentFile,
    start: number,
    fromSeq: number,
    head: number,
    max: number,
    out: EventRecord[],
    active: boolean,
  ): { off: number; seq: number; stop: boolean } | null {
    let fd: number;
    try {
      fd = fs.openSync(seg.file, 'r');
    } catch {
      return null; // trimmed or dropped since the listing
    }
    try {
      const size = fs.fstatSync(fd).size;
      let buf = Buffer.alloc(Math.min(CHUNK, Math.max(FRAME_HDR, size - start)));
      let bufOff = start;
      let bufLen = 0;
      const load = (at: number, need: number): number => {
        if (at >= bufOff && at + need <= bufOff + bufLen) return at - bufOff;
        if (need > buf.length) buf = Buffer.alloc(need);
        bufOff = at;
        bufLen = fs.readSync(fd, buf, 0, Math.min(buf.length, Math.max(0, size - at)), at);
        return 0;
      };
      let off = start;
      let prev = start === FILE_HDR ? seg.firstSeq - 1 : fromSeq - 1;
      let found = 0;
      while (off + FRAME_HDR <= size) {
        const p = load(off, FRAME_HDR);
        if (bufLen - p < FRAME_HDR) break;
        const magic = buf.readUInt32LE(p);
        const total = buf.readUInt32LE(p + 4);
        const idLen = buf.readUInt16LE(p + 12);
        const seq = Number(buf.readBigUInt64LE(p + 16));
        let ok = magic === FRAME_MAGIC && buf.readUInt16LE(p + 14) === 0 && idLen <= MAX_ID &&
          total >= FRAME_HDR + idLen && total - FRAME_HDR - idLen <= MAX_PAYLOAD && off + total <= size && seq > prev;
        let q = p;
        if (ok) {
          q = load(off, total);
          if (bufLen - q < total) ok = false;
          else {
            const want = buf.readUInt32LE(q + 8);
            buf.writeUInt32LE(0, q + 8);
            const got = spoolCrc32c(buf, q, q + total);
            buf.writeUInt32LE(want, q + 8);
            ok = got === want;
          }
        }
        if (!ok) {
          if (prev >= head) break; // past the durable end: a batch being written
          if (magic === 0 && buf.subarray(p, bufLen).every((x) => x === 0)) break; // end of the data
          const next = this.findNext(fd, size, off + 1, prev);
          if (next === null) {
            if (!active) this.reportDamage(seg, off, size - off);
            break; // the active segment: a frame being written (or a torn tail, cut at next open)
          }
          this.reportDamage(seg, off, next - off);
          off = next;
          continue;
        }
        if (seq > head) return { off, seq: prev + 1, stop: true };
        if (seq >= fromSeq) {
          const time = Number(buf.readBigUInt64LE(q + 24));
          const id = idLen === 0 ? null : buf.toString('latin1', q + FRAME_HDR, q + FRAME_HDR + idLen);
          const data = Buffer.from(buf.subarray(q + FRAME_HDR + idLen, q + total));
          out.push({ seq, time, id, data });
          found++;
        }
        prev = seq;
        off += total;
        if (found >= max) return { off, seq: seq + 1, stop: true };
      }
      return { off, seq: prev + 1, stop: false };
    } finally {
      fs.closeSync(fd);
    }
  }

  // The next valid frame after a damaged region (its sequence number later than `after`).
  private findNext(fd: number, size: number, from: number, after: number): number | null {
    if (size - from > 64 * 1024 * 1024) return null;
    const b = Buffer.alloc(size - from);
    fs.readSync(fd, b, 0, b.length, from);
    const magic = Buffer.from('VEVT', 'latin1');
    for (let at = b.indexOf(magic); at >= 0 && at + FRAME_HDR <= b.length; at = b.indexOf(magic, at + 1)) {
      const total = b.readUInt32LE(at + 4);
      const idLen = b.readUInt16LE(at + 12);
      const seq = Number(b.readBigUInt64LE(at + 16));
      if (total < FRAME_HDR + idLen || at + total > b.length || seq <= after) continue;
      const want = b.readUInt32LE(at + 8);
      const c = Buffer.from(b.subarray(at, at + total));
      c.writeUInt32LE(0, 8);
      if (spoolCrc32c(c, 0, total) === want) return from + at;
    }
    return null;
  }

  private reportDamage(seg: SegmentFile, off: number, length: number): void {
    const key = `${seg.no}:${off}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.damagedSkipped++;
    this.logger?.error(
      { file: `events/${path.basename(seg.file)}`, offset: off, length },
      'event journal: damaged frame skipped',
    );
  }

  // ---- subscribers ---------------------------------------------------------------------------

  private ckFile(name: string): string {
    if (!NAME.test(name)) throw new RangeError(`event journal: bad subscriber name ${JSON.stringify(name)}`);
    return path.join(this.directory, 'subscribers', `${name}.json`);
  }

  /** Every subscriber and its checkpoint. */
  subscribers(): Map<string, number> {
    const out = new Map<string, number>();
    for (const f of fs.readdirSync(path.join(this.directory, 'subscribers'))) {
      if (!f.endsWith('.json')) continue;
      const seq = this.readCheckpoint(path.join(this.directory, 'subscribers', f));
      if (seq !== null) out.set(f.slice(0, -5), seq);
    }
    return out;
  }

  private readCheckpoint(file: string): number | null {
    try {
      const v = JSON.parse(fs.readFileSync(file, 'utf8')) as { seq?: unknown };
      return typeof v.seq === 'number' ? v.seq : null;
    } catch {
      return null;
    }
  }

  /** The last sequence number `name` acknowledged; throws when it is not subscribed. */
  checkpoint(name: string): number {
    const seq = this.readCheckpoint(this.ckFile(name));
    if (seq === null) throw new Error(`event journal: no subscriber ${name}`);
    return seq;
  }

  // temp + fsync + rename + directory fsync: the checkpoint is the old or the new one, never torn.
  // On a full file system (the journal fills it, and only acks let it be trimmed) the existing file
  // is overwritten in place instead: the text is padded to CHECKPOINT_BYTES, so that write needs
  // no new block and stays within one sector.
  private writeCheckpoint(name: string, seq: number): void {
    const file = this.ckFile(name);
    const tmp = `${file}.tmp`;
    const text = Buffer.from(JSON.stringify({ name, seq, updated: Date.now() }).padEnd(CHECKPOINT_BYTES - 1) + '\n');
    try {
      const fd = fs.openSync(tmp, 'w', 0o640);
      try {
        fs.writeSync(fd, text);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOSPC' && code !== 'EDQUOT') || !fs.existsSync(file)) throw err;
      const fd = fs.openSync(file, 'r+');
      try {
        fs.writeSync(fd, text, 0, text.length, 0);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    this.syncDir();
  }

  private syncDir(): void {
    const d = fs.openSync(path.join(this.directory, 'subscribers'), 'r');
    try {
      fs.fsyncSync(d);
    } finally {
      fs.closeSync(d);
    }
  }

  /** The last durable sequence number (0: none): the spool's when open here, else from the files. */
  lastSeq(): number {
    const h = this.handle();
    if (h !== null) return spoolEventsHead(h);
    const segs = this.segmentFiles();
    if (segs.length === 0) return 0;
    const last = segs[segs.length - 1]!;
    const out: EventRecord[] = [];
    const end = this.scan(last, FILE_HDR, last.firstSeq, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, out, true);
    return end === null ? last.firstSeq - 1 : end.seq - 1;
  }

  /**
   * Adds a subscriber (idempotent: an existing one keeps its checkpoint). 'start': it reads
   * everything still on disk; 'end' (default): only what comes after now. Returns its checkpoint.
   * Blocks on the checkpoint's fsync.
   */
  subscribe(name: string, opts: { from?: 'start' | 'end' } = {}): number {
    const existing = this.readCheckpoint(this.ckFile(name));
    if (existing !== null) return existing;
    let seq: number;
    if (opts.from === 'start') {
      const segs = this.segmentFiles();
      seq = segs.length === 0 ? this.lastSeq() : segs[0]!.firstSeq - 1;
    } else {
      seq = this.lastSeq();
    }
    this.writeCheckpoint(name, seq);
    return seq;
  }

  /** Removes a subscriber: segments it alone held back can be trimmed. */
  unsubscribe(name: string): void {
    fs.rmSync(this.ckFile(name), { force: true });
    this.syncDir();
  }

  /** The next records for `name` after its checkpoint (does not move it: ack does). A range that
   *  is not on disk any more (dropped at the cap) is logged at ERROR with the subscriber. */
  readFor(name: string, max: number): EventReadResult {
    const res = this.read(this.checkpoint(name) + 1, max);
    if (res.missing !== undefined) {
      this.logger?.error(
        { subscriber: name, fromSeq: res.missing[0], toSeq: res.missing[1] },
        'event journal: records lost before this subscriber read them (dropped at the cap, or damaged)',
      );
    }
    return res;
  }

  /** Moves `name`'s checkpoint to `seq` (durable when it resolves; never backwards), then trims
   *  what every subscriber has passed when the spool is open in this process. Rejects RangeError
   *  for a seq past the last record. */
  async ack(name: string, seq: number): Promise<void> {
    const cur = this.checkpoint(name);
    // Past the end would make the journal skip numbers at its next open (it never reuses one a
    // checkpoint names): a caller's bug, refused.
    if (!Number.isSafeInteger(seq) || seq > this.lastSeq()) throw new RangeError(`event journal: ack ${seq} past the last record`);
    if (seq > cur) this.writeCheckpoint(name, seq);
    await this.trim();
  }

  /** Removes sealed segments every subscriber has passed, beyond Event_Journal_Retention (the
   *  spool's commit thread does it, so it never races the writer). 0 when the spool is not open
   *  in this process. */
  async trim(): Promise<number> {
    const h = this.handle();
    if (h === null) return 0;
    try {
      return await spoolEventsTrim(h);
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_SPOOL_CLOSED') return 0;
      throw err;
    }
  }

  /**
   * Drops at the cap (drop_oldest) this journal object has not reported yet, each logged at ERROR
   * with the subscribers that lost records and the range; for a periodic caller (health tick), in
   * addition to readFor's own report. Empty when the spool is not open in this process.
   */
  logNewDrops(): NativeEventDrop[] {
    const h = this.handle();
    if (h === null) return [];
    const fresh = spoolEventsStats(h).drops.filter((d) => d.toSeq > this.reportedDropTo);
    for (const d of fresh) {
      this.reportedDropTo = Math.max(this.reportedDropTo, d.toSeq);
      this.logger?.error(
        { subscribers: d.subscribers, fromSeq: d.fromSeq, toSeq: d.toSeq },
        'event journal: records dropped at the cap (Event_Journal_At_Cap drop_oldest) before these subscribers read them',
      );
    }
    return fresh;
  }

  stats(): EventJournalStats {
    const h = this.handle();
    const n = h === null ? null : spoolEventsStats(h);
    const segs = n?.segmentList ?? this.segmentFiles().map((s) => ({ no: s.no, firstSeq: s.firstSeq, lastSeq: 0, bytes: fs.statSync(s.file).size }));
    const lastSeq = n?.lastSeq ?? this.lastSeq();
    const bytes = n?.bytes ?? segs.reduce((a, s) => a + s.bytes, 0);
    const subscribers: SubscriberStats[] = [];
    for (const [name, checkpoint] of this.subscribers()) {
      let lagBytes = 0;
      for (let k = 0; k < segs.length; k++) {
        const s = segs[k]!;
        const last = s.lastSeq || (segs[k + 1]?.firstSeq ?? lastSeq + 1) - 1;
        if (last <= checkpoint) continue;
        const count = last - s.firstSeq + 1;
        const unread = Math.min(count, last - checkpoint);
        lagBytes += count <= 0 ? 0 : Math.round(((s.bytes - FILE_HDR) * unread) / count);
      }
      subscribers.push({ name, checkpoint, lagRecords: Math.max(0, lastSeq - checkpoint), lagBytes });
    }
    return {
      segments: segs.length,
      bytes,
      firstSeq: n?.firstSeq ?? segs[0]?.firstSeq ?? lastSeq + 1,
      lastSeq,
      cap: n?.cap ?? null,
      alarmBytes: n?.alarmBytes ?? null,
      alarm: n !== null && n.bytes >= n.alarmBytes,
      atCap: n?.atCap ?? null,
      subscribers,
      native: n,
      drops: n?.drops ?? [],
      damagedSkipped: this.damagedSkipped,
    };
  }
}
