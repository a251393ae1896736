// The node process's main thread: loads and reloads the config, runs the worker pool and the
// control socket, and handles signals. It decides policy; it never touches message bodies.
// Everything here is asynchronous; nothing blocks the event loop beyond reading config files.
import os from 'node:os';
import type { Logger } from 'pino';
import { ClusterManager, mmoveAddress, type OwnershipChange } from './cluster/manager.js';
import { registerClusterCommands } from './cluster/console.js';
import { formatConfigError, loadConfigFile, defaultConfig, type Config, type LoadResult } from './config/index.js';
import { CommandTable } from './control/commands.js';
import { AdminHttpServer, type MailqReport } from './control/http.js';
import { buildMetrics, type BindingQueueSizes, type NodeMetrics } from './control/metrics.js';
import { ControlServer } from './control/server.js';
import { createLogger } from './log.js';
import { ErrorCode, VipError } from './errors.js';
import { VERSION } from './version.js';
import { formatMailq } from './queue/queue.js';
import { LOCAL_ROUTE, QueueManager, type Route, type Selector } from './queue/manager.js';
import type { AcceptedMessage } from './message/accepted.js';
import { decodeEnvelope, type MoveMeta } from './message/envelope.js';
import { decodeState, stateOfMove, type PersistedState } from './message/retry-state.js';
import type { MmoveItem, MmoveResult } from './mmove/client.js';
import { BindingPolicy } from './policy/binding.js';
import { Spool, type RecoveredMessage } from './spool/index.js';
import { WorkerPool } from './workers/pool.js';
import type { DeliveryBatch, DeliverySettings, ListenerSpec, WorkerStats } from './workers/protocol.js';
import type { MessageResult } from './delivery/index.js';
import { moveKey, type DedupTable } from './mmove/dedup.js';
import { mmoveDedupTable, mmoveSettings } from './mmove/settings.js';

export interface DaemonOptions {
  /** Config file; null runs the built-in single-node default. */
  configFile: string | null;
  cwd?: string;
}

/** Why start-up failed, for the CLI's exit status and message. */
export class StartupError extends Error {
  constructor(message: string, readonly details: string[] = []) {
    super(message);
  }
}

const DRAIN_TIMEOUT_MS = 30_000;

export class Daemon {
  private config: Config;
  readonly logger: Logger;
  private pool: WorkerPool | null = null;
  private spool: Spool | null = null;
  readonly queue: QueueManager;
  /** Delivery batches running per worker, to hand the next one to the least busy. */
  private readonly batchesPerWorker: number[] = [];
  private bindingPolicy!: BindingPolicy;
  private controls: ControlServer[] = [];
  private https: AdminHttpServer[] = [];
  private readonly metrics: NodeMetrics;
  private readonly commands = new CommandTable();
  private shuttingDown: Promise<void> | null = null;
  private readonly startedAt = Date.now();
  private lastReload: { at: Date; ok: boolean; message: string } | null = null;
  /** Resolves when the daemon has stopped; the CLI exits with this code. */
  readonly stopped: Promise<number>;
  private resolveStopped!: (code: number) => void;
  /** #mmove duplicate table shared by every worker (issue 6); sized at start. */
  private readonly mmoveDedup: DedupTable;

