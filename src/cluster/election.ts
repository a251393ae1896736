// The deterministic DuraVIP election: who owns each cluster address, computed by every member from the
// states exchanged in agreed order after a CPG view change, so all agree without another round.
// Main thread, pure: no I/O, no clock, no randomness; the output depends only on the input (never on
// Map iteration order, member order or locale: everything is sorted by code-unit order first).
//
// POLICY (the contract every member implements identically)
//
// Input and agreement
// - `members` are the announces of the current view; the caller runs elect at the same agreed points on
//   every member (announce round complete, each later announce, each move, the "view mature" message),
//   and passes `now`/`viewStableSince` values all members share (carried in those agreed messages), so
//   `mature = now - viewStableSince >= viewMatureMs` is the same everywhere. Time enters only there.
// - The result does not depend on the order of `members` (only `plan` and `members` echo that order).
// - Two members announcing one node name: neither takes part (owns, counts as configuring) until fixed.
// - A member owns nothing if it announced quorate=false or leaving=true (planned shutdown: its
//   addresses go to their new owners at once, before it leaves), or if it is drained (`cluster
//   drain`): announced drained=true, or named by an agreed drain message of this view (`drains`,
//   which overrides its announce, so every member treats it as drained from that same message).
//   Its addresses go to the others as orphans do (5), or to their preferred node; `undrain` makes
//   it eligible again, and its preferred addresses come back under 3.
// - `previous` is used only if it was computed in this same view (same viewStableSince and the same
//   node/nodeid set). Across a view change it is ignored and current owners come from the announced
//   holds alone: a member that just joined has no previous, so anything else could not agree.
//
// Which addresses, and the tags
// - Managed: every address at least one member configures (any service: managed for one service is
//   managed for all). Tags: 'owned' or 'orphan' (no eligible owner), 'safe' or 'UNSAFE', 'in conflict',
//   'BROKEN' (instead of owned/orphan).
// - BROKEN: a binding name on more than one address, or an address under more than one binding name,
//   across all members (or within one). Every address involved: owner null, nobody holds it.
// - UNSAFE: the members configuring the address differ in its services. A tag only.
// - in conflict: the non-null Duravip_Preference values for the address (all entries, all members) are
//   not all the same node (typically two nodes each naming themselves); the preference is ignored. Same
//   for differing Duravip_Follow values (the follow is ignored). A member that names no preference has
//   no opinion and causes no conflict.
// - Eligible owner: a taking-part, quorate, not-leaving member that configures the address.
// - Without quorum (`quorate=false`) every owner is null and every plan is empty: release everything.
//
// Owners, in this order (addresses sorted numerically, IPv4 before IPv6)
// 1. Manual move (`cluster duravip move IP to NODE`, passed in `manualMoves`): NODE owns IP if it is
//    eligible, overriding preference and maturity, and rebalancing never moves it away. The caller keeps
//    the map for the current view only: a later move of the same IP replaces the entry; a view change
//    clears the map, after which the address stays with NODE as its current owner (until a preferred
//    node or rebalancing takes it, under the rules below). A move of a following address, a BROKEN or
//    unknown address, or to an ineligible node is ignored and listed in `problems`.
// 2. Current owner: the owner in `previous` (same view only) if still eligible; otherwise the eligible
//    member that announces holding it; of several such, the preferred node, else the longest-standing
//    (lowest memberSince), then the lowest node name. A rejoining member therefore never steals.
// 3. Preferred node present and eligible (preference not in conflict): it owns the address if it already
//    does or nobody does (claimed at once); if another member owns it, that member keeps it until the
//    view is mature, then it goes back to the preferred node (not throttled: the operator asked for it).
// 4. Otherwise the current owner keeps it (no flapping).
// 5. Orphans (no current owner, no eligible preferred node) are claimed at once, in address order, by
//    the eligible member with the lowest load, ties to the lowest node name; load counts as we assign.
//    Load = addresses owned in this allocation; an address weighs 1 + its followers.
// 6. Rebalancing, only when mature, and at most once per announce round: if `previous` is of the same
//    view, was mature and quorate and has the same announces (node, nodeid, seq), its moves were
//    already made and none are added, so elect(x with previous = elect(x)) is a fixed point. Otherwise:
//    repeatedly take the most loaded member (ties: lowest name) that has not yet given an address up in
//    this round and has a qualifying move, and move one of its movable addresses (not manually moved, not owned by its preferred
//    node, not a follower) of weight w to an eligible member T with load(S) - load(T) >= w + 1 (for a
//    single address: S holds at least 2 more than T), choosing the lowest-loaded T, then lowest name,
//    then lowest address. Each member gives up at most one address per round. Hysteresis: a move never
//    makes T heavier than S, so the reverse move can never qualify: no ping-pong. The caller re-runs
//    elect after the next announce; `rebalancePending` says whether more moves are wanted.
// 7. Duravip_Follow: after all of the above, a listener address that follows binding B is owned by the
//    owner of B's address, if that member configures it; otherwise (or when B is unknown, BROKEN, or
//    itself a follower, which is refused to keep this one level deep) it is elected by 2-5 on its own.

