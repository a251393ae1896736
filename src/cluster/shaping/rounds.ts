// The lease table as the shaping group agrees on it across view changes: claims change it in agreed
// order, and at every view change it is rebuilt from what the members of the new view say in their
// 'sync' (a round), departed members' leases kept until released. Main thread; pure data, no I/O,
// no clock: every member computes the same from the same agreed messages.

import { LeaseTable, type LeaseClaim } from './leases.js';

/** A departed member's leases as a sync carries them. */
export interface DepartedLeases {
  /** `name@epoch`: the member's name and the round after which it departed. */
  readonly id: string;
  readonly claims: readonly LeaseClaim[];
}

/** The lease part of a member's 'sync'. */
export interface SyncLeases {
  /** The view it was sent for (memberKeys, sorted): only a sync for the current view completes it. */
  readonly view: readonly string[];
  /** The sender's last completed round (0: none yet). */
  readonly epoch: number;
  /** The sender's own leases, as it holds them now. */
  readonly claims: readonly LeaseClaim[];
  readonly departed: readonly DepartedLeases[];
}

/** Whether a table member is a departed member's leases (ids have an "@", node names never do). */
export const isDeparted = (member: string): boolean => member.includes('@');

interface Round {
  readonly view: string;
  readonly members: ReadonlySet<string>;
  readonly synced: Set<string>;
  readonly next: LeaseTable;
  epoch: number;
}

export type Delivered =
  /** Applied to the agreed table (raises admitted). */
  | 'applied'
  /** Applied while a round is open (a decrease only). */
  | 'held'
  /** Not applied (its sender's sync in this round, coming later, says more). */
  | 'ignored'
  /** The round completed with this sync: the table is the new one. */
  | 'completed';

/**
 * Between view changes members' claims change the table in agreed order (LeaseTable.apply). At a
 * view change the table is rebuilt from the new view's syncs: each member's own leases exactly as it
 * holds them, and the leases of members that departed, kept under an id `name@epoch` until a
 * 'release' gives them back after a grace. No raise is admitted while a round is open, so a member
 * that joins (its table empty) and the members that were there (their table full) admit the same
 * raises from the same table.
 */
export class LeaseRounds {
  /** The agreed table: the last completed round, then the claims applied since. */
  table = new LeaseTable();
  /** Rounds completed, as agreed (the highest any member had, plus one); 0: never. */
  epoch = 0;
  private round: Round | null = null;
  /** memberKey -> node name, learned from what each member sends. */
  private readonly names = new Map<string, string>();

  /** A round is open (raises wait), or none ever completed. */
  get settled(): boolean {
    return this.round === null && this.epoch > 0;
  }

  /** The table being rebuilt by the open round, if one is. */
  get building(): LeaseTable | null {
    return this.round?.next ?? null;
  }

  /** The members of the current view that have not said their sync yet (for the console). */
  waitingFor(): string[] {
    if (this.round === null) return [];
    return [...this.round.members].filter((m) => !this.round!.synced.has(m)).map((m) => this.names.get(m) ?? m);
  }

  /** The name a member goes by, once it sent something. */
  nameOf(memberKey: string): string | undefined {
    return this.names.get(memberKey);
  }

  /**
   * Agreed: a new view (`members` as memberKeys). Opens a round and returns what this member says of
   * the departed in its sync: every member the table (or the open round's) knows that is not in
   * the view, and the departed leases not yet released. Which members are departed is this member's
   * reading (names learned from messages); every sync's departed leases are merged, so a member that
   * missed one is covered by another's. `leaving`: the ids of members departing in this view (their
   * grace starts now, even if the same id was known before: a member that came back and left
   * again before a round completed has the same id).
   */
  view(members: readonly string[]): { view: string[]; epoch: number; departed: DepartedLeases[]; leaving: string[] } {
    const view = [...members].sort();
    const present = new Set<string>();
    for (const k of view) {
      const n = this.names.get(k);
      if (n !== undefined) present.add(n);
    }
    for (const k of [...this.names.keys()]) if (!view.includes(k)) this.names.delete(k);
    const known = new Map<string, LeaseClaim[]>();
    const leaving = new Set<string>();
    for (const t of [this.table, this.round?.next]) {
      if (t === undefined) continue;
      for (const m of t.holders()) {
        if (!isDeparted(m) && present.has(m)) continue;
        const id = isDeparted(m) ? m : `${m}@${this.epoch}`;
        if (!isDeparted(m)) leaving.add(id);
        known.set(id, [...(known.get(id) ?? []), ...t.claimsOf(m).map((c) => ({ ...c, demand: 0 }))]);
      }
    }
    this.round = { view: view.join(' '), members: new Set(view), synced: new Set(), next: new LeaseTable(), epoch: 0 };
    const departed = [...known].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, claims]) => ({ id, claims }));
    return { view, epoch: this.epoch, departed, leaving: [...leaving] };
  }

  /** Agreed: `from` (memberKey) named `node` sent its claims. */
  claims(from: string, node: string, claims: readonly LeaseClaim[]): Delivered {
    this.names.set(from, node);
    const r = this.round;
    if (r === null) {
      if (this.epoch === 0) return 'ignored';
      this.table.apply(node, claims);
      return 'applied';
    }
    // Sent before its sync: the sync (later in the order, FIFO per sender) says more.
    if (!r.synced.has(from)) return 'ignored';
    r.next.apply(node, claims, false);
    return 'held';
  }

  /** Agreed: `from` named `node` said what it holds after a view change. */
  sync(from: string, node: string, s: SyncLeases | null): Delivered {
    this.names.set(from, node);
    const r = this.round;
    if (r === null) return 'ignored';
    // A sync sent for an earlier view still bounds what its sender uses (no round completed since,
    // so it raised nothing): take what it says, but only a sync for this view completes the round.
    // A member of an older version (no lease part) holds nothing and counts as synced.
    if (s !== null) {
      r.next.set(node, s.claims);
      for (const d of s.departed) if (isDeparted(d.id)) r.next.merge(d.id, d.claims);
    }
    if (s === null || s.view.join(' ') === r.view) {
      r.synced.add(from);
      r.epoch = Math.max(r.epoch, s?.epoch ?? 0);
    }
    for (const m of r.members) if (!r.synced.has(m)) return 'held';
    this.table = r.next;
    this.epoch = r.epoch + 1;
    this.round = null;
    return 'completed';
  }

  /** Agreed: a departed member's lease on a key is given back (its grace ended). */
  release(id: string, key: string): boolean {
    if (!isDeparted(id)) return false;
    const a = this.table.release(id, key);
    const b = this.round?.next.release(id, key) ?? false;
    return a || b;
  }

  /** This member left the group (corosync lost): it starts again as a new member. */
  reset(): void {
    this.table = new LeaseTable();
    this.epoch = 0;
    this.round = null;
    this.names.clear();
  }

  /** Every departed id with its keys, in the agreed table or the open round's. */
  departed(): Array<{ id: string; key: string }> {
    const out: Array<{ id: string; key: string }> = [];
    const seen = new Set<string>();
    for (const t of [this.table, this.round?.next]) {
      for (const h of t?.held(isDeparted) ?? []) {
        const k = `${h.member}\0${h.key}`;
        if (seen.has(k)) continue;
        seen.add(k);
        out.push({ id: h.member, key: h.key });
      }
    }
    return out;
  }
}