  private constructor(private readonly opts: DaemonOptions, config: Config) {
    this.config = config;
    this.logger = createLogger(config.global.Log_Level, { node: config.global.Nodename });
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    this.bindingPolicy = this.makePolicy(config);
    this.registerCommands();
    registerClusterCommands(this.commands, () => this.cluster);
    this.metrics = buildMetrics({ queues: () => this.queueSizes(), spool: () => this.spool?.stats() ?? null, mmoveDuplicates: () => this.mmoveDedup.stats().duplicates });
    this.queue = new QueueManager({
      config: () => this.config,
      spool: {
        markDone: (ids) => this.spool!.markDone(ids),
        update: (id, state) => this.spool!.update(id, state),
        read: (id) => this.spool!.read(id),
        writer: () => this.spool!.writer(),
      },
      deliver: (batch) => this.runBatch(batch),
      assign: (m) => {
        const a = this.bindingPolicy.assignStored(m);
        if (a.warning !== undefined) this.logger.warn({ binding: 'default/default' }, `binding assignment: ${a.warning}; using default`);
        return a;
      },
      logger: this.logger,
      onOutcome: (status, n) => {
        if (status === 'delivered') this.metrics.delivered.inc(n);
        else if (status === 'deferred') this.metrics.transientFailures.inc(n);
        else if (status === 'bounced') this.metrics.permanentFailures.inc(n);
        else this.metrics.mmoveMoved.inc(n);
      },
      route: (_group, binding) => this.routeBinding(binding),
      move: (node, items) => this.moveBatch(node, items),
      moveConnections: () => this.config.cluster?.options.Mmove_Connections ?? 4,
    });
    this.mmoveDedup = mmoveDedupTable(config);
  }

  /** Loads the config (throws StartupError listing every error) and starts the node. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const result = Daemon.load(opts);
    if (!result.ok) throw new StartupError('invalid configuration', result.errors.map(formatConfigError));
    const d = new Daemon(opts, result.config);
    try {
      await d.run();
    } catch (err) {
      d.logger.fatal({ err }, 'start-up failed');
      await d.teardown();
      throw new StartupError(`start-up failed: ${(err as Error).message}`);
    }
    return d;
  }

  private static load(opts: DaemonOptions): LoadResult {
    const cwd = opts.cwd ?? process.cwd();
    return opts.configFile === null ? { ok: true, config: defaultConfig({ cwd }) } : loadConfigFile(opts.configFile, { cwd });
  }

  private async run(): Promise<void> {
    const cfg = this.config;
    // Made before the spool is read: until its first election, mail of bindings on DuraVIPs waits
    // (route 'wait') instead of being tried from an address this node may not own.
    if (cfg.cluster !== null) this.cluster = new ClusterManager({ config: cfg, logger: this.logger });
    this.openSpool();
    const size = cfg.global.Worker_Threads > 0 ? cfg.global.Worker_Threads : os.availableParallelism();
    this.pool = new WorkerPool({
      size,
      logger: this.logger,
      init: (workerId) => ({
        workerId,
        logLevel: this.config.global.Log_Level,
        nodeName: this.config.global.Nodename,
        hostname: this.config.global.Hostname,
        spoolDirectory: this.spool!.directory,
        mmoveDedup: this.mmoveDedup.buffer,
      }),
      onStart: async (workerId) => {
        await this.pool!.call(workerId, 'setDelivery', deliverySettings(this.config));
        await this.pool!.call(workerId, 'setListeners', { listeners: listenerSpecs(this.config) });
        await this.pool!.call(workerId, 'setMmove', mmoveSettings(this.config));
      },
    });
    this.pool.on('event', (workerId: number, name: string, data: unknown) => {
      if (name === 'accepted') this.onAccepted(data as AcceptedMessage[]);
      else if (name === 'listenerError') this.logger.error({ workerId, ...(data as object) }, 'listener failed in a worker');
    });
    this.pool.on('replaced', () => this.reconcileWithSpool());
    await this.pool.start();
    this.queue.start();
    for (const c of cfg.controlListeners) {
      const server = new ControlServer(c.path, this.commands, this.logger);
      await server.start();
      this.controls.push(server);
    }
    await this.startHttp();
    this.installSignals();
    this.startCluster();
    this.logger.info(
      {
        version: VERSION,
        config: this.opts.configFile ?? '<built-in>',
        workers: size,
        listeners: cfg.esmtpListeners.map((l) => l.name),
        control: cfg.controlListeners.map((c) => c.path),
        http: cfg.httpListeners.map((h) => h.name),
      },
      'vipmta started',
    );
  }

  /** Opens the spool (exclusive to this process) and rebuilds the queue from what it holds. */
  private openSpool(): void {
    const sc = this.config.spool;
    if (sc.Sync === 'none') this.logger.warn('Spool Sync = none: messages are acknowledged before they are on disk (tests only)');
    const t0 = Date.now();
    this.spool = Spool.open({
      directory: sc.Directory,
      nodeId: this.config.global.Nodename,
      sync: sc.Sync,
      commitDelayMs: sc.Commit_Delay,
      segmentSize: sc.Segment_Size,
      copyForwardAfterMs: sc.Copy_Forward_After,
    });
    const { unreadable } = this.enqueueFromSpool(this.spool.recover());
    this.logger.info({ directory: sc.Directory, messages: this.queue.size, unreadable, ms: Date.now() - t0 }, 'spool recovered');
  }

