// The cluster console commands (Momentum's names): `cluster duravip show`, `cluster membership`,
// `cluster info`, `cluster arp show`, `cluster duravip move IP to NODE`, `cluster duravip announce
// view`, `cluster drain NODE`, `cluster undrain NODE`. Formatting only: the data comes from
// ClusterManager.snapshot() and the members' queue summaries (queue-summary.ts). Main thread.

import type { CommandTable } from '../control/commands.js';
import { table } from '../control/table.js';
import { ErrorCode, VipError } from '../errors.js';
import { isDrained } from './election.js';
import type { ClusterManager, ClusterSnapshot } from './manager.js';
import type { QueueSummary } from './queue-summary.js';

/** The members of the view that are drained (their announce, or an agreed drain of this view). */
export function drainedNodes(s: ClusterSnapshot): Set<string> {
  const out = new Set<string>();
  // Partial snapshots (tests, older callers) may lack the view's members.
  for (const m of (s.members as ClusterSnapshot['members'] | undefined) ?? []) if (m.state !== null && isDrained(m.state, s.drains)) out.add(m.state.node);
  return out;
}

/** "12.3s", "4m05s", "2h03m": how long something has been stable. */
export function formatAge(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `cluster duravip show`. */
export function formatDuravipShow(s: ClusterSnapshot, now = Date.now()): string {
  const a = s.allocation;
  const out: string[] = [];
  if (a === null) {
    out.push(`no election yet (corosync: ${s.corosync}${s.viewId !== null && !s.viewComplete ? '; waiting for every member\'s state' : ''})`);
    return out.join('\n') + '\n';
  }
  const viewAge = s.viewArrivedAt === null ? 'unknown' : formatAge(now - s.viewArrivedAt);
  const cfgAge = formatAge(now - a.configStableSince);
  out.push(
    `view stable for ${viewAge} (${a.members.length} member(s), ${a.quorate && s.quorate ? 'quorate' : 'NOT quorate'}, ${a.mature ? 'mature' : 'not yet mature'}); ` +
      `configuration stable for ${cfgAge}${a.configConsistent ? '' : ' (members differ)'}`,
  );
  for (const p of a.problems) out.push(`problem: ${p}`);
  const drained = drainedNodes(s);
  if (drained.size > 0) out.push(`drained (own nothing): ${[...drained].sort().join(', ')}`);
  if (a.addresses.length === 0) out.push('no DuraVIP is configured on any member');
  for (const x of a.addresses) {
    const svc = x.services.map((v) => (v === 'esmtp_listener' ? 'listener' : v)).join('+');
    const what = x.binding !== null ? `binding ${x.binding} (${svc})` : x.services.includes('binding') ? `several bindings (${svc})` : svc;
    out.push(`${x.address}  ${what}  owner ${x.owner ?? '-'}  ${x.tags.join(', ')}`);
    for (const n of x.configuredBy) {
      const marks = [n === x.preference ? 'preferred' : '', x.eligible.includes(n) ? '' : 'not eligible', drained.has(n) ? 'drained' : ''].filter(Boolean).join(', ');
      out.push(`  ${n === x.owner ? '*' : ' '} ${n}${marks === '' ? '' : ` (${marks})`}`);
    }
    out.push(`    ${x.reason}`);
  }
  return out.join('\n') + '\n';
}

/**
 * `cluster membership`; `queues`: the members' queue summaries (this node's included), for the
 * Queued column (parts queued, held and deferred included) and each other drained member's progress.
 */
export function formatMembership(s: ClusterSnapshot, queues: readonly QueueSummary[] = [], now = Date.now()): string {
  if (s.viewId === null) return `not a member of any view (corosync: ${s.corosync})\n`;
  const rows = [['', 'Nodeid', 'Pid', 'Node', 'Quorate', 'Leaving', 'Drained', 'Queued', 'Load', 'Holds']];
  const drained = drainedNodes(s);
  const queued = new Map(queues.map((q) => [q.node, q]));
  const progress: string[] = [];
  for (const m of s.members) {
    const me = m.nodeId === s.nodeId && m.state?.node === s.node;
    const q = m.state === null ? undefined : queued.get(m.state.node);
    rows.push([
      me ? '*' : ' ', String(m.nodeId), String(m.pid), m.state?.node ?? '(no state yet)',
      m.state === null ? '-' : m.state.quorate ? 'yes' : 'no', m.state === null ? '-' : m.state.leaving ? 'yes' : 'no',
      m.state === null ? '-' : drained.has(m.state.node) ? 'DRAINED' : 'no',
      q === undefined ? '-' : String(q.active + q.deferred + q.hold),
      String(m.state?.load ?? '-'), m.state?.holds.join(', ') ?? '-',
    ]);
    // This node's own progress is drainLine's (from its live queue).
    if (!me && m.state !== null && drained.has(m.state.node)) progress.push(memberDrainLine(m.state.node, q, now));
  }
  return `view ${s.viewId}: ${s.members.length} member(s); this node ${s.quorate ? 'is quorate' : 'is NOT quorate'}\n` + table(rows) + drainLine(s) + progress.join('');
}

/** Another member's drain progress, from its last queue summary. */
function memberDrainLine(node: string, q: QueueSummary | undefined, now: number): string {
  if (q === undefined) return `${node} is DRAINED: its queue is not known here yet\n`;
  const n = q.active + q.deferred + q.hold;
  const as = `(as of ${formatAge(now - q.at)} ago)`;
  return `${node} is DRAINED: ${n === 0 ? `no mail left there: it may be stopped ${as}` : `${n} queued part(s) left to move ${as}`}\n`;
}

/** This node's drain and its progress: what is still queued here (held and deferred included). */
export function drainLine(s: ClusterSnapshot, now = Date.now()): string {
  if (s.drained !== true) return '';
  const since = s.drainedSince !== undefined && s.drainedSince > 0 ? ` for ${formatAge(now - s.drainedSince)}` : '';
  const left = s.queueLeft === null || s.queueLeft === undefined ? 'queue unknown'
    : s.queueLeft === 0 ? 'no mail left here: it may be stopped'
      : `${s.queueLeft} queued part(s) left to move`;
  return `this node is DRAINED${since}: ${left}\n`;
}

/** `cluster info`. */
export function formatInfo(s: ClusterSnapshot, now = Date.now()): string {
  const lines = [
    `node: ${s.node} (corosync nodeid ${s.nodeId ?? '-'})`,
    `corosync: ${s.corosync}${s.stalled ? ' (STALLED: not taking messages; addresses released)' : ''}`,
    `group: ${s.group}`,
    `quorum: ${s.quorate ? 'quorate' : 'not quorate'}`,
    `view: ${s.viewId === null ? '-' : `${s.viewId}, ${s.members.length} member(s), since ${s.viewArrivedAt === null ? '-' : formatAge(now - s.viewArrivedAt)}${s.viewComplete ? '' : ', state exchange in progress'}`}`,
    `configured DuraVIPs: ${[...new Set(s.entries.map((e) => e.address))].join(', ') || 'none'} (configuration since ${formatAge(now - s.configSince)})`,
    `holds: ${s.holds.join(', ') || 'none'}${s.releasing.length > 0 ? `; handing over: ${s.releasing.join(', ')}` : ''}`,
    `address lifetime: ${s.lifetimeSec}s, renewed every check`,
    `leaving: ${s.leaving ? 'yes' : 'no'}`,
    `drained: ${s.drained === true ? 'yes' : 'no'}`,
  ];
  for (const [a, e] of s.plumbErrors) lines.push(`plumbing error: ${a}: ${e}`);
  return lines.join('\n') + '\n';
}

/** `cluster arp show`. */
export function formatArp(s: ClusterSnapshot, now = Date.now()): string {
  if (s.arp.length === 0) return 'this node holds no DuraVIP\n';
  const rows = [['Address', 'Interface', 'Broadcast', 'Unicast', 'Last sent', 'Note']];
  for (const st of s.arp) {
    rows.push([st.address, st.ifname, String(st.broadcasts), String(st.unicasts), st.lastSent === null ? '-' : `${formatAge(now - st.lastSent)} ago`, st.note ?? '']);
  }
  const out = [table(rows).trimEnd()];
  for (const st of s.arp) {
    const hosts = [...s.knownHosts(st.address, st.ifname)].map(([ip, mac]) => `${ip} ${mac}`);
    out.push(`known hosts for ${st.address}: ${hosts.length === 0 ? 'none' : hosts.join(', ')}`);
  }
  return out.join('\n') + '\n';
}

/** Registers the cluster commands; `manager()` is null on a node without a Cluster stanza. */
export function registerClusterCommands(t: CommandTable, manager: () => ClusterManager | null, queues: () => readonly QueueSummary[] = () => []): void {
  const get = (): ClusterManager => {
    const m = manager();
    if (m === null) throw new VipError(ErrorCode.CLUSTER_DISABLED, 'this node runs without a Cluster stanza: no cluster membership, no DuraVIP');
    return m;
  };
  t.add('cluster duravip show', 'each DuraVIP: binding or listener, owner, state (owned, safe, UNSAFE, BROKEN, in conflict), one line per node (* = owner)', () => formatDuravipShow(get().snapshot()));
  t.add('cluster membership', 'the members of the current view, what each holds and has queued (a drained member: what it has left to move)', () => formatMembership(get().snapshot(), queues()));
  t.add('cluster info', 'this node\'s corosync connection, quorum, view and DuraVIPs', () => formatInfo(get().snapshot()));
  t.add('cluster arp show', 'gratuitous ARP sent for the DuraVIPs this node holds, and the hosts it unicasts to', () => formatArp(get().snapshot()));
  t.add('cluster duravip move IP to NODE', 'give a DuraVIP to NODE for the rest of this view', (args) => {
    if (args.length !== 3 || args[1]!.toLowerCase() !== 'to') {
      throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, 'usage: cluster duravip move IP to NODE');
    }
    return get().move(args[0]!, args[2]!);
  });
  const node = (cmd: string, args: readonly string[]): string => {
    if (args.length !== 1) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `usage: ${cmd} NODE`);
    return args[0]!;
  };
  t.add('cluster drain NODE', 'NODE gives its DuraVIPs to the others, answers new sessions 421 4.3.2 and moves its whole queue (held and deferred mail too) to them; it stays drained across restarts', (args) => get().drain(node('cluster drain', args), true));
  t.add('cluster undrain NODE', 'NODE takes addresses (its preferred ones come back) and mail again', (args) => get().drain(node('cluster undrain', args), false));
  t.add('cluster duravip announce view', 'announce this node\'s state again so every member elects again', () => get().announceView());
}
