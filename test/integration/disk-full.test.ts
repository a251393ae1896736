// A full disk: the spool sits on a 4 MiB tmpfs the test mounts. While it is full the node answers
// 452 4.3.1 and keeps serving; once space returns it accepts again, and every 250 is on disk.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';
import { tempDir } from '../helpers/tmp.js';

const mounts: string[] = [];
afterAll(async () => {
  await killAll();
  for (const m of mounts) execFileSync('umount', ['-l', m]);
});

describe('full disk', () => {
  it('answers 452 4.3.1 while the spool is full, keeps serving, and accepts again when space returns', async () => {
    const cwd = tempDir('vipmta-full-');
    const spoolDir = path.join(cwd, 'spool');
    fs.mkdirSync(spoolDir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', spoolDir]);
    mounts.push(spoolDir);
    const port = await freePort();
    const n = startVipmta(
      `Worker_Threads = 1
ESMTP_Listener { Listen "127.0.0.1:${port}" { } }
Suspend_Delivery = true
Spool { Directory = "./spool" Segment_Size = 1M }
Control_Listener { Listen "./run/control.sock" { } }
`,
      { cwd },
    );
    await n.waitStarted();
    const body = 'Subject: fill\r\n\r\n' + ('f'.repeat(998) + '\r\n').repeat(60);
    const { client } = await SmtpTestClient.connect(port);
    let first = true;
    let accepted = 0;
    let full: { code: number; text: string } | null = null;
    for (let i = 0; i < 200 && full === null; i++) {
      const r = await client.send('s@client.test', ['r@dest.test'], body, first);
      first = false;
      if (r.code === 250) accepted++;
      else full = r;
    }
    expect(accepted).toBeGreaterThan(10);
    expect(full).not.toBeNull();
    expect(full!.code).toBe(452);
    expect(full!.text).toMatch(/^4\.3\.1 /);
    // Still serving: the session goes on, and a new connection is greeted.
    expect((await client.cmd('NOOP')).code).toBe(250);
    const { greeting } = await SmtpTestClient.connect(port);
    expect(greeting.code).toBe(220);
    // Space returns (the tmpfs grows); the node accepts again without a restart.
    execFileSync('mount', ['-o', 'remount,size=64m', spoolDir]);
    const again = await client.send('s@client.test', ['r@dest.test'], body, false);
    expect(again.code).toBe(250);
    await client.quit();
    const mq = await n.console('mailq');
    expect(mq.stdout).toContain(`Total: ${accepted + 1} message(s)`);
    n.signal('SIGTERM');
    expect((await n.exited).code).toBe(0);
  });
});