  /** Queues spool records the queue does not know yet; envelopes that do not parse stay in the
   *  spool. A record's state (retry state the queue manager saved) restores attempts, next
   *  attempts, the binding and what is left to deliver. */
  private enqueueFromSpool(records: RecoveredMessage[]): { added: number; unreadable: number } {
    let added = 0;
    let unreadable = 0;
    for (const r of records) {
      if (this.queue.has(r.id)) continue;
      const env = decodeEnvelope(r.envelope);
      if (env === null) {
        unreadable++;
        this.logger.error({ id: r.id }, 'spool: message with an unreadable envelope kept in the spool, not queued');
        continue;
      }
      const { from, rcpt, headers, client, listener } = env;
      if (env.moved !== undefined && env.mmovePeer !== undefined) this.mmoveDedup.add(env.mmovePeer, moveKey(env.moved.originalId, rcpt));
      const state = decodeState(r.state);
      if (r.state !== null && state === null) this.logger.warn({ id: r.id }, 'spool: unreadable retry state ignored; the message starts over');
      const movedMeta = env.moved ?? null;
      const moved = movedMeta !== null ? this.movedPlacement(r.id, movedMeta, rcpt) : null;
      const xBinding = moved !== null ? null : this.bindingPolicy.trustedXBinding({ headers, client, listener });
      const a = moved?.assignment ?? this.assignBinding({ id: r.id, headers, from }, client, listener);
      // The listener's arrival time (the one the queue used before a restart), else the commit's.
      const arrival = env.arrival > 0 ? env.arrival : r.arrival;
      const hops = movedMeta !== null ? { hops: movedMeta.hops, origin: movedMeta.originNode } : {};
      if (this.queue.add({ id: r.id, size: r.size, arrival, from, rcpt, xBinding, listener, ...a, ...hops }, state ?? moved?.state ?? null)) added++;
    }
    return { added, unreadable };
  }

  /**
   * A worker that died may have committed messages it never reported (the 250 may even have gone
   * out). They are durable in the spool: find them there so they are queued without a restart.
   */
  private reconcileWithSpool(): void {
    if (this.spool === null) return;
    const { added } = this.enqueueFromSpool(this.spool.live());
    this.metrics.received.inc(added);
    if (added > 0) this.logger.warn({ added }, 'queued messages a dead worker had committed without reporting them');
  }

  private onAccepted(batch: AcceptedMessage[]): void {
    this.metrics.received.inc(batch.length);
    for (const m of batch) {
      const moved = m.moved !== undefined ? this.movedPlacement(m.id, m.moved, m.rcpt) : null;
      const a = moved?.assignment ?? this.assignBinding(m, m.client, m.listener);
      const xBinding = moved !== null ? null : this.bindingPolicy.trustedXBinding(m);
      const hops = m.moved !== undefined ? { hops: m.moved.hops, origin: m.moved.originNode } : {};
      this.queue.add({ id: m.id, size: m.size, arrival: m.arrival, from: m.from, rcpt: m.rcpt, xBinding, listener: m.listener, ...a, ...hops }, moved?.state ?? null);
      this.logger.info(
        { event: 'reception', id: m.id, from: m.from, rcpt: m.rcpt, size: m.size, listener: m.listener, client: m.client, binding: `${a.bindingGroup}/${a.binding}` },
        'reception',
      );
    }
  }

