// The cluster's shaping state as every member holds it: the restrictions in force (suspensions,
// throttles, connection reductions), changed only by the shaping group's agreed messages so that
// every member holds the same (the leases of cluster-wide limits are allowances.ts's). What applies to one
// (binding, destination) is the strictest restriction in force for it. Restrictions end at their
// origin's `until` (members' clocks are NTP-synchronized; a skew shortens or lengthens them by as
// much). Main thread; pure data, the caller passes the clock and persists `restrictions()`.

import type { Restriction, ShapingMessage } from './messages.js';

/** What is in force for one (binding, destination) now. */
export interface InForce {
  /** The suspension that ends last, if any. */
  readonly suspended: Restriction | null;
  /** The lowest message rate (messages per ms) in force, with the restriction that sets it. */
  readonly throttle: Restriction | null;
  /** The lowest connection limit in force. */
  readonly connections: Restriction | null;
}

const keyOf = (r: Pick<Restriction, 'action' | 'binding' | 'destination'>): string => `${r.action}\0${r.binding ?? '*'}\0${r.destination}`;
const perMs = (r: Restriction): number => r.rate!.count / r.rate!.periodMs;

export class ShapingState {
  private readonly byKey = new Map<string, Restriction>();

  /** Applies one agreed message; true when the restrictions in force changed (the caller persists
   *  and tells the queues). `now` only drops restrictions that already ended. */
  apply(m: ShapingMessage, now: number): boolean {
    let changed = false;
    switch (m.type) {
      case 'claims':
      case 'release':
        break;
      case 'restrict':
        changed = this.add(m.restriction, now);
        break;
      case 'lift':
        for (const [k, r] of this.byKey) {
          if (r.destination === m.destination && (m.binding === null || r.binding === m.binding)) changed = this.byKey.delete(k) || changed;
        }
        break;
      case 'sync':
        for (const r of m.restrictions) changed = this.add(r, now) || changed;
        break;
    }
    return changed;
  }

  /** Restores what was persisted (at start, before the first message). */
  load(rs: readonly Restriction[], now: number): void {
    for (const r of rs) this.add(r, now);
  }

  /** A later or longer restriction of the same kind on the same target replaces the earlier; true
   *  when it did (a sync repeating what is known changes nothing). */
  private add(r: Restriction, now: number): boolean {
    if (r.until <= now) return false;
    const k = keyOf(r);
    const prev = this.byKey.get(k);
    if (prev !== undefined && !(r.until > prev.until || (r.until === prev.until && r.at > prev.at))) return false;
    this.byKey.set(k, r);
    return true;
  }

  /** Drops the restrictions that ended by `now`; returns them (for the log). */
  expire(now: number): Restriction[] {
    const ended: Restriction[] = [];
    for (const [k, r] of this.byKey) {
      if (r.until <= now) {
        this.byKey.delete(k);
        ended.push(r);
      }
    }
    return ended;
  }

  /** The strictest of each kind for (binding, destination) at `now`. */
  inForce(binding: string, destination: string, now: number): InForce {
    let suspended: Restriction | null = null;
    let throttle: Restriction | null = null;
    let connections: Restriction | null = null;
    for (const b of [binding, null]) {
      for (const action of ['suspend', 'throttle', 'reduce_connections'] as const) {
        const r = this.byKey.get(keyOf({ action, binding: b, destination }));
        if (r === undefined || r.until <= now) continue;
        if (action === 'suspend' && (suspended === null || r.until > suspended.until)) suspended = r;
        if (action === 'throttle' && (throttle === null || perMs(r) < perMs(throttle))) throttle = r;
        if (action === 'reduce_connections' && (connections === null || r.connections! < connections.connections!)) connections = r;
      }
    }
    return { suspended, throttle, connections };
  }

  /** Every restriction in force, ending soonest first: for the console, the API and persistence. */
  restrictions(now: number): Restriction[] {
    return [...this.byKey.values()].filter((r) => r.until > now).sort((a, b) => a.until - b.until || (keyOf(a) < keyOf(b) ? -1 : 1));
  }
}
