// Cluster-wide limits shared out as leases (issue 13's Cluster_Max_Outbound_Connections and cluster
// throttles). For each limit key (a destination and what is limited) every member holds a lease: the
// most it may use. Leases change only through agreed CPG messages, so every member applies the same
// changes in the same order and holds the same table, as the DuraVIP election does:
// - a raise is admitted, in agreed order, up to what the other members' leases leave free;
// - a member lowers its lease only once its own use is already at or under the new value (it
//   closes idle connections, or waits out its window, first);
// - a member that leaves gives its leases back only after a grace (rounds.ts keeps them as a
//   departed member's, allowances.ts releases them).
// So the sum of the leases bounds the sum of the use at every instant, and no delivery ever waits
// on a network round trip: a member uses its lease locally. Which lease a member should aim for is
// a water-filling of the limit over the members' announced demands (`target`), from the same input.
// Main thread; pure data, no I/O, no clock.

/** What a member announces for one key: the limit as its config says, its lease, what it would use,
 *  and what it uses now (for the console's cluster-wide use; no decision reads it). */
export interface LeaseClaim {
  readonly key: string;
  /** The limit in this member's configuration (members may differ during a reload: the lowest counts). */
  readonly cap: number;
  /** The lease it asks for (a raise may be cut) or gives back to (a lower value is taken as is). */
  readonly lease: number;
  /** How much it would use if it could (its queued work), for the share-out. */
  readonly demand: number;
  /** What it used when it sent the claim (connections open, or its trailing window's count). */
  readonly use: number;
}

interface Held { cap: number; lease: number; demand: number; use: number }

/** One holder of a key, as the console and metrics show it. */
export interface LeaseHolder { readonly member: string; readonly lease: number; readonly demand: number; readonly use: number }
export interface LeaseEntry { readonly key: string; readonly cap: number; readonly sum: number; readonly holders: LeaseHolder[] }

export class LeaseTable {
  private readonly keys = new Map<string, Map<string, Held>>();

  /**
   * Agreed: `member` announced these claims. A raise gets at most what the key's cap leaves free
   * after every lease (its own included), so the sum never exceeds the cap; a decrease is taken as
   * is. With `raise` false (a view change is being agreed) a raise is cut to the lease held.
   * Returns the lease each claim ended with, in order.
   */
  apply(member: string, claims: readonly LeaseClaim[], raise = true): number[] {
    const out: number[] = [];
    for (const c of claims) {
      let held = this.keys.get(c.key);
      if (held === undefined) {
        held = new Map();
        this.keys.set(c.key, held);
      }
      const prev = held.get(member) ?? { cap: c.cap, lease: 0, demand: 0, use: 0 };
      const entry: Held = { cap: Math.max(0, c.cap), lease: prev.lease, demand: Math.max(0, c.demand), use: Math.max(0, c.use) };
      held.set(member, entry);
      const want = Math.max(0, c.lease);
      if (want <= prev.lease || !raise) {
        entry.lease = Math.min(want, prev.lease);
      } else {
        const free = this.cap(c.key) - this.sum(c.key);
        entry.lease = prev.lease + Math.max(0, Math.min(want - prev.lease, free));
      }
      if (entry.lease === 0 && entry.demand === 0) held.delete(member);
      if (held.size === 0) this.keys.delete(c.key);
      out.push(entry.lease);
    }
    return out;
  }

  /**
   * Agreed: `member` says all it holds (a view change's sync): its entries become exactly these
   * claims, keys it does not list are dropped. No admission: it is what the member uses already.
   */
  set(member: string, claims: readonly LeaseClaim[]): void {
    this.remove(member);
    this.merge(member, claims);
  }

  /** Agreed: adds these claims to what `member` holds, keeping the higher lease of each key (a
   *  departed member's leases as several survivors describe them). No admission. */
  merge(member: string, claims: readonly LeaseClaim[]): void {
    for (const c of claims) {
      const lease = Math.max(0, c.lease);
      const demand = Math.max(0, c.demand);
      let held = this.keys.get(c.key);
      const prev = held?.get(member);
      if (prev !== undefined) {
        prev.lease = Math.max(prev.lease, lease);
        prev.cap = Math.min(prev.cap, Math.max(0, c.cap));
        prev.demand = Math.max(prev.demand, demand);
        prev.use = Math.max(prev.use, Math.max(0, c.use));
        continue;
      }
      if (lease === 0 && demand === 0) continue;
      if (held === undefined) {
        held = new Map();
        this.keys.set(c.key, held);
      }
      held.set(member, { cap: Math.max(0, c.cap), lease, demand, use: Math.max(0, c.use) });
    }
  }

  /** Agreed: the view no longer has `member` (or its grace ended); its leases return to the others. */
  remove(member: string): void {
    for (const [key, held] of this.keys) {
      held.delete(member);
      if (held.size === 0) this.keys.delete(key);
    }
  }

  /** Agreed: `member`'s lease on one key returns to the others. */
  release(member: string, key: string): boolean {
    const held = this.keys.get(key);
    if (held === undefined || !held.delete(member)) return false;
    if (held.size === 0) this.keys.delete(key);
    return true;
  }