  /**
   * A message moved here by #mmove keeps the binding the sending node chose and its retry state
   * (attempts, next attempt). A binding this node does not know falls back to the policy.
   */
  private movedPlacement(id: string, moved: MoveMeta, rcpt: string[]): { assignment: { bindingGroup: string; binding: string }; state: PersistedState | null } {
    const b = this.config.bindings.get(moved.binding);
    let assignment: { bindingGroup: string; binding: string };
    if (b !== undefined) assignment = { bindingGroup: b.group, binding: b.name };
    else {
      const a = this.bindingPolicy.assignStored({ xBinding: null, listener: null, from: '' });
      this.logger.warn({ id, binding: moved.binding, from: moved.originNode }, `moved message names binding "${moved.binding}", unknown here; using ${a.bindingGroup}/${a.binding}`);
      assignment = { bindingGroup: a.bindingGroup, binding: a.binding };
    }
    return { assignment, state: stateOfMove(moved, rcpt, assignment) };
  }

  /** Hands a delivery batch to the worker with the fewest batches running. */
  private async runBatch(batch: DeliveryBatch): Promise<MessageResult[]> {
    // Each message may wait for a connect, the command replies and the data reply.
    const g = this.config.global;
    const timeout = g.Connect_Timeout + batch.messages.length * (4 * g.Command_Timeout + g.Data_Timeout) + 60_000;
    return this.onLeastBusyWorker((pool, w) => pool.call(w, 'deliver', batch, timeout));
  }

  /** Runs one batch call on the worker with the fewest batches running. */
  private async onLeastBusyWorker<T>(call: (pool: WorkerPool, workerId: number) => Promise<T>): Promise<T> {
    const pool = this.pool;
    if (pool === null) throw new Error('no worker pool');
    const ready = pool.status().filter((p) => p.ready);
    if (ready.length === 0) throw Object.assign(new Error('no worker is ready'), { code: 'ERR_WORKER_DIED' });
    let best = ready[0]!.workerId;
    for (const p of ready) if ((this.batchesPerWorker[p.workerId] ?? 0) < (this.batchesPerWorker[best] ?? 0)) best = p.workerId;
    this.batchesPerWorker[best] = (this.batchesPerWorker[best] ?? 0) + 1;
    try {
      return await call(pool, best);
    } finally {
      this.batchesPerWorker[best]!--;
    }
  }

  /**
   * Policy: which binding a message leaves from. Recovered messages are assigned again at start
   * (a group's round robin may then pick another member; the queue manager will persist it).
   */
  private assignBinding(m: { id: string; headers: Record<string, string>; from: string }, client: string, listener: string | null): { bindingGroup: string; binding: string } {
    const a = this.bindingPolicy.assign({ headers: m.headers, client, listener, from: m.from });
    if (a.warning !== undefined) this.logger.warn({ id: m.id, binding: 'default/default' }, `binding assignment: ${a.warning}; using default`);
    return { bindingGroup: a.bindingGroup, binding: a.binding };
  }

  private installSignals(): void {
    const onTerm = (sig: string) => () => {
      this.logger.info({ signal: sig }, 'stopping: no new connections, finishing sessions in flight');
      void this.shutdown();
    };
    process.on('SIGTERM', onTerm('SIGTERM'));
    process.on('SIGINT', onTerm('SIGINT'));
    process.on('SIGHUP', () => {
      void this.reload();
    });
  }

