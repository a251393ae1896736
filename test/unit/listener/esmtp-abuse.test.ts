// The ESMTP listener against a hostile or sloppy client (issue 12 section 4): parameters and
// addresses RFC 5321 and RFC 6531 refuse, AUTH failures cut off per connection and per client
// address, connections limited per client address. Real sockets on loopback, a recording sink.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { hashPassword } from '../../../src/config/password.js';
import type { MessageSink } from '../../../src/listener/esmtp.js';
import { newSessionCount, resetSessionSlot, SessionCount } from '../../../src/listener/session-count.js';
import { SmtpTestClient } from '../../helpers/smtp-client.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';
import { startListener } from './helpers.js';

const sink: MessageSink = {
  begin: () => ({ append: () => undefined, commit: async () => ({ id: 't-1', size: 0 }), abort: () => undefined }),
};

async function listener(extra: Record<string, unknown> = {}, now?: () => number, shared?: { sessions: SharedArrayBuffer; slot: number }): Promise<number> {
  const { port } = await startListener({
    options: extra,
    sink,
    ...(shared ? { sessions: shared.sessions } : {}),
    extra: { ...(shared ? { workerSlot: shared.slot } : {}), ...(now ? { now } : {}) },
  });
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

/** A session after STARTTLS (AUTH is offered only over TLS): one reply line per command. */
async function tlsSession(port: number): Promise<{ cmd: (c: string) => Promise<string>; closed: Promise<void> }> {
  const c = await ehlo(port);
  expect((await c.cmd('STARTTLS')).code).toBe(220);
  const secure = tls.connect({ socket: c.sock, rejectUnauthorized: false, servername: 'mx.test' });
  await new Promise<void>((r) => secure.once('secureConnect', () => r()));
  const closed = new Promise<void>((r) => secure.once('close', () => r()));
  let pending = '';
  const lines: string[] = [];
  let wake: (() => void) | null = null;
  secure.on('data', (d: Buffer) => {
    pending += d.toString('latin1');
    const parts = pending.split('\r\n');
    pending = parts.pop()!;
    lines.push(...parts);
    wake?.();
  });
  secure.on('close', () => wake?.());
  secure.on('error', () => undefined);
  const line = async (): Promise<string> => {
    while (lines.length === 0) {
      if (secure.destroyed) return 'closed';
      await new Promise<void>((r) => (wake = r));
    }
    return lines.shift()!;
  };
  const cmd = async (command: string): Promise<string> => {
    if (!secure.destroyed) secure.write(command + '\r\n');
    let l = await line();
    while (/^\d{3}-/.test(l)) l = await line();
    return l;
  };
  expect(await cmd('EHLO c.test')).toMatch(/^250 /);
  return { cmd, closed };
}

const plain = (user: string, pw: string): string => `AUTH PLAIN ${Buffer.from(`\0${user}\0${pw}`).toString('base64')}`;

describe('AUTH failures', () => {
  async function authListener(extra: Record<string, unknown>, now?: () => number): Promise<number> {
    const dir = tempDir('vipmta-abuse-tls-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=mx.test',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const hash = await hashPassword('right', { ln: 10, r: 8, p: 1 });
    return listener({
      Relay_Hosts: [], TLS_Certificate: path.join(dir, 'cert.pem'), TLS_Key: path.join(dir, 'key.pem'),
      Auth_Users: { alice: hash }, Max_Auth_Failures: 3, Max_Auth_Failures_Per_Client: 100,
      Auth_Failure_Window: 600_000, Auth_Failure_Delay: 0, ...extra,
    }, now);
  }

  it('answers the third failure on a connection 421 4.7.0 and closes it', async () => {
    const port = await authListener({});
    const s = await tlsSession(port);
    expect(await s.cmd(plain('alice', 'w1'))).toMatch(/^535 5\.7\.8 /);
    expect(await s.cmd(plain('alice', 'w2'))).toMatch(/^535 5\.7\.8 /);
    expect(await s.cmd(plain('alice', 'w3'))).toMatch(/^421 4\.7\.0 /);
    await s.closed;
  });

  it('refuses AUTH unchecked from a client address past its failures in the window, until the window ends', async () => {
    let now = 1_000_000;
    const port = await authListener({ Max_Auth_Failures_Per_Client: 4 }, () => now);
    const a = await tlsSession(port);
    expect(await a.cmd(plain('alice', 'w1'))).toMatch(/^535 /);
    expect(await a.cmd(plain('alice', 'w2'))).toMatch(/^535 /);
    expect(await a.cmd(plain('alice', 'w3'))).toMatch(/^421 4\.7\.0 /);
    const b = await tlsSession(port);
    expect(await b.cmd(plain('alice', 'w4'))).toMatch(/^421 4\.7\.0 /);
    await b.closed;
    // Even the right password is not checked now: the address is out of attempts.
    const c = await tlsSession(port);
    expect(await c.cmd(plain('alice', 'right'))).toMatch(/^421 4\.7\.0 /);
    now += 600_000;
    const d = await tlsSession(port);
    expect(await d.cmd(plain('alice', 'right'))).toMatch(/^235 /);
  });
});

describe('connections per client address', () => {
  it('answers a client outside Relay_Hosts 421 4.7.0 past Max_Connections_Per_Client, and frees the slot when one closes', async () => {
    const port = await listener({ Relay_Hosts: [], Max_Connections_Per_Client: 2 });
    const a = await SmtpTestClient.connect(port);
    const b = await SmtpTestClient.connect(port);
    expect([a.greeting.code, b.greeting.code]).toEqual([220, 220]);
    const c = await SmtpTestClient.connect(port);
    expect(c.greeting.code).toBe(421);
    expect(c.greeting.text).toMatch(/^4\.7\.0 /);
    c.client.close();
    a.client.close();
    const d = await waitFor('a free slot once a session closed', async () => {
      const t = await SmtpTestClient.connect(port);
      if (t.greeting.code === 220) return t.client;
      t.client.close();
      return null;
    });
    // b and d hold both slots again.
    const e = await SmtpTestClient.connect(port);
    expect(e.greeting.code).toBe(421);
    for (const x of [b.client, d, e.client]) x.close();
  });

  it('does not limit clients in Relay_Hosts (injectors)', async () => {
    const port = await listener({ Max_Connections_Per_Client: 1 });
    const held = await Promise.all([1, 2, 3].map(() => SmtpTestClient.connect(port)));
    expect(held.map((h) => h.greeting.code)).toEqual([220, 220, 220]);
    for (const h of held) h.client.close();
  });
});

describe('Concurrency across workers', () => {
  it('bounds the listener, not each worker: two workers sharing the count accept Concurrency sessions in all', async () => {
    const sessions = newSessionCount();
    const w0 = await listener({ Concurrency: 2 }, undefined, { sessions, slot: 0 });
    const w1 = await listener({ Concurrency: 2 }, undefined, { sessions, slot: 1 });
    const a = await SmtpTestClient.connect(w0);
    const b = await SmtpTestClient.connect(w1);
    expect([a.greeting.code, b.greeting.code]).toEqual([220, 220]);
    const c = await SmtpTestClient.connect(w1);
    expect(c.greeting.code).toBe(421);
    expect(c.greeting.text).toMatch(/^4\.3\.2 /);
    c.client.close();
    a.client.close();
    const d = await waitFor('a free place once a session closed', async () => {
      const t = await SmtpTestClient.connect(w1);
      if (t.greeting.code === 220) return t.client;
      t.client.close();
      return null;
    });
    expect(new SessionCount(sessions, 0).total).toBe(2);
    b.client.close();
    d.close();
    await waitFor('every place given back', () => new SessionCount(sessions, 0).total === 0);
  });

  it('gives back the places of a worker that died when its slot is reset', () => {
    const sessions = newSessionCount();
    const dead = new SessionCount(sessions, 3);
    const live = new SessionCount(sessions, 0);
    expect(dead.tryOpen(3) && dead.tryOpen(3) && live.tryOpen(3)).toBe(true);
    expect(live.tryOpen(3)).toBe(false);
    resetSessionSlot(sessions, 3);
    expect(live.total).toBe(1);
    expect(live.tryOpen(3)).toBe(true);
  });
});
