// #mmove and `cluster drain`: held mail travels with its hold (XMM-HOLD=1, MoveMeta.held, the
// receiver's queue state), and a drained receiver refuses MAIL with 451 4.3.2 so the sender keeps
// the message. A real MmoveReceiver on loopback over a real spool, a real MmoveClient.
import fs from 'node:fs';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AcceptedMessage } from '../../../src/message/accepted.js';
import type { MoveMeta } from '../../../src/message/envelope.js';
import { stateOfMove } from '../../../src/message/retry-state.js';
import { MmoveClient } from '../../../src/mmove/client.js';
import { DedupTable } from '../../../src/mmove/dedup.js';
import { MmoveReceiver } from '../../../src/mmove/receiver.js';
import { mailCommand, parseMail } from '../../../src/mmove/wire.js';
import { DrainFlag, newDrainFlag, setDrainFlag } from '../../../src/listener/drain-flag.js';
import { Spool } from '../../../src/spool/index.js';
import { tempDir, wireBody } from '../spool/helpers.js';
import { storeItem } from './helpers.js';

const SECRET = 'drain test secret';
const meta: MoveMeta = { binding: 'b', bindingGroup: 'g', originalId: 'id-1', originNode: 'n2', arrival: 5, attempts: 0, nextAttempt: 0, hops: 0 };

describe('XMM-HOLD on the wire', () => {
  it('is sent only for held mail and parsed back', () => {
    const plain = mailCommand('a@b', 10, meta);
    expect(plain).not.toMatch(/XMM-HOLD/);
    expect(parseMail(plain.slice(5))).toMatchObject({ ok: true, meta });
    const held = mailCommand('a@b', 10, { ...meta, held: true });
    expect(held).toMatch(/ XMM-HOLD=1$/);
    expect(parseMail(held.slice(5))).toEqual({ ok: true, from: 'a@b', size: 10, meta: { ...meta, held: true } });
    expect(parseMail(`${plain.slice(5)} XMM-HOLD=2`)).toMatchObject({ ok: false, reason: 'syntax' });
  });

  it('a held move starts held on the receiver, even without attempts', () => {
    expect(stateOfMove(meta, ['r@x.test'], { bindingGroup: 'g', binding: 'b' })).toBeNull();
    expect(stateOfMove({ ...meta, held: true }, ['r@x.test', 's@y.test'], { bindingGroup: 'g', binding: 'b' })!.p.map((p) => [p.r, p.h])).toEqual([[['r@x.test'], 1], [['s@y.test'], 1]]);
  });
});

describe('a drained #mmove receiver', () => {
  let dirs: string[];
  let sender: Spool;
  let receiving: Spool;
  let receiver: MmoveReceiver;
  let client: MmoveClient;
  let accepted: AcceptedMessage[];
  let port: number;
  const flag = newDrainFlag();
  const word = new DrainFlag(flag);

  beforeEach(async () => {
    dirs = [tempDir('mmove-drain-a'), tempDir('mmove-drain-b')];
    sender = Spool.open({ directory: dirs[0]!, nodeId: 'n2' });
    receiving = Spool.open({ directory: dirs[1]!, nodeId: 'n1' });
    accepted = [];
    setDrainFlag(flag, false);
    receiver = new MmoveReceiver({
      name: '127.0.0.1:0', hostname: 'n1.test', secret: SECRET, maxHops: 3, maxMessageSize: 1024 * 1024, idleTimeoutMs: 30_000,
      sink: receiving.writer(), dedup: new DedupTable({ entries: 1024, windowMs: 60_000 }), logger: pino({ level: 'silent' }),
      onMessage: (m) => accepted.push(m), drained: () => word.drained,
    });
    port = await receiver.listen(0, '127.0.0.1');
    client = new MmoveClient({ nodeName: 'n2', secret: SECRET, reader: sender, connectionsPerPeer: 1 });
  });

  afterEach(async () => {
    await client.close();
    await receiver.close(1000);
    await sender.close();
    await receiving.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('refuses MAIL with 451 4.3.2 while drained and takes the same message once undrained, its hold kept', async () => {
    const it1 = { ...(await storeItem(sender, wireBody(2000, 1))), held: true };
    setDrainFlag(flag, true);
    const [r1] = await client.send({ host: '127.0.0.1', port }, [it1]);
    expect(r1).toMatchObject({ ok: false, code: 451 });
    expect(r1!.text).toMatch(/^4\.3\.2 n1\.test draining, try another server/);
    expect(accepted).toHaveLength(0);
    setDrainFlag(flag, false);
    const [r2] = await client.send({ host: '127.0.0.1', port }, [it1]);
    expect(r2).toMatchObject({ ok: true, code: 250 });
    expect(accepted).toHaveLength(1);
    expect(accepted[0]!.moved).toMatchObject({ originalId: it1.id, held: true, attempts: 2 });
    // The spooled envelope keeps it, so recovery after a restart queues it held too.
    const rec = receiving.live().find((x) => x.id === accepted[0]!.id)!;
    expect(JSON.parse(rec.envelope.toString())).toMatchObject({ moved: { held: true } });
  });
});
