// Connection limits end to end, idle connections included: a real vipmta with six bindings and
// Max_Outbound_Connections = 1 delivers to a loopback sink behind a proxy that records when each
// connection opened and closed (and from which source address). Never more than six connections
// at once and never two from one binding's address, though the workers keep connections idle
// between batches (it was nine: an idle connection in one worker while another opened a new one).
// Then Outbound_Throttle_Connections = "2/1s": no sliding second at the sink sees more than two
// opens. Only counted limits are asserted, never how long anything took.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { maxInWindow } from '../helpers/windows.js';
import { startSink, type Sink } from './delivery-sink.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanup.splice(0).reverse()) await c();
});

interface Conn {
  from: string;
  openedAt: number;
  closedAt: number | null;
}

/** A TCP proxy in front of `sink` that records each connection's source, open and close. The
 *  close is the client's FIN (or the socket's end), which vipmta sends before it reports a batch. */
async function recordingProxy(sink: Sink): Promise<{ port: number; conns: Conn[]; close: () => Promise<void> }> {
  const conns: Conn[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const c: Conn = { from: client.remoteAddress ?? '', openedAt: Date.now(), closedAt: null };
    conns.push(c);
    sockets.add(client);
    const up = net.connect(sink.port, '127.0.0.1');
    sockets.add(up);
    const closed = () => (c.closedAt ??= Date.now());
    client.on('end', closed);
    client.on('close', () => {
      closed();
      up.destroy();
    });
    client.on('error', closed);
    up.on('error', () => client.destroy());
    up.on('close', () => client.end());
    client.pipe(up);
    up.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    conns,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/** The most connections open at once (overall, or from one source). */
function maxConcurrent(conns: readonly Conn[], from?: string): number {
  const ev: [number, number][] = [];
  for (const c of conns) {
    if (from !== undefined && c.from !== from) continue;
    ev.push([c.openedAt, 1]);
    ev.push([c.closedAt ?? Infinity, -1]);
  }
  // A close and an open at the same millisecond: the close first (it was seen first).
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let n = 0;
  let best = 0;
  for (const [, d] of ev) best = Math.max(best, (n += d));
  return best;
}

async function inject(port: number, messages: { rcpt: string; headers: string[] }[]): Promise<void> {
  const { client } = await SmtpTestClient.connect(port);
  let first = true;
  for (const m of messages) {
    const r = await client.send('alice@sender.test', [m.rcpt], wireMessage('test', ['hello'], m.headers), first);
    expect(r.code).toBe(250);
    first = false;
  }
  await client.quit();
}

const BINDINGS = [11, 12, 13, 14, 15, 16].map((n) => ({ name: `b${n}`, address: `127.0.0.${n}` }));

describe('connection limits count idle connections', () => {
  it('six bindings, Max_Outbound_Connections = 1, three workers: never more than one connection per binding, six in all', async () => {
    const dest = await startSink({});
    cleanup.push(() => dest.close());
    const proxy = await recordingProxy(dest);
    cleanup.push(() => proxy.close());
    const smtp = await freePort();
    const node = startVipmta(`Worker_Threads = 3
Nodename = "n1"
Hostname = "mta.vipmta.test"
Resolver_Servers = ( "127.0.0.1:9" )
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Max_Outbound_Connections = 1
Max_Deliveries_Per_Connection = 4
Domain "dest.test" { Routes = ( "127.0.0.1:${proxy.port}" ) }
${BINDINGS.map((b) => `Binding "${b.name}" { Bind_Address = "${b.address}" }`).join('\n')}
`);
    await node.waitStarted();
    const PER = 24;
    // Three clients at once, each interleaving the bindings: the queues get mail while they run.
    const all = Array.from({ length: PER * BINDINGS.length }, (_, i) => ({ rcpt: `r${i}@dest.test`, headers: [`X-Binding: ${BINDINGS[i % BINDINGS.length]!.name}`] }));
    await Promise.all([0, 1, 2].map((k) => inject(smtp, all.filter((_, i) => i % 3 === k))));
    await waitFor('all delivered', () => dest.transactions.length >= all.length, { timeoutMs: 60_000, intervalMs: 100 });
    expect(new Set(dest.transactions.map((t) => t.rcpt[0])).size).toBe(all.length);
    // Each binding delivered from its own address, over several connections (4 messages each at most).
    for (const b of BINDINGS) expect(proxy.conns.filter((c) => c.from === b.address).length).toBeGreaterThanOrEqual(PER / 4);
    for (const b of BINDINGS) expect([b.name, maxConcurrent(proxy.conns, b.address)]).toEqual([b.name, 1]);
    expect(maxConcurrent(proxy.conns)).toBeLessThanOrEqual(BINDINGS.length);
  });

  it('Outbound_Throttle_Connections = "2/1s": no sliding second sees more than two opens', async () => {
    const dest = await startSink({});
    cleanup.push(() => dest.close());
    const proxy = await recordingProxy(dest);
    cleanup.push(() => proxy.close());
    const smtp = await freePort();
    const node = startVipmta(`Worker_Threads = 2
Nodename = "n1"
Hostname = "mta.vipmta.test"
Resolver_Servers = ( "127.0.0.1:9" )
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Max_Deliveries_Per_Connection = 1
Domain "dest.test" { Routes = ( "127.0.0.1:${proxy.port}" ) Outbound_Throttle_Connections = "2/1s" Max_Outbound_Connections = 4 }
`);
    await node.waitStarted();
    const N = 10;
    await inject(smtp, Array.from({ length: N }, (_, i) => ({ rcpt: `r${i}@dest.test`, headers: [] })));
    await waitFor('all delivered', () => dest.transactions.length >= N, { timeoutMs: 60_000, intervalMs: 100 });
    // One message per connection: every message opened one.
    expect(proxy.conns.length).toBe(N);
    expect(maxInWindow(proxy.conns.map((c) => c.openedAt), 1000)).toBeLessThanOrEqual(2);
    const r = await node.console('shaping', 'show', 'dest.test');
    expect(r.status, r.stderr).toBe(0);
  });
});
