// Where an aggregated record goes and what its line says: Log_Aggregator's Logfile pattern
// (Momentum's "%Y/%m/%d/%{l}/%{n}") expanded from the record's own time in UTC, its log name and
// the node it came from, and the one JSON line written for it. Pure; main thread (the aggregator).
import path from 'node:path';
import type { JournalRecord } from '../mmove/journal.js';

export interface LogfileFields {
  /** ms since the epoch; the date fields are its UTC date. */
  time: number;
  /** %{l}: the log's name ("events"). */
  log: string;
  /** %{n}: the node the record came from. */
  node: string;
}

const two = (n: number): string => String(n).padStart(2, '0');

/**
 * The file for a record, relative to the aggregator's Directory. %Y %m %d %H are the UTC year,
 * month, day and hour of `time`, %{l} the log, %{n} the node, %% a "%". Throws on any other
 * escape, an absolute pattern or one that climbs out of the directory ("..").
 */
export function logfilePath(pattern: string, f: LogfileFields): string {
  const d = new Date(f.time);
  const out = pattern.replace(/%(\{[a-z]\}|.)/g, (all, k: string) => {
    switch (k) {
      case 'Y': return String(d.getUTCFullYear()).padStart(4, '0');
      case 'm': return two(d.getUTCMonth() + 1);
      case 'd': return two(d.getUTCDate());
      case 'H': return two(d.getUTCHours());
      case '{l}': return f.log;
      case '{n}': return f.node;
      case '%': return '%';
      default: throw new Error(`Logfile: unknown escape ${all} in ${JSON.stringify(pattern)} (known: %Y %m %d %H %{l} %{n} %%)`);
    }
  });
  const norm = path.posix.normalize(out);
  if (out.startsWith('/') || norm === '.' || norm.startsWith('../') || norm === '..' || norm.endsWith('/')) {
    throw new Error(`Logfile: ${JSON.stringify(pattern)} must name a file inside the Directory, got ${JSON.stringify(out)}`);
  }
  return norm;
}

/** Checks a pattern once (at start) with a sample record: the error logfilePath would throw, or null. */
export function logfileError(pattern: string): string | null {
  if (!pattern.includes('%{n}')) return `Logfile ${JSON.stringify(pattern)} must contain %{n}: each member's records need their own file`;
  if (!pattern.includes('%{l}')) return `Logfile ${JSON.stringify(pattern)} must contain %{l}: each log needs its own file`;
  try {
    logfilePath(pattern, { time: 0, log: 'events', node: 'n' });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * The line for one record: {"node","seq","time","id"?,"record"} and a newline. The record is the
 * journal's JSON, re-serialised so the line holds no newline; bytes that are not JSON are kept as
 * text in "record_text" rather than lost.
 */
export function recordLine(node: string, r: JournalRecord): string {
  const text = r.data.toString('utf8');
  let record: unknown;
  let json = true;
  try {
    record = JSON.parse(text);
  } catch {
    json = false;
  }
  const head = { node, seq: r.seq, time: r.time, ...(r.id !== undefined ? { id: r.id } : {}) };
  return JSON.stringify(json ? { ...head, record } : { ...head, record_text: text }) + '\n';
}
