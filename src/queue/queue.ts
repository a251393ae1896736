// The queue manager's index of messages on this node, on the main thread: what is queued, for
// which (binding, domain), in which state. It holds envelopes only, never bodies. Fed by spool
// recovery at start and by the workers' accepted-message events; read by mailq and the admin API.
// Synchronous and in memory; nothing here blocks.

/** Postfix's queue names: active (being worked on / ready), deferred (waiting for a retry), hold. */
export type QueueState = 'active' | 'deferred' | 'hold';

/** What the main thread knows of a message: its envelope summary, never its body. */
export interface MessageSummary {
  id: string;
  size: number;
  arrival: number;
  from: string;
  rcpt: string[];
  /** Header fields captured for policy, lower-case names (x-binding, message-id). */
  headers: Record<string, string>;
}

export interface QueuedMessage extends MessageSummary {
  state: QueueState;
  bindingGroup: string;
  binding: string;
}

export interface MailqRow {
  bindingGroup: string;
  binding: string;
  domain: string;
  active: number;
  deferred: number;
  hold: number;
}

/** The domain part of an address, lower-cased; the null sender and bare names give "". */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

export class MessageQueue {
  private readonly messages = new Map<string, QueuedMessage>();

  get size(): number {
    return this.messages.size;
  }

  /** Adds a message; a second add of the same id is ignored (recovery and events may overlap). */
  add(m: MessageSummary & Partial<Pick<QueuedMessage, 'state' | 'bindingGroup' | 'binding'>>): boolean {
    if (this.messages.has(m.id)) return false;
    this.messages.set(m.id, { state: 'active', bindingGroup: 'default', binding: 'default', ...m });
    return true;
  }

  get(id: string): QueuedMessage | undefined {
    return this.messages.get(id);
  }

  remove(id: string): boolean {
    return this.messages.delete(id);
  }

  /** Rows per (group, binding, recipient domain): a message with recipients in two domains counts in both. */
  mailq(filter: { domain?: string; binding?: string } = {}): MailqRow[] {
    const rows = new Map<string, MailqRow>();
    for (const m of this.messages.values()) {
      if (filter.binding !== undefined && m.binding !== filter.binding) continue;
      const domains = new Set(m.rcpt.map(domainOf));
      for (const d of domains) {
        if (filter.domain !== undefined && d !== filter.domain.toLowerCase()) continue;
        const key = `${m.bindingGroup}\0${m.binding}\0${d}`;
        let r = rows.get(key);
        if (r === undefined) {
          r = { bindingGroup: m.bindingGroup, binding: m.binding, domain: d, active: 0, deferred: 0, hold: 0 };
          rows.set(key, r);
        }
        r[m.state]++;
      }
    }
    return [...rows.values()].sort((a, b) =>
      a.bindingGroup.localeCompare(b.bindingGroup) || a.binding.localeCompare(b.binding) || a.domain.localeCompare(b.domain));
  }

  /** Messages per (group, binding) and state, each message once (mailq rows count it per domain). */
  byBinding(): { bindingGroup: string; binding: string; active: number; deferred: number; hold: number }[] {
    const rows = new Map<string, { bindingGroup: string; binding: string; active: number; deferred: number; hold: number }>();
    for (const m of this.messages.values()) {
      const key = `${m.bindingGroup}\0${m.binding}`;
      let r = rows.get(key);
      if (r === undefined) rows.set(key, (r = { bindingGroup: m.bindingGroup, binding: m.binding, active: 0, deferred: 0, hold: 0 }));
      r[m.state]++;
    }
    return [...rows.values()];
  }

  counts(): Record<QueueState, number> & { messages: number; bytes: number } {
    const c = { active: 0, deferred: 0, hold: 0, messages: 0, bytes: 0 };
    for (const m of this.messages.values()) {
      c[m.state]++;
      c.messages++;
      c.bytes += m.size;
    }
    return c;
  }
}

/** Momentum's mailq layout: `Group/Binding  Domain  AQ  DQ`, then totals. */
export function formatMailq(rows: MailqRow[], totals: { active: number; deferred: number; hold: number; messages: number }): string {
  const head = ['Group/Binding', 'Domain', 'AQ', 'DQ'];
  const body = rows.map((r) => [`${r.bindingGroup}/${r.binding}`, r.domain || '(none)', String(r.active), String(r.deferred + r.hold)]);
  const all = [head, ...body];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]!.padStart(w[2]!)}  ${r[3]!.padStart(w[3]!)}`;
  return [...all.map(line), `Total: ${totals.messages} message(s), ${totals.active} active, ${totals.deferred} deferred, ${totals.hold} on hold`].join('\n') + '\n';
}
