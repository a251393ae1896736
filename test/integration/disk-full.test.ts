// A full disk: the spool sits on a 4 MiB tmpfs the test mounts. While it is full the node answers
// 452 4.3.1 and keeps serving; once space returns it accepts again. Then the node is killed (-9:
// nothing in its memory can help) and the spool on disk is read back: every message that got a 250
// is there byte for byte under its queue id, and nothing that was refused is. Needs CAP_SYS_ADMIN
// for the mount: fails, never skips, without it (test/helpers/preconditions.ts). The state is told
// once, not per refused message (issue 12, 2): one log line when refusals start and one when they
// end, vipmta_spool_full on /metrics, /health "degraded", the console's status.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/index.js';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';
import { requireCapabilities, requireCommand } from '../helpers/preconditions.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const mounts: string[] = [];
beforeAll(() => {
  requireCapabilities('mounts a 4 MiB tmpfs under the spool to fill it', 'CAP_SYS_ADMIN');
  requireCommand('mount', 'umount');
});
afterAll(async () => {
  await killAll();
  for (const m of mounts) execFileSync('umount', ['-l', m]);
});

/** The stored body without the Received: field the node prepended. */
function withoutOurReceived(b: Buffer): string {
  const s = b.toString('latin1');
  const m = /^Received: from [^\r]*(\r\n\t[^\r]*)*\r\n/.exec(s);
  expect(m, `stored message starts with our Received: ${JSON.stringify(s.slice(0, 80))}`).not.toBeNull();
  return s.slice(m![0].length);
}

describe('full disk', () => {
  it('answers 452 4.3.1 while the spool is full, keeps serving, accepts again when space returns, and every 250 is on disk', async () => {
    const cwd = tempDir('vipmta-full-');
    const spoolDir = path.join(cwd, 'spool');
    fs.mkdirSync(spoolDir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', spoolDir]);
    mounts.push(spoolDir);
    const port = await freePort();
    const http = await freePort();
    const n = startVipmta(
      `Worker_Threads = 1
ESMTP_Listener { Listen "127.0.0.1:${port}" { } }
Suspend_Delivery = true
Spool { Directory = "./spool" Segment_Size = 1M }
Control_Listener { Listen "./run/control.sock" { } }
Http_Listener { Listen "127.0.0.1:${http}" { } }
`,
      { cwd },
    );
    await n.waitStarted();
    // Each body is told apart by its Subject, so a refused one found on disk would show.
    const body = (tag: string): string => `Subject: fill ${tag}\r\n\r\n` + ('f'.repeat(998) + '\r\n').repeat(60);
    const acked = new Map<string, string>(); // queue id -> body sent
    const refused: string[] = []; // bodies that got no 250
    const { client } = await SmtpTestClient.connect(port);
    let full: { code: number; text: string } | null = null;
    for (let i = 0; i < 200 && full === null; i++) {
      const b = body(`m${i}`);
      const r = await client.send('s@client.test', ['r@dest.test'], b, i === 0);
      if (r.code === 250) {
        expect(r.id, `250 without a queue id: ${r.text}`).not.toBeNull();
        acked.set(r.id!, b);
      } else {
        full = r;
        refused.push(b);
      }
    }
    expect(acked.size).toBeGreaterThan(10);
    expect(full).not.toBeNull();
    expect(full!.code).toBe(452);
    expect(full!.text).toMatch(/^4\.3\.1 /);
    // Twenty more refusals: still one line.
    for (let i = 0; i < 20; i++) {
      const b = body(`more${i}`);
      const r = await client.send('s@client.test', ['r@dest.test'], b, false);
      expect(r.code).toBe(452);
      refused.push(b);
    }
    const gauge = async (): Promise<string | undefined> =>
      (await (await fetch(`http://127.0.0.1:${http}/metrics`)).text()).split('\n').find((l) => l.startsWith('vipmta_spool_full '));
    await waitFor('vipmta_spool_full 1', async () => (await gauge()) === 'vipmta_spool_full 1', { timeoutMs: 10_000 });
    const fullErrors = (await (await fetch(`http://127.0.0.1:${http}/metrics`)).text()).split('\n').find((l) => l.startsWith('vipmta_spool_full_errors_total '));
    expect(Number(fullErrors?.split(' ')[1])).toBeGreaterThanOrEqual(21);
    const health = await fetch(`http://127.0.0.1:${http}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'degraded', problems: ['spool full: refusing messages with 452 4.3.1'] });
    expect((await n.console('status')).stdout).toMatch(/^spool: FULL since \S+, refusing messages with 452 4\.3\.1 \(\d+ refused\)$/m);
    const fullLines = (): number => n.logs.filter((r) => r.msg === 'spool full: refusing messages with 452 4.3.1').length;
    expect(fullLines()).toBe(1);
    // Still serving: the session goes on, and a new connection is greeted.
    expect((await client.cmd('NOOP')).code).toBe(250);
    const { client: second, greeting } = await SmtpTestClient.connect(port);
    expect(greeting.code).toBe(220);
    second.close();
    // Space returns (the tmpfs grows); the node accepts again without a restart.
    execFileSync('mount', ['-o', 'remount,size=64m', spoolDir]);
    const last = body('after-remount');
    const again = await client.send('s@client.test', ['r@dest.test'], last, false);
    expect(again.code).toBe(250);
    acked.set(again.id!, last);
    await client.quit();
    const ended = await n.waitForLog((r) => r.msg === 'spool accepts messages again', 10_000);
    expect(ended.refused).toBeGreaterThanOrEqual(21);
    expect(fullLines()).toBe(1);
    expect(await gauge()).toBe('vipmta_spool_full 0');
    expect(await (await fetch(`http://127.0.0.1:${http}/health`)).json()).toEqual({ status: 'ok' });
    expect((await n.console('status')).stdout).toMatch(/^spool: ok$/m);
    const mq = await n.console('mailq');
    expect(mq.stdout).toContain(`Total: ${acked.size} message(s)`);

    // kill -9, then read the spool on disk with the addon's reader (recovery as a restart does it).
    await n.kill();
    const spool = Spool.open({ directory: spoolDir, nodeId: 'reader', sync: 'none', segmentSize: 1024 * 1024 });
    try {
      expect(spool.recoveryEvents.filter((e) => e.kind === 'corrupt')).toEqual([]);
      const onDisk = new Map(spool.recover().map((r) => [r.id, withoutOurReceived(spool.read(r.id))]));
      for (const [id, sent] of acked) {
        expect(onDisk.has(id), `acknowledged ${id} is not on disk`).toBe(true);
        expect(onDisk.get(id) === sent, `acknowledged ${id} differs on disk`).toBe(true);
      }
      // Nothing else: in particular no message that was answered 452.
      expect([...onDisk.keys()].filter((id) => !acked.has(id))).toEqual([]);
      for (const b of refused) expect([...onDisk.values()].includes(b), 'a refused message is on disk').toBe(false);
    } finally {
      await spool.close();
    }
  });
});
