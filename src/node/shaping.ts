// How the node hosts response-driven shaping: the Shaping_Rule book reads the receivers' replies the
// queue reports, a rule that fires becomes a restriction through the shaping group (every node, in
// agreed order), and what is in force reaches the scheduler as each queue's restrictions. Also the
// shaping console commands. Main thread; nothing here blocks (a small file write per change).

import path from 'node:path';
import type { Logger } from 'pino';
import type { Config, FallbackOption, LookupContext } from '../config/index.js';
import { addShapingCommands, describeAction, resume, suspend, target, type ShapingConsoleHost } from '../cluster/shaping/console.js';
import { ShapingNode } from '../cluster/shaping/node.js';
import type { CommandTable } from '../control/commands.js';
import type { ShapingApi } from '../control/http.js';
import type { ShapingValues } from '../control/metrics.js';
import type { RecipientResult } from '../delivery/results.js';
import { classify } from '../policy/bounce-class.js';
import { RuleBook } from '../policy/shaping-rules.js';
import type { QueueUse } from '../queue/manager.js';
import type { QueueRestrictions } from '../queue/scheduler.js';
import { parseLimitKey, type AllowanceUse, type Allowances } from '../queue/allowances.js';
import { InboundLimits } from './inbound-limits.js';
import type { EventEmit } from '../events/emitter.js';
import type { NewEvent } from '../events/records.js';
import type { Restriction } from '../cluster/shaping/messages.js';
import { OPTIONS } from '../config/schema.js';
import { formatValue } from '../config/values.js';
import { ErrorCode, VipError } from '../errors.js';
import { destinationHost } from '../net/address.js';

const SHOW_USAGE = 'shaping show DOMAIN [--binding NAME]';

/** The destination key of a set of MX (or route) hosts: one spelling whatever the order. */
function mxKey(hosts: readonly string[]): string {
  return `mx:${[...new Set(hosts)].sort().join(',')}`;
}
/** One restriction's identity: a re-fired rule with a new end is a new restriction. */
function restrictionKey(r: Restriction): string {
  return `${r.action}|${r.binding ?? '*'}|${r.destination}|${r.at}|${r.until}|${r.origin}|${r.rule}`;
}
/** The limits `shaping show` explains, in this order. */
const SHOWN = ['Suspend_Delivery', 'Max_Outbound_Connections', 'Max_Deliveries_Per_Connection', 'Outbound_Throttle_Messages', 'Outbound_Throttle_Connections', 'Retry_Interval', 'Message_Expiration'] as const;
/** The cluster-wide limits of a destination (every binding of every node), in this order. */
const CLUSTER_SHOWN = ['Cluster_Max_Outbound_Connections', 'Cluster_Outbound_Throttle_Messages', 'Cluster_Outbound_Throttle_Connections'] as const;

/** Option rows "  NAME  VALUE  WHERE FROM", aligned. */
function optionRows(cfg: Config, names: readonly FallbackOption[], ctx: LookupContext): string[] {
  const rows = names.map((o) => {
    const e = cfg.explain(o, ctx);
    return [o, formatValue(OPTIONS[o].type, e.value), e.from] as const;
  });
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return rows.map((r) => `  ${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`);
}

/** What a cluster key limits, for the console: "connections open", "messages per 1m", ... */
function keyWhat(key: string): string {
  const k = parseLimitKey(key);
  if (k === null) return key;
  const per = k.periodMs === 0 ? '' : ` per ${formatValue({ kind: 'duration' }, k.periodMs)}`;
  return k.what === 'conn' ? 'connections open' : k.what === 'msg' ? `messages${per}` : k.what === 'open' ? `connections opened${per}` : 'inbound connections';
}

