// The node's side of `vipmta console --cluster COMMAND` and `--node NAME COMMAND`: the control
// socket hands such a request here; a command each node runs for itself goes to the console group
// (src/cluster/console-group.ts) in agreed order and every member asked runs it through this
// node's own command table (the same code as the local console), mailq with its rows as data for
// the summed table; a cluster-wide command runs once, here. The same group carries each node's queue
// summary (cluster/queue-summary.ts) for the status page and `cluster membership`. Main thread;
// awaits the answers.

import type { Logger } from 'pino';
import { ConsoleGroup, type Gathered } from '../cluster/console-group.js';
import { commandScope, formatGathered, PER_NODE_COMMANDS, type ClusterAnswer } from '../cluster/console-report.js';
import { consoleKey, type ReplyBody } from '../cluster/console-wire.js';
import { buildQueueSummary, type QueueSummary } from '../cluster/queue-summary.js';
import type { Config } from '../config/index.js';
import type { CommandTable } from '../control/commands.js';
import type { BindingQueueSizes } from '../control/metrics.js';
import type { MailqReport } from '../control/http.js';
import type { ControlRequest } from '../control/protocol.js';
import { errorCode, ErrorCode, VipError } from '../errors.js';
import type { CorosyncGroup } from '../native/index.js';

export interface ClusterConsoleOptions {
  config(): Config;
  readonly logger: Logger;
  readonly commands: CommandTable;
  /** The mailq as data (mailqReport over the queue), for the summed table. */
  mailq(filter: { domain?: string; binding?: string }): MailqReport;
  /** Tests inject a fake join. */
  readonly join?: (name: string) => Promise<CorosyncGroup>;
  /** The DuraVIP manager's reload round (cluster/reload-round.ts): opened by the node that asks
   *  `--cluster config reload`, and each member says when its reload is over, so that the cluster
   *  elects once with every new configuration. Absent: each member's announce elects. */
  readonly reloadRound?: () => { open(): void; done(): void } | null;
  /** This node's queue sizes per binding (node/metrics.ts queueSizes) and whether it is drained:
   *  its queue summary for the other members. Absent: it sends none. */
  readonly queueSizes?: () => readonly BindingQueueSizes[];
  readonly drained?: () => boolean;
  /** Tests: the summary pacer's clock and timer. */
  readonly now?: () => number;
  readonly every?: (fn: () => void, ms: number) => () => void;
}

export class ClusterConsole {
  /** Null on a node without a Cluster stanza (then --cluster runs here and says it is one node). */
  private readonly group: ConsoleGroup | null;
  private keyOf: { secret: string; key: Buffer } | null = null;

  constructor(private readonly o: ClusterConsoleOptions) {
    const c = o.config().cluster;
    this.group = c === null ? null : new ConsoleGroup({
      node: c.options.Nodename, logger: o.logger.child({ subsystem: 'cluster' }),
      key: () => this.key(), run: (argv) => this.runHere(argv, true), logged: (argv) => o.commands.logged(argv),
      configured: () => this.o.config().cluster?.nodes.map((n) => n.name) ?? [],
      ...(o.join ? { join: o.join } : {}),
      ...(o.queueSizes ? { summary: () => this.summary() } : {}),
      ...(o.now ? { now: o.now } : {}), ...(o.every ? { every: o.every } : {}),
    });
  }

  /** This node's queue summary now (also what the status page shows for this node). */
  summary(): QueueSummary {
    return buildQueueSummary(this.o.config().global.Nodename, (this.o.now ?? Date.now)(), this.o.drained?.() ?? false, this.o.queueSizes?.() ?? []);
  }

  /** The other members' latest queue summaries (empty without a Cluster stanza). */
  queueSummaries(): QueueSummary[] {
    return this.group?.queueSummaries() ?? [];
  }

  /** This node's summary now and the other members' latest, in node-name order. */
  queues(): QueueSummary[] {
    const me = this.o.config().global.Nodename;
    return [this.summary(), ...this.queueSummaries().filter((q) => q.node !== me)].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }

