// Delivery records under kill -9: a node delivering a full queue to a sink is SIGKILLed at random
// moments (10 times) and restarted each time, until every message is delivered. Then every
// acknowledged message is at the sink, and has exactly one delivery record in the event journal:
// a crash after a record was durable but before its done-mark is settled from the journal at the
// restart (src/node/settled.ts), not delivered and recorded again. The one copy the sink may get
// twice is a crash after the sink's 250 and before the record was durable (SMTP is at least once);
// that message still has one record. Real process, real fdatasync, real kill -9.
import crypto from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { journalRecords } from '../helpers/journal-records.js';
import { freePort, killAll, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startSink, type Sink } from './delivery-sink.js';

let sink: Sink | null = null;
afterEach(async () => {
  await killAll();
  await sink?.close();
  sink = null;
});

const ROUNDS = 10;
const MESSAGES = 1500;

describe('delivery records under kill -9', () => {
  it('gives every delivered message exactly one delivery record across 10 SIGKILLs mid-delivery', async () => {
    const s = (sink = await startSink());
    const port = await freePort();
    const config = (held: boolean): string => `Worker_Threads = 2
Nodename = "k1"
Log_Level = "info"
ESMTP_Listener { Listen "127.0.0.1:${port}" { } }
${held ? 'Suspend_Delivery = true' : ''}
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Domain "dest.test" { Routes = ( "127.0.0.1:${s.port}" ) }
`;
    let n: VipmtaProcess = startVipmta(config(true));
    const cwd = n.cwd;
    await n.waitStarted();
    // Held while it fills: queue id -> tag of every acknowledged message.
    const acked = new Map<string, string>();
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      const { client: c } = await SmtpTestClient.connect(port);
      try {
        for (let first = true; next < MESSAGES; first = false) {
          next++;
          const tag = crypto.randomBytes(10).toString('hex');
          const r = await c.send('s@client.test', ['r@dest.test'], `Message-ID: <${tag}@kill.test>\r\nSubject: ${tag}\r\n\r\n${'d'.repeat(70).concat('\r\n').repeat(30)}\r\n`, first);
          expect(`${r.code} ${r.text ?? ''}`).toMatch(/^250/);
          acked.set(r.id!, tag);
        }
        await c.quit();
      } finally {
        c.close();
      }
    }));
    n.signal('SIGTERM');
    await n.exited;

    const tagsAtSink = (): Map<string, number> => {
      const m = new Map<string, number>();
      for (const t of s.transactions) {
        const tag = /Message-ID: <([0-9a-f]+)@kill\.test>/.exec(t.body.toString('latin1'))?.[1];
        if (tag !== undefined) m.set(tag, (m.get(tag) ?? 0) + 1);
      }
      return m;
    };
    let kills = 0;
    let settled = 0; // messages recoveries found delivered in the journal
    for (let round = 0; round < ROUNDS && tagsAtSink().size < MESSAGES; round++) {
      n = startVipmta(config(false), { cwd });
      // Kill after a random number of this round's deliveries, however fast the machine is.
      const target = Math.min(MESSAGES - 1, s.transactions.length + 1 + crypto.randomInt(120));
      await waitFor(`sink at ${target} transactions in round ${round}`, () => s.transactions.length >= target, { timeoutMs: 60_000, intervalMs: 2 });
      // Then a random few ms more, so that kills fall anywhere in the delivery of a batch: before
      // the sink's 250 reaches the node, between its record and its done-mark, after both.
      await new Promise((r) => setTimeout(r, crypto.randomInt(40)));
      n.signal('SIGKILL');
      settled += Number((await n.waitForLog((r) => r.msg === 'spool recovered', 1).catch(() => ({ settled: 0 }))).settled ?? 0);
      await n.exited;
      kills++;
    }
    expect(kills, 'the node was killed mid-delivery').toBeGreaterThanOrEqual(5);
    n = startVipmta(config(false), { cwd });
    await waitFor('every acknowledged message at the sink', () => tagsAtSink().size >= MESSAGES, { timeoutMs: 120_000, intervalMs: 50 });
    n.signal('SIGTERM');
    expect((await n.exited).code).toBe(0);

    const atSink = tagsAtSink();
    const missing = [...acked.values()].filter((t) => !atSink.has(t));
    expect(missing, 'acknowledged messages never delivered').toEqual([]);
    const twice = [...atSink.values()].filter((c) => c > 1).length;

    const deliveries = new Map<string, number>();
    for (const e of journalRecords(path.join(cwd, 'spool'), 'k1')) if (e.type === 'delivery') deliveries.set(e.id, (deliveries.get(e.id) ?? 0) + 1);
    const wrong = [...acked.keys()].filter((id) => deliveries.get(id) !== 1).map((id) => `${id}: ${deliveries.get(id) ?? 0} delivery records`);
    expect(wrong, `of ${MESSAGES} delivered over ${kills} kills (${twice} reached the sink twice, ${settled} settled from the journal at restarts)`).toEqual([]);
    expect(deliveries.size, 'delivery records for messages never acknowledged').toBe(acked.size);
  }, 300_000);
});