export interface NodeShapingOptions {
  readonly config: () => Config;
  readonly logger: Logger;
  /** The restrictions in force changed: the queues look again (QueueManager.configChanged). */
  readonly changed: () => void;
  /** One queue as the scheduler runs it now (QueueManager.queueUse), for `shaping show`. */
  readonly queueUse?: (bindingGroup: string, binding: string, domain: string) => QueueUse | null;
  /** Whether this node may use cluster-wide shares now (ClusterManager.quorate); default: yes. */
  readonly quorate?: () => boolean;
  readonly now?: () => number;
  /** Where suspension records go: a restriction coming into force here or ending (src/events/). */
  readonly events?: EventEmit;
}

export class NodeShaping {
  readonly node: ShapingNode;
  private book: RuleBook;
  private readonly now: () => number;
  /** Rule firings since start, by rule name (for /metrics). */
  readonly fired = new Map<string, number>();

  constructor(private readonly o: NodeShapingOptions) {
    const cfg = o.config();
    this.now = o.now ?? Date.now;
    this.book = new RuleBook(cfg.shapingRules);
    this.node = new ShapingNode({
      node: cfg.global.Nodename,
      logger: o.logger,
      file: path.join(cfg.spool.Directory, 'shaping.json'),
      clustered: cfg.cluster !== null,
      now: this.now,
      ...(o.quorate !== undefined ? { quorate: o.quorate } : {}),
    });
    this.node.on('changed', () => {
      this.recordChanges();
      o.changed();
    });
  }

  start(): void {
    this.node.start();
    // What a restart restored was recorded when it came into force.
    this.inForce = new Map(this.node.restrictions().map((r) => [restrictionKey(r), r]));
  }

  /** Restrictions in force before the last change, by restrictionKey. */
  private inForce = new Map<string, Restriction>();

  /** A suspension record for each restriction that came into force or ended since the last change. */
  private recordChanges(): void {
    const ev = this.o.events;
    if (ev === undefined) return;
    const now = new Map(this.node.restrictions().map((r) => [restrictionKey(r), r]));
    const record = (state: 'start' | 'end', r: Restriction): void => {
      const e: NewEvent = { type: 'suspension', state, action: r.action, binding: r.binding, destination: r.destination, until: r.until, rule: r.rule, reason: r.reason, origin: r.origin };
      if (r.rate !== null) Object.assign(e, { rate: r.rate.count, period: r.rate.periodMs });
      if (r.connections !== null) Object.assign(e, { connections: r.connections });
      ev.emit(e);
    };
    for (const [k, r] of now) if (!this.inForce.has(k)) record('start', r);
    for (const [k, r] of this.inForce) if (!now.has(k)) record('end', r);
    this.inForce = now;
  }

  /** What /metrics shows of shaping: rule firings, restrictions, the shaping group's messages,
   *  every cluster-wide limit's share and use, and the connection counts the host passes. */
  metrics(outbound: ShapingValues['outbound'], inbound: ShapingValues['inbound']): ShapingValues {
    const a = this.node.allowances;
    return {
      fired: this.fired,
      restrictions: this.node.restrictions(),
      groupMessages: { claims: a.stats.claimMessagesSent, release: a.stats.releaseMessagesSent },
      limits: a.keys(),
      ...(outbound !== undefined ? { outbound } : {}),
      ...(inbound !== undefined ? { inbound } : {}),
    };
  }

  /** Who answers the provider's use(key): the queue's connection book, or the listeners' counters
   *  for `in:` keys (the provider asks one AllowanceUse). */
  private readonly users: { queue: AllowanceUse | null; inbound: AllowanceUse | null } = { queue: null, inbound: null };
  private usersSet = false;

  /**
   * The cluster-wide allowances as one of their two users sees them: the same provider, except
   * that setUse() registers that user for its own keys (`in:` keys are the listeners', every other
   * the queue's) instead of replacing the other user.
   */
  allowancesFor(user: 'queue' | 'inbound'): Allowances {
    const a = this.node.allowances;
    if (!this.usersSet) {
      this.usersSet = true;
      a.setUse({ use: (key) => (InboundLimits.owns(key) ? this.users.inbound : this.users.queue)?.use(key) ?? 0 });
    }
    return {
      declare: (key, cap, demand) => a.declare(key, cap, demand),
      forget: (key) => a.forget(key),
      allowance: (key) => a.allowance(key),
      target: (key) => a.target(key),
      setUse: (use) => { this.users[user] = use; },
      onChange: (fn) => a.onChange(fn),
    };
  }

