// What the console and the admin API show of the queue: mailq rows per (group, binding, domain),
// totals, parts per binding, the message list, one message's parts, one queue's use (`shaping
// show`), and Momentum's mailq layout.
// Read-only over the scheduler's queues and slots. Main thread (formatMailq: pure, any thread); never blocks.
import type { DestQueue, Scheduler } from './scheduler.js';
import { DEFERRED, INFLIGHT, READY } from './store.js';

/** What `shaping show` tells of one queue now. */
export interface QueueUse {
  ready: number;
  inflight: number;
  deferred: number;
  hold: number;
  /** Batches in flight: connections in use. */
  connections: number;
  /** Connections open for the queue, idle ones included (what Max_Outbound_Connections counts). */
  open: number;
  idle: number;
  /** Its destination key: the domain, or with MX rollup its MX set ("mx:a.example,b.example"). */
  destination: string;
  /** Per cluster-wide limit key of the destination: this node's use, allowance and target. */
  cluster: { key: string; use: number; allowance: number; target: number }[];
  /** Outbound_Throttle_Connections: connections opened in its window now, and its limit. */
  connectionThrottle: { used: number; limit: number } | null;
  maxConnections: number;
  suspended: boolean;
  /** Messages counted against Outbound_Throttle_Messages (or a throttle restriction) now. */
  throttle: { used: number; limit: number } | null;
  throttledUntil: number | null;
}

/** Postfix's queue names: active (being worked on / ready), deferred (waiting for a retry), hold. */
export type QueueState = 'active' | 'deferred' | 'hold';

export interface MailqRow {
  bindingGroup: string;
  binding: string;
  domain: string;
  active: number;
  deferred: number;
  hold: number;
  /** Only while Outbound_Throttle_Messages holds the queue's ready mail back: until when (ms since
   *  the epoch), or null until a batch in flight reports (or a reload, for a rate of 0). */
  throttledUntil?: number | null;
}

export interface PartView {
  /** The part's own binding and domain (its home queue). */
  bindingGroup: string;
  binding: string;
  domain: string;
  /** The node it waits to be moved to (it is in default/#mmove), or null. */
  via: string | null;
  state: QueueState | 'sending';
  attempts: number;
  nextAttempt: number | null;
  rcpt: string[];
  /** The last reply that deferred it (since this node took it), or null. */
  lastReply: string | null;
  /** Only on a ready part whose queue its throttle holds back: as MailqRow.throttledUntil. */
  throttledUntil?: number | null;
}

/** Held back by its throttle (with ready mail): until when, or null (see MailqRow); else undefined. */
function throttledUntil(q: DestQueue): number | null | undefined {
  if (q.throttledUntil === 0 || q.ready === 0) return undefined;
  return Number.isFinite(q.throttledUntil) ? q.throttledUntil : null;
}

/** "throttled until T" for the console, "" when not held back. */
export function throttleNote(until: number | null | undefined): string {
  return until === undefined ? '' : until === null ? 'throttled (its budget is in batches in flight, or its rate is 0)' : `throttled until ${new Date(until).toISOString()}`;
}

export interface MessageView {
  id: string;
  from: string;
  size: number;
  arrival: number;
  parts: PartView[];
}

/** Rows per (group, binding, domain); parts count, so a message to two domains is in two rows.
 *  Mail waiting to move is in default/#mmove rows, one per destination node (the domain column). */
export function mailqRows(sched: Scheduler, filter: { domain?: string; binding?: string }): MailqRow[] {
  const d = filter.domain?.toLowerCase();
  const rows: MailqRow[] = [];
  for (const q of sched.queues) {
    if (q.ready + q.inflight + q.deferred + q.hold === 0) continue;
    if (filter.binding !== undefined && q.binding !== filter.binding) continue;
    if (d !== undefined && q.domain !== d) continue;
    const row: MailqRow = { bindingGroup: q.bindingGroup, binding: q.binding, domain: q.domain, active: q.ready + q.inflight, deferred: q.deferred, hold: q.hold };
    const until = throttledUntil(q);
    if (until !== undefined) row.throttledUntil = until;
    rows.push(row);
  }
  return rows.sort((a, b) => a.bindingGroup.localeCompare(b.bindingGroup) || a.binding.localeCompare(b.binding) || a.domain.localeCompare(b.domain));
}

