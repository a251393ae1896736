// A drained node's ESMTP listener (`cluster drain`): new sessions get 421 4.3.2 at connect, a
// session already open carries on, and once undrained new sessions are greeted again. The word is
// the one the main thread sets (listener/drain-flag.ts). A real listener on loopback.
import { describe, expect, it } from 'vitest';
import { newDrainFlag, setDrainFlag } from '../../../src/listener/drain-flag.js';
import { SmtpTestClient } from '../../helpers/smtp-client.js';
import { startListener } from './helpers.js';

describe('ESMTP listener of a drained node', () => {
  it('answers new sessions 421 4.3.2 while drained; open sessions carry on', async () => {
    const drained = newDrainFlag();
    const { port } = await startListener({ drained });
    const open = await SmtpTestClient.connect(port);
    expect(open.greeting.code).toBe(220);
    expect((await open.client.cmd('EHLO c.test')).code).toBe(250);

    setDrainFlag(drained, true);
    const refused = await SmtpTestClient.connect(port);
    expect(refused.greeting.code).toBe(421);
    expect(refused.greeting.text).toMatch(/^4\.3\.2 mx\.test draining, try another server/);
    refused.client.close();

    // The session opened before the drain is not cut: its transaction goes on.
    expect((await open.client.cmd('MAIL FROM:<s@x.test>')).code).toBe(250);
    expect((await open.client.cmd('RCPT TO:<r@y.test>')).code).toBe(250);
    await open.client.cmd('RSET');

    setDrainFlag(drained, false);
    const again = await SmtpTestClient.connect(port);
    expect(again.greeting.code).toBe(220);
    await again.client.quit();
    await open.client.quit();
  });
});
