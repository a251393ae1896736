// Writes records into a spool's real event journal from a helper process of its own: it opens the
// spool (Spool.open: the lock, recovery) from the compiled dist/, appends with Spool.appendEvents
// and closes, so it runs while no vipmta holds that spool. Until the lead's wiring makes a node
// journal its own mail, the tests feed a member's journal this way. Test code only.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './node-process.js';

const SCRIPT = `
const [mod, dir, node, from, to] = process.argv.slice(1);
const { Spool } = await import(mod);
const s = Spool.open({ directory: dir, nodeId: node, preallocate: 'none' });
try {
  for (let i = Number(from); i <= Number(to); i += 1000) {
    const batch = [];
    for (let k = i; k <= Math.min(Number(to), i + 999); k++) {
      batch.push({ id: 'ev-' + k, data: Buffer.from(JSON.stringify(journalRecord(node, k))) });
    }
    await s.appendEvents(batch);
  }
} finally {
  await s.close();
}
function journalRecord(node, k) { return ${journalRecordSource()}; }
`;

function journalRecordSource(): string {
  return "{ v: 1, type: 'address_taken', time: Date.now(), node, address: '10.' + ((k >> 16) & 255) + '.' + ((k >> 8) & 255) + '.' + (k & 255) }";
}

/** The address record k carries (what journalRecord writes). */
export function addressOf(k: number): string {
  return `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
}

/**
 * Appends records from..to (inclusive) to the event journal of the spool at `dir` (created if
 * needed), each an address_taken record of `node` with frame id "ev-<k>", in batches of 1000.
 * In a fresh journal record k gets seq k. Rejects if the helper fails (the spool locked by a node).
 */
export function appendJournal(dir: string, node: string, from: number, to: number): Promise<void> {
  const mod = pathToFileURL(path.join(repoRoot, 'dist', 'spool', 'index.js')).href;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT, mod, dir, node, String(from), String(to)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`journal writer exited ${code}: ${err}`))));
  });
}
