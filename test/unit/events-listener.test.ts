// A listener's rejection records (src/events/, src/listener/smtp-connection.ts): every 4xx/5xx it
// sends a client becomes one record with the command it answered, the recipient or sender it
// named and the reply as the client read it; a message it takes makes none. Real sockets on
// loopback, the listener engine alone.
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../../src/events/records.js';
import type { MessageSink } from '../../src/listener/esmtp.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startListener } from './listener/helpers.js';

const sink: MessageSink = {
  begin: () => ({ append: () => undefined, commit: async () => ({ id: 't-1', size: 0 }), abort: () => undefined }),
};

describe('rejection records', () => {
  it('records a relay refusal at RCPT and an oversized message at the end of DATA, and nothing for what it accepts', async () => {
    const records: NewEvent[] = [];
    const { port } = await startListener({ sink, options: { Relay_Hosts: [], Max_Message_Size: 100 }, extra: { onRejection: (r) => void records.push(r) } });
    const { client: c } = await SmtpTestClient.connect(port);
    expect((await c.cmd('EHLO c.test')).code).toBe(250);
    expect((await c.cmd('MAIL FROM:<s@c.test>')).code).toBe(250);
    const refused = await c.cmd('RCPT TO:<x@elsewhere.test>');
    expect(refused.code).toBe(550);
    await waitFor('the relay rejection', () => records.length === 1);
    expect(records[0]).toMatchObject({
      type: 'rejection', listener: 'test', client: '127.0.0.1', local: `127.0.0.1:${port}`, stage: 'RCPT', from: 's@c.test', rcpt: ['x@elsewhere.test'],
      code: 550, enhanced: refused.text.slice(0, 5), reply: `550 ${refused.text}`,
    });
    expect(typeof (records[0] as { time: number }).time).toBe('number');
    c.close();

    // A client in Relay_Hosts (the default of the test listener) gets to DATA.
    const relay = await startListener({ sink, options: { Max_Message_Size: 100 }, extra: { onRejection: (r) => void records.push(r) } });
    const { client: d } = await SmtpTestClient.connect(relay.port);
    expect((await d.cmd('EHLO c.test')).code).toBe(250);
    expect((await d.cmd('MAIL FROM:<s@c.test>')).code).toBe(250);
    expect((await d.cmd('RCPT TO:<a@d.test>')).code).toBe(250);
    expect((await d.cmd('RCPT TO:<b@d.test>')).code).toBe(250);
    expect((await d.cmd('DATA')).code).toBe(354);
    const big = await d.cmd(`Subject: x\r\n\r\n${'y'.repeat(300)}\r\n.`);
    expect(big.code).toBe(552);
    await waitFor('the DATA rejection', () => records.length === 2);
    expect(records[1]).toMatchObject({ type: 'rejection', stage: 'DATA', from: 's@c.test', rcpt: ['a@d.test', 'b@d.test'], code: 552 });
    expect((await d.cmd('NOOP')).code).toBe(250);
    d.close();
    expect(records.length).toBe(2);
  });
});
