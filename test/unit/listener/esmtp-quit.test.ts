// QUIT on a plain connection (src/listener/smtp-connection.ts handler_QUIT): the client gets the
// whole 221 line and then the end of the stream, and the server has already let go of its socket
// (closed, not half-closed waiting for the client's FIN, which clients that reset never send).
// Real sockets on loopback (the addon's listenTcp).
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startListener } from './helpers.js';

describe('ESMTP listener QUIT', () => {
  it('sends the whole 221, then closes its socket without waiting for the client to close its side', async () => {
    const { l, port } = await startListener();
    const inner = (l as unknown as { server: { server: net.Server } }).server.server;
    let serverSide: net.Socket | null = null;
    inner.on('connection', (s: net.Socket) => (serverSide = s));

    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    c.setEncoding('latin1');
    const lines: string[] = [];
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    const waitFor = (prefix: string): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          while (got.includes('\r\n')) {
            const j = got.indexOf('\r\n');
            lines.push(got.slice(0, j));
            got = got.slice(j + 2);
          }
          if (lines.some((x) => x.startsWith(prefix))) {
            c.off('data', onData);
            resolve();
          }
        };
        const onData = (d: string): void => {
          got += d;
          check();
        };
        c.on('data', onData);
        check();
      });
    await waitFor('220 ');
    c.write('EHLO c.test\r\n');
    await waitFor('250 ');
    c.write('QUIT\r\n');
    await waitFor('221 ');
    await ended;
    // The client has not ended its side: the server closed its socket on its own.
    expect(c.writableEnded).toBe(false);
    expect(lines.at(-1)).toMatch(/^221 2\.0\.0 /);
    expect(serverSide).not.toBeNull();
    expect(serverSide!.destroyed).toBe(true);
    c.destroy();
  });
});
