// What the event journal says was delivered that the spool does not know yet. A delivery record
// is made durable before its message's done-mark (the record is as durable as the mail), so a
// crash between the two leaves a message the spool recovers as not done whose recipients the
// journal already records as delivered (or moved to a peer over #mmove). Delivering it again would
// send the receiver a second copy and write a second delivery record for one delivered message;
// recovery drops those recipients instead (intake.ts) and marks messages with none left done.
// Only the journal's tail can hold such records (the window is one done-mark batch, milliseconds),
// so only the tail is read. Main thread, at start-up; synchronous file reads, bounded by TAIL_RECORDS.

import { decodeEvent } from '../events/codec.js';
import type { EventJournal } from '../spool/index.js';

/** Records read back from the journal's end: at 10,000 records/s (a node delivering 5,000
 *  messages/s), the last 10 s, ~33 MB; far more than one done-mark batch. */
export const TAIL_RECORDS = 100_000;
/** Of those, only records this close to the last delivery record count (a done-mark follows its records within
 *  one turn of the event loop; minutes allow for a stalled disk). */
export const TAIL_WINDOW_MS = 10 * 60_000;

/** Queue id -> recipients the journal records as delivered or moved to a peer. */
export type Settled = ReadonlyMap<string, ReadonlySet<string>>;

/** Reads the journal's tail; records it cannot decode are skipped (the reader logs damaged frames). */
export function settledInJournal(journal: Pick<EventJournal, 'read' | 'lastSeq'>, max = TAIL_RECORDS, windowMs = TAIL_WINDOW_MS): Settled {
  const last = journal.lastSeq();
  const out = new Map<string, Set<string>>();
  if (last <= 0) return out;
  const found: { time: number; id: string; rcpt: string[] }[] = [];
  let latest = 0;
  for (let from = Math.max(1, last - max + 1); from <= last; ) {
    const r = journal.read(from, 5000);
    if (r.records.length === 0) break;
    for (const rec of r.records) {
      // Cheap filter before parsing: most records are neither.
      if (!rec.data.includes('"delivery"') && !rec.data.includes('"mmove_sent"')) continue;
      let e;
      try {
        e = decodeEvent(rec.data);
      } catch {
        continue;
      }
      // The record's own time (when the delivery happened), not the frame's: the same within a
      // batch, and what an operator reading the record sees.
      latest = Math.max(latest, e.time);
      if (e.type === 'delivery') found.push({ time: e.time, id: e.id, rcpt: [e.rcpt] });
      else if (e.type === 'mmove_sent') found.push({ time: e.time, id: e.id, rcpt: e.rcpt });
    }
    from = r.next;
  }
  for (const f of found) {
    if (f.time < latest - windowMs) continue;
    let s = out.get(f.id);
    if (s === undefined) out.set(f.id, (s = new Set()));
    for (const r of f.rcpt) s.add(r);
  }
  return out;
}
