// A restart with mail in the spool (issue 12, 2): recovered mail waits for the worker threads that
// deliver it, so the start logs no ERROR ('delivery batch lost (worker failed)' used to appear for
// every batch handed out before the workers were ready) and the mail goes on the first attempt
// instead of after the lost-batch retry. Real processes, a real sink on loopback.
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startSink, type Sink } from './delivery-sink.js';

const sinks: Sink[] = [];
afterEach(async () => {
  await killAll();
  for (const s of sinks.splice(0)) await s.close();
});

describe('restart with queued mail', () => {
  it('delivers the recovered mail once the workers are ready, with no ERROR line', async () => {
    const dest = await startSink();
    sinks.push(dest);
    const smtp = await freePort();
    const config = (suspended: boolean): string => `Worker_Threads = 2
Nodename = "n1"
Hostname = "mta.vipmta.test"
Resolver_Servers = ( "127.0.0.1:9" )
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Spool { Directory = "./spool" }
Domain "dest.test" { Routes = ( "127.0.0.1:${dest.port}" ) Suspend_Delivery = ${suspended} }
`;
    // First run: delivery to dest.test is suspended, so the mail is still spooled at the restart.
    const first = startVipmta(config(true));
    await first.waitStarted();
    const { client } = await SmtpTestClient.connect(smtp);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await client.send('alice@sender.test', [`bob${i}@dest.test`], wireMessage(`m${i}`, ['hello']));
      expect(r.code).toBe(250);
      ids.push(/queued as (\S+)/.exec(r.text)![1]!);
    }
    await client.quit();
    first.signal('SIGTERM');
    await first.exited;

    const again = startVipmta(config(false), { cwd: first.cwd });
    await again.waitStarted();
    await waitFor('every recovered message delivered', () => ids.every((id) => again.logs.some((r) => r.event === 'delivery' && r.id === id)), { timeoutMs: 30_000 });
    expect(again.logs.filter((r) => r.msg.startsWith('delivery batch lost'))).toEqual([]);
    expect(again.logs.filter((r) => r.level === 'error' || r.level === 'fatal')).toEqual([]);
    for (const id of ids) expect(again.logs.find((r) => r.event === 'delivery' && r.id === id)?.attempt).toBe(1);
    expect(dest.transactions).toHaveLength(6);
  });
});
