// The queue manager end to end: real vipmta processes take mail over SMTP and deliver it to
// smtp-server sinks on loopback. A binding's Bind_Address is the source the sink sees; 4xx is
// retried and delivered once; 5xx and expiry send a DSN to the sender's sink; retry state survives
// a SIGKILL; hold, release and rebind on the console; mailq and /metrics agree with what happened.
// No DNS: every domain has Routes, and Resolver_Servers points at loopback as a safety net.
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';
import { waitFor, type Held } from '../helpers/wait.js';
import { startSink, type Refusal, type Sink, type SinkOptions } from './delivery-sink.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function sink(o: SinkOptions = {}): Promise<Sink> {
  const s = await startSink(o);
  cleanup.push(() => s.close());
  return s;
}

interface Node {
  node: VipmtaProcess;
  smtp: number;
  http: number;
  config: string;
}

/** A node whose dest.test goes to `dest` and sender.test (DSNs) to `senders`. */
async function startNode(dest: Sink, senders: Sink, extra = '', cwd?: string, ports?: { smtp: number; http: number }): Promise<Node> {
  const smtp = ports?.smtp ?? (await freePort());
  const http = ports?.http ?? (await freePort());
  const config = `Worker_Threads = 2
Nodename = "n1"
Hostname = "mta.vipmta.test"
Resolver_Servers = ( "127.0.0.1:9" )
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Http_Listener { Listen "127.0.0.1:${http}" { } }
Domain "dest.test" { Routes = ( "127.0.0.1:${dest.port}" ) }
Domain "sender.test" { Routes = ( "127.0.0.1:${senders.port}" ) }
Binding "b3" { Bind_Address = "127.0.0.3" Ehlo_Hostname = "b3.vipmta.test" }
${extra}
`;
  const node = startVipmta(config, cwd === undefined ? {} : { cwd });
  await node.waitStarted();
  return { node, smtp, http, config };
}

async function inject(port: number, from: string, rcpt: string[], headers: string[] = [], subject = 'test'): Promise<string> {
  const { client } = await SmtpTestClient.connect(port);
  const r = await client.send(from, rcpt, wireMessage(subject, ['hello'], headers));
  await client.quit();
  expect(r.code).toBe(250);
  const id = /queued as (\S+)/.exec(r.text)?.[1];
  expect(id).toBeDefined();
  return id!;
}

/** A condition wait (test/helpers/wait.ts) with this file's longer default. */
function until<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 20_000): Promise<Held<T>> {
  return waitFor(what, fn, { timeoutMs, intervalMs: 50 });
}

