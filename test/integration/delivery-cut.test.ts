// The handover's cut through the real worker (dist/workers/worker.js): a delivery from 127.0.0.2
// waits for the greeting of a sink that never sends one, the main thread broadcasts
// abortDeliveries for the address (as Dispatcher.abortDeliveriesFrom does on an ownership change),
// and the batch comes back cut at once, even after a settings change replaced the worker's engine.
// Every engine timeout is 60 s; the test waits 10 s for the results.
import net from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeliveryBatch } from '../../src/delivery/batch.js';
import type { DeliverySettings } from '../../src/delivery/settings.js';
import type { MessageResult } from '../../src/delivery/index.js';
import { Spool } from '../../src/spool/index.js';
import { WorkerPool } from '../../src/workers/pool.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const settings = (commandTimeoutMs: number): DeliverySettings => ({ resolverServers: [], connectTimeoutMs: 60_000, commandTimeoutMs, dataTimeoutMs: 60_000 });

describe('a handover cuts the deliveries a worker runs from the address', () => {
  it('while the connection waits for the greeting, on an engine a settings change replaced', async () => {
    const dir = tempDir('vipmta-cut-');
    const spool = Spool.open({ directory: dir, nodeId: 't', sync: 'none', preallocate: 'none' });
    cleanup.push(() => spool.close());
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const w = spool.writer().begin();
      w.append(Buffer.from('Subject: t\r\n\r\nx\r\n'));
      ids.push((await w.commit(Buffer.from(JSON.stringify({ v: 1, from: 's@src.test', rcpt: ['a@d.test'], arrival: Date.now(), headers: {} })))).id);
    }

    // Accepts and never greets.
    let connections = 0;
    const sockets = new Set<net.Socket>();
    const sink = net.createServer((c) => { connections++; sockets.add(c); c.on('error', () => {}); });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => { for (const c of sockets) c.destroy(); sink.close(() => resolve()); }));
    const port = (sink.address() as net.AddressInfo).port;

    const pool = new WorkerPool({
      size: 1,
      logger: pino({ level: 'silent' }),
      init: (workerId) => ({ workerId, logLevel: 'silent', nodeName: 't', hostname: 't', spoolDirectory: dir }),
    });
    await pool.start();
    cleanup.push(() => pool.stop(5000));
    await pool.call(0, 'setDelivery', settings(60_000));

    const batch: DeliveryBatch = {
      binding: { name: 'b', bindAddress: '127.0.0.2', ehloHostname: 'me.test' },
      target: { domain: 'd.test', routes: [{ host: '127.0.0.1', port }], maxDeliveriesPerConnection: 10 },
      tls: { mode: 'opportunistic', verify: false },
      messages: ids.map((id) => ({ id, from: 's@src.test', rcpt: ['a@d.test'] })),
      conn: null,
      mayOpen: 1,
    };
    let results: MessageResult[] | null = null;
    // A failed call leaves results null: the wait below fails, naming what it waited for.
    void pool.call(0, 'deliver', batch, 120_000).then((r) => (results = r.results), () => {});
    await waitFor('the connection', () => connections === 1);
    // The engine running the batch is replaced; the cut must still reach it.
    await pool.call(0, 'setDelivery', settings(59_000));

    const [other] = await pool.broadcast('abortDeliveries', { localAddress: '127.0.0.3' });
    expect(other).toEqual({ status: 'fulfilled', value: { aborted: 0 } });
    const [cut] = await pool.broadcast('abortDeliveries', { localAddress: '127.0.0.2' });
    expect(cut).toEqual({ status: 'fulfilled', value: { aborted: 1 } });

    const r = await waitFor('the cut batch', () => results, { timeoutMs: 10_000 });
    expect(r.map((m) => [m.id, m.cut, m.results.map((x) => [x.status, x.origin, x.reply])])).toEqual(ids.map((id) => [
      id, true, [['deferred', 'local', '4.4.2 delivery cut: this node no longer holds 127.0.0.2']],
    ]));
    expect(connections).toBe(1);
  });
});
