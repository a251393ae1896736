// What `vipmta console --cluster` / `--node` may run and how its answer reads: which commands run on
// every node, which are cluster-wide already (run once, here), and the gathered answers as text: each
// node's output under its name in name order, `NAME: no answer within 10 s`, the members this node
// cannot see, and for mailq a summed table (rows per binding/domain, a column per node, a total).
// Pure formatting; main thread.

import { table } from '../control/table.js';
import type { Gathered, MemberAnswer } from './console-group.js';
import type { MailqData } from './console-wire.js';

/** Commands each member runs for itself (by their fixed words): reads, and actions on its own queue or
 *  config. Not `config show`: it prints Cluster_Secret and password hashes, and answers are
 *  authenticated, not encrypted (any process corosync lets into the group can read them). */
export const PER_NODE_COMMANDS: ReadonlySet<string> = new Set([
  'version', 'status', 'workers', 'config reload', 'spool corrupt',
  'mailq', 'message list', 'message show', 'hold', 'release', 'rebind',
  'cluster duravip show', 'cluster membership', 'cluster info', 'cluster arp show',
  'shaping show', 'shaping suspensions', 'shaping leases', 'shaping inbound',
]);

/** Commands that already act on every node (or list them): run once, on the node asked, with a note why. */
export const CLUSTER_WIDE_COMMANDS: ReadonlyMap<string, string> = new Map([
  ['shaping suspend', 'cluster-wide: run once here; the shaping group applies it on every node'],
  ['shaping resume', 'cluster-wide: run once here; the shaping group applies it on every node'],
  ['cluster duravip move', 'cluster-wide: run once here; every member applies the move in agreed order'],
  ['cluster duravip announce view', 'cluster-wide: run once here; every member elects again'],
  ['help', 'the commands of this node'],
]);

export type CommandScope = { readonly kind: 'per-node' } | { readonly kind: 'cluster-wide'; readonly note: string } | { readonly kind: 'refused'; readonly why: string };

/** How `--cluster` treats the command `words` (CommandTable.match; null: unknown). */
export function commandScope(words: string | null, argv: readonly string[]): CommandScope {
  if (words === null) return { kind: 'refused', why: `unknown command "${argv.join(' ')}"; try "help"` };
  if (PER_NODE_COMMANDS.has(words)) return { kind: 'per-node' };
  const note = CLUSTER_WIDE_COMMANDS.get(words);
  if (note !== undefined) return { kind: 'cluster-wide', note };
  return { kind: 'refused', why: `${words} runs on one node only: use it without --cluster or --node, on the node's own console (-s SOCKET)` };
}

/** The caller's answer: text, and the exit status (1 when a node did not answer, failed, or cannot be seen). */
export interface ClusterAnswer {
  readonly output: string;
  readonly status: number;
}

const NOT_FOUND = 'ERR_CONTROL_NOT_FOUND';

/** Formats the gathered answers of `command` (its fixed words). */
export function formatGathered(command: string, g: Gathered): ClusterAnswer {
  const out: string[] = [];
  let failed = false;
  const errors = g.answers.filter((a) => a.answer !== null && !a.answer.ok);
  // `message show ID` on every node: the nodes that do not have it say so; only all of them failing is a failure.
  const notFoundIsFine = errors.length < g.answers.length && errors.every((a) => a.answer !== null && !a.answer.ok && a.answer.code === NOT_FOUND);
  for (const a of g.answers) {
    if (a.answer === null) {
      out.push(`${a.node}: ${a.why ?? 'no answer'}\n`);
      failed = true;
      continue;
    }
    out.push(`=== ${a.node} ===\n`);
    if (a.answer.ok) {
      out.push(withNewline(a.answer.output));
    } else {
      out.push(`error: ${a.answer.error} (${a.answer.code})\n`);
      if (!(notFoundIsFine && a.answer.code === NOT_FOUND)) failed = true;
    }
  }
  if (command === 'mailq') {
    const data = g.answers.filter((a): a is MemberAnswer & { answer: { ok: true; output: string; mailq: MailqData } } => a.answer?.ok === true && a.answer.mailq !== undefined);
    if (data.length > 0) out.push(`=== cluster: ${data.length} of ${g.answers.length} node(s) ===\n`, sumMailq(data.map((a) => ({ node: a.node, mailq: a.answer.mailq }))));
  }
  if (g.missing.length > 0) {
    out.push(`cannot see ${g.missing.length} member(s) from here: ${g.missing.map((m) => `${m.node} (${m.why})`).join(', ')}\n`);
    failed = true;
  }
  return { output: out.join(''), status: failed ? 1 : 0 };
}

const withNewline = (s: string): string => (s === '' || s.endsWith('\n') ? s : `${s}\n`);

/**
 * The cluster's mailq: one row per (binding group/binding, domain) over every node, a column per node
 * with its parts there (active + deferred + held), the total, and the cluster's AQ/DQ/HQ; then the
 * totals as each node's mailq says them, summed.
 */
export function sumMailq(nodes: readonly { node: string; mailq: MailqData }[]): string {
  const sorted = [...nodes].sort((a, b) => a.node.localeCompare(b.node));
  const rows = new Map<string, { group: string; domain: string; per: number[]; active: number; deferred: number; hold: number }>();
  sorted.forEach((n, i) => {
    for (const r of n.mailq.rows) {
      const k = `${r.bindingGroup}/${r.binding}\n${r.domain}`;
      let row = rows.get(k);
      if (row === undefined) rows.set(k, row = { group: `${r.bindingGroup}/${r.binding}`, domain: r.domain || '(none)', per: sorted.map(() => 0), active: 0, deferred: 0, hold: 0 });
      row.per[i]! += r.active + r.deferred + r.hold;
      row.active += r.active;
      row.deferred += r.deferred;
      row.hold += r.hold;
    }
  });
  const body = [...rows.values()].sort((a, b) => a.group.localeCompare(b.group) || a.domain.localeCompare(b.domain));
  const head = ['Group/Binding', 'Domain', ...sorted.map((n) => n.node), 'Total', 'AQ', 'DQ', 'HQ'];
  const cells = [head, ...body.map((r) => [r.group, r.domain, ...r.per.map(String), String(r.per.reduce((x, y) => x + y, 0)), String(r.active), String(r.deferred), String(r.hold)])];
  const t = { messages: 0, active: 0, deferred: 0, hold: 0 };
  for (const n of sorted) {
    t.messages += n.mailq.totals.messages;
    t.active += n.mailq.totals.active;
    t.deferred += n.mailq.totals.deferred;
    t.hold += n.mailq.totals.hold;
  }
  return table(cells) + `Total: ${t.messages} message(s) on ${sorted.length} node(s); per domain: ${t.active} active, ${t.deferred} deferred, ${t.hold} on hold\n`;
}
