// The greeting a client reads first: '220 <hostname> ESMTP vipmta', the word ESMTP once (issue 12).
// A real socket on loopback (the addon's listenTcp) reads the raw first line.
import net from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EsmtpListener } from '../../../src/listener/esmtp.js';
import { listenTcp, socketLocalAddress } from '../../../src/native/index.js';

const listeners: EsmtpListener[] = [];
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close(1)));
});

async function listener(extra: Record<string, unknown> = {}): Promise<number> {
  const options = {
    Max_Message_Size: 1 << 20, Max_Recipients: 10, Concurrency: 10, Timeout: 60_000, Pipelining: true,
    Enable_8bitmime: true, Smtputf8: true, Relay_Hosts: ['127.0.0.0/8'], ...extra,
  };
  const l = new EsmtpListener({
    spec: { name: 'test', host: '127.0.0.1', port: 0, options },
    hostname: 'mx.test',
    logger: pino({ level: 'silent' }),
    sink: { begin: () => { throw new Error('no message expected'); } },
    onAccept: () => undefined,
    onMessage: () => undefined,
    onError: () => undefined,
  });
  const fd = listenTcp({ host: '127.0.0.1', port: 0 });
  const { port } = socketLocalAddress(fd);
  await l.listenFd(fd);
  listeners.push(l);
  return port;
}

function firstLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      const end = buf.indexOf('\r\n');
      if (end >= 0) {
        s.destroy();
        resolve(buf.slice(0, end));
      }
    });
    s.once('error', reject);
  });
}

describe('ESMTP greeting', () => {
  it('reads 220 <hostname> ESMTP vipmta, with ESMTP once', async () => {
    expect(await firstLine(await listener())).toBe('220 mx.test ESMTP vipmta');
  });

  it('names the listener Hostname when one is set', async () => {
    expect(await firstLine(await listener({ Hostname: 'out.example' }))).toBe('220 out.example ESMTP vipmta');
  });
});
