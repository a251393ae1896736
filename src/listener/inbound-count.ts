// Connections from one client network (an Inbound_Cidr of ESMTP_Listener) across every worker
// thread and Listen address of this node, against a limit the main thread sets: its share of
// Cluster_Max_Inbound_Connections (node/inbound-limits.ts). One SharedArrayBuffer per network, made
// by the main thread as session-count.ts's: word 0 the total, word 1 the limit, word 2 refusals
// since start, word 3 + w worker w's share (a dead worker's is taken back). Any thread; Atomics only.

import { SESSION_SLOTS } from './session-count.js';

const TOTAL = 0;
const LIMIT = 1;
const REFUSED = 2;
const SLOTS = 3;

/** A network's counter with `limit` in force (the cap until the cluster's lease says otherwise). */
export function newInboundCount(limit: number): SharedArrayBuffer {
  const b = new SharedArrayBuffer((SLOTS + SESSION_SLOTS) * 4);
  setInboundLimit(b, limit);
  return b;
}

/** Main thread: the most connections this node may hold from the network from now on. Lowering it
 *  closes nothing: new connections are refused until enough have gone. */
export function setInboundLimit(buffer: SharedArrayBuffer, limit: number): void {
  Atomics.store(new Int32Array(buffer), LIMIT, Math.max(0, Math.min(Math.floor(limit), 0x7fffffff)));
}

/** What a counter holds now: connections open on this node, the limit in force, refusals since start. */
export function inboundState(buffer: SharedArrayBuffer): { open: number; limit: number; refused: number } {
  const a = new Int32Array(buffer);
  return { open: Atomics.load(a, TOTAL), limit: Atomics.load(a, LIMIT), refused: Atomics.load(a, REFUSED) };
}

/** Main thread, before a worker in `slot` starts (first or replacement): its predecessor's
 *  connections died with it, so they leave the total. */
export function resetInboundSlot(buffer: SharedArrayBuffer, slot: number): void {
  if (slot < 0 || slot >= SESSION_SLOTS) return;
  const a = new Int32Array(buffer);
  Atomics.sub(a, TOTAL, Atomics.exchange(a, SLOTS + slot, 0));
}

/** A worker's view of one network's counter. Only at connect and close. */
export class InboundCount {
  private readonly a: Int32Array;
  private readonly slot: number;

  constructor(buffer: SharedArrayBuffer, slot: number) {
    this.a = new Int32Array(buffer);
    this.slot = SLOTS + Math.min(Math.max(slot, 0), SESSION_SLOTS - 1);
  }

  /** Takes a place if the node holds fewer connections from the network than its limit; else
   *  counts a refusal (the main thread's demand and /metrics read it). */
  tryOpen(): boolean {
    const a = this.a;
    if (Atomics.add(a, TOTAL, 1) >= Atomics.load(a, LIMIT)) {
      Atomics.sub(a, TOTAL, 1);
      Atomics.add(a, REFUSED, 1);
      return false;
    }
    Atomics.add(a, this.slot, 1);
    return true;
  }

  close(): void {
    Atomics.sub(this.a, this.slot, 1);
    Atomics.sub(this.a, TOTAL, 1);
  }
}
