// The event journal's console commands (issue 15, docs/events.md "Reading the journal"): log tail,
// log read --subscriber, log subscribers, log subscribe, log unsubscribe. The daemon registers them
// on the main thread over its open spool; `vipmta log` runs the same table in its own process over
// a spool directory when no node answers. Handlers block on small synchronous file reads of the
// journal and on a checkpoint's fsync (subscribe, unsubscribe, --ack).
import type { CommandTable } from '../control/commands.js';
import { errorCode, ErrorCode, VipError } from '../errors.js';
import { decodeEvent } from '../events/codec.js';
import { formatEvent } from '../events/text.js';
import { EventJournal, type EventJournalStats, type EventReadResult, type EventRecord } from '../spool/events.js';

export interface LogCommandsHost {
  /** The spool directory whose events/ is read; null: this node has no spool. */
  spoolDirectory(): string | null;
  /** Nodename: the node of records whose payload names none. */
  nodeName(): string;
  /** True in the daemon (the spool is open in this process: durable head, trimming after --ack). */
  readonly live: boolean;
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/** Most records one command prints (the console's answer is one message). */
export const MAX_RECORDS = 10_000;
const TAIL_DEFAULT = 20;
const READ_DEFAULT = 100;

function bad(message: string): VipError {
  return new VipError(ErrorCode.CONTROL_BAD_REQUEST, message);
}

function count(v: string | undefined, flag: string, usage: string): number {
  if (v === undefined || !/^\d{1,6}$/.test(v) || Number(v) < 1 || Number(v) > MAX_RECORDS) throw bad(`${flag} takes a number from 1 to ${MAX_RECORDS}; usage: ${usage}`);
  return Number(v);
}

/**
 * One record as a line (no newline): formatEvent's text, or the decoded record as JSON. A record
 * that does not decode (damaged payload, a type or version this vipmta does not know) gives a line
 * that says so with its seq and the raw payload, never an exception.
 */
export function renderRecord(r: EventRecord, node: string, json: boolean): string {
  try {
    const rec = decodeEvent(r.data, { ...(r.id !== null ? { id: r.id } : {}), seq: r.seq, time: r.time, node });
    return json ? JSON.stringify(rec) : formatEvent(rec);
  } catch (err) {
    const code = errorCode(err) ?? ErrorCode.EVENT_INVALID;
    const message = (err as Error).message;
    const raw = r.data.toString('utf8');
    if (json) return JSON.stringify({ seq: r.seq, time: r.time, node, ...(r.id !== null ? { id: r.id } : {}), error: code, message, raw });
    const what = code === ErrorCode.EVENT_UNKNOWN ? 'record this vipmta cannot read (a newer writer?)' : 'damaged record';
    const shown = raw.length > 300 ? `${JSON.stringify(raw.slice(0, 300))}...` : JSON.stringify(raw);
    return `${new Date(r.time).toISOString()} ${node} seq ${r.seq} ${r.id ?? '-'}: ${what}: ${message}; payload ${shown}`;
  }
}

/** The line for a range of seqs not on disk any more (dropped at the cap, trimmed, damaged). */
export function renderMissing(range: [number, number], json: boolean): string {
  if (json) return JSON.stringify({ missing: range });
  const seqs = range[0] === range[1] ? `seq ${range[0]}` : `seqs ${range[0]}-${range[1]}`;
  return `${seqs}: not in the journal (dropped at the cap, trimmed, or in a damaged frame)`;
}

function render(res: EventReadResult, node: string, json: boolean): string[] {
  const lines: string[] = [];
  if (res.missing !== undefined) lines.push(renderMissing(res.missing, json));
  for (const r of res.records) lines.push(renderRecord(r, node, json));
  return lines;
}

const out = (lines: string[]): string => (lines.length === 0 ? '' : lines.join('\n') + '\n');

/** `log subscribers`: the journal's size and seqs, its cap and alarm, each subscriber's lag. */
export function formatJournalStats(st: EventJournalStats): string {
  const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
  const lines = [
    `journal: ${st.segments} segment(s), ${st.bytes} bytes (${mib(st.bytes)}), seq ${st.lastSeq === 0 ? '-' : `${st.firstSeq}-${st.lastSeq}`}`,
    st.cap === null
      ? `cap: unknown (the node is not running: cap and alarm come from the open spool)`
      : `cap: ${st.cap} bytes (${mib(st.cap)}), alarm at ${st.alarmBytes} bytes, at cap: ${st.atCap}; alarm: ${st.alarm ? 'YES (a subscriber is falling behind)' : 'no'}`,
  ];
  if (st.drops.length > 0) lines.push(`dropped at the cap: ${st.drops.map((d) => `${d.fromSeq}-${d.toSeq} (${d.subscribers.join(', ') || 'no subscriber'})`).join('; ')}`);
  if (st.subscribers.length === 0) lines.push('no subscribers');
  else {
    const rows = [['Subscriber', 'Checkpoint', 'Lag records', 'Lag bytes'], ...st.subscribers.map((s) => [s.name, String(s.checkpoint), String(s.lagRecords), String(s.lagBytes)])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) lines.push(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  }
  return out(lines);
}

/** Registers the `log ...` commands (`log aggregator` is node/log-aggregator.ts's). */
export function addLogCommands(t: CommandTable, host: LogCommandsHost): void {
  // One reader kept across commands: its cursor makes `log tail -f`'s next read start where the
  // last one stopped instead of scanning the segment again.
  let journal: { dir: string; j: EventJournal } | null = null;
  const open = (): EventJournal => {
    const dir = host.spoolDirectory();
    if (dir === null) throw new VipError(ErrorCode.CONTROL_NOT_FOUND, 'this node keeps no event journal (no spool)');
    if (journal?.dir !== dir) journal = { dir, j: new EventJournal({ directory: dir, ...(host.logger !== undefined ? { logger: host.logger } : {}) }) };
    return journal.j;
  };

  const tailUsage = 'log tail [-n N] [--json] [--after SEQ] [--next]';
  t.add(tailUsage, 'the last N event records (default 20), text or JSON lines; --after SEQ: up to N records after SEQ; --next: a last line "next SEQ" to read on from (vipmta log tail -f)', (args) => {
    let n: number | null = null;
    let json = false;
    let after: number | null = null;
    let next = false;
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '-n') n = count(args[++i], '-n', tailUsage);
      else if (a === '--json') json = true;
      else if (a === '--next') next = true;
      else if (a === '--after') {
        const v = args[++i];
        if (v === undefined || !/^\d{1,15}$/.test(v)) throw bad(`--after takes a sequence number; usage: ${tailUsage}`);
        after = Number(v);
      } else throw bad(`unexpected argument "${a}"; usage: ${tailUsage}`);
    }
    const j = open();
    let res: EventReadResult;
    if (after !== null) {
      res = j.read(after + 1, n ?? MAX_RECORDS);
    } else {
      const st = j.stats();
      const want = n ?? TAIL_DEFAULT;
      const from = Math.max(st.firstSeq, st.lastSeq - want + 1, 1);
      res = j.read(from, want);
    }
    const lines = render(res, host.nodeName(), json);
    if (next) lines.push(json ? JSON.stringify({ next: res.next }) : `next ${res.next}`);
    return out(lines);
  });

