// One CPG view (a membership corosync agreed on) and what its members announced in it: the
// announce round that must complete before the first election, the manual moves, and the member
// states the election and #mmove read. Main thread; plain data, no I/O.

import type { CpgMember } from '../native/index.js';
import type { SharedNeighbour } from './messages.js';
import type { MemberState, MmoveAddress } from './state.js';

/** A member of the group: one process on one node ("nodeid:pid"). */
export const memberKey = (nodeId: number, pid: number): string => `${nodeId}:${pid}`;

interface Announced { readonly state: MemberState; readonly neighbours: readonly SharedNeighbour[]; readonly at: number }

export class View {
  /** Agreed: `now` of the first announce delivered in this view. */
  stableSince: number | null = null;
  /** Announces delivered in this view, by memberKey. */
  readonly announces = new Map<string, Announced>();
  readonly moves = new Map<string, string>();
  /** Agreed `cluster drain`/`undrain` messages of this view: node -> drained (the last one wins). */
  readonly drains = new Map<string, boolean>();
  /** Every member has announced in this view. */
  complete = false;
  /** An open reload round (`console --cluster config reload`): its agreed start, and the members
   *  (memberKey) that have not said 'reloaded' yet. Elections wait while it is open. */
  reload: { readonly at: number; readonly by: string; readonly waiting: Set<string> } | null = null;

  constructor(
    /** Local counter, for logs and the console. */
    readonly id: number,
    readonly members: readonly CpgMember[],
    /** Local clock when the view arrived (for timers only; never an election input). */
    readonly arrivedAt: number,
  ) {}

  has(nodeId: number, pid: number): boolean {
    return this.members.some((x) => x.nodeId === nodeId && x.pid === pid);
  }

  /** What the member announced last in this view, if it has. */
  stateOf(nodeId: number, pid: number): MemberState | undefined {
    return this.announces.get(memberKey(nodeId, pid))?.state;
  }

  /** Takes an agreed announce (`now` is the sender's clock in it); says whether the round is complete. */
  announce(nodeId: number, pid: number, now: number, state: MemberState, neighbours: readonly SharedNeighbour[]): boolean {
    if (this.stableSince === null) this.stableSince = now;
    this.announces.set(memberKey(nodeId, pid), { state, neighbours, at: Date.now() });
    if (!this.complete) this.complete = this.members.every((x) => this.announces.has(memberKey(x.nodeId, x.pid)));
    return this.complete;
  }

  /** Every member's state, in view order; only once the round is complete. */
  states(): MemberState[] {
    return this.members.map((x) => this.announces.get(memberKey(x.nodeId, x.pid))!.state);
  }

  /** Whether a member of the view other than `self` (a node name) announces holding the address. */
  heldByOther(address: string, self: string): boolean {
    for (const a of this.announces.values()) if (a.state.node !== self && a.state.holds.includes(address)) return true;
    return false;
  }

  /** A member's ECCluster_Listener as it announced it (#mmove's peer), or null. */
  peerLink(node: string): MmoveAddress | null {
    for (const a of this.announces.values()) if (a.state.node === node) return a.state.mmove;
    return null;
  }

  /** The member with the lowest nodeid (then pid): the one that asks for the maturity tick. */
  first(): CpgMember | undefined {
    return [...this.members].sort((a, b) => a.nodeId - b.nodeId || a.pid - b.pid)[0];
  }
}
