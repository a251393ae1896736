// kill -9 of a process that is committing: every acknowledged message must come back exactly
// once and byte-identical, and every message marked done must stay done.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { Spool } from '../../src/spool/index.js';
import { distSpool, distSpoolUrl, root, sha256, tempDir } from '../unit/spool/helpers.js';

// The child commits 8 messages at a time (sizes 0.1-70 KiB) and prints "ack <id> <sha256>" once a
// commit resolved, then marks every fifth message done (flagged "will-be-done" in its ack line: it
// may be gone without a "done" line if the kill came in between) and prints "done <id>" after.
const child = `
  import { Spool } from ${JSON.stringify(distSpoolUrl)};
  import { createHash } from 'node:crypto';
  const spool = Spool.open({ directory: process.argv[1], nodeId: 'crash', segmentSize: 1 << 20 });
  const w = spool.writer();
  let n = 0;
  function body(seed) {
    const size = 100 + (seed * 7919) % 70000;
    const b = Buffer.alloc(size, 97 + (seed % 26));
    for (let i = 76; i < size - 3; i += 78) { b[i] = 13; b[i + 1] = 10; }
    b[size - 2] = 13; b[size - 1] = 10;
    return b;
  }
  for (;;) {
    const batch = Array.from({ length: 8 }, async () => {
      const seed = process.pid * 1000 + n++;
      const b = body(seed);
      const m = w.begin(Buffer.from(JSON.stringify({ seed })));
      for (let i = 0; i < b.length; i += 8192) m.append(b.subarray(i, i + 8192));
      const { id } = await m.commit();
      const last = seed % 5 === 0 ? ' will-be-done' : '';
      process.stdout.write('ack ' + id + ' ' + createHash('sha256').update(b).digest('hex') + last + '\\n');
      if (seed % 5 === 0) {
        await spool.markDone([id]);
        process.stdout.write('done ' + id + '\\n');
      }
    });
    await Promise.all(batch);
  }`;

let dir: string;
beforeAll(() => {
  if (!fs.existsSync(distSpool)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  dir = tempDir('crash');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function runAndKill(afterMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', child, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
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

describe('spool under kill -9', () => {
  it('keeps every acknowledged message across kill -9, exactly once and byte-identical', async () => {
    const acked = new Map<string, string>();
    const done = new Set<string>();
    const mayBeDone = new Set<string>();
    for (let round = 0; round < 12; round++) {
      const out = await runAndKill(20 + Math.floor(Math.random() * 400));
      for (const line of out.split('\n')) {
        const [kind, id, hash, flag] = line.split(' ');
        if (kind === 'ack' && id !== undefined && hash?.length === 64) {
          acked.set(id, hash);
          if (flag !== undefined) mayBeDone.add(id);
        }
        // A line cut short by the kill has no id/hash yet: it was not acknowledged to us.
        if (kind === 'done' && id !== undefined && line.endsWith(id)) done.add(id);
      }
      const spool = Spool.open({ directory: dir, nodeId: 'verify', copyForwardAfterMs: 0 });
      try {
        expect(spool.recoveryEvents.filter((e) => e.kind === 'corrupt')).toEqual([]);
        const rec = spool.recover();
        const ids = rec.map((r) => r.id);
        expect(new Set(ids).size).toBe(ids.length);
        const present = new Set(ids);
        for (const [id, hash] of acked) {
          if (done.has(id)) {
            expect(present.has(id), `done ${id} came back`).toBe(false);
            continue;
          }
          if (!present.has(id) && mayBeDone.has(id)) continue;
          expect(present.has(id), `acknowledged ${id} missing after round ${round}`).toBe(true);
          expect(sha256(spool.read(id))).toBe(hash);
        }
      } finally {
        await spool.close();
      }
    }
    expect(acked.size).toBeGreaterThan(100);
    expect(done.size).toBeGreaterThan(10);
  }, 120_000);
});