import { addressSortKey, canonicalAddress, compareAddresses } from '../net/address.js';
import { compareStrings, type DuravipService, DURAVIP_SERVICES, type MemberState } from './state.js';

export type AddressTag = 'owned' | 'orphan' | 'safe' | 'UNSAFE' | 'BROKEN' | 'in conflict';

export interface AddressAllocation {
  readonly address: string;
  /** Node name, or null (orphan, BROKEN, or no quorum). */
  readonly owner: string | null;
  /** In this order: 'owned' | 'orphan' | 'BROKEN', then 'safe' | 'UNSAFE', then 'in conflict' if so. */
  readonly tags: readonly AddressTag[];
  /** Human text for the console: why this owner (or none), and any conflict. */
  readonly reason: string;
  /** Members configuring it, sorted. */
  readonly configuredBy: readonly string[];
  /** Members that may own it now, sorted. */
  readonly eligible: readonly string[];
  /** Its binding name when exactly one is configured, else null. */
  readonly binding: string | null;
  /** Union of its services over all members. */
  readonly services: readonly DuravipService[];
  /** The preference in force (null when none, or in conflict). */
  readonly preference: string | null;
  /** Binding it follows when the follow is in force, else null. */
  readonly follows: string | null;
}

export interface NodePlan {
  readonly node: string;
  readonly nodeid: number;
  /** What this member must hold, sorted; everything else it holds it must release. */
  readonly hold: readonly string[];
}

export interface ViewMember { readonly node: string; readonly nodeid: number; readonly seq: number }

export interface Allocation {
  readonly quorate: boolean;
  readonly mature: boolean;
  readonly viewStableSince: number;
  /** The members this was computed from, in the given (CPG) order. */
  readonly members: readonly ViewMember[];
  /** Every managed address, sorted numerically. */
  readonly addresses: readonly AddressAllocation[];
  /** One per member, in the given order. */
  readonly plan: readonly NodePlan[];
  /** Things the operator should know that are not about one address's tags (ignored moves, name clashes). */
  readonly problems: readonly string[];
  /** More moves are wanted: at maturity if not yet mature, else after the next announce round. */
  readonly rebalancePending: boolean;
  /** Latest configSince over the members: the cluster's configuration has been stable since then. */
  readonly configStableSince: number;
  /** All members announce the same DuraVIP configuration digest. */
  readonly configConsistent: boolean;
}

export interface ElectionInput {
  /** Announces of the current view, in CPG view order. */
  readonly members: readonly MemberState[];
  /** This partition is quorate (votequorum). */
  readonly quorate: boolean;
  /** The last allocation this member computed, or null. */
  readonly previous: Allocation | null;
  readonly now: number;
  readonly viewStableSince: number;
  readonly viewMatureMs: number;
  /** address -> node, from agreed `cluster duravip move` messages of this view. */
  readonly manualMoves?: ReadonlyMap<string, string>;
  /** node -> drained, from agreed `cluster drain`/`undrain` messages of this view (the last one
   *  per node); a node not in it is drained when its announce says so. */
  readonly drains?: ReadonlyMap<string, boolean>;
}

