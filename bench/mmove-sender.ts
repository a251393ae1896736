// The sending node of bench/mmove.ts, run inside the sender's network namespace: fills a fresh
// durable spool with N messages (not timed), then moves all of them with the real MmoveClient to
// the receiver's ECCluster_Listener and marks the moved ones done, as the queue manager will.
// Prints one JSON line per phase. Main thread of its own process; the spool read per message is
// the only blocking call.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    root: { type: 'string' },
    dir: { type: 'string' },
    peer: { type: 'string' },
    size: { type: 'string' },
    count: { type: 'string' },
    connections: { type: 'string', default: '4' },
    batch: { type: 'string', default: '10000' },
    secret: { type: 'string', default: 'bench-secret' },
    tls: { type: 'boolean', default: false },
  },
});
const root = a.root!;
const dist = (p: string): string => pathToFileURL(path.join(root, 'dist', p)).href;
// The daemon's own build (dist/, from `npm run build:ts`): the same code a worker runs.
const { Spool } = (await import(dist('spool/index.js'))) as typeof import('../src/spool/index.js');
const { MmoveClient } = (await import(dist('mmove/client.js'))) as typeof import('../src/mmove/client.js');
type MmoveItem = import('../src/mmove/client.js').MmoveItem;

const size = Number(a.size);
const count = Number(a.count);
const [host, port] = [a.peer!.slice(0, a.peer!.lastIndexOf(':')), Number(a.peer!.slice(a.peer!.lastIndexOf(':') + 1))];

/** A body already in wire form: 76 letters and CRLF per line, a per-message first line. */
function body(i: number): Buffer {
  const b = Buffer.alloc(size);
  for (let p = 0; p < size; p++) b[p] = 97 + ((p * 7 + i) % 26);
  for (let p = 76; p < size - 2; p += 78) {
    b[p] = 13;
    b[p + 1] = 10;
  }
  b.write(`Message-Id: <${i}@bench>`, 0, 'latin1');
  b[size - 2] = 13;
  b[size - 1] = 10;
  return b;
}

const spool = Spool.open({ directory: a.dir!, nodeId: 'node-a' });
const writer = spool.writer();
const items: MmoveItem[] = [];
const t0 = process.hrtime.bigint();
const pending: Promise<void>[] = [];
for (let i = 0; i < count; i++) {
  const w = writer.begin(undefined, size);
  w.append(body(i));
  const rcpt = [`r${i % 97}@dest${i % 13}.example`];
  pending.push(
    w.commit(Buffer.from(JSON.stringify({ v: 1, from: 'bench@src.example', rcpt }))).then(({ id }) => {
      items.push({ id, from: 'bench@src.example', rcpt, binding: 'b1', bindingGroup: 'default', arrival: Date.now(), attempts: 0, nextAttempt: 0, hops: 0 });
    }),
  );
  if (pending.length >= 2000) await Promise.all(pending.splice(0));
}
await Promise.all(pending);
console.log(JSON.stringify({ phase: 'filled', messages: items.length, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));

const client = new MmoveClient({ nodeName: 'node-a', secret: a.secret!, reader: spool, connectionsPerPeer: Number(a.connections), tls: a.tls });
const batch = Number(a.batch);
const cpu0 = process.cpuUsage();
const t1 = process.hrtime.bigint();
let moved = 0;
let bytes = 0;
let failed = 0;
let duplicates = 0;
const done: Promise<void>[] = [];
for (let i = 0; i < items.length; i += batch) {
  const slice = items.slice(i, i + batch);
  const rs = await client.send({ host, port }, slice);
  const ok = rs.filter((r) => r.ok).map((r) => r.id);
  moved += ok.length;
  failed += rs.length - ok.length;
  duplicates += rs.filter((r) => r.duplicate).length;
  // The queue manager marks exactly the 250'd ones done; it is part of the cost of a move.
  done.push(spool.markDone(ok));
}
await Promise.all(done);
const seconds = Number(process.hrtime.bigint() - t1) / 1e9;
const cpu = process.cpuUsage(cpu0);
bytes = client.stats().movedBytes;
await client.close();
await spool.close();
console.log(JSON.stringify({ phase: 'moved', messages: moved, failed, duplicates, bytes, seconds, senderCpuSeconds: (cpu.user + cpu.system) / 1e6 }));
