// The shaping console commands: `shaping suspend DOMAIN [--binding NAME] DURATION [REASON]`,
// `shaping resume DOMAIN [--binding NAME]`, `shaping suspensions` (every restriction in force,
// cluster-wide: what, on what, until when, where it came from), `shaping leases` (every cluster-wide
// limit's key, cap, and each member's lease, demand and use). Parsing and formatting only; the
// change itself goes through ShapingNode (agreed order, every node). Main thread.

import type { CommandTable } from '../../control/commands.js';
import { table } from '../../control/table.js';
import { parseScalar } from '../../config/values.js';
import { ErrorCode, VipError } from '../../errors.js';
import { formatAge } from '../console.js';
import type { LeaseEntry } from './leases.js';
import type { Restriction } from './messages.js';
import { isDeparted } from './rounds.js';
import type { ShapingNode } from './node.js';

const USAGE_SUSPEND = 'shaping suspend DOMAIN [--binding NAME] DURATION [REASON]';
const USAGE_RESUME = 'shaping resume DOMAIN [--binding NAME]';

export interface ShapingConsoleHost {
  readonly shaping: Pick<ShapingNode, 'restrict' | 'lift' | 'restrictions' | 'leaseEntries'>;
  /** The destination key limits count for a domain (the domain itself, or its MX set). */
  destinationOf(domain: string): string;
  /** Whether the binding is configured (an operator's typo must not suspend nothing). */
  hasBinding(name: string): boolean;
  now(): number;
}

/** Splits "DOMAIN [--binding NAME] REST..." (the flag may come anywhere after DOMAIN). */
export function target(args: string[], usage: string, h: ShapingConsoleHost): { domain: string; binding: string | null; rest: string[] } {
  const rest: string[] = [];
  let binding: string | null = null;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--binding') {
      const b = args[++i];
      if (b === undefined) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `--binding needs a name; usage: ${usage}`);
      if (!h.hasBinding(b)) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `no binding "${b}" is configured`);
      binding = b;
    } else if (args[i]!.startsWith('--')) {
      throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `unknown option ${args[i]}; usage: ${usage}`);
    } else {
      rest.push(args[i]!);
    }
  }
  const domain = checkDomain(rest.shift(), usage);
  return { domain, binding, rest };
}

/** An operator's suspension: parsed and checked, then through the shaping group. */
export function suspend(h: ShapingConsoleHost, q: { domain: string; binding: string | null; duration: string; reason?: string }): { domain: string; binding: string | null; until: number } {
  const domain = checkDomain(q.domain, USAGE_SUSPEND);
  if (q.binding !== null && !h.hasBinding(q.binding)) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `no binding "${q.binding}" is configured`);
  const p = parseScalar({ kind: 'duration' }, { text: q.duration, where: { file: '', line: 0, column: 0 } } as never);
  if (!p.ok || (p.value as number) <= 0) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `DURATION must be like 30m, 2h or 1d; usage: ${USAGE_SUSPEND}`);
  const now = h.now();
  const until = now + (p.value as number);
  h.shaping.restrict({
    action: 'suspend', binding: q.binding, destination: h.destinationOf(domain), at: now, until, rate: null, connections: null,
    rule: 'console', reason: q.reason !== undefined && q.reason !== '' ? q.reason : 'suspended by the operator',
  });
  return { domain, binding: q.binding, until };
}

/** An operator's resume: lifts every restriction on the domain (of one binding, or all). */
export function resume(h: ShapingConsoleHost, q: { domain: string; binding: string | null }): { domain: string; binding: string | null; lifted: number } {
  const domain = checkDomain(q.domain, USAGE_RESUME);
  if (q.binding !== null && !h.hasBinding(q.binding)) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `no binding "${q.binding}" is configured`);
  const destination = h.destinationOf(domain);
  const lifted = h.shaping.restrictions().filter((r) => r.destination === destination && (q.binding === null || r.binding === q.binding)).length;
  h.shaping.lift(q.binding, destination);
  return { domain, binding: q.binding, lifted };
}

