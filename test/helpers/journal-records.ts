// Reads a spool's whole event journal back as decoded records, for tests that check what the
// journal holds after the node stopped (the kill tests: one record per acknowledged message).
// Test main thread; synchronous reads of the journal's files (the node must not hold the spool
// open for writing while a test relies on the result).
import { decodeEvent } from '../../src/events/codec.js';
import type { EventRecord } from '../../src/events/records.js';
import { EventJournal } from '../../src/spool/index.js';

/**
 * Every record of the event journal of the spool in `dir`, oldest first, each decoded with its
 * frame's id, seq and time and `node` as its node.
 */
export function journalRecords(dir: string, node: string): EventRecord[] {
  const journal = new EventJournal({ directory: dir });
  const out: EventRecord[] = [];
  for (let from = 1; ;) {
    const r = journal.read(from, 10_000);
    for (const rec of r.records) out.push(decodeEvent(rec.data, { ...(rec.id !== null ? { id: rec.id } : {}), seq: rec.seq, time: rec.time, node }));
    if (r.records.length === 0 || r.next <= from) break;
    from = r.next;
  }
  return out;
}