/** Whether a member counts as drained in an election with these agreed drain messages. */
export function isDrained(m: MemberState, drains?: ReadonlyMap<string, boolean>): boolean {
  return drains?.get(m.node) ?? m.drained === true;
}

interface NodeConf {
  readonly services: Set<DuravipService>;
  readonly bindings: Set<string>;
  readonly prefs: Set<string>;
  readonly follows: Set<string>;
}

interface Info {
  readonly address: string;
  readonly key: string;
  readonly perNode: Map<string, NodeConf>;
  configuredBy: string[];
  eligible: string[];
  bindings: string[];
  prefs: string[];
  follows: string[];
  preference: string | null;
  follow: string | null;
  inConflict: boolean;
  broken: string | null;
  leader: Info | null;
  followers: Info[];
  readonly notes: string[];
}

const sorted = (it: Iterable<string>): string[] => [...it].sort(compareStrings);
const quote = (s: string): string => JSON.stringify(s);

function listNodes(byValue: Map<string, Set<string>>, what: (v: string) => string): string {
  return [...byValue.entries()]
    .sort((a, b) => compareStrings(a[0], b[0]))
    .map(([v, nodes]) => `${what(v)} on ${sorted(nodes).join(', ')}`)
    .join('; ');
}

/** Runs the election. Pure and deterministic; see the policy at the top of this file. */
export function elect(input: ElectionInput): Allocation {
  const problems: string[] = [];
  const mature = input.now - input.viewStableSince >= input.viewMatureMs;
  const viewMembers: ViewMember[] = input.members.map((m) => ({ node: m.node, nodeid: m.nodeid, seq: m.seq }));

  // --- who takes part ---
  const byName = new Map<string, MemberState[]>();
  for (const m of input.members) {
    const list = byName.get(m.node);
    if (list === undefined) byName.set(m.node, [m]);
    else list.push(m);
  }
  const active = new Map<string, MemberState>();
  for (const name of sorted(byName.keys())) {
    const list = byName.get(name) as MemberState[];
    if (list.length === 1) active.set(name, list[0] as MemberState);
    else {
      const ids = list.map((m) => m.nodeid).sort((a, b) => a - b).join(', ');
      problems.push(`node name ${quote(name)} is announced by ${list.length} members (nodeids ${ids}): none of them takes part until that is fixed`);
    }
  }
  const activeNames = sorted(active.keys());
  const canOwn = (n: string): boolean => {
    const m = active.get(n);
    return m !== undefined && m.quorate && !m.leaving && !isDrained(m, input.drains);
  };
  const owners = activeNames.filter(canOwn);

  // --- what is configured where ---
  const infos = new Map<string, Info>();
  const bindingAddrs = new Map<string, Map<string, Set<string>>>(); // binding -> address -> nodes
  for (const node of activeNames) {
    const m = active.get(node) as MemberState;
    for (const e of m.addresses) {
      const address = canonicalAddress(e.address);
      if (address === null) {
        problems.push(`${node} announces ${quote(String(e.address))}, which is not an IP address: ignored`);
        continue;
      }
      let info = infos.get(address);
      if (info === undefined) {
        info = {
          address, key: addressSortKey(address), perNode: new Map(), configuredBy: [], eligible: [], bindings: [], prefs: [],
          follows: [], preference: null, follow: null, inConflict: false, broken: null, leader: null, followers: [], notes: [],
        };
        infos.set(address, info);
      }
      let conf = info.perNode.get(node);
      if (conf === undefined) {
        conf = { services: new Set(), bindings: new Set(), prefs: new Set(), follows: new Set() };
        info.perNode.set(node, conf);
      }
      for (const s of e.services) conf.services.add(s);
      if (e.binding !== null) {
        conf.bindings.add(e.binding);
        let at = bindingAddrs.get(e.binding);
        if (at === undefined) bindingAddrs.set(e.binding, (at = new Map()));
        let nodes = at.get(address);
        if (nodes === undefined) at.set(address, (nodes = new Set()));
        nodes.add(node);
      }
      if (e.preference !== null) conf.prefs.add(e.preference);
      if (e.follow !== null) conf.follows.add(e.follow);
    }
  }
  const all = [...infos.values()].sort((a, b) => compareStrings(a.key, b.key));

  // --- BROKEN, UNSAFE, in conflict ---
  for (const binding of sorted(bindingAddrs.keys())) {
    const at = bindingAddrs.get(binding) as Map<string, Set<string>>;
    if (at.size < 2) continue;
    const detail = listNodes(at, (a) => a);
    for (const a of at.keys()) {
      const info = infos.get(a) as Info;
      const why = `binding ${quote(binding)} is on different addresses (${detail})`;
      info.broken = info.broken === null ? why : `${info.broken}; ${why}`;
    }
  }
  for (const info of all) {
    info.configuredBy = sorted(info.perNode.keys());
    info.eligible = info.configuredBy.filter(canOwn);
    const bindings = new Map<string, Set<string>>();
    const prefs = new Map<string, Set<string>>();
    const follows = new Map<string, Set<string>>();
    const servicesOf = new Map<string, Set<string>>();
    for (const node of info.configuredBy) {
      const conf = info.perNode.get(node) as NodeConf;
      const add = (m: Map<string, Set<string>>, v: string): void => {
        let s = m.get(v);
        if (s === undefined) m.set(v, (s = new Set()));
        s.add(node);
      };
      for (const b of conf.bindings) add(bindings, b);
      for (const p of conf.prefs) add(prefs, p);
      for (const f of conf.follows) add(follows, f);
      add(servicesOf, DURAVIP_SERVICES.filter((s) => conf.services.has(s)).join('+'));
    }
    info.bindings = sorted(bindings.keys());
    info.prefs = sorted(prefs.keys());
    info.follows = sorted(follows.keys());
    if (bindings.size > 1) {
      const why = `the address is under different binding names (${listNodes(bindings, quote)})`;
      info.broken = info.broken === null ? why : `${info.broken}; ${why}`;
    }
    if (servicesOf.size > 1) info.notes.push(`UNSAFE: services differ (${listNodes(servicesOf, (s) => s)})`);
    if (prefs.size > 1) {
      info.inConflict = true;
      info.notes.push(`in conflict: different preferred owners (${listNodes(prefs, (p) => `${p} named`)}), preference ignored`);
    } else info.preference = info.prefs[0] ?? null;
    if (follows.size > 1) {
      info.inConflict = true;
      info.notes.push(`in conflict: different Duravip_Follow (${listNodes(follows, quote)}), follow ignored`);
    } else info.follow = info.follows[0] ?? null;
  }

  // --- Duravip_Follow: one level, to an unbroken binding address ---
  const tentative = new Map<Info, Info>();
  for (const info of all) {
    if (info.broken !== null || info.follow === null) continue;
    const at = bindingAddrs.get(info.follow);
    const target = at !== undefined && at.size === 1 ? infos.get([...at.keys()][0] as string) : undefined;
    if (at === undefined) info.notes.push(`Duravip_Follow ${quote(info.follow)} ignored: no member has that binding with Enable_Duravip`);
    else if (target === undefined || target.broken !== null) info.notes.push(`Duravip_Follow ${quote(info.follow)} ignored: that binding is BROKEN`);
    else if (target !== info) tentative.set(info, target);
  }
  for (const info of all) {
    const target = tentative.get(info);
    if (target === undefined) continue;
    if (tentative.has(target)) {
      info.notes.push(`Duravip_Follow ${quote(info.follow as string)} ignored: ${target.address} itself follows another binding`);
      continue;
    }
    info.leader = target;
    target.followers.push(info);
  }

  const managed = all.filter((i) => i.broken === null);
  const owner = new Map<Info, string | null>();
  const reason = new Map<Info, string>();

  if (!input.quorate) {
    for (const info of managed) { owner.set(info, null); reason.set(info, 'no quorum: this partition owns no addresses'); }
    if (input.manualMoves !== undefined && input.manualMoves.size > 0) problems.push('moves ignored: no quorum');
    return finish(false);
  }

  // --- previous, only from this same view ---
  const identity = (ms: readonly { node: string; nodeid: number }[]): string => JSON.stringify(ms.map((m) => `${m.node}\u0000${m.nodeid}`).sort(compareStrings));
  const basis = (ms: readonly ViewMember[]): string => JSON.stringify(ms.map((m) => `${m.node}\u0000${m.nodeid}\u0000${m.seq}`).sort(compareStrings));
  const prev = input.previous;
  const sameView = prev !== null && prev.viewStableSince === input.viewStableSince && identity(prev.members) === identity(viewMembers);
  const sameRound = sameView && prev.mature && prev.quorate && basis(prev.members) === basis(viewMembers);
  const prevOwner = new Map<string, AddressAllocation>();
  if (sameView) for (const a of prev.addresses) prevOwner.set(a.address, a);

  const holders = new Map<string, string[]>();
  for (const node of activeNames) {
    for (const h of (active.get(node) as MemberState).holds) {
      const a = canonicalAddress(h);
      if (a === null) continue;
      const list = holders.get(a);
      if (list === undefined) holders.set(a, [node]);
      else if (!list.includes(node)) list.push(node);
    }
  }
  const senior = (a: string, b: string): number =>
    (active.get(a) as MemberState).memberSince - (active.get(b) as MemberState).memberSince || compareStrings(a, b);

  /** The owner this election starts from, and whether it came from our own previous decision. */
  const current = (info: Info): { node: string; fromPrevious: boolean } | null => {
    const p = prevOwner.get(info.address);
    if (p !== undefined && p.owner !== null && info.eligible.includes(p.owner)) return { node: p.owner, fromPrevious: true };
    const hs = (holders.get(info.address) ?? []).filter((n) => info.eligible.includes(n)).sort(senior);
    if (hs.length === 0) return null;
    const pref = preferredOf(info);
    return { node: pref !== null && hs.includes(pref) ? pref : (hs[0] as string), fromPrevious: false };
  };
  const preferredOf = (info: Info): string | null =>
    info.preference !== null && info.eligible.includes(info.preference) ? info.preference : null;

  const load = new Map<string, number>();
  for (const n of owners) load.set(n, 0);
  const loadOf = (n: string): number => load.get(n) ?? 0;
  const weight = (info: Info): number => 1 + info.followers.length;
  const assign = (info: Info, node: string | null, why: string, w: number): void => {
    owner.set(info, node);
    reason.set(info, why);
    if (node !== null) load.set(node, loadOf(node) + w);
  };
  const pinned = new Set<Info>();

  // 1. manual moves
  if (input.manualMoves !== undefined) {
    const moves = [...input.manualMoves.entries()]
      .map(([a, n]) => ({ raw: a, address: canonicalAddress(a), node: n }))
      .sort((x, y) => compareStrings(x.address === null ? `~${x.raw}` : addressSortKey(x.address), y.address === null ? `~${y.raw}` : addressSortKey(y.address)) || compareStrings(x.raw, y.raw));
    for (const mv of moves) {
      const info = mv.address === null ? undefined : infos.get(mv.address);
      const what = `move of ${mv.raw} to ${mv.node} ignored`;
      if (info === undefined) problems.push(`${what}: no member configures it as a DuraVIP`);
      else if (info.broken !== null) problems.push(`${what}: it is BROKEN`);
      else if (info.leader !== null) problems.push(`${what}: it follows binding ${quote(info.follow as string)}; move ${info.leader.address} instead`);
      else if (!info.eligible.includes(mv.node)) problems.push(`${what}: ${mv.node} cannot own it (${whyNot(mv.node, info)})`);
      else if (owner.has(info)) problems.push(`${what}: another move of the same address came first`);
      else {
        assign(info, mv.node, `moved to ${mv.node} by the operator (for this view)`, weight(info));
        pinned.add(info);
      }
    }
  }
  function whyNot(node: string, info: Info): string {
    const m = active.get(node);
    if (m === undefined) return byName.has(node) ? 'its name is not unique' : 'not a member of this view';
    if (!info.perNode.has(node)) return 'it does not configure this address';
    if (m.leaving) return 'it is leaving';
    if (isDrained(m, input.drains)) return 'it is drained';
    return 'it is not quorate';
  }

  // 2-4. preferred node, current owner
  /** Decides from preference and current owner; returns false when the address is an orphan. */
  const keepOrPrefer = (info: Info, note: string): boolean => {
    const cur = current(info);
    const pref = preferredOf(info);
    let to: string;
    let why: string;
    if (pref !== null && (cur === null || cur.node === pref)) {
      to = pref;
      why = `owned by its preferred node ${pref}`;
    } else if (pref !== null && cur !== null && mature && !sameRound) {
      to = pref;
      why = `back to its preferred node ${pref} from ${cur.node} once the view was stable`;
    } else if (pref !== null && cur !== null && !mature) {
      to = cur.node;
      why = `kept by ${cur.node} until the view is stable, then its preferred node ${pref} takes it back`;
    } else if (cur !== null) {
      to = cur.node;
      why = `kept by ${cur.node}, its current owner`;
    } else return false;
    // Our own decision of this view stands with its original reason, so a re-run changes nothing.
    const p = prevOwner.get(info.address);
    if (cur !== null && cur.fromPrevious && to === cur.node && p !== undefined && p.owner === to && p.reason.startsWith(note)) {
      assign(info, to, decisionOf(p.reason), weight(info));
    } else assign(info, to, note + why, weight(info));
    return true;
  };
  const claim = (info: Info, note: string): void => {
    const cands = info.eligible;
    if (cands.length === 0) { assign(info, null, `${note}no eligible owner: ${eligibilityText(info)}`, 0); return; }
    let best = cands[0] as string;
    for (const n of cands) if (loadOf(n) < loadOf(best)) best = n; // cands sorted: ties keep the lowest name
    assign(info, best, `${note}orphaned: claimed by ${best}, the least loaded eligible member (${loadOf(best)} held)`, weight(info));
  };
  function eligibilityText(info: Info): string {
    if (info.configuredBy.length === 0) return 'no member configures it';
    return info.configuredBy.map((n) => `${n} ${whyNot(n, info)}`).join(', ');
  }

  const leaders = managed.filter((i) => i.leader === null);
  const orphans: Info[] = [];
  for (const info of leaders) if (!owner.has(info) && !keepOrPrefer(info, '')) orphans.push(info);
  // 5. orphans, in address order, counting load as we assign
  for (const info of orphans) claim(info, '');

  // 6. rebalancing
  const findMove = (s: string): { info: Info; to: string } | null => {
    let best: { info: Info; to: string } | null = null;
    for (const info of leaders) {
      if (owner.get(info) !== s || pinned.has(info) || preferredOf(info) === s) continue;
      const w = weight(info);
      for (const t of info.eligible) {
        if (t === s || loadOf(s) - loadOf(t) < w + 1) continue;
        if (best === null || loadOf(t) < loadOf(best.to) || (loadOf(t) === loadOf(best.to) && compareStrings(t, best.to) < 0)) best = { info, to: t };
      }
    }
    return best;
  };
  const bySource = (a: string, b: string): number => loadOf(b) - loadOf(a) || compareStrings(a, b);
  if (mature && !sameRound) {
    const gave = new Set<string>();
    for (;;) {
      let moved = false;
      for (const s of owners.filter((n) => !gave.has(n)).sort(bySource)) {
        const mv = findMove(s);
        if (mv === null) continue;
        const w = weight(mv.info);
        const why = `rebalanced from ${s} (${loadOf(s)} held) to ${mv.to} (${loadOf(mv.to)} held) once the view was stable`;
        load.set(s, loadOf(s) - w);
        assign(mv.info, mv.to, why, w);
        gave.add(s);
        moved = true;
        break;
      }
      if (!moved) break;
    }
  }

  // 7. followers
  for (const info of managed) {
    if (info.leader === null) continue;
    const o = owner.get(info.leader) ?? null;
    if (o !== null && info.eligible.includes(o)) {
      owner.set(info, o); // its weight was counted with its leader
      reason.set(info, `follows binding ${quote(info.follow as string)}: owned with ${info.leader.address} by ${o}`);
      continue;
    }
    if (o !== null) load.set(o, loadOf(o) - 1);
    const note = `cannot follow binding ${quote(info.follow as string)} (${o === null ? `${info.leader.address} has no owner` : `its owner ${o} does not configure this address`}): `;
    if (!keepOrPrefer(info, note)) claim(info, note);
  }

  const pendingPreference = leaders.some((i) => !pinned.has(i) && preferredOf(i) !== null && owner.get(i) !== preferredOf(i));
  const rebalancePending = pendingPreference || owners.some((s) => findMove(s) !== null);
  return finish(rebalancePending);

  function decisionOf(r: string): string {
    // A reason is "decision" or "decision; note; ...": decisions never contain "; ", notes are recomputed.
    const i = r.indexOf('; ');
    return i < 0 ? r : r.slice(0, i);
  }

  function finish(rebalancePending: boolean): Allocation {
    const addresses: AddressAllocation[] = all.map((info) => {
      const o = info.broken === null ? owner.get(info) ?? null : null;
      const tags: AddressTag[] = [info.broken !== null ? 'BROKEN' : o !== null ? 'owned' : 'orphan'];
      tags.push(info.notes.some((n) => n.startsWith('UNSAFE')) ? 'UNSAFE' : 'safe');
      if (info.inConflict) tags.push('in conflict');
      const head = info.broken !== null ? `BROKEN, not managed: ${info.broken}` : reason.get(info) ?? 'no owner';
      const services = new Set<DuravipService>();
      for (const c of info.perNode.values()) for (const s of c.services) services.add(s);
      return {
        address: info.address,
        owner: o,
        tags,
        reason: [head, ...info.notes].join('; '),
        configuredBy: info.configuredBy,
        eligible: input.quorate && info.broken === null ? info.eligible : [],
        binding: info.bindings.length === 1 ? (info.bindings[0] as string) : null,
        services: DURAVIP_SERVICES.filter((s) => services.has(s)),
        preference: info.preference,
        follows: info.leader !== null ? info.follow : null,
      };
    });
    const holdOf = new Map<string, string[]>();
    for (const a of addresses) {
      if (a.owner === null) continue;
      const list = holdOf.get(a.owner);
      if (list === undefined) holdOf.set(a.owner, [a.address]);
      else list.push(a.address);
    }
    const plan: NodePlan[] = input.members.map((m) => ({
      node: m.node,
      nodeid: m.nodeid,
      hold: active.get(m.node) === m ? [...(holdOf.get(m.node) ?? [])].sort(compareAddresses) : [],
    }));
    const activeStates = activeNames.map((n) => active.get(n) as MemberState);
    return {
      quorate: input.quorate,
      mature,
      viewStableSince: input.viewStableSince,
      members: viewMembers,
      addresses,
      plan,
      problems,
      rebalancePending,
      configStableSince: activeStates.reduce((t, m) => Math.max(t, m.configSince), 0),
      configConsistent: new Set(activeStates.map((m) => m.configDigest)).size <= 1,
    };
  }
}

