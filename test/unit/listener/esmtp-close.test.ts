// The ESMTP listener's side of the drain policy (src/workers/socket-set.ts): once closed it accepts
// nothing, an idle session gets 421 at once, a session in DATA finishes its message (250, in the
// sink) and is told 421 at its next command; a second close with a shorter grace cuts what is left.
// Real sockets on loopback (the addon's listenTcp), a recording sink instead of the spool.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import type { EsmtpListener, MessageSink } from '../../../src/listener/esmtp.js';
import { SmtpTestClient } from '../../helpers/smtp-client.js';
import { startListener } from './helpers.js';

function recordingSink(): MessageSink & { stored: string[] } {
  const stored: string[] = [];
  return {
    stored,
    begin() {
      const parts: Buffer[] = [];
      return {
        append: (chunk: Buffer) => void parts.push(Buffer.from(chunk)),
        commit: async () => {
          stored.push(Buffer.concat(parts).toString('latin1'));
          return { id: `t-${stored.length}`, size: 0 };
        },
        abort: () => undefined,
      };
    },
  };
}

function listener(sink: MessageSink): Promise<{ l: EsmtpListener; port: number }> {
  return startListener({ sink });
}

async function inData(port: number): Promise<SmtpTestClient> {
  const { client } = await SmtpTestClient.connect(port);
  expect((await client.cmd('EHLO c.test')).code).toBe(250);
  expect((await client.cmd('MAIL FROM:<s@c.test>')).code).toBe(250);
  expect((await client.cmd('RCPT TO:<r@d.test>')).code).toBe(250);
  expect((await client.cmd('DATA')).code).toBe(354);
  client.write('Subject: in flight\r\n\r\nfirst half\r\n');
  return client;
}

function refused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve('connected')));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

describe('ESMTP listener close', () => {
  it('stops accepting, says 421 to an idle session, and lets a session in DATA finish its message', async () => {
    const sink = recordingSink();
    const { l, port } = await listener(sink);
    const { client: idle } = await SmtpTestClient.connect(port);
    expect((await idle.cmd('EHLO idle.test')).code).toBe(250);
    const busy = await inData(port);
    expect(l.activeSessions).toBe(2);

    const closed = l.close(60_000);
    expect((await idle.read()).code).toBe(421);
    expect(await refused(port)).toBe('ECONNREFUSED');

    busy.write('second half\r\n');
    const end = await busy.cmd('.');
    expect(end).toMatchObject({ code: 250, text: '2.0.0 Ok: queued as t-1' });
    expect(sink.stored).toHaveLength(1);
    expect(sink.stored[0]).toMatch(/Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n$/);
    // Its transaction done, the session is told to go at its next command.
    expect((await busy.cmd('MAIL FROM:<s@c.test>')).code).toBe(421);
    expect(await closed).toBe(0);
  });

  it('cuts a session still in DATA when a second close shortens the grace, and counts it', async () => {
    const sink = recordingSink();
    const { l, port } = await listener(sink);
    const busy = await inData(port);
    const first = l.close(60_000);
    const second = l.close(1);
    expect(second).toBe(first);
    expect(await second).toBe(1);
    expect((await busy.read()).code).toBe(421);
    expect(sink.stored).toEqual([]);
  });
});
