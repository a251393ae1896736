// A member's event journal for the aggregation tests: appends JSON-lines records to the file that
// the JSON-lines stand-in journal (src/mmove/journal-file.ts) serves, in one process or in a vipmta
// started with VIPMTA_TEST_JOURNAL_FILE. Test code only.
import fs from 'node:fs';

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
