// Bounce classes end to end: a real vipmta process delivers to an smtp-server sink on loopback that
// refuses one recipient with 550 5.1.1 and defers another with 452 4.2.2 (smtp-server adds the
// codes); the class of each failure shows in the log records, in /metrics and in the DSN the
// sender's domain (a second sink) receives.
// No DNS: both domains have Routes.
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
    const node = startVipmta(`Worker_Threads = 2
Nodename = "n1"
Hostname = "mta.vipmta.test"
Resolver_Servers = ( "127.0.0.1:9" )
Retry_Interval = 1h
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Http_Listener { Listen "127.0.0.1:${http}" { } }
Domain "dest.test" { Routes = ( "127.0.0.1:${dest.port}" ) }
Domain "sender.test" { Routes = ( "127.0.0.1:${senders.port}" ) }
`);
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
});
