// Shared by the #mmove unit tests: a message committed to the sending node's spool and the move
// item the queue manager would make of it (fixed binding and retry state the receiver must keep).
import type { MmoveItem } from '../../../src/mmove/client.js';
import type { Spool } from '../../../src/spool/index.js';

export async function storeItem(spool: Spool, body: Buffer, rcpt = ['r@dest.example']): Promise<MmoveItem> {
  const w = spool.writer().begin();
  w.append(body);
  const { id } = await w.commit(Buffer.from(JSON.stringify({ v: 1, from: 's@src.example', rcpt })));
  return { id, from: 's@src.example', rcpt, binding: 'b-out', bindingGroup: 'g-out', arrival: 1_795_000_000_000, attempts: 2, nextAttempt: 1_795_000_300_000, hops: 0 };
}