  /**
   * Re-reads the config file, validates it, and swaps it in only when it is valid and every worker
   * took the new listeners. On any error the running config stays and the error is logged.
   */
  async reload(): Promise<{ ok: boolean; message: string }> {
    const result = Daemon.load(this.opts);
    if (!result.ok) {
      const lines = result.errors.map(formatConfigError);
      this.logger.error({ errors: lines }, 'config reload failed; keeping the running config');
      return this.noteReload(false, `config reload failed; keeping the running config:\n${lines.join('\n')}`);
    }
    const next = result.config;
    const prev = this.config;
    const notes = restartOnlyChanges(prev, next);
    const pool = this.pool!;
    const applied = await pool.broadcast('setListeners', { listeners: listenerSpecs(next) });
    const appliedMmove = await pool.broadcast('setMmove', mmoveSettings(next));
    const failed = [...applied, ...appliedMmove].find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      // Put every worker back on the running listeners so the node stays consistent.
      await pool.broadcast('setListeners', { listeners: listenerSpecs(prev) });
      await pool.broadcast('setMmove', mmoveSettings(prev));
      const why = (failed.reason as Error).message;
      this.logger.error({ err: failed.reason }, 'config reload failed; keeping the running config');
      return this.noteReload(false, `config reload failed; keeping the running config:\n${why}`);
    }
    this.config = next;
    this.bindingPolicy = this.makePolicy(next);
    await pool.broadcast('setDelivery', deliverySettings(next));
    this.queue.configChanged();
    // A Bind_Address may have changed, and with it the node that sends a binding's mail.
    this.queue.reroute();
    if (next.global.Log_Level !== prev.global.Log_Level) {
      this.logger.level = next.global.Log_Level;
      await pool.broadcast('setLogLevel', { level: next.global.Log_Level });
    }
    this.cluster?.reconfigure(next);
    for (const n of notes) this.logger.warn(n);
    this.logger.info({ files: next.files }, 'config reloaded');
    return this.noteReload(true, ['config reloaded', ...notes].join('\n'));
  }

  private noteReload(ok: boolean, message: string): { ok: boolean; message: string } {
    this.lastReload = { at: new Date(), ok, message };
    return { ok, message };
  }

  /** Stops accepting, lets sessions in flight finish (up to 30 s), then exits with status 0. */
  shutdown(): Promise<void> {
    if (this.shuttingDown === null) {
      this.shuttingDown = (async () => {
        await this.teardown();
        this.logger.info('vipmta stopped');
        this.resolveStopped(0);
      })();
    }
    return this.shuttingDown;
  }

  private async teardown(): Promise<void> {
    await this.stopCluster();
    await Promise.allSettled(this.controls.map((c) => c.stop()));
    this.controls = [];
    // Deliveries in flight report first (their workers must still be there to answer); what does
    // not finish in time stays in the spool and goes again after the restart.
    await this.queue.stop(DRAIN_TIMEOUT_MS);
    if (this.pool !== null) await this.pool.stop(DRAIN_TIMEOUT_MS);
    // After the drain, so /health answers 503 ("stopping") while sessions finish.
    for (const h of this.https) h.close();
    this.https = [];
    if (this.spool !== null) {
      await this.spool.close();
      this.spool = null;
    }
  }

  // --- HTTP admin API and metrics -----------------------------------------------------------------

  /** One AdminHttpServer per Http_Listener; a port that cannot be bound fails the start-up. */
  private async startHttp(): Promise<void> {
    for (const h of this.config.httpListeners) {
      const server = new AdminHttpServer({
        name: h.name,
        host: h.host,
        port: h.port,
        logger: this.logger,
        metrics: () => this.metrics.render(),
        mailq: (filter) => this.mailqReport(filter),
        stopping: () => this.shuttingDown !== null,
      });
      await server.start();
      this.https.push(server);
    }
  }

  /** The console's mailq as data. */
  private mailqReport(filter: { domain?: string; binding?: string }): MailqReport {
    const c = this.queue.counts();
    return { rows: this.queue.mailq(filter), totals: { messages: c.messages, active: c.active, deferred: c.deferred, hold: c.hold } };
  }

  /** Queue sizes per binding over all domains; every configured binding appears, at 0 when idle. */
  private queueSizes(): BindingQueueSizes[] {
    const by = new Map<string, BindingQueueSizes>();
    const row = (bindingGroup: string, binding: string): BindingQueueSizes => {
      const key = `${bindingGroup}\0${binding}`;
      let r = by.get(key);
      if (r === undefined) by.set(key, (r = { bindingGroup, binding, active: 0, deferred: 0, hold: 0 }));
      return r;
    };
    for (const b of this.config.bindings.values()) row(b.group, b.name);
    for (const m of this.queue.byBinding()) {
      const r = row(m.bindingGroup, m.binding);
      r.active += m.active;
      r.deferred += m.deferred;
      r.hold += m.hold;
    }
    return [...by.values()];
  }

  private registerCommands(): void {
    const t = this.commands;
    t.add('help', 'list the console commands', () => t.help());
    t.add('version', 'show the vipmta version', () => `vipmta ${VERSION} (node ${process.version})\n`);
    t.add('config show', 'print the running configuration', () => this.config.show());
    t.add('config reload', 're-read and validate the config file; keep the running one on error', async () => {
      const r = await this.reload();
      if (!r.ok) {
        const err = new Error(r.message) as Error & { code: string };
        err.code = 'ERR_CONFIG_INVALID';
        throw err;
      }
      return r.message + '\n';
    });
    t.add('shutdown', 'stop accepting, finish sessions in flight, and exit', () => {
      setImmediate(() => void this.shutdown());
      return 'shutting down\n';
    });
    t.add('mailq [-d DOMAIN] [-b BINDING]', 'queued messages per binding and domain: active (AQ) and deferred (DQ)', (args) => {
      const filter: { domain?: string; binding?: string } = {};
      for (let i = 0; i < args.length; i++) {
        const flag = args[i];
        const v = args[i + 1];
        if ((flag === '-d' || flag === '-b') && v !== undefined) {
          if (flag === '-d') filter.domain = v;
          else filter.binding = v;
          i++;
        } else {
          const err = new Error(`mailq: unexpected argument "${flag}"; usage: mailq [-d domain] [-b binding]`) as Error & { code: string };
          err.code = 'ERR_CONTROL_BAD_REQUEST';
          throw err;
        }
      }
      return formatMailq(this.queue.mailq(filter), this.queue.counts());
    });
    t.add('hold QUEUE-ID|all|[-b BINDING] [-d DOMAIN]', 'hold queued messages: no delivery until released', (args) => {
      const n = this.queue.hold(selector('hold', args));
      return `held ${n} part(s)\n`;
    });
    t.add('release QUEUE-ID|all|[-b BINDING] [-d DOMAIN]', 'release held messages for an attempt at once', (args) => {
      const n = this.queue.release(selector('release', args));
      return `released ${n} part(s)\n`;
    });
    t.add('rebind BINDING|all [DOMAIN]', 're-run binding assignment for queued mail (e.g. after a config reload)', (args) => {
      if (args.length < 1 || args.length > 2) throw badRequest('usage: rebind <binding|all> [domain]');
      const n = this.queue.rebind(args[0]!, args[1]);
      return `rebound ${n} part(s)\n`;
    });
    t.add('message show QUEUE-ID', 'one queued message: its parts, bindings, attempts and next attempts', (args) => {
      if (args.length !== 1) throw badRequest('usage: message show <queue-id>');
      const m = this.queue.show(args[0]!);
      if (m === null) throw new VipError(ErrorCode.CONTROL_NOT_FOUND, `no queued message ${args[0]!}`);
      const lines = [`${m.id}  from <${m.from}>  size ${m.size}  arrived ${new Date(m.arrival).toISOString()}`];
      for (const p of m.parts) {
        const next = p.nextAttempt === null ? '-' : new Date(p.nextAttempt).toISOString();
        const via = p.via === null ? '' : `  via default/#mmove to ${p.via}`;
        lines.push(`  ${p.bindingGroup}/${p.binding}  ${p.domain || '(none)'}  ${p.state}${via}  attempts ${p.attempts}  next ${next}  rcpt ${p.rcpt.map((r) => `<${r}>`).join(' ')}`);
      }
      return lines.join('\n') + '\n';
    });
    t.add('workers', 'show the worker threads and what each has served', async () => this.workersReport());
    t.add('status', 'show uptime, config source and the last reload', () => {
      const up = Math.round((Date.now() - this.startedAt) / 1000);
      const lines = [
        `vipmta ${VERSION} pid ${process.pid} up ${up}s`,
        `config: ${this.opts.configFile ?? '<built-in>'} (${this.config.files.length} file(s))`,
        `last reload: ${this.lastReload === null ? 'never' : `${this.lastReload.at.toISOString()} ${this.lastReload.ok ? 'ok' : 'FAILED'}`}`,
      ];
      return lines.join('\n') + '\n';
    });
  }

  private async workersReport(): Promise<string> {
    const pool = this.pool!;
    const stats = await pool.broadcast('stats', {});
    const byId = new Map<number, WorkerStats>();
    for (const s of stats) if (s.status === 'fulfilled') byId.set(s.value.workerId, s.value);
    const rows = pool.status().map((p) => {
      const s = byId.get(p.workerId);
      const accepted = s === undefined ? '-' : Object.entries(s.accepted).map(([k, v]) => `${k}=${v}`).join(',') || '0';
      return [String(p.workerId), String(p.threadId ?? '-'), p.ready ? 'ready' : 'starting', String(p.restarts), String(s?.active ?? '-'), accepted];
    });
    const head = ['Worker', 'Thread', 'State', 'Restarts', 'Active', 'Accepted'];
    return table([head, ...rows]) + `deaths since start: ${pool.deaths}\n`;
  }

  // --- cluster (DuraVIP, issue 5) ------------------------------------------------------------------
  // Kept in one block: the manager lives in src/cluster/; the daemon only starts it after the
  // listeners (they bind every DuraVIP with IP_FREEBIND before owning it), hands it reloads, and
  // lets it hand its addresses over first on shutdown, before sessions drain.

  private cluster: ClusterManager | null = null;

  /** The DuraVIP manager (null without a Cluster stanza): owns(address), ownerOf(address), 'ownership' events. */
  get clusterManager(): ClusterManager | null {
    return this.cluster;
  }

  private startCluster(): void {
    const c = this.cluster;
    if (c === null) return;
    if (this.config.ecclusterListeners.length > 0 && mmoveAddress(this.config) === null) {
      this.logger.warn('ECCluster_Listener listens only on a wildcard address: peers cannot move mail here (give it this node\'s cluster link address)');
    }
    // Owners change in elections: re-place queued mail of the bindings that moved (once per turn
    // of the event loop, however many addresses changed).
    let queued = false;
    const reroute = (): void => {
      if (queued) return;
      queued = true;
      setImmediate(() => {
        queued = false;
        this.queue.reroute();
      });
    };
    c.on('allocation', reroute);
    c.on('ownership', reroute);
    c.on('memberLeft', (node: string) => this.dropMovesTo(node));
    c.on('ownership', (change: OwnershipChange) => {
      if (change.previous === c.node && change.owner !== c.node) this.abortDeliveriesFrom(change.address);
    });
    c.start();
  }

  /** Where a binding's mail goes: local unless its Bind_Address is a DuraVIP another node owns. */
  private routeBinding(binding: string): Route {
    const addr = this.config.bindings.get(binding)?.options.Bind_Address;
    if (this.cluster === null || addr === undefined) return LOCAL_ROUTE;
    return this.cluster.routeFor(addr);
  }

  /** Binding groups prefer members whose address this node sends from (not a DuraVIP, or owned here). */
  private makePolicy(config: Config): BindingPolicy {
    return new BindingPolicy(config, { holds: (address) => this.cluster === null || this.cluster.routeFor(address).to === 'local' });
  }

  /**
   * This node lost an address (moved, or no quorum): deliveries from it cannot complete, so their
   * connections are cut now rather than after a command timeout (minutes). Their mail comes back
   * deferred without an attempt counted and goes where the binding's route now says.
   */
  private abortDeliveriesFrom(address: string): void {
    if (this.pool === null) return;
    void this.pool.broadcast('abortDeliveries', { localAddress: address }).then((rs) => {
      const aborted = rs.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value.aborted : 0), 0);
      if (aborted > 0) this.logger.warn({ address, connections: aborted }, 'delivery: this node no longer holds the address; cut the connections from it');
    });
  }

  /** Where we last moved mail to each node: its connections are dropped when it leaves. */
  private readonly movePeers = new Map<string, { host: string; port: number }>();

  /** A member left: moves in flight to it end now (a dead machine sends no RST) and go to the
   *  new owner once the election has placed its addresses. */
  private dropMovesTo(node: string): void {
    const peer = this.movePeers.get(node);
    if (peer === undefined || this.pool === null) return;
    this.movePeers.delete(node);
    void this.pool.broadcast('mmoveDrop', { peer, reason: `node ${node} left the cluster` }).then((rs) => {
      const dropped = rs.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value.dropped : 0), 0);
      if (dropped > 0) this.logger.warn({ node, connections: dropped }, 'mmove: node left the cluster; dropped the connections to it, its mail is moved again');
    });
  }

  /** One #mmove batch to `node`'s ECCluster_Listener, from a worker's pooled connections. */
  private async moveBatch(node: string, items: MmoveItem[]): Promise<MmoveResult[]> {
    const peer = this.cluster?.peerLink(node) ?? null;
    if (peer !== null) this.movePeers.set(node, { host: peer.host, port: peer.port });
    if (peer === null) {
      const text = `4.4.0 no ECCluster_Listener address known for node ${node}`;
      return items.map((it) => ({ id: it.id, ok: false, code: 0, text, duplicate: false }));
    }
    const local = mmoveAddress(this.config);
    const target = { host: peer.host, port: peer.port, ...(local !== null ? { localAddress: local.host } : {}) };
    // The client's own timeouts (connect 10 s, 60 s without a reply) end a stuck move first.
    return this.onLeastBusyWorker((pool, w) => pool.call(w, 'mmoveSend', { peer: target, items }, 120_000 + items.length * 200));
  }

  private async stopCluster(): Promise<void> {
    const c = this.cluster;
    if (c === null) return;
    try {
      await c.stop();
    } catch (err) {
      this.logger.error({ err }, 'cluster: handover on shutdown failed');
    }
  }
}