/** Parts per state over every queue. */
export function stateCounts(sched: Scheduler): Record<QueueState, number> {
  const c = { active: 0, deferred: 0, hold: 0 };
  for (const q of sched.queues) {
    c.active += q.ready + q.inflight;
    c.deferred += q.deferred;
    c.hold += q.hold;
  }
  return c;
}

/** Parts per (group, binding) and state. */
export function bindingRows(sched: Scheduler): { bindingGroup: string; binding: string; active: number; deferred: number; hold: number }[] {
  const rows = new Map<string, { bindingGroup: string; binding: string; active: number; deferred: number; hold: number }>();
  for (const q of sched.queues) {
    const key = `${q.bindingGroup}\0${q.binding}`;
    let r = rows.get(key);
    if (r === undefined) rows.set(key, (r = { bindingGroup: q.bindingGroup, binding: q.binding, active: 0, deferred: 0, hold: 0 }));
    r.active += q.ready + q.inflight;
    r.deferred += q.deferred;
    r.hold += q.hold;
  }
  return [...rows.values()];
}

/** One message's parts, or null. */
export function messageView(sched: Scheduler, id: string): MessageView | null {
  const first = sched.byId.find(id);
  if (first < 0) return null;
  const st = sched.store;
  const parts = st.ringOf(first).map((s): PartView => {
    const q = sched.queues[st.home[s]!]!;
    const state = st.state[s]!;
    const view: PartView = {
      bindingGroup: q.bindingGroup, binding: q.binding, domain: q.domain, via: sched.queues[st.queue[s]!]!.moveTo,
      state: state === INFLIGHT ? 'sending' : state === READY ? 'active' : state === DEFERRED ? 'deferred' : 'hold',
      attempts: st.attempts[s]!,
      nextAttempt: state === DEFERRED ? st.next[s]! : null,
      rcpt: st.rcptsOf(s),
      lastReply: st.lastReply.get(s) ?? null,
    };
    const until = state === READY ? throttledUntil(sched.queues[st.queue[s]!]!) : undefined;
    if (until !== undefined) view.throttledUntil = until;
    return view;
  });
  return { id, from: st.fromOf(first), size: st.size[first]!, arrival: st.arrival[first]!, parts };
}

export interface MessageListRow {
  id: string;
  from: string;
  size: number;
  arrival: number;
  /** Parts per state, in the order active, sending, deferred, hold (only states with parts). */
  states: [QueueState | 'sending', number][];
  /** The earliest next attempt of its deferred parts, or null (none deferred). */
  nextAttempt: number | null;
}

/** Queued messages, oldest first (arrival, then the spool's order), at most `limit`; `more` is how
 *  many others match. A message matches a filter when one of its parts' home queues does.
 *  O(messages log limit): a console command, never on a delivery path. */
export function messageList(sched: Scheduler, filter: { domain?: string; binding?: string }, limit: number): { rows: MessageListRow[]; more: number } {
  const d = filter.domain?.toLowerCase();
  const st = sched.store;
  const queues = sched.queues;
  const hit = (first: number): boolean => {
    if (d === undefined && filter.binding === undefined) return true;
    let s = first;
    do {
      const q = queues[st.home[s]!]!;
      if ((d === undefined || q.domain === d) && (filter.binding === undefined || q.binding === filter.binding)) return true;
      s = st.ring[s]!;
    } while (s !== first);
    return false;
  };
  // The id table has no order: the `limit` oldest are kept in a max-heap (the newest on top).
  const older = (a: number, b: number): boolean =>
    st.arrival[a]! !== st.arrival[b]! ? st.arrival[a]! < st.arrival[b]!
      : st.idSeg[a]! !== st.idSeg[b]! ? st.idSeg[a]! < st.idSeg[b]!
        : st.idSeq[a]! !== st.idSeq[b]! ? st.idSeq[a]! < st.idSeq[b]! : a < b;
  const top: number[] = [];
  let matched = 0;
  sched.byId.forEach((first) => {
    if (!hit(first)) return;
    matched++;
    if (limit <= 0) return;
    if (top.length < limit) {
      let i = top.length;
      top.push(first);
      while (i > 0 && older(top[(i - 1) >> 1]!, top[i]!)) {
        const p = (i - 1) >> 1;
        [top[p], top[i]] = [top[i]!, top[p]!];
        i = p;
      }
    } else if (older(first, top[0]!)) {
      top[0] = first;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        if (l >= top.length) break;
        const m = l + 1 < top.length && older(top[l]!, top[l + 1]!) ? l + 1 : l;
        if (!older(top[i]!, top[m]!)) break;
        [top[m], top[i]] = [top[i]!, top[m]!];
        i = m;
      }
    }
  });
  top.sort((a, b) => (a === b ? 0 : older(a, b) ? -1 : 1));
  const rows = top.map((first): MessageListRow => {
    const n = { active: 0, sending: 0, deferred: 0, hold: 0 };
    let next: number | null = null;
    for (const s of st.ringOf(first)) {
      const state = st.state[s]!;
      if (state === DEFERRED) {
        n.deferred++;
        if (next === null || st.next[s]! < next) next = st.next[s]!;
      } else if (state === INFLIGHT) n.sending++;
      else if (state === READY) n.active++;
      else n.hold++;
    }
    const states = (Object.entries(n) as [QueueState | 'sending', number][]).filter(([, c]) => c > 0);
    return { id: st.idOf(first), from: st.fromOf(first), size: st.size[first]!, arrival: st.arrival[first]!, states, nextAttempt: next };
  });
  return { rows, more: matched - rows.length };
}

