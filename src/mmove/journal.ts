// Journal reading over the cluster link (issue 15, docs/events.md "Aggregation"): the interface a
// node's event journal offers the ECCluster_Listener (JournalSource), and the XJOURNAL wire both
// ends share: the command lines, the reply line and the length-framed batch after it, and
// SpoolJournalSource, the node's real journal (src/spool/events.ts) behind that interface. The wire
// functions are pure, any thread; SpoolJournalSource runs in the worker threads that serve the
// ECCluster_Listener and blocks on short synchronous file reads (one batch) and an ack's fsync.
//
// After XMMOVE authenticated the peer (wire.ts: the HMAC keyed by Cluster_Secret, inside TLS-PSK
// when Mmove_TLS is on), it may send:
//
//   XJOURNAL READ <from-seq> <max>
//     250 2.0.0 JOURNAL count=<n> bytes=<b> first=<first> next=<next> last=<last>
//     then exactly <b> octets: <n> records, each
//       <seq> SP <time-ms> SP <id as xtext, "-" when none> SP <length> CRLF <length octets> CRLF
//   XJOURNAL ACK <subscriber> <seq>
//     250 2.0.0 Acked <subscriber> through <seq>
//
// Records come in ascending seq from the first one >= from-seq; `next` is the from-seq of the next
// read, `first` the oldest seq the journal still holds (from-seq below it: records were trimmed
// before this reader got them), `last` the newest written (0: none yet). A batch holds at most
// min(max, MAX_BATCH_RECORDS) records and about MAX_BATCH_BYTES octets (always one record at
// least). Refusals: 530 5.7.0 before XMMOVE, 554 5.3.3 when the node keeps no journal, 501 5.5.4
// for a malformed command, 451 4.3.0 when the journal failed (the reader retries later).
import type { EventJournal } from '../spool/events.js';
import { xtextDecode, xtextEncode } from './wire.js';

/** One journal record: `data` is the record's bytes as written (a JSON event record). */
export interface JournalRecord {
  /** Monotonic per node, from 1. */
  seq: number;
  /** ms since the epoch, when the record was written. */
  time: number;
  /** The event's record id, if it has one (receivers deduplicate on it). */
  id?: string;
  data: Buffer;
}

export interface JournalBatch {
  /** Ascending seq, each >= the fromSeq asked for (possibly fewer than asked, possibly none). */
  records: JournalRecord[];
  /** The fromSeq of the next read: the last record's seq + 1, or fromSeq (or `first`) when none. */
  next: number;
  /** The oldest seq the journal still holds (the next one to be written when it holds none). */
  first: number;
  /** The newest seq written so far; 0 when none. */
  last: number;
}

/**
 * What the ECCluster_Listener reads a node's event journal through. The host (worker.ts) injects
 * it; null when the node keeps no journal. Either method may answer synchronously (a short file
 * read: keep `max` small) or with a promise (a read on another thread); it must not block long:
 * the listener's sessions share the thread.
 */
export interface JournalSource {
  /** Up to `max` records with seq >= fromSeq, oldest first. */
  read(fromSeq: number, max: number): JournalBatch | Promise<JournalBatch>;
  /** Subscriber `subscriber` has every record through `seq` durably: the journal may trim them. */
  ack(subscriber: string, seq: number): void | Promise<void>;
}

/** EHLO keyword of a listener that knows XJOURNAL. */
export const JOURNAL_KEYWORD = 'XJOURNAL';
/** Most records in one batch, whatever the reader asks for. */
export const MAX_BATCH_RECORDS = 1000;
/** A batch stops growing once its framed records pass this many octets. */
export const MAX_BATCH_BYTES = 1024 * 1024;
/** Subscriber names: what Nodename allows, with a prefix ("aggregator-n1"). */
const SUBSCRIBER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SEQ = /^\d{1,15}$/;

export type JournalCommand =
  | { verb: 'READ'; from: number; max: number }
  | { verb: 'ACK'; subscriber: string; seq: number };

/** The arguments of XJOURNAL; null when malformed. */
export function parseJournalCommand(args: string): JournalCommand | null {
  const p = args.trim().split(/ +/);
  const verb = p[0]?.toUpperCase();
  if (verb === 'READ' && p.length === 3 && SEQ.test(p[1]!) && SEQ.test(p[2]!)) {
    const max = Number(p[2]);
    return max >= 1 ? { verb, from: Number(p[1]), max: Math.min(max, MAX_BATCH_RECORDS) } : null;
  }
  if (verb === 'ACK' && p.length === 3 && SUBSCRIBER.test(p[1]!) && SEQ.test(p[2]!)) return { verb, subscriber: p[1]!, seq: Number(p[2]) };
  return null;
}

export function readCommand(from: number, max: number): string {
  return `XJOURNAL READ ${from} ${max}`;
}

