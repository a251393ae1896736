// How the node hosts response-driven shaping: the Shaping_Rule book reads the receivers' replies the
// queue reports, a rule that fires becomes a restriction through the shaping group (every node, in
// agreed order), and what is in force reaches the scheduler as each queue's restrictions. Also the
// shaping console commands. Main thread; nothing here blocks (a small file write per change).

import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { addShapingCommands, resume, suspend, type ShapingConsoleHost } from '../cluster/shaping/console.js';
import { ShapingNode } from '../cluster/shaping/node.js';
import type { CommandTable } from '../control/commands.js';
import type { ShapingApi } from '../control/http.js';
import type { RecipientResult } from '../delivery/results.js';
import { classify } from '../policy/bounce-class.js';
import { RuleBook } from '../policy/shaping-rules.js';
import type { QueueRestrictions } from '../queue/scheduler.js';

export interface NodeShapingOptions {
  readonly config: () => Config;
  readonly logger: Logger;
  /** The restrictions in force changed: the queues look again (QueueManager.configChanged). */
  readonly changed: () => void;
  readonly now?: () => number;
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
    });
    this.node.on('changed', () => o.changed());
  }

  start(): void {
    this.node.start();
  }

  stop(): void {
    this.node.stop();
  }

  /** A reload: the new rules count from zero (their thresholds restart). */
  reconfigure(next: Config): void {
    this.book = new RuleBook(next.shapingRules);
  }

  /** The destination limits and restrictions count for a domain (MX rollup comes with the leases). */
  destinationOf(domain: string): string {
    return domain;
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
  }

  /** The same operations on the HTTP admin API (JSON). */
  api(): ShapingApi {
    const h = this.host();
    return {
      restrictions: () => this.node.restrictions(),
      suspend: (q) => suspend(h, q),
      resume: (q) => resume(h, q),
    };
  }
}
