// Opening the native spool on a full disk (issue 12, 3): the journal snapshot is skipped and
// reported as a 'deferred' recovery event, done-marks go on the end of the old journal and hold,
// and with no journal to append to a done-mark fails with ERR_SPOOL_FULL (the message stays
// queued, never lost). A 1 MiB tmpfs the test mounts: needs CAP_SYS_ADMIN, fails without it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/index.js';
import { requireCapabilities, requireCommand } from '../helpers/preconditions.js';
import { tempDir, wireBody } from '../unit/spool/helpers.js';
import { fillUp } from '../helpers/fill.js';

const mounts: string[] = [];
const open: Spool[] = [];
beforeAll(() => {
  requireCapabilities('mounts a 1 MiB tmpfs to fill it', 'CAP_SYS_ADMIN');
  requireCommand('mount', 'umount');
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});
afterAll(() => {
  for (const m of mounts) execFileSync('umount', ['-l', m]);
});

function mountSmall(): string {
  const d = path.join(tempDir('spool-full-open'), 'spool');
  fs.mkdirSync(d);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', d]);
  mounts.push(d);
  return d;
}
function openSpool(directory: string): Spool {
  const s = Spool.open({ directory, nodeId: 'n', segmentSize: 64 * 1024 });
  open.push(s);
  return s;
}
async function commit(s: Spool, n: number): Promise<string> {
  const m = s.writer().begin();
  m.append(wireBody(1000, n));
  return (await m.commit(Buffer.from('{}'))).id;
}
async function closeLast(): Promise<void> {
  await open.pop()!.close();
}

describe('opening a spool on a full disk', () => {
  it('opens, reports the deferred snapshot, and its done-marks hold (appended to the old journal)', async () => {
    const d = mountSmall();
    const s = openSpool(d);
    const ids = [await commit(s, 1), await commit(s, 2)];
    await closeLast();
    fillUp(path.join(d, 'filler'));

    const full = openSpool(d);
    const deferred = full.recoveryEvents.filter((e) => e.kind === 'deferred');
    expect(deferred).toHaveLength(1);
    expect(deferred[0]!.file).toMatch(/^journal-[0-9a-f]{16}\.log$/);
    expect(deferred[0]!.reason).toMatch(/No space left on device/);
    expect(full.recover().map((r) => r.id).sort()).toEqual([...ids].sort());
    await expect(commit(full, 3)).rejects.toMatchObject({ code: 'ERR_SPOOL_FULL' });
    await full.markDone([ids[0]!]);
    await closeLast();

    fs.unlinkSync(path.join(d, 'filler'));
    const after = openSpool(d);
    expect(after.recoveryEvents).toEqual([]);
    expect(after.recover().map((r) => r.id)).toEqual([ids[1]]);
  });

  it('with no journal to append to, a done-mark fails with ERR_SPOOL_FULL and the message stays queued', async () => {
    const d = mountSmall();
    const s = openSpool(d);
    const id = await commit(s, 1);
    await closeLast();
    // A spool without a journal file (none was needed: no done-mark yet).
    for (const f of fs.readdirSync(d)) if (f.startsWith('journal-')) fs.unlinkSync(path.join(d, f));
    fillUp(path.join(d, 'filler'));

    const full = openSpool(d);
    expect(full.recoveryEvents.filter((e) => e.kind === 'deferred')).toEqual([expect.objectContaining({ file: '' })]);
    await expect(full.markDone([id])).rejects.toMatchObject({ code: 'ERR_SPOOL_FULL' });
    expect(full.live().map((r) => r.id)).toEqual([id]);
    // Space returns while open: the next done-mark writes the snapshot first, then holds.
    fs.unlinkSync(path.join(d, 'filler'));
    await full.markDone([id]);
    await closeLast();
    const after = openSpool(d);
    expect(after.recoveryEvents).toEqual([]);
    expect(after.recover()).toEqual([]);
  });
});