/** `message list`: one row per message, then how many more there are. */
export function formatMessageList(list: { rows: MessageListRow[]; more: number }): string {
  const head = ['Queue-ID', 'From', 'Size', 'Arrived', 'Parts', 'Next attempt'];
  const body = list.rows.map((r) => [
    r.id, `<${r.from}>`, String(r.size), new Date(r.arrival).toISOString(),
    r.states.map(([state, c]) => `${c} ${state}`).join(', '),
    r.nextAttempt === null ? '-' : new Date(r.nextAttempt).toISOString(),
  ]);
  const all = [head, ...body];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const lines = all.map((r) => r.map((c, i) => (i === 2 ? c.padStart(w[i]!) : i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  '));
  lines.push(list.more > 0 ? `${list.rows.length} shown, ${list.more} more (use --limit, -b or -d)` : `${list.rows.length} message(s)`);
  return lines.join('\n') + '\n';
}

/** Momentum's mailq layout, `Group/Binding  Domain  AQ  DQ`, with held parts in their own column
 *  (HQ) as Postfix and Momentum show held mail apart from deferred; then totals. */
export function formatMailq(rows: MailqRow[], totals: { active: number; deferred: number; hold: number; messages: number }): string {
  const head = ['Group/Binding', 'Domain', 'AQ', 'DQ', 'HQ'];
  const body = rows.map((r) => [`${r.bindingGroup}/${r.binding}`, r.domain || '(none)', String(r.active), String(r.deferred), String(r.hold)]);
  const all = [head, ...body];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 2 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  // A throttled queue's row says until when, after its columns.
  const note = (i: number): string => (i === 0 ? '' : throttleNote(rows[i - 1]!.throttledUntil));
  return [...all.map((r, i) => (note(i) === '' ? line(r) : `${line(r)}  ${note(i)}`)), `Total: ${totals.messages} message(s); per domain: ${totals.active} active, ${totals.deferred} deferred, ${totals.hold} on hold`].join('\n') + '\n';
}

/** One queue (binding, domain) as the scheduler runs it now, for `shaping show`; null when it
 *  has never had mail. Its limits as currently in force (config and restrictions together). */
export function queueUse(sched: Scheduler, bindingGroup: string, binding: string, domain: string, now: number): QueueUse | null {
  const q = sched.findQueue(bindingGroup, binding, domain);
  if (q === null) return null;
  sched.settings(q);
  return {
    ready: q.ready, inflight: q.inflight, deferred: q.deferred, hold: q.hold,
    connections: q.batches, maxConnections: q.maxConnections, suspended: q.suspended,
    open: q.conns, idle: q.idle.length,
    destination: q.dest?.key ?? q.domain,
    cluster: q.dest === null ? [] : sched.book.clusterUse(q.dest),
    throttle: q.throttle === null || q.throttle.limit === Infinity ? null : { used: q.throttle.used(now), limit: q.throttle.limit },
    connectionThrottle: q.opens === null || q.opens.limit === Infinity ? null : { used: q.opens.used(now), limit: q.opens.limit },
    throttledUntil: q.throttledUntil === 0 ? null : q.throttledUntil,
  };
}
