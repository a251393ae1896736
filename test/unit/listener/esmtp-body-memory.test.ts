// The listener under a body-memory budget (Max_Body_Memory): a large body that finds the memory taken
// waits with its client paused, and finishes intact once the other body is committed; one that waits
// longer than Timeout is answered 421 4.3.2. Real sockets on loopback, a sink whose commits the test
// releases, a shared budget made as the main thread makes it.
import { describe, expect, it } from 'vitest';
import type { MessageSink } from '../../../src/listener/esmtp.js';
import { bodyMemoryStats, newBodyMemory } from '../../../src/listener/body-memory.js';
import { SmtpTestClient } from '../../helpers/smtp-client.js';
import { waitFor } from '../../helpers/wait.js';
import { startListener } from './helpers.js';

const MiB = 1024 * 1024;

/** A sink whose commits wait for open(); it keeps each committed body's length. */
function gatedSink(): MessageSink & { stored: number[]; open: () => void } {
  const stored: number[] = [];
  let opened = false;
  let waiting: (() => void)[] = [];
  return {
    stored,
    open() {
      opened = true;
      for (const w of waiting) w();
      waiting = [];
    },
    begin() {
      let n = 0;
      return {
        append: (chunk: Buffer) => void (n += chunk.length),
        commit: async () => {
          if (!opened) await new Promise<void>((r) => waiting.push(r));
          stored.push(n);
          return { id: `t-${stored.length}`, size: n };
        },
        abort: () => undefined,
      };
    },
  };
}

const LINE = 'y'.repeat(998) + '\r\n';
const BODY = `Subject: large\r\n\r\n${LINE.repeat((2 * MiB) / LINE.length)}`;

async function sendBody(port: number): Promise<{ client: SmtpTestClient; reply: Promise<{ code: number; text: string }> }> {
  const { client } = await SmtpTestClient.connect(port);
  expect((await client.cmd('EHLO c.test')).code).toBe(250);
  expect((await client.cmd('MAIL FROM:<s@c.test>')).code).toBe(250);
  expect((await client.cmd('RCPT TO:<r@d.test>')).code).toBe(250);
  expect((await client.cmd('DATA')).code).toBe(354);
  client.write(BODY);
  return { client, reply: client.cmd('.').catch((e: Error) => ({ code: 0, text: e.message })) };
}

describe('esmtp listener body memory', () => {
  // 8 MiB: medium grants up to 512 KiB from 2 MiB, one large slot (4 MiB + 64 KiB) at a time from 6 MiB.
  const options = { Max_Message_Size: 4 * MiB };

  it('pauses a large body while another holds the memory, and finishes it intact after that commit', async () => {
    const bodies = newBodyMemory(8 * MiB);
    const sink = gatedSink();
    const { port } = await startListener({ options, sink, bodies });
    const a = await sendBody(port);
    // A's body is in and waits for its commit, holding the slot.
    await waitFor('the first body to hold the large slot', () => bodyMemoryStats(bodies).heldBytes >= 4 * MiB);
    const b = await sendBody(port);
    await waitFor('the second body to wait for memory', () => bodyMemoryStats(bodies).waiting === 1);
    expect(sink.stored).toEqual([]);
    sink.open();
    expect((await a.reply).code).toBe(250);
    expect((await b.reply).code).toBe(250);
    const wire = Buffer.byteLength(BODY);
    expect(sink.stored.length).toBe(2);
    // Each stored body is the client's plus our Received: field.
    for (const n of sink.stored) expect(n - wire).toBeGreaterThan(0);
    for (const n of sink.stored) expect(n - wire).toBeLessThan(1024);
    expect(bodyMemoryStats(bodies)).toMatchObject({ heldBytes: 0, waiting: 0 });
    await a.client.quit();
    await b.client.quit();
  });

  it('answers 421 4.3.2 to a body that waited for memory longer than Timeout, and gives back what it held', async () => {
    const bodies = newBodyMemory(8 * MiB);
    const sink = gatedSink();
    const timeout = { ...options, Timeout: 300 };
    const { port } = await startListener({ options: timeout, sink, bodies });
    const a = await sendBody(port);
    await waitFor('the first body to hold the large slot', () => bodyMemoryStats(bodies).heldBytes >= 4 * MiB);
    const b = await sendBody(port);
    const r = await b.reply;
    expect(r.code).toBe(421);
    expect(r.text).toMatch(/^4\.3\.2 /);
    expect(bodyMemoryStats(bodies).counters.memoryTimeouts).toBe(1);
    await waitFor('the waiter to be gone', () => bodyMemoryStats(bodies).waiting === 0);
    sink.open();
    expect((await a.reply).code).toBe(250);
    expect(bodyMemoryStats(bodies).heldBytes).toBe(0);
    b.client.close();
    await a.client.quit();
  });
});