function badRequest(message: string): Error {
  return new VipError(ErrorCode.CONTROL_BAD_REQUEST, message);
}

/** `all`, a queue id, or -b BINDING and/or -d DOMAIN. */
function selector(cmd: string, args: string[]): Selector {
  const usage = `usage: ${cmd} <queue-id | all | -b binding [-d domain] | -d domain>`;
  if (args.length === 1 && args[0] === 'all') return {};
  if (args.length === 1 && !args[0]!.startsWith('-')) return { id: args[0]! };
  const sel: Selector = {};
  for (let i = 0; i < args.length; i += 2) {
    const v = args[i + 1];
    if (v === undefined) throw badRequest(usage);
    if (args[i] === '-b') sel.binding = v;
    else if (args[i] === '-d') sel.domain = v;
    else throw badRequest(usage);
  }
  if (sel.binding === undefined && sel.domain === undefined) throw badRequest(usage);
  return sel;
}

function deliverySettings(cfg: Config): DeliverySettings {
  const g = cfg.global;
  return { resolverServers: [...g.Resolver_Servers], connectTimeoutMs: g.Connect_Timeout, commandTimeoutMs: g.Command_Timeout, dataTimeoutMs: g.Data_Timeout };
}

function listenerSpecs(cfg: Config): ListenerSpec[] {
  return cfg.esmtpListeners.map((l) => ({ name: l.name, host: l.host, port: l.port, options: { ...l.options } }));
}

/** Settings a running node cannot change; a reload takes the rest and says these wait for a restart. */
function restartOnlyChanges(prev: Config, next: Config): string[] {
  const notes: string[] = [];
  if (prev.global.Worker_Threads !== next.global.Worker_Threads) notes.push('Worker_Threads changed: takes effect at the next restart');
  if (prev.spool.Directory !== next.spool.Directory) notes.push('Spool Directory changed: takes effect at the next restart');
  if (prev.global.Nodename !== next.global.Nodename) notes.push('Nodename changed: takes effect at the next restart');
  const cp = prev.controlListeners.map((c) => c.path).join('\n');
  if (cp !== next.controlListeners.map((c) => c.path).join('\n')) notes.push('Control_Listener changed: takes effect at the next restart');
  if (prev.httpListeners.map((h) => h.name).join('\n') !== next.httpListeners.map((h) => h.name).join('\n')) notes.push('Http_Listener changed: takes effect at the next restart');
  return notes;
}

/** Left-aligned columns, two spaces apart: the console's table layout. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