  const readUsage = 'log read [--subscriber NAME] [--max N] [--json] [--ack]';
  t.add(readUsage, 'records after subscriber NAME\'s checkpoint (--subscriber is required; default --max 100); --ack then moves its checkpoint to the last one printed', async (args) => {
    let name: string | null = null;
    let max = READ_DEFAULT;
    let json = false;
    let ack = false;
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '--subscriber') {
        name = args[++i] ?? null;
        if (name === null) throw bad(`--subscriber takes a name; usage: ${readUsage}`);
      } else if (a === '--max') max = count(args[++i], '--max', readUsage);
      else if (a === '--json') json = true;
      else if (a === '--ack') ack = true;
      else throw bad(`unexpected argument "${a}"; usage: ${readUsage}`);
    }
    if (name === null) throw bad(`--subscriber NAME is required; usage: ${readUsage}`);
    const j = open();
    const from = checkpointOf(j, name);
    const res = j.readFor(name, max);
    const lines = render(res, host.nodeName(), json);
    // The last seq printed: a record, or the end of a missing range printed alone.
    const through = res.next - 1;
    if (ack && through > from) {
      await j.ack(name, through);
    }
    if (!json) {
      const span = res.records.length === 0 ? 'no new records' : `${res.records.length} record(s), seq ${res.records[0]!.seq}-${res.records[res.records.length - 1]!.seq}`;
      const ck = ack && through > from
        ? `checkpoint moved to ${through}${host.live ? '' : ' (the node is not running: the segments this frees are trimmed when it next trims)'}`
        : `checkpoint ${from}${res.records.length > 0 ? ' (not moved: --ack moves it)' : ''}`;
      lines.push(`-- ${name}: ${span}; ${ck}`);
    }
    return out(lines);
  });

  t.add('log subscribers [--json]', 'the event journal\'s subscribers (checkpoint, lag in records and bytes), its segments, bytes, first and last seq, cap and alarm', (args) => {
    const st = open().stats();
    if (args[0] === '--json') {
      const { native: _n, ...rest } = st;
      return JSON.stringify(rest) + '\n';
    }
    if (args.length > 0) throw bad('usage: log subscribers [--json]');
    return formatJournalStats(st);
  });

  const subUsage = 'log subscribe NAME [--from start|end]';
  t.add(subUsage, 'add a subscriber to the event journal: segments are kept until it has read them; --from start: everything still on disk, end (default): what comes next', (args) => {
    let from: 'start' | 'end' = 'end';
    if (args.length === 3 && args[1] === '--from' && (args[2] === 'start' || args[2] === 'end')) from = args[2];
    else if (args.length !== 1) throw bad(`usage: ${subUsage}`);
    const name = args[0]!;
    const j = open();
    const existed = j.subscribers().get(name);
    let seq: number;
    try {
      seq = j.subscribe(name, { from });
    } catch (err) {
      if (err instanceof RangeError) throw bad(err.message);
      throw err;
    }
    return existed !== undefined ? `${name} is already subscribed; checkpoint ${seq} kept\n` : `subscribed ${name}; checkpoint ${seq} (it reads from seq ${seq + 1})\n`;
  });

  t.add('log unsubscribe NAME', 'remove a subscriber: the segments only it held back can be trimmed', (args) => {
    if (args.length !== 1) throw bad('usage: log unsubscribe NAME');
    const j = open();
    checkpointOf(j, args[0]!);
    j.unsubscribe(args[0]!);
    return `unsubscribed ${args[0]}\n`;
  });
}

function checkpointOf(j: EventJournal, name: string): number {
  try {
    return j.checkpoint(name);
  } catch (err) {
    if (err instanceof RangeError) throw bad(err.message);
    throw new VipError(ErrorCode.CONTROL_NOT_FOUND, `no subscriber ${name} (log subscribers lists them; log subscribe ${name} adds it)`);
  }
}