export function ackCommand(subscriber: string, seq: number): string {
  if (!SUBSCRIBER.test(subscriber)) throw new TypeError(`journal: subscriber name ${JSON.stringify(subscriber)} is not valid`);
  return `XJOURNAL ACK ${subscriber} ${seq}`;
}

function idField(id: string | undefined): string {
  if (id === undefined) return '-';
  return id === '-' ? '+2D' : xtextEncode(id);
}

/**
 * The reply line and the framed records of a batch, cut to the byte bound (the first record is
 * always kept, so a batch always advances). `next` follows the records actually sent.
 */
export function encodeBatch(batch: JournalBatch, maxBytes = MAX_BATCH_BYTES): { line: string; body: Buffer; count: number } {
  const parts: Buffer[] = [];
  let bytes = 0;
  let count = 0;
  let next = batch.next;
  for (const r of batch.records) {
    const head = Buffer.from(`${r.seq} ${r.time} ${idField(r.id)} ${r.data.length}\r\n`, 'latin1');
    const size = head.length + r.data.length + 2;
    if (count > 0 && bytes + size > maxBytes) {
      next = r.seq;
      break;
    }
    parts.push(head, r.data, CRLF);
    bytes += size;
    count++;
  }
  const line = `250 2.0.0 JOURNAL count=${count} bytes=${bytes} first=${batch.first} next=${next} last=${batch.last}`;
  return { line, body: Buffer.concat(parts, bytes), count };
}

const CRLF = Buffer.from('\r\n');
const HEAD = /^JOURNAL count=(\d+) bytes=(\d+) first=(\d+) next=(\d+) last=(\d+)$/;

/** The counts of a READ's 250 reply text (after "250 2.0.0 "); null when it is not one. */
export function parseBatchHead(text: string): { count: number; bytes: number; first: number; next: number; last: number } | null {
  const m = HEAD.exec(text.trim());
  if (m === null) return null;
  return { count: Number(m[1]), bytes: Number(m[2]), first: Number(m[3]), next: Number(m[4]), last: Number(m[5]) };
}

/** The records framed in `body` (exactly `count` of them); throws on any framing error. */
export function decodeBatchBody(body: Buffer, count: number): JournalRecord[] {
  const out: JournalRecord[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const nl = body.indexOf(CRLF, pos);
    if (nl < 0) throw new Error(`journal batch: record ${i + 1} of ${count} has no header line`);
    const m = /^(\d{1,15}) (\d{1,15}) (\S+) (\d{1,10})$/.exec(body.toString('latin1', pos, nl));
    if (m === null) throw new Error(`journal batch: record ${i + 1} of ${count} has a malformed header`);
    const len = Number(m[4]);
    const start = nl + 2;
    if (start + len + 2 > body.length || body[start + len] !== 0x0d || body[start + len + 1] !== 0x0a) {
      throw new Error(`journal batch: record ${i + 1} of ${count} is cut short or not followed by CRLF`);
    }
    let id: string | undefined;
    if (m[3] !== '-') {
      const d = xtextDecode(m[3]!);
      if (d === null) throw new Error(`journal batch: record ${i + 1} of ${count} has a malformed id`);
      id = d;
    }
    out.push({ seq: Number(m[1]), time: Number(m[2]), ...(id !== undefined ? { id } : {}), data: body.subarray(start, start + len) });
    pos = start + len + 2;
  }
  if (pos !== body.length) throw new Error(`journal batch: ${body.length - pos} octets after the last record`);
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.seq <= out[i - 1]!.seq) throw new Error('journal batch: records out of order');
  }
  return out;
}

/**
 * The spool's event journal as a JournalSource. A read is EventJournal.read (synchronous: at most
 * MAX_BATCH_RECORDS records, about 1 MiB, from the page cache as a rule) plus the journal's stats
 * for `first` and `last`. An ack for a subscriber the journal does not have yet creates it (from the
 * start: its checkpoint is then the ack): an aggregator needs no step on the member, though an
 * operator who wants nothing trimmed before its first ack creates it beforehand
 * (`vipmta log subscribe aggregator-<node> --from start`).
 */
export class SpoolJournalSource implements JournalSource {
  constructor(private readonly journal: Pick<EventJournal, 'read' | 'stats' | 'subscribe' | 'ack' | 'subscribers'>) {}

  read(fromSeq: number, max: number): JournalBatch {
    const res = this.journal.read(fromSeq, Math.min(max, MAX_BATCH_RECORDS));
    const st = this.journal.stats();
    const records: JournalRecord[] = res.records.map((r) => (r.id === null ? { seq: r.seq, time: r.time, data: r.data } : { seq: r.seq, time: r.time, id: r.id, data: r.data }));
    const last = Math.max(st.lastSeq, records[records.length - 1]?.seq ?? 0);
    return { records, next: res.next, first: st.firstSeq, last };
  }

  async ack(subscriber: string, seq: number): Promise<void> {
    if (!this.journal.subscribers().has(subscriber)) this.journal.subscribe(subscriber, { from: 'start' });
    await this.journal.ack(subscriber, seq);
  }
}
