// Whether this node may trust what corosync tells it: that corosync still delivers our messages (a
// ping must come back through the agreed order; no send may wait too long) and that our quorum news
// belongs to the current totem ring. The manager acts on the answers (manager.ts: updateStalled,
// apply). Main thread; never blocks: sendState() and the quorum are the addon's last-known values.

import type { CorosyncGroup } from '../native/index.js';

export class CorosyncWatch {
  /** Node ids of the current totem ring (CPG's totem event), null before the first. */
  private ringMembers: number[] | null = null;
  /** When our outstanding ping was sent; null when it came back (or none was sent). */
  private pingSentAt: number | null = null;
  private isStalled = false;
  private readonly stallLimitMs: number;

  constructor(checkIntervalMs: number) {
    // Twice the check interval, at least 2 s: long enough not to trip on a busy machine, short
    // enough to release before the others (who stop hearing us after the token timeout) take over.
    this.stallLimitMs = Math.max(2000, 2 * checkIntervalMs);
  }

  /** Corosync does not deliver our messages: our ping has not come back, or a send has waited, for longer than the limit. */
  get stalled(): boolean {
    return this.isStalled;
  }

  /** Corosync is lost: no ring, no ping to wait for, nothing stalled. */
  reset(): void {
    this.ringMembers = null;
    this.pingSentAt = null;
    this.isStalled = false;
  }

  /** CPG's totem event: the ring the next quorum event must match. */
  ring(members: number[]): void {
    this.ringMembers = members;
  }

  /** Our ping came back, or a view change proved delivery: the outstanding ping is not waited for. */
  pingAnswered(): void {
    this.pingSentAt = null;
  }

  /** The `now` of a ping to send, or null while one is outstanding or there is no open group. */
  pingDue(g: CorosyncGroup | null): number | null {
    if (g === null || g.closed || this.pingSentAt !== null) return null;
    this.pingSentAt = Date.now();
    return this.pingSentAt;
  }

  /** Judges the stall again: how long we have waited when `stalled` changed, null when it did not. */
  update(g: CorosyncGroup | null): number | null {
    const waited = g === null || g.closed ? 0 : Math.max(g.sendState().stalledMs, this.pingSentAt === null ? 0 : Date.now() - this.pingSentAt);
    const stalled = waited > this.stallLimitMs;
    if (stalled === this.isStalled) return null;
    this.isStalled = stalled;
    return waited;
  }

  /**
   * Whether our quorum state belongs to the current ring. Corosync tells CPG and quorum clients
   * about a ring change over two channels: a node cut off from the others can see the new view
   * (with itself alone) while its last quorum event still says quorate. Until the quorum event of
   * this ring has arrived it may keep what it holds but must not take anything new, or it would
   * plumb and ARP every address for a moment on the wrong side of a partition.
   */
  quorumFresh(g: CorosyncGroup | null): boolean {
    if (g === null) return false;
    if (g.quorumType === 0 || this.ringMembers === null) return true; // no quorum provider: nothing to wait for
    const q = [...g.quorum.members].sort((a, b) => a - b).join(',');
    return q === [...this.ringMembers].sort((a, b) => a - b).join(',');
  }
}
