// Nothing acknowledged is lost: inject with many sessions, SIGKILL the node at random moments (12
// times), restart it each time, and prove every message that got a 250 is in the spool exactly once
// and byte for byte, with exactly one reception record in the event journal. Real process, real
// fdatasync, real kill -9.
import crypto from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/index.js';
import { journalRecords } from '../helpers/journal-records.js';
import { freePort, killAll, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';

afterEach(killAll);

const ROUNDS = 12;
const SESSIONS = 16;

describe('spool under kill -9', () => {
  it('keeps every acknowledged message exactly once and byte-identical across 12 SIGKILLs', async () => {
    const port = await freePort();
    const config = `Worker_Threads = 2
Nodename = "k1"
Log_Level = "info"
ESMTP_Listener { Listen "127.0.0.1:${port}" { } }
Suspend_Delivery = true
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
`;
    let n: VipmtaProcess = startVipmta(config);
    const cwd = n.cwd;
    const acked = new Map<string, string>(); // queue id -> body sent
    let attempts = 0;

    for (let round = 0; round < ROUNDS; round++) {
      await n.waitStarted();
      let stop = false;
      const sessions = Array.from({ length: SESSIONS }, async () => {
        while (!stop) {
          let c: SmtpTestClient;
          try {
            ({ client: c } = await SmtpTestClient.connect(port));
          } catch {
            return; // the node is gone
          }
          try {
            for (let i = 0; i < 5 && !stop; i++) {
              const tag = crypto.randomBytes(12).toString('hex');
              const size = 200 + crypto.randomInt(6000);
              const body = `Message-ID: <${tag}@kill.test>\r\nSubject: ${tag}\r\n\r\n${'k'.repeat(size)}\r\n.dot\r\nend ${tag}\r\n`.replace('\r\n.dot', '\r\n..dot');
              attempts++;
              const r = await c.send('s@client.test', ['r@dest.test'], body, i === 0).catch(() => null);
              if (r === null || r.code === 0) return;
              if (r.code === 250) acked.set(r.id!, body);
            }
            await c.quit();
          } finally {
            c.close();
          }
        }
      });
      // Kill at a random moment while the sessions are injecting: after a random number of this
      // round's 250s, so that every round kills a node in the middle of taking mail, however
      // fast or slow the machine is (a fixed delay could fall before the first 250 or after a lull).
      const target = acked.size + 1 + crypto.randomInt(40);
      await waitFor(`${target - acked.size} more 250s in round ${round}`, () => acked.size >= target, { timeoutMs: 30_000, intervalMs: 5 });
      n.signal('SIGKILL');
      await n.exited;
      stop = true;
      await Promise.all(sessions);
      n = startVipmta(config, { cwd });
    }
    await n.waitStarted();
    n.signal('SIGTERM');
    expect((await n.exited).code).toBe(0);

    // Enough traffic to mean something; the exact count depends on how loaded the machine is.
    expect(acked.size).toBeGreaterThan(ROUNDS * 2);
    const spool = Spool.open({ directory: path.join(cwd, 'spool'), nodeId: 'reader', sync: 'none' });
    try {
      const recovered = spool.recover();
      const ids = recovered.map((r) => r.id);
      expect(new Set(ids).size, 'a queue id came back twice').toBe(ids.length);
      const byTag = new Map<string, number>();
      for (const r of recovered) {
        const s = spool.read(r.id).toString('latin1');
        const tag = /Message-ID: <([0-9a-f]+)@kill\.test>/.exec(s)?.[1];
        if (tag !== undefined) byTag.set(tag, (byTag.get(tag) ?? 0) + 1);
      }
      for (const [tag, count] of byTag) expect(count, `message ${tag} stored ${count} times`).toBe(1);
      let missing = 0;
      for (const [id, body] of acked) {
        let got: string;
        try {
          got = spool.read(id).toString('latin1');
        } catch {
          missing++;
          continue;
        }
        expect(got.endsWith(body), `message ${id} differs`).toBe(true);
        expect(got.slice(0, got.length - body.length)).toMatch(/^Received: from [^\r]*(\r\n\t[^\r]*)*\r\n$/);
      }
      expect(missing, `${missing} of ${acked.size} acknowledged messages lost (${attempts} attempted)`).toBe(0);

      // The records are as durable as the mail: every acknowledged message has exactly one
      // reception record in the event journal (written in its commit), whatever the kills cut.
      const receptions = new Map<string, number>();
      for (const e of journalRecords(path.join(cwd, 'spool'), 'k1')) if (e.type === 'reception') receptions.set(e.id, (receptions.get(e.id) ?? 0) + 1);
      const without = [...acked.keys()].filter((id) => receptions.get(id) !== 1);
      expect(without.map((id) => `${id}: ${receptions.get(id) ?? 0} reception record(s)`), `of ${acked.size} acknowledged`).toEqual([]);
    } finally {
      await spool.close();
    }
  }, 240_000);
});
