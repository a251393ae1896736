// The reload round of `console --cluster config reload`: the members reload at one agreed point
// (the console group delivers the request), and each then announces its new configuration and
// says 'reloaded' on the DuraVIP group. Elections wait while the round is open, so the cluster
// elects once, with every member's new configuration, instead of once per member's announce (with
// configurations that differ between members in between). A round that does not close within
// RELOAD_WAIT_MS (a member that refused or never got the request) ends with the first member's
// tick; a view change ends it too (the new view elects after its own announce round).
// Main thread; pure over the View, the caller runs the election.

import { memberKey, type View } from './view.js';

/** The longest elections wait for a reload round's members (longer than any reload takes). */
export const RELOAD_WAIT_MS = 10_000;

/** Agreed 'reload' from `by`: every member of the view must say 'reloaded' before the next election. */
export function openReloadRound(v: View, by: string, now: number): void {
  v.reload = { at: now, by, waiting: new Set(v.members.map((m) => memberKey(m.nodeId, m.pid))) };
}

/** Agreed 'reloaded' from a member; true when that closed the round (the caller elects now). */
export function memberReloaded(v: View, nodeId: number, pid: number): boolean {
  const r = v.reload;
  if (r === null) return false;
  r.waiting.delete(memberKey(nodeId, pid));
  if (r.waiting.size > 0) return false;
  v.reload = null;
  return true;
}

/** An agreed tick at `now`: the round ends if it has waited long enough; returns the members
 *  (memberKey) it gave up on, or null when no round ended. */
export function expireReloadRound(v: View, now: number): string[] | null {
  const r = v.reload;
  if (r === null || now - r.at < RELOAD_WAIT_MS) return null;
  v.reload = null;
  return [...r.waiting];
}
