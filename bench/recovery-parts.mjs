// Where a spool's start-up recovery spends its time and memory, part by part: Spool.open (the native
// scan and index), recoverChunks() (columnar chunks: ids, one envelope Buffer, typed arrays), each
// chunk's envelopes decoded as intake does, and what RSS keeps after. Main thread of a plain
// `node --expose-gc`; blocks on the spool.
// Run (after `npx tsc -p tsconfig.json`; a spool filled by bench/queue-recovery.ts --keep or --dir):
//   node --expose-gc bench/recovery-parts.mjs /tmp/perf18/qr-1m/spool
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const dist = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'dist');
const { Spool } = await import(pathToFileURL(path.join(dist, 'spool', 'index.js')).href);
const { decodeEnvelope } = await import(pathToFileURL(path.join(dist, 'message', 'envelope.js')).href);
const directory = process.argv[2];
if (directory === undefined) throw new Error('usage: node --expose-gc bench/recovery-parts.mjs SPOOL_DIRECTORY');
const mb = () => { const m = process.memoryUsage(); return `rss ${(m.rss/2**20).toFixed(0)} heapUsed ${(m.heapUsed/2**20).toFixed(0)} external ${(m.external/2**20).toFixed(0)} arrayBuffers ${(m.arrayBuffers/2**20).toFixed(0)} MiB`; };
gc(); console.log('start', mb());
let t = performance.now();
const s = Spool.open({ directory, nodeId: 'bench' });
gc(); console.log(`open (scan) ${(performance.now()-t).toFixed(0)} ms`, mb());
t = performance.now();
let n = 0;
let chunks = 0;
for (const c of s.recoverChunks()) { n += c.ids.length; chunks++; }
console.log(`recoverChunks() ${(performance.now()-t).toFixed(0)} ms, ${n} messages in ${chunks} chunks`, mb());
t = performance.now();
let decoded = 0;
for (const c of s.recoverChunks()) for (let i = 0; i < c.ids.length; i++) if (decodeEnvelope(c.envelopes, c.envOffsets[i], c.envOffsets[i + 1]) !== null) decoded++;
console.log(`recoverChunks() + decodeEnvelope ${(performance.now()-t).toFixed(0)} ms, ${decoded} decoded`, mb());
gc(); gc(); console.log('after gc', mb());
await s.close();
