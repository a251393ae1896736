// The greeting a client reads first: '220 <hostname> ESMTP vipmta', the word ESMTP once (issue 12).
// A real socket on loopback (the addon's listenTcp) reads the raw first line.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startListener } from './helpers.js';

async function listener(extra: Record<string, unknown> = {}): Promise<number> {
  return (await startListener({ options: extra })).port;
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
