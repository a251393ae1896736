// Event records for people: the one-line text format operators read (`vipmta log tail`), and the
// pino log line each record gave before the journals (the same fields operators and their tools
// read today, so nothing disappears while the log is the default sink). Pure; any thread.
import type { EventRecord } from './records.js';

const list = (a: readonly string[]): string => a.map((x) => `<${x}>`).join(',');
const sender = (from: string | undefined): string => (from === undefined ? '' : `<${from}> `);

/**
 * One line, no newline: "TIME NODE TYPE details", details per type, a reply last after ": ".
 * E.g. `2026-12-03T16:00:00.123Z n1 delivery 0A1B2C <a@example.net> -> <b@example.net> via
 * 203.0.113.5 (mx.example.net) binding g/b source 192.0.2.1 attempt 1: 250 2.0.0 Ok`.
 */
export function formatEvent(r: EventRecord): string {
  const head = `${new Date(r.time).toISOString()} ${r.node} ${r.type}`;
  switch (r.type) {
    case 'reception':
      return `${head} ${r.id ?? '-'} <${r.from}> -> ${list(r.rcpt)} size ${r.size} from ${r.client}`
        + `${r.listener !== null ? ` listener ${r.listener}` : ''}${r.binding !== undefined ? ` binding ${r.binding}` : ''}`
        + `${r.user !== undefined ? ` user ${r.user}` : ''}${r.tls === true ? ' tls' : ''}${msgid(r.msgid)}`;
    case 'delivery':
    case 'transient_failure':
    case 'permanent_failure': {
      const via = r.peer !== undefined ? ` via #mmove ${r.peer}` : r.ip !== null || r.mx !== null ? ` via ${r.ip ?? '-'} (${r.mx ?? '-'})` : '';
      const cls = r.type !== 'delivery' && r.bounce_class !== undefined ? ` class ${r.bounce_class}` : '';
      const next = r.type === 'transient_failure' && r.next !== undefined ? ` next ${new Date(r.next).toISOString()}` : '';
      return `${head} ${r.id} ${sender(r.from)}-> <${r.rcpt}>${via} binding ${r.binding}${r.source !== null ? ` source ${r.source}` : ''}`
        + ` attempt ${r.attempt}${cls}${next}${msgid(r.msgid)}: ${r.reply}`;
    }
    case 'expiry':
      return `${head} ${r.id} ${sender(r.from)}-> <${r.rcpt}> binding ${r.binding} attempt ${r.attempt}`
        + `${r.bounce_class !== undefined ? ` class ${r.bounce_class}` : ''}${msgid(r.msgid)}: ${r.reply ?? 'no reply'}`;
    case 'dsn':
      return `${head} ${r.id} for ${r.for} -> <${r.to}> about ${list(r.rcpt)}${r.size !== undefined ? ` size ${r.size}` : ''}`;
    case 'rejection':
      return `${head} ${r.listener} ${r.client} ${r.stage}${r.from !== undefined ? ` <${r.from}>` : ''}`
        + `${r.rcpt !== undefined && r.rcpt.length > 0 ? ` -> ${list(r.rcpt)}` : ''}: ${r.reply}`;
    case 'mmove_sent':
      return `${head} ${r.id} ${sender(r.from)}-> ${list(r.rcpt)} to ${r.peer} binding ${r.binding}${r.duplicate ? ' duplicate' : ''}: ${r.reply}`;
    case 'mmove_received':
      return `${head} ${r.id} <${r.from}> -> ${list(r.rcpt)} size ${r.size} from ${r.client} origin ${r.origin} original ${r.original}`
        + ` hops ${r.hops} binding ${r.binding}${msgid(r.msgid)}`;
    case 'hold':
    case 'release':
      return `${head} ${r.id} -> ${list(r.rcpt)} binding ${r.binding}`;
    case 'rebind':
      return `${head} ${r.id} -> ${list(r.rcpt)} binding ${r.previous} => ${r.binding}`;
    case 'suspension': {
      const what = r.action === 'throttle' && r.rate !== undefined ? ` ${r.rate}/${r.period ?? 0}ms`
        : r.action === 'reduce_connections' && r.connections !== undefined ? ` ${r.connections}` : '';
      return `${head} ${r.state} ${r.action}${what} binding ${r.binding ?? '*'} destination ${r.destination}`
        + ` until ${new Date(r.until).toISOString()} rule ${r.rule} by ${r.origin}: ${r.reason}`;
    }
    case 'address_taken':
    case 'address_released':
      return `${head} ${r.address}${r.ifname !== undefined ? ` on ${r.ifname}` : ''}`;
  }
}

function msgid(m: string | undefined): string {
  return m === undefined ? '' : ` msgid ${m}`;
}

/**
 * The pino line a record gave before the journals: its fields and message. Records that had a
 * line keep its fields and words (event 'mmove' for mmove_sent, an expiry as a permanent_failure
 * with expired: true); the others log their own fields under `event`. Never `node` (the logger's
 * own binding has it) except where the old line used it for the #mmove peer.
 */
export function logLine(r: EventRecord): { fields: Record<string, unknown>; msg: string } {
  switch (r.type) {
    case 'reception':
      return {
        fields: { event: 'reception', id: r.id, from: r.from, rcpt: r.rcpt, size: r.size, listener: r.listener, client: r.client, ...(r.binding !== undefined ? { binding: r.binding } : {}) },
        msg: 'reception',
      };
    case 'delivery':
    case 'transient_failure':
    case 'permanent_failure': {
      if (r.peer !== undefined) {
        return { fields: { event: r.type, id: r.id, node: r.peer, binding: r.binding, rcpt: r.rcpt, reply: r.reply }, msg: r.type === 'permanent_failure' ? 'mmove refused' : r.type.replace('_', ' ') };
      }
      const fields: Record<string, unknown> = {
        event: r.type, id: r.id, binding: r.binding, source: r.source, rcpt: r.rcpt, destination: r.ip, host: r.mx, reply: r.reply, origin: r.origin, attempt: r.attempt,
      };
      if (r.type !== 'delivery' && r.class !== undefined) {
        fields.class = r.class;
        fields.bounce_class = r.bounce_class;
      }
      return { fields, msg: r.type === 'delivery' ? 'delivered' : r.type.replace('_', ' ') };
    }
    case 'expiry':
      return {
        fields: {
          event: 'permanent_failure', id: r.id, binding: r.binding, source: r.source, rcpt: r.rcpt, reply: r.reply, attempt: r.attempt, expired: true,
          ...(r.class !== undefined ? { class: r.class, bounce_class: r.bounce_class } : {}),
        },
        msg: 'expired',
      };
    case 'dsn':
      return { fields: { event: 'dsn', id: r.id, for: r.for, to: r.to, rcpt: r.rcpt }, msg: 'DSN queued' };
    case 'mmove_received':
      // Logged as a reception before the journals; the #mmove fields say where it came from.
      return {
        fields: {
          event: 'reception', id: r.id, from: r.from, rcpt: r.rcpt, size: r.size, listener: r.listener ?? null, client: r.client, binding: r.binding,
          moved: true, origin: r.origin, original: r.original, hops: r.hops,
        },
        msg: 'reception',
      };
    case 'mmove_sent':
      return { fields: { event: 'mmove', id: r.id, node: r.peer, binding: r.binding, rcpt: r.rcpt, reply: r.reply, duplicate: r.duplicate }, msg: 'moved' };
    default: {
      const { v: _v, type, time: _t, node: _n, seq: _s, ...rest } = r;
      return { fields: { event: type, ...rest }, msg: type.replace('_', ' ') };
    }
  }
}
