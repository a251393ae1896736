// A reload that replaces or removes an ESMTP listener while a client is in the middle of DATA: the
// old socket stops accepting at once, but the message being received is not cut. The client gets
// its 250 with a queue id, and that message is in the spool on disk, byte for byte.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/index.js';
import { freePort, killAll, smtpConnect, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';

afterEach(killAll);

// One worker: the session and the reload meet in the same thread, whichever socket the kernel picks.
function configFor(port: number, listenerOptions = ''): string {
  return `Worker_Threads = 1
Nodename = "n1"
ESMTP_Listener {
  ${listenerOptions}
  Listen "127.0.0.1:${port}" { }
}
Suspend_Delivery = true
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
`;
}

/** Stops the node and returns each message body in the spool by id (read with the real spool). */
async function spoolContents(n: VipmtaProcess): Promise<Map<string, Buffer>> {
  n.signal('SIGTERM');
  expect((await n.exited).code).toBe(0);
  const spool = Spool.open({ directory: path.join(n.cwd, 'spool'), nodeId: 'reader', sync: 'none' });
  try {
    return new Map(spool.recover().map((r) => [r.id, spool.read(r.id)]));
  } finally {
    await spool.close();
  }
}

/** Opens a session and leaves it inside DATA with the first half of `body` sent. */
async function inData(port: number, body: string): Promise<SmtpTestClient> {
  const { client, greeting } = await SmtpTestClient.connect(port);
  expect(greeting.code).toBe(220);
  expect((await client.cmd('EHLO client.test')).code).toBe(250);
  expect((await client.cmd('MAIL FROM:<sender@client.test>')).code).toBe(250);
  expect((await client.cmd('RCPT TO:<rcpt@dest.test>')).code).toBe(250);
  expect((await client.cmd('DATA')).code).toBe(354);
  client.write(body.slice(0, body.length >> 1));
  return client;
}

/** Sends the rest of `body` and the final dot; returns the reply to the dot. */
async function finishData(client: SmtpTestClient, body: string): Promise<{ code: number; text: string; id: string | null }> {
  client.write(body.slice(body.length >> 1));
  const end = await client.cmd('.');
  return { ...end, id: /queued as (\S+)/.exec(end.text)?.[1] ?? null };
}

async function reload(n: VipmtaProcess, config: string): Promise<void> {
  fs.writeFileSync(n.configFile!, config);
  const r = await n.console('config', 'reload');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}

/** The stored body without the Received: field this node prepended. */
function withoutOurReceived(b: Buffer): string {
  const s = b.toString('latin1');
  const m = /^Received: from [^\r]*(\r\n\t[^\r]*)*\r\n/.exec(s);
  expect(m).not.toBeNull();
  return s.slice(m![0].length);
}

const body = wireMessage('reload during DATA', Array.from({ length: 40 }, (_, i) => `line ${i} of a message that a reload must not cut`));

/** The message in DATA ends with its 250, and it is the one message in the spool, intact. */
async function expectFinishedOnDisk(n: VipmtaProcess, client: SmtpTestClient): Promise<void> {
  const r = await finishData(client, body);
  expect(r.code).toBe(250);
  expect(r.text).toMatch(/^2\.0\.0 Ok: queued as n1-/);
  await client.quit();
  const stored = await spoolContents(n);
  expect([...stored.keys()]).toEqual([r.id]);
  expect(withoutOurReceived(stored.get(r.id!)!)).toBe(body);
}

describe('reload while a message is in DATA', () => {
  it('a listener whose options change lets the message finish: 250, and it is in the spool', async () => {
    const port = await freePort();
    const n = startVipmta(configFor(port, 'Max_Recipients = 3'));
    await n.waitStarted();
    const client = await inData(port, body);

    // New options: the worker opens a new socket on the same port and retires the old one.
    await reload(n, configFor(port, 'Max_Recipients = 5'));
    const fresh = await smtpConnect(port);
    expect(fresh.greeting).toMatch(/^220 /);
    fresh.sock.destroy();

    await expectFinishedOnDisk(n, client);
  });

  it('a removed listener stops accepting but lets the message finish: 250, and it is in the spool', async () => {
    const port = await freePort();
    const port2 = await freePort();
    const n = startVipmta(configFor(port));
    await n.waitStarted();
    const client = await inData(port, body);

    await reload(n, configFor(port2));
    await expect(smtpConnect(port)).rejects.toThrow(/ECONNREFUSED/);

    await expectFinishedOnDisk(n, client);
  });
});
