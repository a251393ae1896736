// A node whose spool disk is full when it starts (issue 12, 3): it must start, say so once, refuse
// new mail with 452 4.3.1 and deliver what it holds, whose done-marks free segments. The spool sits
// on a 4 MiB tmpfs the test mounts (CAP_SYS_ADMIN: fails, never skips, without it); the node fills
// it, is killed, a plain file takes the last free page, and the node is started again on it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';
import { requireCapabilities, requireCommand } from '../helpers/preconditions.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from '../helpers/tmp.js';
import { startSink, type Sink } from './delivery-sink.js';
import { fillUp } from '../helpers/fill.js';

const mounts: string[] = [];
const sinks: Sink[] = [];
beforeAll(() => {
  requireCapabilities('mounts a 4 MiB tmpfs under the spool to fill it', 'CAP_SYS_ADMIN');
  requireCommand('mount', 'umount');
});
afterAll(async () => {
  await killAll();
  for (const s of sinks) await s.close();
  for (const m of mounts) execFileSync('umount', ['-l', m]);
});


describe('full disk at start', () => {
  it('starts on a full spool, refuses with 452 4.3.1, delivers what it holds, then accepts again', async () => {
    const cwd = tempDir('vipmta-fullstart-');
    const spoolDir = path.join(cwd, 'spool');
    fs.mkdirSync(spoolDir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', spoolDir]);
    mounts.push(spoolDir);
    const sink = await startSink();
    sinks.push(sink);
    const port = await freePort();
    const config = (suspend: boolean): string => `Worker_Threads = 1
Nodename = "n1"
Resolver_Servers = ( "127.0.0.1:9" )
ESMTP_Listener { Listen "127.0.0.1:${port}" { } }
${suspend ? 'Suspend_Delivery = true' : ''}
Spool { Directory = "./spool" Segment_Size = 1M }
Control_Listener { Listen "./run/control.sock" { } }
Domain "dest.test" { Routes = ( "127.0.0.1:${sink.port}" ) }
`;
    // 1. Fill the spool until the node refuses, delivery suspended.
    const first = startVipmta(config(true), { cwd });
    await first.waitStarted();
    const body = (tag: string): string => `Subject: fill ${tag}\r\n\r\n` + ('f'.repeat(998) + '\r\n').repeat(150);
    const acked = new Set<string>();
    const { client } = await SmtpTestClient.connect(port);
    let refusedCode = 0;
    for (let i = 0; i < 100 && refusedCode === 0; i++) {
      const r = await client.send('s@client.test', ['r@dest.test'], body(`m${i}`), i === 0);
      if (r.code === 250) acked.add(r.id!);
      else refusedCode = r.code;
    }
    expect(refusedCode).toBe(452);
    expect(acked.size).toBeGreaterThan(5);
    client.close();
    // 2. Killed; a plain file takes whatever space is left.
    await first.kill();
    fillUp(path.join(spoolDir, 'filler'));

    // 3. Started again on the full spool, delivery on: it starts and says so once.
    const n = startVipmta(config(false), { cwd });
    await n.waitStarted();
    const atOpen = n.logs.filter((r) => r.kind === 'deferred');
    expect(atOpen.length, JSON.stringify(n.logs.slice(0, 20))).toBe(1);
    expect(String(atOpen[0]!.reason)).toMatch(/No space left on device/);
    // New mail: 452 4.3.1.
    const { client: c2 } = await SmtpTestClient.connect(port);
    const refused = await c2.send('s@client.test', ['r@dest.test'], body('at-start'), true);
    expect(refused.code).toBe(452);
    expect(refused.text).toMatch(/^4\.3\.1 /);
    const fullLine = 'spool full: refusing messages with 452 4.3.1';
    await n.waitForLog((r) => r.msg === fullLine, 10_000);
    // What it holds is delivered, and the done-marks free the segments.
    await waitFor('every queued message delivered', () => sink.transactions.length >= acked.size, { timeoutMs: 60_000, intervalMs: 100 });
    await waitFor('queue empty', async () => (await n.console('mailq')).stdout.includes('Total: 0 message(s)'), { timeoutMs: 30_000, intervalMs: 200 });
    const segments = (): string[] => fs.readdirSync(spoolDir).filter((f) => f.startsWith('seg-'));
    await waitFor('delivered segments reclaimed', () => segments().length === 0, { timeoutMs: 10_000, intervalMs: 100 });
    // A done-mark the full disk refused (when its journal page had no room) is kept and retried: the
    // marks that did go through free segments, and a dropped one held its segment until a restart.
    const refusedMarks = n.logs.filter((r) => String(r.msg).startsWith('spool: could not mark delivered messages done')).length;
    if (refusedMarks > 0) expect(n.logs.some((r) => r.msg === 'spool: done-marks written again after the spool refused them')).toBe(true);
    // Space back (the filler goes): it accepts again.
    fs.unlinkSync(path.join(spoolDir, 'filler'));
    const again = await c2.send('s@client.test', ['r@dest.test'], body('after'), false);
    expect(again.code, again.text).toBe(250);
    await c2.quit();
    await n.waitForLog((r) => r.msg === 'spool accepts messages again', 10_000);
    expect(n.logs.filter((r) => r.msg === fullLine).length).toBe(1);
    expect(n.logs.filter((r) => r.kind === 'deferred').length).toBe(1);
    await waitFor('the new message delivered', () => sink.transactions.length >= acked.size + 1, { timeoutMs: 30_000, intervalMs: 100 });
  }, 120_000);
});
