// Where a spool's start-up recovery spends its time and memory, part by part: Spool.open (the native
// scan and index), recover() (one JS record with an envelope Buffer per message), and what RSS keeps
// after those records are dropped. Main thread of a plain `node --expose-gc`; blocks on the spool.
// Run (after `npx tsc -p tsconfig.json`; a spool filled by bench/queue-recovery.ts --keep or --dir):
//   node --expose-gc bench/recovery-parts.mjs /tmp/perf18/qr-1m/spool
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const { Spool } = await import(pathToFileURL(path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'dist', 'spool', 'index.js')).href);
const directory = process.argv[2];
if (directory === undefined) throw new Error('usage: node --expose-gc bench/recovery-parts.mjs SPOOL_DIRECTORY');
const mb = () => { const m = process.memoryUsage(); return `rss ${(m.rss/2**20).toFixed(0)} heapUsed ${(m.heapUsed/2**20).toFixed(0)} external ${(m.external/2**20).toFixed(0)} arrayBuffers ${(m.arrayBuffers/2**20).toFixed(0)} MiB`; };
gc(); console.log('start', mb());
let t = performance.now();
const s = Spool.open({ directory, nodeId: 'bench' });
gc(); console.log(`open (scan) ${(performance.now()-t).toFixed(0)} ms`, mb());
t = performance.now();
let r = s.recover();
console.log(`recover() ${(performance.now()-t).toFixed(0)} ms, ${r.length} records`, mb());
gc(); console.log('after gc, records live', mb());
console.log('one record keys:', Object.keys(r[0]), typeof r[0].envelope, r[0].envelope?.length);
r = null; gc(); gc(); console.log('records dropped', mb());
await s.close();
