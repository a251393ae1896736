// Outbound_Throttle_Messages end to end: a real vipmta delivers 100 queued messages to a loopback
// sink that records when each one arrived; with "20/2s" for the domain no 2 s window at the sink
// holds more than 20, all 100 arrive, and mailq says the queue is throttled meanwhile. The bound
// is asserted over the sink's arrival times, never how long it took.
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startSink, type Sink } from './delivery-sink.js';
import { maxInWindow } from '../helpers/windows.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('Outbound_Throttle_Messages', () => {
  it('"20/2s": no 2 s window at the receiver above 20, and all 100 messages arrive', async () => {
    const arrivals: number[] = [];
    // Recorded when the body has arrived, before the sink answers 250: before vipmta learns of it.
    const dest: Sink = await startSink({ data: () => (arrivals.push(Date.now()), null) });
    cleanup.push(() => dest.close());
    const smtp = await freePort();
    const node = startVipmta(`Worker_Threads = 2
Nodename = "n1"
Hostname = "mta.vipmta.test"
Resolver_Servers = ( "127.0.0.1:9" )
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Domain "dest.test" { Routes = ( "127.0.0.1:${dest.port}" ) Outbound_Throttle_Messages = "20/2s" }
`);
    await node.waitStarted();
    const { client } = await SmtpTestClient.connect(smtp);
    for (let i = 0; i < 100; i++) {
      const r = await client.send('alice@sender.test', [`r${i}@dest.test`], wireMessage(`m${i}`, ['hello']), i === 0);
      expect(r.code).toBe(250);
    }
    await client.quit();
    await waitFor('the queue held back by its throttle', async () => {
      const r = await node.console('mailq', '-d', 'dest.test');
      return /throttled until \d{4}-\d\d-\d\dT/.test(r.stdout);
    }, { timeoutMs: 30_000, intervalMs: 100 });
    await waitFor('all 100 delivered', () => arrivals.length >= 100, { timeoutMs: 60_000, intervalMs: 100 });
    expect(arrivals).toHaveLength(100);
    expect(new Set(dest.transactions.map((t) => t.rcpt[0])).size).toBe(100);
    expect(maxInWindow(arrivals, 2000)).toBeLessThanOrEqual(20);
    await waitFor('empty queue', async () => (await node.console('mailq')).stdout.includes('Total: 0 message(s)'), { timeoutMs: 10_000, intervalMs: 100 });
  });
});