function checkDomain(d: string | undefined, usage: string): string {
  const domain = d?.toLowerCase();
  if (domain === undefined || !/^[a-z0-9.-]+$/.test(domain)) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `usage: ${usage}`);
  return domain;
}

const scope = (binding: string | null): string => (binding === null ? 'every binding' : `binding ${binding}`);

export function addShapingCommands(t: CommandTable, h: ShapingConsoleHost): void {
  t.add(USAGE_SUSPEND, 'suspend delivery to a domain (from one binding, or all) on every node for DURATION', (args) => {
    const { domain, binding, rest } = target(args, USAGE_SUSPEND, h);
    const duration = rest.shift();
    if (duration === undefined) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `DURATION must be like 30m, 2h or 1d; usage: ${USAGE_SUSPEND}`);
    const r = suspend(h, { domain, binding, duration, reason: rest.join(' ') });
    return `suspending ${r.domain} (${scope(r.binding)}) until ${new Date(r.until).toISOString()} on every node\n`;
  });
  t.add(USAGE_RESUME, 'end the suspensions, throttles and connection reductions of a domain on every node', (args) => {
    const { domain, binding, rest } = target(args, USAGE_RESUME, h);
    if (rest.length > 0) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `usage: ${USAGE_RESUME}`);
    const r = resume(h, { domain, binding });
    return `resuming ${r.domain} (${scope(r.binding)}): ${r.lifted} restriction(s) lifted on every node\n`;
  });
  t.add('shaping suspensions', 'every suspension, throttle and connection reduction in force, cluster-wide', () => formatRestrictions(h.shaping.restrictions(), h.now()));
  t.add('shaping leases', 'every cluster-wide limit: its key, cap, and each member\'s lease, demand and use', () => {
    const l = h.shaping.leaseEntries();
    return formatLeases(l.status, l.entries);
  });
}

/** `shaping leases`: the state in a line, then one row per (key, member); a departed member's
 *  leases (held until its grace ends) say so. */
export function formatLeases(status: string, entries: readonly LeaseEntry[]): string {
  if (entries.length === 0) return `${status}\nno lease held\n`;
  const rows = [['Key', 'Cap', 'Leased', 'Used', 'Member', 'Lease', 'Demand', 'Use']];
  for (const e of entries) {
    const used = e.holders.reduce((a, x) => a + x.use, 0);
    e.holders.forEach((x, i) => {
      const member = isDeparted(x.member) ? `${x.member.slice(0, x.member.indexOf('@'))} (departed)` : x.member;
      rows.push([i === 0 ? e.key : '', i === 0 ? String(e.cap) : '', i === 0 ? String(e.sum) : '', i === 0 ? String(used) : '', member, String(x.lease), String(x.demand), String(x.use)]);
    });
  }
  return `${status}\n${table(rows)}${entries.length} key(s)\n`;
}

/** "suspend", "throttle 60/60s", "connections 2": what a restriction does. */
export function describeAction(r: Restriction): string {
  return r.action === 'throttle' ? `throttle ${r.rate!.count}/${r.rate!.periodMs / 1000}s` : r.action === 'reduce_connections' ? `connections ${r.connections}` : 'suspend';
}

/** `shaping suspensions`: one row per restriction, soonest end first, then the count. */
export function formatRestrictions(rs: readonly Restriction[], now: number): string {
  if (rs.length === 0) return 'no restriction in force\n';
  const rows = [['Action', 'Binding', 'Destination', 'Until', 'Left', 'Origin', 'Rule', 'Reason']];
  for (const r of rs) {
    rows.push([describeAction(r), r.binding ?? '*', r.destination, new Date(r.until).toISOString(), formatAge(r.until - now), r.origin, r.rule, r.reason.length > 60 ? `${r.reason.slice(0, 57)}...` : r.reason]);
  }
  return table(rows) + `${rs.length} restriction(s)\n`;
}
