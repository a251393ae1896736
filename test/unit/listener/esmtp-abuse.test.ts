// The ESMTP listener against a hostile or sloppy client (issue 12 section 4): parameters and
// addresses RFC 5321 and RFC 6531 refuse, AUTH failures cut off per connection and per client
// address, connections limited per client address. Real sockets on loopback, a recording sink.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../../src/config/password.js';
import { EsmtpListener, type MessageSink } from '../../../src/listener/esmtp.js';
import { listenTcp, socketLocalAddress } from '../../../src/native/index.js';
import { SmtpTestClient } from '../../helpers/smtp-client.js';
import { tempDir } from '../../helpers/tmp.js';

const listeners: EsmtpListener[] = [];
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close(1)));
});

const sink: MessageSink = {
  begin: () => ({ append: () => undefined, commit: async () => ({ id: 't-1', size: 0 }), abort: () => undefined }),
};

async function listener(extra: Record<string, unknown> = {}): Promise<number> {
  const options = {
    Max_Message_Size: 1 << 20, Max_Recipients: 10, Concurrency: 10, Timeout: 60_000, Pipelining: true,
    Enable_8bitmime: true, Smtputf8: true, Relay_Hosts: ['127.0.0.0/8'], ...extra,
  };
  const l = new EsmtpListener({
    spec: { name: 'test', host: '127.0.0.1', port: 0, options },
    hostname: 'mx.test',
    logger: pino({ level: 'silent' }),
    sink,
    onAccept: () => undefined,
    onMessage: () => undefined,
    onError: () => undefined,
  });
  const fd = listenTcp({ host: '127.0.0.1', port: 0 });
  const { port } = socketLocalAddress(fd);
  await l.listenFd(fd);
  listeners.push(l);
  return port;
}

async function ehlo(port: number): Promise<SmtpTestClient> {
  const { client } = await SmtpTestClient.connect(port);
  expect((await client.cmd('EHLO c.test')).code).toBe(250);
  return client;
}

describe('MAIL and RCPT as RFC 5321 and RFC 6531 say', () => {
  it('refuses a non-ASCII sender or recipient without SMTPUTF8 with 553 5.6.7, accepts them with it', async () => {
    const port = await listener();
    const c = await ehlo(port);
    const mail = await c.cmd('MAIL FROM:<pelé@c.test>');
    expect(mail.code).toBe(553);
    expect(mail.text).toMatch(/^5\.6\.7 /);
    expect((await c.cmd('MAIL FROM:<s@c.test>')).code).toBe(250);
    const rcpt = await c.cmd('RCPT TO:<rené@d.test>');
    expect(rcpt.code).toBe(553);
    expect(rcpt.text).toMatch(/^5\.6\.7 /);
    expect((await c.cmd('RSET')).code).toBe(250);
    expect((await c.cmd('MAIL FROM:<pelé@c.test> SMTPUTF8')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<rené@d.test>')).code).toBe(250);
    c.close();
  });

  it('refuses unknown MAIL and RCPT parameters with 555 5.5.4 and keeps the known ones', async () => {
    const port = await listener({ Smtputf8: false });
    const c = await ehlo(port);
    const unknownMail = await c.cmd('MAIL FROM:<s@c.test> FROBNICATE=1');
    expect(unknownMail.code).toBe(555);
    expect(unknownMail.text).toMatch(/^5\.5\.4 /);
    // SMTPUTF8 is not offered by this listener, so it is not a parameter it knows.
    expect((await c.cmd('MAIL FROM:<s@c.test> SMTPUTF8')).code).toBe(555);
    expect((await c.cmd('MAIL FROM:<s@c.test> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x1')).code).toBe(250);
    const unknownRcpt = await c.cmd('RCPT TO:<r@d.test> XFOO=bar');
    expect(unknownRcpt.code).toBe(555);
    expect(unknownRcpt.text).toMatch(/^5\.5\.4 /);
    expect((await c.cmd('RCPT TO:<r@d.test> NOTIFY=FAILURE ORCPT=rfc822;r@d.test')).code).toBe(250);
    c.close();
  });
});