  stop(): void {
    this.node.stop();
  }

  /** A reload: the new rules count from zero (their thresholds restart). */
  reconfigure(next: Config): void {
    this.book = new RuleBook(next.shapingRules);
  }

  /** domain -> "mx:host1,host2" as its last delivery resolved it (Mx_Rollup). */
  private readonly destinations = new Map<string, string>();

  /** The destination limits and restrictions count for a domain: with Mx_Rollup its MX set (once
   *  a delivery has resolved it), else the domain itself. */
  destinationOf(domain: string): string {
    const cfg = this.o.config();
    if (!cfg.global.Mx_Rollup) return domain;
    // A domain with Routes is known from the config, spelled as deliver.ts reports it (destinationHost).
    const routes = cfg.domains.get(domain)?.options.Routes;
    if (routes !== undefined && routes.length > 0) return mxKey(routes.map((r) => destinationHost(r.host, r.port)));
    return this.destinations.get(domain) ?? domain;
  }

  /** A delivery resolved `domain` to these MX (or route) hosts: the queues look again if that
   *  changes what applies to it. Once per batch. */
  learn(domain: string, mx: readonly string[]): void {
    if (mx.length === 0) return;
    const key = mxKey(mx);
    if (this.destinations.get(domain) === key) return;
    // Bounded like a cache: domains come and go; a forgotten one is learned again at its next batch.
    if (this.destinations.size >= 100_000) this.destinations.delete(this.destinations.keys().next().value!);
    this.destinations.set(domain, key);
    if (this.node.restrictions().length > 0) this.o.changed();
  }

  /** The queue manager's hook: one recipient failure the receiver answered; true: bounce it now. */
  observe(binding: string, domain: string, r: RecipientResult): boolean {
    const now = this.now();
    const cls = r.bounceClass ?? classify({ code: r.code, enhanced: r.enhanced, text: r.reply });
    let bounce = false;
    for (const f of this.book.observe({ binding, domain, destination: this.destinationOf(domain), mx: r.remoteHost, reply: r.reply, cls }, now)) {
      this.fired.set(f.rule, (this.fired.get(f.rule) ?? 0) + 1);
      if (f.action === 'bounce') {
        bounce = true;
        continue;
      }
      this.o.logger.info({ rule: f.rule, action: f.action, binding: f.binding, destination: f.destination, reply: f.reason }, 'shaping: rule fired');
      this.node.restrict({
        action: f.action, binding: f.binding, destination: f.destination, at: f.at, until: f.until,
        rate: f.rate, connections: f.connections, rule: f.rule, reason: f.reason,
      });
    }
    return bounce;
  }

  /** The scheduler's view of one queue. */
  restrictionsFor(binding: string, domain: string): QueueRestrictions | null {
    const f = this.node.inForce(binding, this.destinationOf(domain));
    if (f.suspended === null && f.throttle === null && f.connections === null) return null;
    return { suspended: f.suspended !== null, rate: f.throttle?.rate ?? null, connections: f.connections?.connections ?? null };
  }

  private host(): ShapingConsoleHost {
    return {
      shaping: this.node,
      destinationOf: (d) => this.destinationOf(d),
      hasBinding: (b) => this.o.config().bindings.has(b),
      now: this.now,
    };
  }

  addCommands(t: CommandTable): void {
    addShapingCommands(t, this.host());
    t.add(SHOW_USAGE, 'every limit in effect for a domain (and binding), where each comes from, what is used now, and the restrictions in force', (args) => this.show(args));
  }

