// kill -9 of a process that commits messages with events and marks some done with events: every
// acknowledged commit must have its reception record on reopen (same queue id), and every done-mark
// that resolved its delivery record. The record is durable no later than the event (issue 15).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { EventJournal, Spool } from '../../src/spool/index.js';
import { distSpool, distSpoolUrl, root, tempDir } from '../unit/spool/helpers.js';

// The child commits 8 messages at a time, each with a "received" event, and prints "ack <id>" once
// a commit resolved; every third one is then marked done with a "delivered" event and printed
// "done <id>" after that resolved. Half the rounds use a tiny event segment size (many rolls).
const child = `
  import { Spool } from ${JSON.stringify(distSpoolUrl)};
  const small = process.argv[2] === 'small';
  const spool = Spool.open({ directory: process.argv[1], nodeId: 'evcrash', segmentSize: 1 << 20,
    eventSegmentSize: small ? 8192 : 16 << 20 });
  const w = spool.writer();
  let n = 0;
  for (;;) {
    await Promise.all(Array.from({ length: 8 }, async () => {
      const seq = n++;
      const m = w.begin(Buffer.from('{}'));
      m.append(Buffer.alloc(100 + (seq * 7919) % 20000, 97));
      const { id } = await m.commit(undefined, Buffer.from(JSON.stringify({ type: 'received', seq })));
      process.stdout.write('ack ' + id + '\\n');
      if (seq % 3 === 0) {
        await spool.markDone([id], [{ id, data: Buffer.from(JSON.stringify({ type: 'delivered', seq })) }]);
        process.stdout.write('done ' + id + '\\n');
      }
    }));
  }`;

let dir: string;
beforeAll(() => {
  if (!fs.existsSync(distSpool)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  dir = tempDir('events-crash');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function runAndKill(afterMs: number, mode: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', child, dir, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | null = null;
    p.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      timer ??= setTimeout(() => p.kill('SIGKILL'), afterMs);
    });
    p.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    p.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(out);
      else reject(new Error(`child exited ${code}: ${err}`));
    });
  });
}

describe('event journal under kill -9', () => {
  it('has the event record of every acknowledged commit and every resolved done-mark after kill -9', async () => {
    const acked = new Set<string>();
    const done = new Set<string>();
    let lastSeq = 0;
    for (let round = 0; round < 10; round++) {
      const out = await runAndKill(20 + Math.floor(Math.random() * 300), round % 2 === 0 ? 'small' : 'large');
      const lines = out.split('\n');
      lines.pop(); // a line cut short by the kill has no newline yet: it was not acknowledged to us
      for (const line of lines) {
        const [kind, id] = line.split(' ');
        if (kind === 'ack' && id !== undefined && id.length > 0) acked.add(id);
        if (kind === 'done' && id !== undefined && id.length > 0) done.add(id);
      }
      const spool = Spool.open({ directory: dir, nodeId: 'verify', copyForwardAfterMs: 0 });
      try {
        expect(spool.recoveryEvents.filter((e) => e.kind === 'corrupt')).toEqual([]);
        const received = new Set<string>();
        const delivered = new Set<string>();
        const j = new EventJournal({ directory: dir });
        let next = 1;
        let prev = 0;
        for (;;) {
          const r = j.read(next, 1000);
          if (r.records.length === 0) break;
          for (const x of r.records) {
            expect(x.seq).toBeGreaterThan(prev); // strictly increasing, across rounds and segments
            prev = x.seq;
            const t = (JSON.parse(x.data.toString()) as { type: string }).type;
            (t === 'received' ? received : delivered).add(x.id!);
          }
          next = r.next;
        }
        expect(prev).toBeGreaterThanOrEqual(lastSeq);
        lastSeq = prev;
        for (const id of acked) expect(received.has(id), `acknowledged ${id} has no reception record (round ${round})`).toBe(true);
        for (const id of done) expect(delivered.has(id), `done ${id} has no delivery record (round ${round})`).toBe(true);
        // The other way round is allowed: a kill between the batch's event write and its done-mark
        // write leaves a delivery record for a message still queued. The record is never later than
        // the done-mark (the order the issue asks for); the message goes out again after the
        // restart, and that delivery gets its own record (at least once, as the delivery itself).
      } finally {
        await spool.close();
      }
    }
    expect(acked.size).toBeGreaterThan(100);
    expect(done.size).toBeGreaterThan(20);
  }, 180_000);
});