  /** Keeps only the members of the agreed view (the others are removed). */
  retain(members: ReadonlySet<string>): void {
    for (const m of this.members()) if (!members.has(m)) this.remove(m);
  }

  /** The lease `member` holds on `key` (0 if none). */
  lease(member: string, key: string): number {
    return this.keys.get(key)?.get(member)?.lease ?? 0;
  }

  /** The sum of every member's lease on `key`. */
  sum(key: string): number {
    let s = 0;
    for (const h of this.keys.get(key)?.values() ?? []) s += h.lease;
    return s;
  }

  /** What a raise on `key` could get now (0 when the sum is at or above the cap). */
  free(key: string): number {
    return Math.max(0, this.cap(key) - this.sum(key));
  }

  /** The key's limit: the lowest any member with a claim on it announced (Infinity if none). */
  cap(key: string): number {
    let c = Infinity;
    for (const h of this.keys.get(key)?.values() ?? []) c = Math.min(c, h.cap);
    return c;
  }

  /** The members' last reported use of `key`, summed (the console's cluster-wide use). */
  use(key: string): number {
    let s = 0;
    for (const h of this.keys.get(key)?.values() ?? []) s += h.use;
    return s;
  }

  /**
   * The lease `member` should aim for: the cap shared out over the members' demands by water-filling
   * (nobody gets more than it asks for; what one does not need goes to the others), in whole units,
   * the odd units to members in name order. The same on every member from the same table. With
   * `own` the member's own cap and demand replace what the table holds for it (what it is about
   * to announce: a member aims before its first claim is agreed).
   */
  target(member: string, key: string, own?: { cap: number; demand: number }): number {
    const held = this.keys.get(key);
    const demands: Array<readonly [string, number]> = [];
    let cap = own?.cap ?? Infinity;
    for (const [m, h] of held ?? []) {
      if (m === member && own !== undefined) continue;
      demands.push([m, h.demand]);
      cap = Math.min(cap, h.cap);
    }
    if (own !== undefined) demands.push([member, own.demand]);
    if (demands.length === 0) return 0;
    return waterFill(cap, demands).get(member) ?? 0;
  }

  /** Every member holding something on any key. */
  holders(): Set<string> {
    return this.members();
  }

  /** The keys a member holds, with what it announced (a departing member's, to keep them). */
  claimsOf(member: string): LeaseClaim[] {
    const out: LeaseClaim[] = [];
    for (const [key, held] of this.keys) {
      const h = held.get(member);
      if (h !== undefined) out.push({ key, cap: h.cap, lease: h.lease, demand: h.demand, use: h.use });
    }
    return out;
  }

  /** Every key and its holders, for the console and metrics. */
  entries(): LeaseEntry[] {
    return [...this.keys].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, held]) => ({
      key,
      cap: this.cap(key),
      sum: this.sum(key),
      holders: [...held].sort(([a], [b]) => (a < b ? -1 : 1)).map(([member, h]) => ({ member, lease: h.lease, demand: h.demand, use: h.use })),
    }));
  }

  /** Every (member, key) whose member passes `which`, unsorted (cheap: read at every tick). */
  held(which: (member: string) => boolean): Array<{ member: string; key: string }> {
    const out: Array<{ member: string; key: string }> = [];
    for (const [key, held] of this.keys) for (const m of held.keys()) if (which(m)) out.push({ member: m, key });
    return out;
  }

  /** Whether the table has the key at all. */
  has(key: string): boolean {
    return this.keys.has(key);
  }

  private members(): Set<string> {
    const s = new Set<string>();
    for (const held of this.keys.values()) for (const m of held.keys()) s.add(m);
    return s;
  }
}

/**
 * Shares `cap` whole units over demands: the water level is found serving the smallest demand
 * first, each member getting at most an equal part of what is left; each share is then rounded
 * down and the units rounding left over go one each to the members still short, in name order.
 * Deterministic for the same input in any order.
 */
export function waterFill(cap: number, demands: ReadonlyArray<readonly [string, number]>): Map<string, number> {
  const byName = (a: readonly [string, number], b: readonly [string, number]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  const order = [...demands].map(([m, d]) => [m, Math.max(0, Math.floor(d))] as const).sort((a, b) => a[1] - b[1] || byName(a, b));
  const out = new Map<string, number>();
  const total = Number.isFinite(cap) ? Math.max(0, Math.floor(cap)) : Infinity;
  let left = total;
  for (let i = 0; i < order.length; i++) {
    const [m, d] = order[i]!;
    const got = Math.min(d, left / (order.length - i));
    out.set(m, Math.floor(got));
    left -= got;
  }
  let spare = total === Infinity ? 0 : total - [...out.values()].reduce((a, b) => a + b, 0);
  for (const [m, d] of [...order].sort(byName)) {
    if (spare <= 0) break;
    if (out.get(m)! < d) {
      out.set(m, out.get(m)! + 1);
      spare--;
    }
  }
  return out;
}