  /** `shaping show DOMAIN [--binding NAME]`. */
  show(args: string[]): string {
    const { domain, binding, rest } = target(args, SHOW_USAGE, this.host());
    if (rest.length > 0) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `usage: ${SHOW_USAGE}`);
    const cfg = this.o.config();
    const destination = this.destinationOf(domain);
    const use = (name: string): QueueUse | null => this.o.queueUse?.(cfg.bindings.get(name)!.group, name, domain) ?? null;
    const uses = new Map<string, QueueUse | null>(binding !== null ? [[binding, use(binding)]]
      : [...cfg.bindings.keys()].map((n) => [n, use(n)] as const).filter(([, u]) => u !== null));
    if (uses.size === 0) uses.set('default', use('default'));
    const out = [`destination: ${destination} (${destination === domain ? (cfg.global.Mx_Rollup ? 'the domain itself until a delivery has resolved its MX' : 'the domain itself: Mx_Rollup = false') : `MX rollup of ${domain}: every domain with these hosts shares it`})`];
    // Cluster-wide: this node's share (its lease) and use, and the whole cluster's, per limit.
    const anyUse = [...uses.values()].find((u) => u !== null) ?? null;
    const clusterCtx = { binding: [...uses.keys()][0]!, domain };
    if (CLUSTER_SHOWN.some((o) => cfg.explain(o, clusterCtx).from !== 'the default')) {
      out.push('cluster-wide (every binding of every node to this destination)');
      out.push(...optionRows(cfg, CLUSTER_SHOWN, clusterCtx));
      for (const c of anyUse?.cluster ?? []) {
        const st = this.node.allowances.stat(c.key);
        const whole = st === null ? '' : `; cluster: ${st.clusterUse} in use, leases ${st.sum} of ${st.cap}`;
        out.push(`  ${keyWhat(c.key)}: this node uses ${c.use}, its share ${c.allowance} (fair share ${c.target})${whole}`);
      }
    }
    for (const [name, u] of uses) {
      const b = cfg.bindings.get(name)!;
      out.push(`binding ${name} (group ${b.group})`);
      out.push(...optionRows(cfg, SHOWN, { binding: name, domain }));
      if (u === null) out.push('  now: no mail queued for it since start');
      else {
        const opened = u.connectionThrottle === null ? '' : `, ${u.connectionThrottle.used} of ${u.connectionThrottle.limit} opened in the connection throttle's period`;
        const throttle = u.throttle === null ? '' : `, ${u.throttle.used} of ${u.throttle.limit} messages in the throttle's period${u.throttledUntil === null ? '' : ` (held until ${Number.isFinite(u.throttledUntil) ? new Date(u.throttledUntil).toISOString() : 'a batch ends'})`}`;
        out.push(`  now: ${u.open} of ${u.maxConnections} connection(s) open (${u.idle} idle)${opened}${throttle}; ready ${u.ready}, in flight ${u.inflight}, deferred ${u.deferred}, held ${u.hold}${u.suspended ? '; SUSPENDED' : ''}`);
      }
      const f = this.node.inForce(name, destination);
      const rs = [f.suspended, f.throttle, f.connections].filter((r) => r !== null);
      if (rs.length === 0) out.push('  restrictions: none');
      for (const r of rs) {
        out.push(`  restriction: ${describeAction(r)} until ${new Date(r.until).toISOString()} (${r.binding === null ? 'every binding' : `binding ${r.binding}`}; rule ${r.rule} from ${r.origin}: ${r.reason})`);
      }
    }
    return out.join('\n') + '\n';
  }

  /** The same operations on the HTTP admin API (JSON). */
  api(): ShapingApi {
    const h = this.host();
    return {
      restrictions: () => this.node.restrictions(),
      suspend: (q) => suspend(h, q),
      resume: (q) => resume(h, q),
      leases: () => ({ status: this.node.allowances.status(), keys: this.node.allowances.keys(), table: this.node.allowances.entries() }),
    };
  }
}