async function consoleOut(n: Node, ...argv: string[]): Promise<string> {
  const r = await n.node.console(...argv);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

async function metric(n: Node, series: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${n.http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Refuses every recipient with `r` for the first `times` attempts, then accepts. */
function refuseFirst(times: number, r: Refusal): () => Refusal {
  let n = 0;
  return () => (n++ < times ? r : null);
}

describe('queue manager and delivery', () => {
  it('delivers from the binding\'s Bind_Address with its EHLO name, logs it, and empties the queue', async () => {
    const dest = await sink();
    const senders = await sink();
    const n = await startNode(dest, senders);
    const id = await inject(n.smtp, 'alice@sender.test', ['bob@dest.test', 'carol@dest.test'], ['X-Binding: b3']);
    await until('delivery', () => dest.transactions.length === 1);
    const t = dest.transactions[0]!;
    expect(t.rcpt).toEqual(['bob@dest.test', 'carol@dest.test']);
    expect(t.from).toBe('alice@sender.test');
    expect(t.body.toString()).toContain('Subject: test');
    const c = dest.connections.find((x) => x.id === t.connection)!;
    expect(c.remoteAddress).toBe('127.0.0.3');
    expect(c.ehlo).toBe('b3.vipmta.test');
    const rec = await n.node.waitForLog((r) => r.event === 'delivery' && r.id === id && r.rcpt === 'bob@dest.test');
    expect(rec).toMatchObject({ binding: 'default/b3', source: '127.0.0.3', destination: '127.0.0.1' });
    expect(String(rec.reply)).toMatch(/^250 /);
    await n.node.waitForLog((r) => r.event === 'reception' && r.id === id);
    await until('empty queue', async () => (await consoleOut(n, 'mailq')).includes('Total: 0 message(s)'));
    await until('delivered metric', async () => (await metric(n, 'vipmta_messages_delivered_total')) === 2);
    expect(await metric(n, 'vipmta_delivery_transient_failures_total')).toBe(0);
    expect(senders.transactions).toHaveLength(0);
  });

  it('retries a 4xx once and delivers exactly once', async () => {
    const dest = await sink({ rcpt: refuseFirst(1, { code: 451, text: '4.3.0 try again later' }) });
    const senders = await sink();
    const n = await startNode(dest, senders, 'Retry_Interval = 1s');
    const id = await inject(n.smtp, 'alice@sender.test', ['bob@dest.test']);
    const t = await n.node.waitForLog((r) => r.event === 'transient_failure' && r.id === id);
    expect(String(t.reply)).toMatch(/^451 4\.3\.0/);
    await until('delivery after the retry', () => dest.transactions.length === 1);
    const d = await n.node.waitForLog((r) => r.event === 'delivery' && r.id === id);
    expect(d.attempt).toBe(2);
    // Nothing more can arrive once the message is out of the queue and off the spool: no attempt
    // is pending or running for it then. Wait for that, not for a while.
    await until('empty queue', async () => (await consoleOut(n, 'mailq')).includes('Total: 0 message(s)'));
    await until('empty spool', async () => (await metric(n, 'vipmta_spool_messages')) === 0);
    expect(dest.transactions).toHaveLength(1);
    expect(n.node.logs.filter((r) => r.event === 'delivery' && r.id === id)).toHaveLength(1);
    expect(await metric(n, 'vipmta_delivery_transient_failures_total')).toBe(1);
    expect(await metric(n, 'vipmta_messages_delivered_total')).toBe(1);
    expect(senders.transactions).toHaveLength(0);
  });

  it('bounces a 5xx with an RFC 3464 DSN to the sender, from the null sender; the other recipient is delivered', async () => {
    const dest = await sink({ rcpt: (a) => (a.startsWith('nobody') ? { code: 550, text: 'no such user' } : null) });
    const senders = await sink();
    const n = await startNode(dest, senders);
    const id = await inject(n.smtp, 'alice@sender.test', ['nobody@dest.test', 'bob@dest.test'], [], 'bounce me');
    await until('DSN', () => senders.transactions.length === 1);
    const dsn = senders.transactions[0]!;
    expect(dsn.from).toBe('');
    expect(dsn.rcpt).toEqual(['alice@sender.test']);
    const text = dsn.body.toString();
    expect(text).toMatch(/Content-Type: multipart\/report; report-type=delivery-status/);
    expect(text).toContain('Final-Recipient: rfc822; nobody@dest.test');
    // smtp-server puts its enhanced code for a refused RCPT (5.1.1) before the text.
    expect(text).toContain('Status: 5.1.1');
    expect(text).toContain('Diagnostic-Code: smtp; 550 5.1.1 no such user');
    expect(text).toContain(`X-Vipmta-Queue-ID: ${id}`);
    expect(text).toContain('Subject: bounce me');
    expect(text).not.toContain('bob@dest.test>: ');
    expect(dest.transactions.map((t) => t.rcpt)).toEqual([['bob@dest.test']]);
    await n.node.waitForLog((r) => r.event === 'permanent_failure' && r.id === id && r.rcpt === 'nobody@dest.test');
    await until('empty queue', async () => (await consoleOut(n, 'mailq')).includes('Total: 0 message(s)'));
    expect(await metric(n, 'vipmta_delivery_permanent_failures_total')).toBe(1);
  });

  it('sends no DSN for a bounce from the null sender', async () => {
    const dest = await sink({ rcpt: () => ({ code: 550, text: '5.1.1 no such user' }) });
    const senders = await sink();
    const n = await startNode(dest, senders);
    const id = await inject(n.smtp, '', ['nobody@dest.test']);
    await n.node.waitForLog((r) => r.msg === 'no DSN for a message from the null sender' && r.id === id);
    await until('empty queue', async () => (await consoleOut(n, 'mailq')).includes('Total: 0 message(s)'));
    expect(senders.transactions).toHaveLength(0);
  });

  it('expires a message that keeps failing (Message_Expiration) with a 4.4.7 DSN', async () => {
    const dest = await sink({ rcpt: () => ({ code: 451, text: '4.2.1 mailbox busy' }) });
    const senders = await sink();
    const n = await startNode(dest, senders, 'Retry_Interval = 500ms\nMessage_Expiration = 2s');
    const id = await inject(n.smtp, 'alice@sender.test', ['bob@dest.test']);
    await until('DSN', () => senders.transactions.length === 1, 30_000);
    const text = senders.transactions[0]!.body.toString();
    expect(text).toContain('Action: failed');
    expect(text).toContain('Status: 4.4.7');
    expect(text).toMatch(/Diagnostic-Code: smtp; 451 .*mailbox busy/);
    await n.node.waitForLog((r) => r.event === 'permanent_failure' && r.id === id && r.expired === true);
    await until('empty queue', async () => (await consoleOut(n, 'mailq')).includes('Total: 0 message(s)'));
  });

  it('keeps attempts and the next attempt across a SIGKILL and restart', async () => {
    const dest = await sink({ rcpt: refuseFirst(1, { code: 452, text: '4.2.2 over quota' }) });
    const senders = await sink();
    const extra = 'Retry_Interval = 1h\nDomain "other.test" { Suspend_Delivery = true }';
    const n = await startNode(dest, senders, extra);
    const id = await inject(n.smtp, 'alice@sender.test', ['bob@dest.test', 'eve@other.test'], [], 'restart');
    // other.test is suspended (no route, no DNS in tests); its part waits in the active queue.
    expect(await consoleOut(n, 'hold', '-d', 'other.test')).toBe('held 1 part(s)\n');
    await n.node.waitForLog((r) => r.event === 'transient_failure' && r.id === id);
    const before = await until('deferred', async () => {
      const out = await consoleOut(n, 'message', 'show', id);
      return /dest\.test +deferred +attempts 1/.test(out) ? out : undefined;
    });
    expect(before).toMatch(/other\.test +hold/);
    expect(before).toMatch(/dest\.test +deferred .*\n    last reply: 452 .*over quota\n/);
    const mailq = await consoleOut(n, 'mailq');
    expect(mailq).toMatch(/default\/default +dest\.test +0 +1 +0$/m);
    expect(mailq).toMatch(/default\/default +other\.test +0 +0 +1$/m); // held: HQ, not DQ
    await n.node.kill();
    const again = await startNode(dest, senders, extra, n.node.cwd, { smtp: n.smtp, http: n.http });
    const after = await consoleOut(again, 'message', 'show', id);
    // The same parts, attempts and next attempts; the last reply is not persisted.
    expect(after).toBe(before.replace(/^    last reply: .*\n/gm, ''));
    // The operator releases nothing held on dest.test; the deferred part waits its hour. A hold and
    // release sends it now, and it is delivered.
    expect(await consoleOut(again, 'hold', id)).toBe('held 1 part(s)\n');
    expect(await consoleOut(again, 'release', '-d', 'dest.test')).toBe('released 1 part(s)\n');
    await until('delivery', () => dest.transactions.length === 1);
    expect(dest.transactions[0]!.rcpt).toEqual(['bob@dest.test']);
    const left = await until('only other.test left', async () => {
      const out = await consoleOut(again, 'message', 'show', id);
      return out.includes('dest.test') ? undefined : out;
    });
    expect(left).toMatch(/other\.test +hold/);
  });

  it('rebind moves queued mail to the binding the policy now chooses', async () => {
    const dest = await sink({ rcpt: refuseFirst(1, { code: 451, text: '4.3.0 later' }) });
    const senders = await sink();
    const n = await startNode(dest, senders, 'Retry_Interval = 1h');
    const id = await inject(n.smtp, 'alice@sender.test', ['bob@dest.test']);
    await n.node.waitForLog((r) => r.event === 'transient_failure' && r.id === id);
    await consoleOut(n, 'hold', 'all');
    // The sender's domain now maps to b3; the held message is re-assigned there and released.
    const fs = await import('node:fs');
    fs.writeFileSync(n.node.configFile!, n.config + 'Sender_Domain_Bindings = [ "sender.test" = "b3" ]\n');
    expect(await consoleOut(n, 'config', 'reload')).toContain('config reloaded');
    expect(await consoleOut(n, 'rebind', 'default')).toBe('rebound 1 part(s)\n');
    expect(await consoleOut(n, 'mailq', '-b', 'b3')).toMatch(/default\/b3 +dest\.test +0 +0 +1$/m);
    await consoleOut(n, 'release', 'all');
    await until('delivery', () => dest.transactions.length === 1);
    const c = dest.connections.find((x) => x.id === dest.transactions[0]!.connection)!;
    expect(c.remoteAddress).toBe('127.0.0.3');
    const bad = await n.node.console('rebind');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('usage: rebind');
    // Each operator action left its event record (the log is the default sink): one per part.
    expect(n.node.logs.filter((r) => r.id === id && ['hold', 'rebind', 'release'].includes(String(r.event))).map((r) => [r.event, r.binding, r.rcpt])).toEqual([
      ['hold', 'default/default', ['bob@dest.test']],
      ['rebind', 'default/b3', ['bob@dest.test']],
      ['release', 'default/b3', ['bob@dest.test']],
    ]);
    expect(n.node.logs.find((r) => r.event === 'rebind')).toMatchObject({ previous: 'default/default' });
  });

  it('records a command it refuses at SMTP time (a rejection), with the command and the reply', async () => {
    const dest = await sink();
    const n = await startNode(dest, await sink());
    const { client } = await SmtpTestClient.connect(n.smtp);
    expect((await client.cmd('EHLO c.test')).code).toBe(250);
    const r = await client.cmd('MAIL FROM:<alice@sender.test> FROBNICATE=1');
    expect(r.code).toBe(555);
    await client.quit();
    const rec = await n.node.waitForLog((l) => l.event === 'rejection');
    expect(rec).toMatchObject({ listener: expect.any(String), client: '127.0.0.1', stage: 'MAIL', from: 'alice@sender.test', code: 555, enhanced: '5.5.4' });
    expect(rec.reply).toBe(`555 ${r.text}`);
  });

  it('delivers many messages over pooled connections within Max_Outbound_Connections', async () => {
    const dest = await sink();
    const senders = await sink();
    const n = await startNode(dest, senders, 'Max_Outbound_Connections = 2\nMax_Deliveries_Per_Connection = 50');
    const { client } = await SmtpTestClient.connect(n.smtp);
    for (let i = 0; i < 100; i++) expect((await client.send('alice@sender.test', [`r${i}@dest.test`], wireMessage(`m${i}`, ['x']))).code).toBe(250);
    await client.quit();
    await until('100 deliveries', () => dest.transactions.length === 100, 30_000);
    expect(new Set(dest.transactions.map((t) => t.rcpt[0])).size).toBe(100);
    // 100 messages at most 50 per connection: at least 2 connections, and far fewer than 100.
    expect(dest.connections.length).toBeGreaterThanOrEqual(2);
    expect(dest.connections.length).toBeLessThanOrEqual(10);
    await until('empty queue', async () => (await consoleOut(n, 'mailq')).includes('Total: 0 message(s)'));
  });
});

describe('mail to <postmaster> (RFC 5321 4.5.1)', () => {
  it('reaches the sink of Postmaster_Address, not a bounce', async () => {
    const dest = await sink();
    const senders = await sink();
    const n = await startNode(dest, senders, 'Postmaster_Address = "hostmaster@dest.test"');
    const id = await inject(n.smtp, 'alice@sender.test', ['Postmaster']);
    await until('delivery', () => dest.transactions.length === 1);
    expect(dest.transactions[0]!.rcpt).toEqual(['hostmaster@dest.test']);
    await n.node.waitForLog((r) => r.event === 'delivery' && r.id === id && r.rcpt === 'hostmaster@dest.test');
    expect(senders.transactions).toHaveLength(0);
  });
});
