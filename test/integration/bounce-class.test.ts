// Bounce classes end to end: a real vipmta process delivers to an smtp-server sink on loopback that
// refuses one recipient with 550 5.1.1 and defers another with 452 4.2.2 (smtp-server adds the
// codes); the class of each failure shows in the log records, in /metrics and in the DSN the
// sender's domain (a second sink) receives. And a receiver that answers Yahoo's 421 [TSS04] to a
// pipelined RCPT and closes: the log records carry its reply (origin remote), not our 4.4.2.
// No DNS: the domains have Routes.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startSink } from './delivery-sink.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanup.splice(0).reverse()) await c();
});

function config(smtp: number, http: number, routes: string): string {
  return `Worker_Threads = 2
Nodename = "n1"
Hostname = "mta.vipmta.test"
Resolver_Servers = ( "127.0.0.1:9" )
Retry_Interval = 1h
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Http_Listener { Listen "127.0.0.1:${http}" { } }
${routes}
`;
}

describe('bounce classes', () => {
  it('names each failure\'s class in the log records, the failure counter and the DSN', async () => {
    const dest = await startSink({
      rcpt: (a) => (a.startsWith('nobody') ? { code: 550, text: 'No such user here' } : a.startsWith('full') ? { code: 452, text: 'Mailbox full' } : null),
    });
    cleanup.push(() => dest.close());
    const senders = await startSink();
    cleanup.push(() => senders.close());
    const smtp = await freePort();
    const http = await freePort();
    const node = startVipmta(config(smtp, http, `Domain "dest.test" { Routes = ( "127.0.0.1:${dest.port}" ) }
Domain "sender.test" { Routes = ( "127.0.0.1:${senders.port}" ) }`));
    await node.waitStarted();

    const { client } = await SmtpTestClient.connect(smtp);
    const r = await client.send('alice@sender.test', ['bob@dest.test', 'nobody@dest.test', 'full@dest.test'], wireMessage('classes', ['hello']));
    await client.quit();
    expect(r.code).toBe(250);
    const id = /queued as (\S+)/.exec(r.text)![1]!;

    // The log records: the existing fields, plus the class and its name.
    const bounced = await node.waitForLog((x) => x.event === 'permanent_failure' && x.id === id && x.rcpt === 'nobody@dest.test');
    expect(bounced).toMatchObject({ class: 10, bounce_class: '10 Invalid Recipient', origin: 'remote', binding: 'default/default', attempt: 1 });
    expect(String(bounced.reply)).toMatch(/^550 5\.1\.1 No such user here/);
    const deferred = await node.waitForLog((x) => x.event === 'transient_failure' && x.id === id && x.rcpt === 'full@dest.test');
    expect(deferred).toMatchObject({ class: 22, bounce_class: '22 Mailbox Full', origin: 'remote' });
    expect(String(deferred.reply)).toMatch(/^452 4\.2\.2 Mailbox full/);
    const delivered = await node.waitForLog((x) => x.event === 'delivery' && x.id === id && x.rcpt === 'bob@dest.test');
    expect(delivered).not.toHaveProperty('class');

    // The DSN, at the sender's domain, from the null sender, says the class of the bounced recipient.
    const dsn = await waitFor('the DSN at the sender\'s sink', () => senders.transactions[0], { timeoutMs: 20_000, intervalMs: 50 });
    expect(dsn.from).toBe('');
    expect(dsn.rcpt).toEqual(['alice@sender.test']);
    const text = dsn.body.toString('latin1');
    expect(text).toMatch(/Final-Recipient: rfc822; nobody@dest\.test\r\n(?:[^\r\n]+\r\n)*X-Vipmta-Bounce-Class: 10 \(Invalid Recipient\)\r\n/);
    expect(text).not.toContain('full@dest.test'); // deferred, not bounced: not in the DSN

    // The counter, by class and kind.
    const metrics = async () => (await (await fetch(`http://127.0.0.1:${http}/metrics`)).text()).split('\n');
    const lines = await waitFor('the failure counter', async () => {
      const l = await metrics();
      return l.includes('vipmta_delivery_failures_total{class="10",kind="permanent"} 1') ? l : null;
    }, { timeoutMs: 20_000, intervalMs: 50 });
    expect(lines).toContain('vipmta_delivery_failures_total{class="22",kind="transient"} 1');
    expect(lines.filter((l) => l.startsWith('vipmta_delivery_failures_total{'))).toHaveLength(2);
  });

  it('logs the 421 a receiver answers to a pipelined RCPT before closing as its own reply, with class 70', async () => {
    const TSS04 = '421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume or user complaints - see https://postmaster.example.net/error-codes';
    // A receiver that takes MAIL, answers the first RCPT with TSS04 and closes the connection.
    const sockets = new Set<net.Socket>();
    const server = net.createServer((c) => {
      sockets.add(c);
      c.on('error', () => {});
      c.write('220 mx.dest.test ESMTP\r\n');
      let buf = '';
      let done = false;
      c.on('data', (d) => {
        buf += d.toString('latin1');
        for (let nl = buf.indexOf('\r\n'); nl >= 0 && !done; nl = buf.indexOf('\r\n')) {
          const cmd = buf.slice(0, nl);
          buf = buf.slice(nl + 2);
          if (cmd.startsWith('EHLO')) c.write('250-mx.dest.test\r\n250 PIPELINING\r\n');
          else if (cmd.startsWith('RCPT')) { done = true; c.end(TSS04 + '\r\n'); }
          else if (cmd === 'QUIT') { done = true; c.end('221 bye\r\n'); }
          else c.write('250 2.0.0 ok\r\n');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => { for (const x of sockets) x.destroy(); server.close(() => resolve()); }));
    const port = (server.address() as net.AddressInfo).port;
    const smtp = await freePort();
    const http = await freePort();
    const node = startVipmta(config(smtp, http, `Domain "yahoo.test" { Routes = ( "127.0.0.1:${port}" ) }`));
    await node.waitStarted();

    const { client } = await SmtpTestClient.connect(smtp);
    const r = await client.send('alice@sender.test', ['a@yahoo.test', 'b@yahoo.test'], wireMessage('tss04', ['hello']));
    await client.quit();
    expect(r.code).toBe(250);
    const id = /queued as (\S+)/.exec(r.text)![1]!;
    for (const rcpt of ['a@yahoo.test', 'b@yahoo.test']) {
      const rec = await node.waitForLog((x) => x.event === 'transient_failure' && x.id === id && x.rcpt === rcpt);
      expect(rec).toMatchObject({ reply: TSS04, origin: 'remote', class: 70, bounce_class: '70 Transient Failure', host: '127.0.0.1' });
    }
  });
});
