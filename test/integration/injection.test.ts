// Injection through a real vipmta process: real SMTP over loopback, real spool files. Every case
// ends with a correct reply and a node that keeps serving; what got 250 is on disk, byte for byte.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/index.js';
import { freePort, killAll, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';
import { tempDir } from '../helpers/tmp.js';

afterEach(killAll);

async function node(listenerOptions = '', extra = ''): Promise<{ node: VipmtaProcess; port: number }> {
  const port = await freePort();
  const n = startVipmta(`Worker_Threads = 2
Nodename = "n1"
ESMTP_Listener {
  Max_Message_Size = 64K
  Max_Recipients = 3
  ${listenerOptions}
  Listen "127.0.0.1:${port}" { }
}
Suspend_Delivery = true
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
${extra}`);
  await n.waitStarted();
  return { node: n, port };
}

/** Stops the node and returns each message body in the spool by id (read with the real spool). */
async function spoolContents(n: VipmtaProcess): Promise<Map<string, Buffer>> {
  if (n.child.exitCode === null) {
    n.signal('SIGTERM');
    expect((await n.exited).code).toBe(0);
  }
  const spool = Spool.open({ directory: path.join(n.cwd, 'spool'), nodeId: 'reader', sync: 'none' });
  try {
    return new Map(spool.recover().map((r) => [r.id, spool.read(r.id)]));
  } finally {
    await spool.close();
  }
}

/** The stored body without the Received: field this node prepended. */
function withoutOurReceived(b: Buffer): string {
  const s = b.toString('latin1');
  expect(s.startsWith('Received: from ')).toBe(true);
  const m = /^Received: from [^\r]*(\r\n\t[^\r]*)*\r\n/.exec(s);
  return s.slice(m![0].length);
}

describe('injection', () => {
  it('answers 250 with a queue id only for a message that is then in the spool, byte for byte', async () => {
    const { node: n, port } = await node();
    const { client, greeting } = await SmtpTestClient.connect(port);
    expect(greeting.code).toBe(220);
    const body = wireMessage('hello', ['line one', '.starts with a dot', '', 'end'], ['X-Binding: news-a']);
    const r = await client.send('sender@client.test', ['rcpt@dest.test'], body);
    expect(r.code).toBe(250);
    expect(r.text).toMatch(/^2\.0\.0 Ok: queued as n1-/);
    await client.quit();
    const mq = await n.console('mailq');
    expect(mq.stdout).toMatch(/default\/default\s+dest\.test\s+1\s+0/);
    const stored = await spoolContents(n);
    expect([...stored.keys()]).toEqual([r.id]);
    expect(withoutOurReceived(stored.get(r.id!)!)).toBe(body);
  });

  it('stores bare LF as CRLF and keeps NUL bytes', async () => {
    const { node: n, port } = await node();
    const { client } = await SmtpTestClient.connect(port);
    const r = await client.send('s@client.test', ['r@dest.test'], 'Subject: lf\n\nbare\nlf\x00nul\r\n');
    expect(r.code).toBe(250);
    await client.quit();
    const stored = await spoolContents(n);
    expect(withoutOurReceived(stored.get(r.id!)!)).toBe('Subject: lf\r\n\r\nbare\r\nlf\x00nul\r\n');
  });

  it('refuses a message over the size limit with 552 5.3.4, declared or not', async () => {
    const { node: n, port } = await node();
    const { client } = await SmtpTestClient.connect(port);
    await client.cmd('EHLO c.test');
    const declared = await client.cmd('MAIL FROM:<s@client.test> SIZE=1000000');
    expect(declared.code).toBe(552);
    expect(declared.text).toMatch(/^5\.3\.4 /);
    const big = 'Subject: big\r\n\r\n' + ('x'.repeat(998) + '\r\n').repeat(80);
    const r = await client.send('s@client.test', ['r@dest.test'], big, false);
    expect(r.code).toBe(552);
    expect(r.text).toMatch(/^5\.3\.4 /);
    const ok = await client.send('s@client.test', ['r@dest.test'], 'Subject: small\r\n\r\nok\r\n', false);
    expect(ok.code).toBe(250);
    await client.quit();
    expect([...(await spoolContents(n)).keys()]).toEqual([ok.id]);
  });

  it('refuses recipients past Max_Recipients with 452 4.5.3 and accepts the ones before', async () => {
    const { port } = await node();
    const { client } = await SmtpTestClient.connect(port);
    await client.cmd('EHLO c.test');
    expect((await client.cmd('MAIL FROM:<s@client.test>')).code).toBe(250);
    for (const i of [1, 2, 3]) expect((await client.cmd(`RCPT TO:<r${i}@dest.test>`)).code).toBe(250);
    const fourth = await client.cmd('RCPT TO:<r4@dest.test>');
    expect(fourth.code).toBe(452);
    expect(fourth.text).toMatch(/^4\.5\.3 /);
    expect((await client.cmd('DATA')).code).toBe(354);
    client.write('Subject: three\r\n\r\nx\r\n');
    expect((await client.cmd('.')).code).toBe(250);
    await client.quit();
  });

  it('denies relaying to clients outside Relay_Hosts with 550 5.7.1', async () => {
    const { port } = await node('Relay_Hosts = ( "127.0.0.2" )');
    const { client } = await SmtpTestClient.connect(port, '127.0.0.1', '127.0.0.1');
    await client.cmd('EHLO c.test');
    await client.cmd('MAIL FROM:<s@client.test>');
    const r = await client.cmd('RCPT TO:<r@dest.test>');
    expect(r.code).toBe(550);
    expect(r.text).toMatch(/^5\.7\.1 /);
    await client.quit();
    const { client: allowed } = await SmtpTestClient.connect(port, '127.0.0.1', '127.0.0.2');
    expect((await allowed.send('s@client.test', ['r@dest.test'], 'Subject: x\r\n\r\ny\r\n')).code).toBe(250);
    await allowed.quit();
  });

  it('refuses a line over 998 octets with 550 5.6.0', async () => {
    const { port } = await node();
    const { client } = await SmtpTestClient.connect(port);
    const r = await client.send('s@client.test', ['r@dest.test'], `Subject: long\r\n\r\n${'y'.repeat(999)}\r\n`);
    expect(r.code).toBe(550);
    expect(r.text).toMatch(/^5\.6\.0 /);
    expect((await client.send('s@client.test', ['r@dest.test'], `Subject: ok\r\n\r\n${'y'.repeat(998)}\r\n`, false)).code).toBe(250);
    await client.quit();
  });

  it('answers commands out of order with 503 5.5.1 and keeps the session usable', async () => {
    const { port } = await node();
    const { client } = await SmtpTestClient.connect(port);
    await client.cmd('EHLO c.test');
    for (const c of ['RCPT TO:<r@dest.test>', 'DATA']) {
      const r = await client.cmd(c);
      expect(r.code, c).toBe(503);
      expect(r.text, c).toMatch(/^5\.5\.1 /);
    }
    expect((await client.cmd('MAIL FROM:<s@client.test>')).code).toBe(250);
    const again = await client.cmd('MAIL FROM:<s@client.test>');
    expect(again.code).toBe(503);
    expect((await client.cmd('FOO bar')).code).toBe(500);
    expect((await client.cmd('RCPT TO:<r@dest.test>')).code).toBe(250);
    await client.quit();
  });

  it('keeps nothing of a message whose client drops in the middle of DATA', async () => {
    const { node: n, port } = await node();
    const { client } = await SmtpTestClient.connect(port);
    await client.cmd('EHLO c.test');
    await client.cmd('MAIL FROM:<s@client.test>');
    await client.cmd('RCPT TO:<r@dest.test>');
    expect((await client.cmd('DATA')).code).toBe(354);
    // Handed to the kernel before the close: TCP delivers these bytes, then the FIN, in order, so
    // the node has half a message in DATA when the client goes (no sleep needed to get there).
    await new Promise<void>((resolve, reject) => client.sock.write('Subject: half\r\n\r\n' + 'z'.repeat(20_000), (e) => (e ? reject(e) : resolve())));
    client.close();
    const { client: c2 } = await SmtpTestClient.connect(port);
    const ok = await c2.send('s@client.test', ['r@dest.test'], 'Subject: whole\r\n\r\nw\r\n');
    expect(ok.code).toBe(250);
    await c2.quit();
    expect([...(await spoolContents(n)).keys()]).toEqual([ok.id]);
  });

  it('keeps queued messages across a restart', async () => {
    const { node: n, port } = await node();
    const ids: string[] = [];
    const { client } = await SmtpTestClient.connect(port);
    for (let i = 0; i < 5; i++) {
      const r = await client.send('s@client.test', [`r${i}@d${i % 2}.test`], `Subject: ${i}\r\n\r\n${i}\r\n`, i === 0);
      expect(r.code).toBe(250);
      ids.push(r.id!);
    }
    await client.quit();
    n.signal('SIGTERM');
    expect((await n.exited).code).toBe(0);
    const again = startVipmta(fs.readFileSync(n.configFile!, 'utf8'), { cwd: n.cwd });
    await again.waitStarted();
    const mq = await again.console('mailq');
    expect(mq.stdout).toMatch(/default\/default\s+d0\.test\s+3\s+0/);
    expect(mq.stdout).toMatch(/default\/default\s+d1\.test\s+2\s+0/);
    expect(mq.stdout).toMatch(/Total: 5 message/);
    expect([...(await spoolContents(again)).keys()].sort()).toEqual([...ids].sort());
  });
});

describe('binding assignment', () => {
  it('queues on the binding a trusted injector names in X-Binding, also after a restart', async () => {
    const { node: n, port } = await node('', 'Binding "tx" { Bind_Address = 127.0.0.3 }\nBinding_Group "news" { Binding "news-a" { } }\n');
    const { client } = await SmtpTestClient.connect(port);
    expect((await client.send('s@client.test', ['r@dest.test'], wireMessage('tx', ['x'], ['X-Binding: tx']))).code).toBe(250);
    expect((await client.send('s@client.test', ['r@dest.test'], wireMessage('news', ['x'], ['X-Binding: news']), false)).code).toBe(250);
    expect((await client.send('s@client.test', ['r@dest.test'], wireMessage('none', ['x'], ['X-Binding: nope']), false)).code).toBe(250);
    await client.quit();
    const rows = (s: string): string[] => s.split('\n').filter((l) => l.includes('dest.test')).map((l) => l.split(/\s+/)[0]!);
    expect(rows((await n.console('mailq')).stdout)).toEqual(['default/default', 'default/tx', 'news/news-a']);
    expect((await n.console('mailq', '-b', 'tx')).stdout).toMatch(/default\/tx\s+dest\.test\s+1\s+0/);
    await n.waitForLog((l) => l.msg.includes('X-Binding "nope" names no binding'));
    n.signal('SIGTERM');
    expect((await n.exited).code).toBe(0);
    const again = startVipmta(fs.readFileSync(n.configFile!, 'utf8'), { cwd: n.cwd });
    await again.waitStarted();
    expect(rows((await again.console('mailq')).stdout)).toEqual(['default/default', 'default/tx', 'news/news-a']);
  });
});

describe('AUTH and STARTTLS', () => {
  it('accepts AUTH only over TLS, refuses bad credentials with 535 5.7.8, and lets an authenticated client relay', async () => {
    const dir = tempDir('vipmta-tls-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=mx.test',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const { hashPassword } = await import('../../src/config/password.js');
    const hash = await hashPassword('right', { ln: 10, r: 8, p: 1 });
    const { port } = await node(
      `Relay_Hosts = ( )\n  TLS_Certificate = "${dir}/cert.pem"\n  TLS_Key = "${dir}/key.pem"\n  Auth_Users = [ alice = "${hash}" ]`,
    );
    const tls = await import('node:tls');
    const { client } = await SmtpTestClient.connect(port);
    const ehlo = await client.cmd('EHLO c.test');
    expect(ehlo.text).toContain('STARTTLS');
    expect(ehlo.text).not.toMatch(/AUTH/);
    await client.cmd('MAIL FROM:<s@client.test>');
    expect((await client.cmd('RCPT TO:<r@dest.test>')).code).toBe(550);
    await client.cmd('RSET');
    expect((await client.cmd('STARTTLS')).code).toBe(220);
    const secure = tls.connect({ socket: client.sock, rejectUnauthorized: false, servername: 'mx.test' });
    await new Promise<void>((r) => secure.once('secureConnect', () => r()));
    const lines: string[] = [];
    const readLine = (): Promise<string> =>
      new Promise((resolve) => {
        const tryTake = (): boolean => {
          const l = lines.shift();
          if (l !== undefined) resolve(l);
          return l !== undefined;
        };
        if (!tryTake()) secure.once('readable', () => void setImmediate(() => tryTake() || readLine().then(resolve)));
      });
    let pending = '';
    secure.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      const parts = pending.split('\r\n');
      pending = parts.pop()!;
      lines.push(...parts);
    });
    const cmd = async (c: string): Promise<string> => {
      secure.write(c + '\r\n');
      let l = await readLine();
      while (/^\d{3}-/.test(l)) l = await readLine();
      return l;
    };
    expect(await cmd('EHLO c.test')).toMatch(/^250 /);
    const bad = await cmd(`AUTH PLAIN ${Buffer.from('\0alice\0wrong').toString('base64')}`);
    expect(bad).toMatch(/^535 5\.7\.8 /);
    expect(await cmd(`AUTH PLAIN ${Buffer.from('\0alice\0right').toString('base64')}`)).toMatch(/^235 /);
    expect(await cmd('MAIL FROM:<s@client.test>')).toMatch(/^250 /);
    expect(await cmd('RCPT TO:<r@dest.test>')).toMatch(/^250 /);
    expect(await cmd('DATA')).toMatch(/^354 /);
    expect(await cmd('Subject: tls\r\n\r\nsecret\r\n.')).toMatch(/^250 2\.0\.0 Ok: queued as /);
    secure.destroy();
  });
});
