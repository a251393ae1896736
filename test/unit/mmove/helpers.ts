// Shared by the #mmove unit tests: a message committed to the sending node's spool and the move
// item the queue manager would make of it (fixed binding and retry state the receiver must keep),
// a batch of them, and the check that a batch arrived intact.
import { expect } from 'vitest';
import type { MmoveItem } from '../../../src/mmove/client.js';
import type { Spool } from '../../../src/spool/index.js';
import type { AcceptedMessage } from '../../../src/message/accepted.js';

export async function storeItem(spool: Spool, body: Buffer, rcpt = ['r@dest.example']): Promise<MmoveItem> {
  const w = spool.writer().begin();
  w.append(body);
  const { id } = await w.commit(Buffer.from(JSON.stringify({ v: 1, from: 's@src.example', rcpt })));
  return { id, from: 's@src.example', rcpt, binding: 'b-out', bindingGroup: 'g-out', arrival: 1_795_000_000_000, attempts: 2, nextAttempt: 1_795_000_300_000, hops: 0 };
}

/** 40 items over `bodies` (every fifth to two domains); item 7 has moved twice before, from node-z. */
export async function storeBatch(spool: Spool, bodies: Buffer[]): Promise<MmoveItem[]> {
  const items: MmoveItem[] = [];
  for (let i = 0; i < 40; i++) items.push(await storeItem(spool, bodies[i % bodies.length]!, i % 5 === 0 ? ['a@d.example', 'b@e.example'] : ['r@dest.example']));
  items[7]!.hops = 2;
  items[7]!.originNode = 'node-z';
  return items;
}

/** Every item arrived once, byte-identical, with its envelope and metadata (one more hop);
 *  returns the accepted messages by original id. */
export function expectArrivedIntact(items: MmoveItem[], accepted: AcceptedMessage[], sender: Spool, receiver: Spool): Map<string, AcceptedMessage> {
  const byOrig = new Map(accepted.map((m) => [m.moved!.originalId, m]));
  expect(byOrig.size).toBe(items.length);
  for (const it of items) {
    const m = byOrig.get(it.id)!;
    expect(receiver.read(m.id).equals(sender.read(it.id))).toBe(true);
    expect(m.rcpt).toEqual(it.rcpt);
    expect(m.from).toBe(it.from);
    expect(m.arrival).toBe(it.arrival);
    expect(m.moved).toEqual({
      binding: 'b-out', bindingGroup: 'g-out', originalId: it.id, originNode: it.originNode ?? 'node-a',
      arrival: it.arrival, attempts: 2, nextAttempt: 1_795_000_300_000, hops: it.hops + 1,
    });
  }
  return byOrig;
}
