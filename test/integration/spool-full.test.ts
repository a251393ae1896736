// A full disk: commits are refused with ERR_SPOOL_FULL, nothing partial stays behind, and the
// spool accepts again once space returns. Needs CAP_SYS_ADMIN (mounts a 2 MiB tmpfs): fails, never
// skips, without it (test/helpers/preconditions.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Spool } from '../../src/spool/index.js';
import { requireCapabilities, requireCommand } from '../helpers/preconditions.js';
import { tempDir, wireBody } from '../unit/spool/helpers.js';

let mnt: string;
let mounted = false;

beforeAll(() => {
  requireCapabilities('mounts a 2 MiB tmpfs to fill', 'CAP_SYS_ADMIN');
  requireCommand('mount', 'umount');
  mnt = tempDir('full');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  mounted = true;
});
afterAll(() => {
  if (mounted) execFileSync('umount', ['-l', mnt]);
  if (mnt !== undefined) fs.rmSync(mnt, { recursive: true, force: true });
});

describe('spool on a full disk', () => {
  it('refuses commits with ERR_SPOOL_FULL and accepts again when space returns', async () => {
    const dir = path.join(mnt, 'spool');
    let spool = Spool.open({ directory: dir, nodeId: 'full', segmentSize: 256 * 1024 });
    const acked = new Map<string, Buffer>();
    let full: unknown = null;
    try {
      for (let i = 0; i < 200 && full === null; i++) {
        const body = wireBody(32 * 1024, i + 1);
        const m = spool.writer().begin();
        m.append(body);
        try {
          acked.set((await m.commit(Buffer.from('{}'))).id, body);
        } catch (err) {
          full = err;
        }
      }
      expect(full).toMatchObject({ code: 'ERR_SPOOL_FULL', errno: 28 });
      expect(acked.size).toBeGreaterThan(10);
      // Still full: refused again, and the spool keeps working for reads and done-marks.
      const m = spool.writer().begin();
      m.append(wireBody(64 * 1024, 999));
      await expect(m.commit(Buffer.from('{}'))).rejects.toMatchObject({ code: 'ERR_SPOOL_FULL' });
      expect(spool.stats().fullErrors).toBeGreaterThanOrEqual(2);
      const [first] = acked.keys();
      expect(spool.read(first!).equals(acked.get(first!)!)).toBe(true);

      // Free space: deliver (mark done) the older half; their segments are reclaimed.
      const ids = [...acked.keys()];
      const gone = ids.slice(0, Math.floor(ids.length / 2));
      await spool.markDone(gone);
      for (const id of gone) acked.delete(id);
      expect(spool.stats().reclaimed).toBeGreaterThan(0);
      for (let i = 0; i < 5; i++) {
        const body = wireBody(16 * 1024, 5000 + i);
        const w = spool.writer().begin();
        w.append(body);
        acked.set((await w.commit(Buffer.from('{}'))).id, body);
      }
      await spool.close();

      spool = Spool.open({ directory: dir, nodeId: 'full', segmentSize: 256 * 1024 });
      expect(spool.recoveryEvents).toEqual([]);
      const rec = spool.recover();
      expect(rec.map((r) => r.id).sort()).toEqual([...acked.keys()].sort());
      for (const r of rec) expect(spool.read(r.id).equals(acked.get(r.id)!)).toBe(true);
    } finally {
      await spool.close();
    }
  });
});