  start(): void {
    this.group?.start();
  }

  stop(): void {
    this.group?.stop();
  }

  /** The control socket's handler for requests with `cluster` or `node`. */
  async handle(req: ControlRequest & { timeoutMs: number }): Promise<ClusterAnswer> {
    const argv = req.argv.length === 0 ? ['help'] : req.argv;
    const words = this.o.commands.match(argv);
    const scope = commandScope(words, argv);
    if (scope.kind === 'refused') throw new VipError(words === null ? ErrorCode.CONTROL_UNKNOWN_COMMAND : ErrorCode.CONTROL_BAD_REQUEST, scope.why);
    const me = this.o.config().global.Nodename;
    const target = req.node ?? null;
    if (this.group === null) {
      // One node: it is the whole cluster. --node names it or nothing.
      if (target !== null && target !== me) throw new VipError(ErrorCode.CLUSTER_DISABLED, `this node (${me}) runs without a Cluster stanza: there is no node ${target}`);
      return this.alone(me, argv, '(single node: no Cluster stanza)');
    }
    if (scope.kind === 'cluster-wide') {
      if (target === null || target === me) return this.alone(me, argv, `(${scope.note})`);
      throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `${words} acts on every node already: run it without --node (${scope.note})`);
    }
    // Before the request: the round opens on the DuraVIP group ahead of every member's reload (the
    // request is sent after it, and corosync orders both groups' messages in one total order).
    if (words === 'config reload' && target === null) this.o.reloadRound?.()?.open();
    const gathered = await this.group.request(argv, target, req.timeoutMs);
    return formatGathered(words!, gathered);
  }

  /** Runs here only, under this node's header. */
  private async alone(me: string, argv: string[], note: string): Promise<ClusterAnswer> {
    const body = await this.runHere(argv, false);
    const g: Gathered = { answers: [{ node: `${me} ${note}`, answer: body }], missing: [] };
    return formatGathered(this.o.commands.match(argv) ?? '', g);
  }

  /** A command as this node's console runs it; `asked`: a member's request (only per-node commands). */
  private async runHere(argv: string[], asked: boolean): Promise<ReplyBody> {
    const words = this.o.commands.match(argv);
    if (asked && (words === null || !PER_NODE_COMMANDS.has(words))) {
      return { ok: false, code: ErrorCode.CONTROL_BAD_REQUEST, error: `${words ?? argv.join(' ')} is not run for another node` };
    }
    try {
      const pending = this.o.commands.run(argv);
      // Read in the same turn as the text (the mailq handler is synchronous): the two agree.
      const data = words === 'mailq' ? this.o.mailq(mailqFilter(argv.slice(1))) : undefined;
      const output = await pending;
      return data === undefined ? { ok: true, output } : { ok: true, output, mailq: { rows: data.rows, totals: data.totals } };
    } catch (err) {
      return { ok: false, code: errorCode(err) ?? 'ERR_CONTROL_FAILED', error: (err as Error).message };
    } finally {
      // Applied or refused, this member's part of a reload round is over (its new configuration,
      // if any, was announced during the reload).
      if (asked && words === 'config reload') this.o.reloadRound?.()?.done();
    }
  }

  /** consoleKey of the current Cluster_Secret (a reload may change it), derived once per secret. */
  private key(): Buffer | null {
    const secret = this.o.config().cluster?.options.Cluster_Secret;
    if (secret === undefined) return null;
    if (this.keyOf?.secret !== secret) this.keyOf = { secret, key: consoleKey(secret) };
    return this.keyOf.key;
  }
}

/** mailq's -d/-b (the command table has checked them by the time this is used). */
function mailqFilter(args: string[]): { domain?: string; binding?: string } {
  const f: { domain?: string; binding?: string } = {};
  for (let i = 0; i + 1 < args.length; i += 2) {
    if (args[i] === '-d') f.domain = args[i + 1]!;
    else if (args[i] === '-b') f.binding = args[i + 1]!;
  }
  return f;
}
