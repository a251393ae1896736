// Cluster_Max_Inbound_Connections through a real vipmta process with two worker threads, over
// loopback (issue 13, Inbound): clients bound to 127.0.0.2 share one count across the workers and
// the 4th at once reads 421 4.7.0; 127.0.0.3 is another network and is accepted; closing one frees
// a place; `shaping inbound` shows the count, the allowance and the refusal; logged at INFO.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, readReply, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';

afterEach(killAll);

async function connectFrom(port: number, from: string): Promise<{ sock: net.Socket; greeting: string; closed: Promise<void> }> {
  const sock = net.connect({ port, host: '127.0.0.1', localAddress: from });
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return { sock, greeting: await readReply(sock), closed };
}

/** `shaping inbound` until its output matches (the node counts a close when its worker sees it). */
async function inboundView(n: VipmtaProcess, want: RegExp): Promise<string> {
  for (let i = 0; ; i++) {
    const r = await n.console('shaping', 'inbound');
    if (want.test(r.stdout) || i >= 100) return r.stdout;
  }
}

describe('Inbound_Cidr', () => {
  it('refuses the 4th concurrent connection from the network with 421 4.7.0, not another network, and frees a place on close', async () => {
    const port = await freePort();
    const n = startVipmta(`Worker_Threads = 2
Nodename = "n1"
Log_Level = "info"
ESMTP_Listener {
  Inbound_Cidr "127.0.0.2/32" { Cluster_Max_Inbound_Connections = 3 }
  Listen "127.0.0.1:${port}" { }
}
Suspend_Delivery = true
Spool { Directory = "./spool" Sync = "none" }
Control_Listener { Listen "./run/control.sock" { } }
`);
    await n.waitStarted();
    const held = [];
    for (let i = 0; i < 3; i++) {
      const c = await connectFrom(port, '127.0.0.2');
      expect(c.greeting).toMatch(/^220 /);
      held.push(c);
    }
    const fourth = await connectFrom(port, '127.0.0.2');
    expect(fourth.greeting).toMatch(/^421 4\.7\.0 \S+ too many connections from your network, try again later/);
    await fourth.closed;
    const other = await connectFrom(port, '127.0.0.3');
    expect(other.greeting).toMatch(/^220 /);

    const log = await n.waitForLog((l) => l.msg === 'too many connections from client network');
    expect(log).toMatchObject({ client: '127.0.0.2', cidr: '127.0.0.2/32' });
    expect(log.level).toBe('info');
    expect(await inboundView(n, /3 open/)).toMatch(/^network 127\.0\.0\.2\/32 \(Cluster_Max_Inbound_Connections = 3[^\n]*\n  n1 \(this node\): 3 open, allowance 3, target 3, refused 1 since start/);

    held.shift()!.sock.destroy();
    expect(await inboundView(n, /2 open/)).toMatch(/n1 \(this node\): 2 open, allowance 3/);
    const again = await connectFrom(port, '127.0.0.2');
    expect(again.greeting).toMatch(/^220 /);
    expect(n.logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
    for (const c of [...held, other, again]) c.sock.destroy();
  });
});
