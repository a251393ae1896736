// The queue's shared vocabulary: states, the summary a worker reports for each accepted message,
// mailq rows and Momentum's mailq layout. The queue itself is manager.ts (over store.ts).
// Pure; any thread.

/** Postfix's queue names: active (being worked on / ready), deferred (waiting for a retry), hold. */
export type QueueState = 'active' | 'deferred' | 'hold';

export interface MailqRow {
  bindingGroup: string;
  binding: string;
  domain: string;
  active: number;
  deferred: number;
  hold: number;
}

/** Momentum's mailq layout: `Group/Binding  Domain  AQ  DQ`, then totals. */
export function formatMailq(rows: MailqRow[], totals: { active: number; deferred: number; hold: number; messages: number }): string {
  const head = ['Group/Binding', 'Domain', 'AQ', 'DQ'];
  const body = rows.map((r) => [`${r.bindingGroup}/${r.binding}`, r.domain || '(none)', String(r.active), String(r.deferred + r.hold)]);
  const all = [head, ...body];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]!.padStart(w[2]!)}  ${r[3]!.padStart(w[3]!)}`;
  return [...all.map(line), `Total: ${totals.messages} message(s); per domain: ${totals.active} active, ${totals.deferred} deferred, ${totals.hold} on hold`].join('\n') + '\n';
}
