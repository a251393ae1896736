// The event journal's file system full (a 256 KiB tmpfs mounted on <spool>/events): a commit whose
// event cannot be written is refused with ERR_SPOOL_FULL and nothing of it is kept (the message is
// not queued, now or after reopen), done-marks with events stay undone, and everything works again
// once space returns. Needs CAP_SYS_ADMIN (mount): fails, never skips, without it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { EventJournal, Spool } from '../../src/spool/index.js';
import { requireCapabilities, requireCommand } from '../helpers/preconditions.js';
import { tempDir, wireBody } from '../unit/spool/helpers.js';

let dir: string;
let events: string;
let mounted = false;

beforeAll(() => {
  requireCapabilities('mounts a 256 KiB tmpfs to fill', 'CAP_SYS_ADMIN');
  requireCommand('mount', 'umount');
  dir = tempDir('events-full');
  events = path.join(dir, 'events');
  fs.mkdirSync(events);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', events]);
  mounted = true;
});
afterAll(() => {
  if (mounted) execFileSync('umount', ['-l', events]);
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

async function commit(s: Spool, i: number): Promise<string> {
  const m = s.writer().begin();
  m.append(wireBody(200, i + 1));
  return (await m.commit(Buffer.from('{}'), Buffer.alloc(2000, 97 + (i % 26)))).id;
}

describe('event journal on a full file system', () => {
  it('keeps no event of a commit whose message record could not be written (one file system for both)', async () => {
    const sdir = path.join(events, 'spool-on-tmpfs'); // the whole spool, events/ included, on the small tmpfs
    const spool = Spool.open({ directory: sdir, nodeId: 'evfull2', segmentSize: 64 * 1024, eventSegmentSize: 16 * 1024 });
    const acked: string[] = [];
    let full: unknown = null;
    try {
      for (let i = 0; i < 400 && full === null; i++) {
        const m = spool.writer().begin();
        m.append(wireBody(8 * 1024, i + 1));
        try {
          acked.push((await m.commit(Buffer.from('{}'), Buffer.from(`received ${i}`))).id);
        } catch (err) {
          full = err;
        }
      }
      // The segment's write failed (the event file had room): the batch's events were undone.
      expect(full).toMatchObject({ code: 'ERR_SPOOL_FULL', syscall: 'pwritev' });
      expect(acked.length).toBeGreaterThan(5);
      expect(new EventJournal({ directory: sdir }).read(1, 10_000).records.map((r) => r.id)).toEqual(acked);
      expect(spool.live().map((m) => m.id)).toEqual(acked);
    } finally {
      await spool.close();
      fs.rmSync(sdir, { recursive: true, force: true });
    }
  });

  it('refuses the commit whose event cannot be written, keeps nothing of it, and accepts again once space returns', async () => {
    let spool = Spool.open({ directory: dir, nodeId: 'evfull', eventSegmentSize: 64 * 1024, eventRetention: 0 });
    const acked: string[] = [];
    let full: unknown = null;
    try {
      const j = new EventJournal({ directory: dir });
      j.subscribe('reader', { from: 'start' });
      for (let i = 0; i < 400 && full === null; i++) {
        try {
          acked.push(await commit(spool, i));
        } catch (err) {
          full = err;
        }
      }
      expect(full).toMatchObject({ code: 'ERR_SPOOL_FULL', errno: 28 });
      expect(acked.length).toBeGreaterThan(10);
      expect(spool.live().map((m) => m.id)).toEqual(acked);
      await expect(spool.markDone([acked[0]!], [{ id: acked[0]!, data: Buffer.alloc(60_000, 1) }])).rejects.toMatchObject({
        code: 'ERR_SPOOL_FULL',
      });
      expect(spool.live().map((m) => m.id)).toContain(acked[0]);
      expect(spool.eventStats().writeErrors).toBeGreaterThanOrEqual(2);

      // Space returns: the reader catches up, the segments it passed are removed.
      const all = j.read(1, 10_000).records;
      expect(all.map((r) => r.id)).toEqual(acked);
      await j.ack('reader', all.at(-1)!.seq);
      acked.push(await commit(spool, 1000));
      await spool.close();

      spool = Spool.open({ directory: dir, nodeId: 'evfull', eventSegmentSize: 64 * 1024, eventRetention: 0 });
      expect(spool.recoveryEvents).toEqual([]);
      expect(spool.recover().map((r) => r.id)).toEqual(acked);
      expect(new EventJournal({ directory: dir }).readFor('reader', 100).records.map((r) => r.id)).toEqual([acked.at(-1)]);
    } finally {
      await spool.close();
    }
  });
});
