// Cluster_Max_Inbound_Connections at the listener: a client counts under its most specific
// Inbound_Cidr; beyond the network's limit it reads 421 4.7.0 and is closed; another network is
// not affected; a closed session frees its place; a refusal by a later check gives the place back.
// Real sockets on loopback, clients bound to 127.0.0.x.
import net from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { inboundState, newInboundCount } from '../../../src/listener/inbound-count.js';
import { startListener } from './helpers.js';

interface Client { first: Promise<string>; closed: Promise<void>; socket: net.Socket }

/** Connects from `from` and reads the greeting line. */
function connect(port: number, from: string): Client {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress: from });
  socket.setEncoding('latin1');
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const first = new Promise<string>((resolve, reject) => {
    let buf = '';
    socket.on('data', (d: string) => {
      buf += d;
      const end = buf.indexOf('\r\n');
      if (end >= 0) resolve(buf.slice(0, end));
    });
    socket.once('error', reject);
  });
  return { first, closed, socket };
}

describe('Inbound_Cidr at connect', () => {
  it('refuses beyond the network\'s limit with 421 4.7.0, not other networks; a close frees a place', async () => {
    const narrow = newInboundCount(2);
    const wide = newInboundCount(100);
    const { port } = await startListener({ inbound: [{ cidr: '127.0.0.0/8', count: wide }, { cidr: '127.0.0.2/32', count: narrow }] });
    const a = connect(port, '127.0.0.2');
    const b = connect(port, '127.0.0.2');
    expect(await a.first).toMatch(/^220 /);
    expect(await b.first).toMatch(/^220 /);
    const c = connect(port, '127.0.0.2');
    expect(await c.first).toBe('421 4.7.0 mx.test too many connections from your network, try again later');
    await c.closed;
    const d = connect(port, '127.0.0.3');
    expect(await d.first).toMatch(/^220 /);
    expect(inboundState(narrow)).toEqual({ open: 2, limit: 2, refused: 1 });
    expect(inboundState(wide)).toEqual({ open: 1, limit: 100, refused: 0 });
    a.socket.destroy();
    await vi.waitFor(() => expect(inboundState(narrow).open).toBe(1));
    const e = connect(port, '127.0.0.2');
    expect(await e.first).toMatch(/^220 /);
    for (const x of [b, d, e]) x.socket.destroy();
    await vi.waitFor(() => expect(inboundState(narrow).open + inboundState(wide).open).toBe(0));
  });

  it('gives the place back when a later check refuses the client', async () => {
    const count = newInboundCount(5);
    const { port } = await startListener({ options: { Relay_Hosts: [], Max_Connections_Per_Client: 1 }, inbound: [{ cidr: '127.0.0.2/32', count }] });
    const a = connect(port, '127.0.0.2');
    expect(await a.first).toMatch(/^220 /);
    const b = connect(port, '127.0.0.2');
    expect(await b.first).toMatch(/^421 4\.7\.0 Too many connections from your address/);
    await b.closed;
    expect(inboundState(count)).toEqual({ open: 1, limit: 5, refused: 0 });
    a.socket.destroy();
    await vi.waitFor(() => expect(inboundState(count).open).toBe(0));
  });
});