/** The owner of an address in an allocation, or null. */
export function ownerOf(alloc: Allocation, address: string): string | null {
  const a = canonicalAddress(address);
  return alloc.addresses.find((x) => x.address === a)?.owner ?? null;
}

/** What a node must hold under an allocation (empty for a node not in it). */
export function planFor(alloc: Allocation, node: string): readonly string[] {
  return alloc.plan.find((p) => p.node === node)?.hold ?? [];
}

/**
 * Why `cluster duravip move IP to NODE` cannot take effect under this allocation, or null if it can.
 * The console answers the operator with this before multicasting the move.
 */
export function checkMove(alloc: Allocation, address: string, node: string): string | null {
  const canonical = canonicalAddress(address);
  if (canonical === null) return `${address} is not an IP address`;
  const a = alloc.addresses.find((x) => x.address === canonical);
  if (a === undefined) return `${canonical} is not a DuraVIP any member configures`;
  if (!alloc.quorate) return 'this partition has no quorum';
  if (a.tags.includes('BROKEN')) return `${canonical} is BROKEN and not managed`;
  if (a.follows !== null) return `${canonical} follows binding ${quote(a.follows)}; move that binding's address instead`;
  if (!a.eligible.includes(node)) return `${node} cannot own ${canonical} (eligible: ${a.eligible.join(', ') || 'none'})`;
  return null;
}
