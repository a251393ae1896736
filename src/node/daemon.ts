// The node process's lifecycle on the main thread: loads the config, starts the parts in order
// (cluster manager, spool and recovery, worker pool, queue, control sockets, HTTP, signals,
// cluster election), and stops them in the reverse order that lets mail in flight finish. What
// each part does is in the sibling files. Asynchronous; nothing blocks beyond reading config files.
import { statfsSync } from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import { ClusterManager } from '../cluster/manager.js';
import { formatConfigError, loadConfigFile, defaultConfig, type Config, type LoadResult } from '../config/index.js';
import { AdminHttpServer } from '../control/http.js';
import { ControlServer } from '../control/server.js';
import { createLogger } from '../log.js';
import type { AcceptedMessage } from '../message/accepted.js';
import type { DedupTable } from '../mmove/dedup.js';
import { mmoveDedupTable } from '../mmove/settings.js';
import type { BindingPolicy } from '../policy/binding.js';
import type { QueueManager } from '../queue/manager.js';
import { EventJournal, listCorrupt, Spool } from '../spool/index.js';
import { VERSION } from '../version.js';
import { WorkerPool } from '../workers/pool.js';
import { DRAIN_GRACE_MS } from '../workers/socket-set.js';
import { bindingPolicy, startCluster, stopCluster } from './cluster.js';
import { ClusterConsole } from './cluster-console.js';
import { watchDrain } from './drain.js';
import { mailqReport, nodeCommands } from './console.js';
import { addLogCommands } from './log-commands.js';
import { Dispatcher } from './dispatch.js';
import { Intake } from './intake.js';
import { Events } from '../events/emitter.js';
import type { NewEvent } from '../events/records.js';
import { NodeMetricSet, queueSizes } from './metrics.js';
import { makeQueue } from './queue-wiring.js';
import { NodeShaping } from './shaping.js';
import { InboundLimits, inboundCounts } from './inbound-limits.js';
import { assertListenable, claimListenAddresses, listenAddresses, type ListenClaim } from './listen-check.js';
import { ConfigCluster } from './config-cluster.js';
import { settledInJournal } from './settled.js';
import { logConfigWarnings, reloadConfig, type ReloadResult } from './reload.js';
import { SpoolFullWatch } from './spool-full.js';
import { JournalWatch } from './journal-watch.js';
import type { Aggregator } from '../aggregate/aggregator.js';
import { addLogAggregatorCommands, startLogAggregator } from './log-aggregator.js';
import { addExporterCommands, Exporters } from './exporters.js';
import { NodeStatus } from './status.js';
import { configureWorker, workerInit } from './worker-settings.js';
import { bootFromRepository, NodeConfigHost, type RepoBoot } from './config-repo.js';
import { addConfigRepoCommands, showRepoFile } from './config-repo-console.js';

export interface DaemonOptions {
  /** Config file; null runs the built-in single-node default. */
  configFile: string | null;
  cwd?: string;
  /** Start from a config repository instead (`start --repo DIR --nodename NAME`): the revision
   *  this node ran last, resolved for `node` (src/node/config-repo.ts). */
  repo?: { dir: string; node: string };
}

/** Why start-up failed, for the CLI's exit status and message. */
export class StartupError extends Error {
  constructor(message: string, readonly details: string[] = []) {
    super(message);
  }
}

/** How often the spool's counters are read to tell whether it is full (a native call reading counters). */
const SPOOL_WATCH_MS = 1000;

export class Daemon {
  private config: Config;
  readonly logger: Logger;
  /** The event records (src/events/): the log until the lead connects the journal (events.connect). */
  readonly events: Events;
  readonly queue: QueueManager;
  private policy: BindingPolicy;
  private cluster: ClusterManager | null = null;
  private pool: WorkerPool | null = null;
  private spool: Spool | null = null;
  private journalWatch: JournalWatch | null = null;
  private readonly intake: Intake;
  private readonly dispatch: Dispatcher;
  private readonly metrics: NodeMetricSet;
  /** A full spool refuses every message with 452: logged on change and per interval, not per message. */
  private readonly spoolFull: SpoolFullWatch;
  private spoolWatchTimer: NodeJS.Timeout | null = null;
  /** #mmove duplicate table shared by every worker (issue 6); sized at start, a reload keeps it. */
  private readonly mmoveDedup: DedupTable;
  private controls: ControlServer[] = [];
  /** `console --cluster` / `--node` (node/cluster-console.ts). */
  private clusterConsole: ClusterConsole | null = null;
  private https: AdminHttpServer[] = [];
  private shuttingDown: Promise<void> | null = null;
  /** The listen addresses held from the start-up check until the workers listen (listen-check.ts). */
  private listenClaim: ListenClaim = { refused: [], release: () => undefined };
  private readonly startedAt = Date.now();
  private lastReload: { at: Date; ok: boolean; message: string } | null = null;
  /** Response-driven shaping: the rules, the shaping group, the restrictions in force. */
  private readonly shaping: NodeShaping;
  /** Cluster_Max_Inbound_Connections: each Inbound_Cidr's share on this node (whole caps until the
   *  shaping group's Allowances are passed here). */
  private readonly inbound: InboundLimits;
  /** The status page's document: #mmove counts per peer, recent failovers (node/status.ts). */
  private readonly status: NodeStatus;
  /** Log_Aggregator: pulls the members' event journals (node/log-aggregator.ts); null without it. */
  private aggregator: Aggregator | null = null;
  /** Event_Webhook and Event_Nats exporters reading this node's journal (node/exporters.ts); null until started. */
  private exporters: Exporters | null = null;
  /** The config repository's node side (started with --repo); null on a node run from a file. */
  private configHost: NodeConfigHost | null = null;
  /** The cluster's config coordinator (node/config-cluster.ts): a repository and a Cluster stanza. */
  private configCluster: ConfigCluster | null = null;
  /** Resolves when the daemon has stopped; the CLI exits with this code. */
  readonly stopped: Promise<number>;
  private resolveStopped!: (code: number) => void;

  private constructor(private readonly opts: DaemonOptions, config: Config) {
    this.config = config;
    this.logger = createLogger(config.global.Log_Level, { node: config.global.Nodename });
    this.events = new Events({ node: config.global.Nodename, logger: this.logger, logLines: config.global.Event_Log_Lines });
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    const cfg = (): Config => this.config;
    const cluster = (): ClusterManager | null => this.cluster;
    this.policy = bindingPolicy(config, cluster);
    this.mmoveDedup = mmoveDedupTable(config);
    this.dispatch = new Dispatcher({ pool: () => this.pool, config: cfg, cluster, logger: this.logger });
    this.status = new NodeStatus({
      config: cfg, queue: { byBinding: () => this.queue.byBinding() }, cluster, restrictions: () => this.shaping.node.restrictions(), startedAt: this.startedAt,
      queueSummaries: () => this.clusterConsole?.queueSummaries() ?? [],
    });
    this.shaping = new NodeShaping({
      config: cfg, logger: this.logger, events: this.events, changed: () => this.queue.configChanged(),
      queueUse: (group, binding, domain) => this.queue.queueUse(group, binding, domain),
      quorate: () => this.cluster?.quorate() ?? false,
    });
    this.queue = makeQueue({
      config: cfg,
      spool: () => this.spool!,
      dispatch: this.status.countMoves(this.dispatch),
      policy: () => this.policy,
      cluster,
      outcome: (status, n) => this.metrics.outcome(status, n),
      failure: (kind, cls, n) => this.metrics.failure(kind, cls, n),
      shaping: {
        observe: (binding, domain, r) => this.shaping.observe(binding, domain, r),
        restrictionsFor: (binding, domain) => this.shaping.restrictionsFor(binding, domain),
        destination: (domain, mx) => this.shaping.learn(domain, mx),
        destinationOf: (domain) => this.shaping.destinationOf(domain),
      },
      allowances: this.shaping.allowancesFor('queue'),
      logger: this.logger,
      events: this.events,
    });
    // A window with refusals and commits both is decided by the file system: room for another
    // segment means the spool accepts again.
    this.spoolFull = new SpoolFullWatch(this.logger, Date.now, undefined, () => this.spoolHasRoom());
    this.metrics = new NodeMetricSet({ config: cfg, queue: this.queue, spool: () => this.spool, dedup: this.mmoveDedup, spoolFull: () => this.spoolFull.state().full, shaping: () => this.shaping.metrics(this.queue.connectionStats, inboundCounts()), journal: () => this.journalWatch?.stats() ?? null });
    const allowances = this.shaping.node.allowances;
    const inboundAllowances = this.shaping.allowancesFor('inbound');
    this.inbound = new InboundLimits({
      config: cfg, allowances: inboundAllowances,
      shares: (key) => allowances.entries().find((e) => e.key === key)?.holders.map((h) => ({ node: h.member, lease: h.lease, demand: h.demand, use: h.use })) ?? [],
    });
    // The listeners' counters answer for the `in:` keys (InboundLimits does not register itself).
    inboundAllowances.setUse(this.inbound);
    this.intake = new Intake({ queue: this.queue, config: cfg, policy: () => this.policy, dedup: this.mmoveDedup, logger: this.logger, events: this.events });
  }

  /** Loads the config (throws StartupError listing every error) and starts the node. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    let boot: RepoBoot | null = null;
    if (opts.repo !== undefined) {
      try {
        boot = await bootFromRepository(opts.repo.dir, opts.repo.node, opts.cwd ?? process.cwd());
      } catch (err) {
        throw new StartupError(`config repository: ${(err as Error).message}`);
      }
    }
    const result = boot?.result ?? Daemon.load(opts);
    if (!result.ok) throw new StartupError(boot === null ? 'invalid configuration' : `invalid configuration at revision ${boot.rev}`, result.errors.map(formatConfigError));
    const d = new Daemon(opts, result.config);
    if (boot !== null) {
      d.configHost = new NodeConfigHost({ boot, cwd: opts.cwd ?? process.cwd(), config: () => d.config, reload: (load) => d.reload(load), logger: d.logger });
    }
    logConfigWarnings(d.logger, result.warnings);
    try {
      await d.run();
    } catch (err) {
      d.logger.fatal({ err }, 'start-up failed');
      await d.teardown();
      throw new StartupError(`start-up failed: ${(err as Error).message}`);
    }
    d.configHost?.started();
    return d;
  }

  private static load(opts: DaemonOptions): LoadResult {
    const cwd = opts.cwd ?? process.cwd();
    return opts.configFile === null ? { ok: true, config: defaultConfig({ cwd }), warnings: [] } : loadConfigFile(opts.configFile, { cwd });
  }

  /** The DuraVIP manager (null without a Cluster stanza): owns(address), ownerOf(address), 'ownership' events. */
  get clusterManager(): ClusterManager | null {
    return this.cluster;
  }

  /** The config repository's node side (setCoordinator for the cluster's config group); null
   *  when the node runs a config file. */
  get configRepository(): NodeConfigHost | null {
    return this.configHost;
  }

  private async run(): Promise<void> {
    const cfg = this.config;
    // Before anything binds: the workers share each port with SO_REUSEPORT, which another program
    // of our uid could be part of; and only DuraVIPs are bound off the host (IP_FREEBIND).
    this.listenClaim = assertListenable(cfg);
    // Made before the spool is read: until its first election, mail of bindings on DuraVIPs waits
    // (route 'wait') instead of being tried from an address this node may not own.
    if (cfg.cluster !== null) {
      this.status.watch(this.cluster = new ClusterManager({ config: cfg, logger: this.logger }));
      this.metrics.watchCluster(this.cluster, this.status);
      // Cluster-wide limits use no share without quorum: told at once, not at the next tick.
      this.cluster.on('quorum', (q: boolean) => this.shaping.node.allowances.quorumChanged(q));
      watchDrain(this.cluster, () => this.queue, this.logger);
      // Run from a config repository: the config group decides commits for the cluster. Made
      // before the workers start, whose ECCluster_Listeners then serve XCONFIG; started below.
      const host = this.configHost;
      if (host !== null) {
        this.configCluster = ConfigCluster.create({ config: () => this.config, logger: this.logger, host, cluster: () => this.cluster, setCoordinator: (c) => host.setCoordinator(c) });
      }
    }
    await this.openSpool();
    this.watchSpool();
    // The default leaves one core to the main thread (queue, scheduling, log) and the spool's commit
    // thread: on 2 cores one worker injected 15-25% faster than two, at a quarter less CPU per
    // message (docs/performance.md, issue 18), the second worker adding only cross-thread wake-ups.
    const size = cfg.global.Worker_Threads > 0 ? cfg.global.Worker_Threads : Math.max(1, os.availableParallelism() - 1);
    const pool = new WorkerPool({
      size,
      logger: this.logger,
      init: (workerId) => workerInit(this.config, workerId, this.spool!.directory, this.mmoveDedup),
      onStart: (workerId) => configureWorker(this.pool!, workerId, this.config),
    });
    this.pool = pool;
    pool.on('event', (workerId: number, name: string, data: unknown) => {
      if (name === 'accepted') this.onAccepted(data as AcceptedMessage[]);
      else if (name === 'rejected') for (const r of data as NewEvent[]) this.events.emit(r);
      else if (name === 'listenerError') this.logger.error({ workerId, ...(data as object) }, 'listener failed in a worker');
    });
    pool.on('replaced', () => this.reconcileWithSpool());
    await pool.start();
    this.listenClaim.release(); // the workers listen now
    // Before the first batch: a suspension persisted by the last run holds from the start.
    this.shaping.start();
    this.queue.start();
    const commands = nodeCommands({
      config: () => this.config,
      configFile: this.opts.repo !== undefined ? `config repository ${this.configHost!.repo.dir}` : this.opts.configFile,
      ...(this.configHost !== null ? { repoFile: (spec: string) => showRepoFile(this.configHost!.repo, spec) } : {}),
      queue: this.queue,
      pool: () => this.pool,
      cluster: () => this.cluster,
      reload: () => this.reload(),
      shutdown: () => this.shutdown(),
      startedAt: this.startedAt,
      lastReload: () => this.lastReload,
      spoolCorrupt: () => listCorrupt(this.spool!.directory),
      spoolFull: () => this.spoolFull.state(),
      queueSummaries: () => this.clusterConsole?.queues() ?? [],
    });
    this.shaping.addCommands(commands);
    addConfigRepoCommands(commands, () => this.configHost);
    this.aggregator = startLogAggregator(cfg, () => this.cluster, this.logger);
    addLogAggregatorCommands(commands, () => this.aggregator);
    const exporters = this.exporters = Exporters.start(cfg, this.spool!.directory, this.logger);
    this.metrics.watchExporters(() => exporters.values());
    addExporterCommands(commands, () => this.exporters);
    addLogCommands(commands, { spoolDirectory: () => this.spool?.directory ?? null, nodeName: () => this.config.global.Nodename, live: true, logger: this.logger });
    this.inbound.addCommands(commands);
    this.inbound.start();
    const clusterConsole = this.clusterConsole = new ClusterConsole({
      config: () => this.config, logger: this.logger, commands, mailq: (f) => mailqReport(this.queue, f),
      queueSizes: () => queueSizes(this.config, this.queue), drained: () => this.cluster?.drained ?? false,
      reloadRound: () => {
        const c = this.cluster;
        return c === null ? null : { open: () => c.openReloadRound(), done: () => c.reloadRoundDone() };
      },
    });
    clusterConsole.start();
    for (const c of cfg.controlListeners) {
      const server = new ControlServer(c.path, commands, this.logger, (req) => clusterConsole.handle(req));
      await server.start();
      this.controls.push(server);
    }
    await this.startHttp();
    this.installSignals();
    if (this.cluster !== null) {
      // After the workers (a switch reloads through them), before the manager joins (the gate is
      // closed from its first announce: no address until this node's config has caught up).
      this.configCluster?.start();
      startCluster(this.cluster, { config: this.config, reroute: () => this.queue.reroute(), dispatch: this.dispatch, logger: this.logger, events: this.events });
    }
    this.logger.info(
      {
        version: VERSION,
        config: this.configHost !== null ? `${this.configHost.repo.dir} at ${this.configHost.running()}` : this.opts.configFile ?? '<built-in>',
        workers: size,
        listeners: cfg.esmtpListeners.map((l) => l.name),
        control: cfg.controlListeners.map((c) => c.path),
        http: cfg.httpListeners.map((h) => h.name),
      },
      'vipmta started',
    );
  }

  /** Opens the spool (exclusive to this process) and rebuilds the queue from what it holds. */
  /** Whether the spool's file system has room for one more segment (statfs; false if it cannot tell). */
  private spoolHasRoom(): boolean {
    try {
      const fs = statfsSync(this.config.spool.Directory);
      return fs.bavail * fs.bsize >= this.config.spool.Segment_Size;
    } catch {
      return false;
    }
  }

  private async openSpool(): Promise<void> {
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
      eventMaxSize: sc.Event_Journal_Max_Size,
      eventAtCap: sc.Event_Journal_At_Cap,
      eventRetention: sc.Event_Journal_Retention,
      // Each torn tail (WARN: never acknowledged) and corrupt record (ERROR: an acknowledged
      // message is lost, its bytes are in corrupt/) is logged with its file, offset and reason.
      logger: this.logger,
    });
    // From here every event record goes to the journal, in the spool's group commit.
    const spool = this.spool;
    this.events.connect({ append: (records) => spool.appendEvents(records) });
    const journal = new EventJournal({ directory: sc.Directory, logger: this.logger });
    this.journalWatch = new JournalWatch(journal, this.logger);
    this.journalWatch.start();
    const corrupt = this.spool.recoveryEvents.filter((e) => e.kind === 'corrupt').length;
    const tornTails = this.spool.recoveryEvents.filter((e) => e.kind === 'torn-tail').length;
    const { unreadable, done } = this.intake.recovered(this.spool.recoverChunks(), settledInJournal(journal));
    if (done.length > 0) {
      // Their delivery records are durable and their done-marks were not (a crash between the two):
      // delivered once, recorded once, not sent again.
      // Through the queue's done-marks, which keep them and retry while a full disk refuses them:
      // a node must start on a full spool (docs/delivery.md, Durability).
      this.queue.markSettled(done);
      this.logger.info({ messages: done.length }, 'spool: messages the journal records as delivered before the restart marked done');
    }
    this.logger.info({ directory: sc.Directory, messages: this.queue.size, unreadable, settled: done.length, corrupt, tornTails, ms: Date.now() - t0 }, 'spool recovered');
  }

  /**
   * Every writer of the spool (listener, DSN, #mmove receipt) on every thread counts its refusals
   * in the one native spool: the main thread reads them here rather than hearing from each worker
   * per refused message, so one place logs the state for the node and serves it to /metrics,
   * /health and the console.
   */
  private watchSpool(): void {
    const read = (): void => {
      if (this.spool !== null) this.spoolFull.observe(this.spool.stats());
    };
    read();
    this.spoolWatchTimer = setInterval(read, SPOOL_WATCH_MS);
    this.spoolWatchTimer.unref();
  }

  private onAccepted(batch: AcceptedMessage[]): void {
    this.metrics.received(batch.length);
    this.status.received(batch);
    this.intake.accepted(batch);
  }

  /**
   * A worker that died may have committed messages it never reported (the 250 may even have gone
   * out). They are durable in the spool: find them there so they are queued without a restart.
   */
  private reconcileWithSpool(): void {
    if (this.spool === null) return;
    const { added } = this.intake.recovered(this.spool.liveChunks());
    this.metrics.received(added);
    if (added > 0) this.logger.warn({ added }, 'queued messages a dead worker had committed without reporting them');
  }

  /** One AdminHttpServer per Http_Listener; a port that cannot be bound fails the start-up. */
  private async startHttp(): Promise<void> {
    for (const h of this.config.httpListeners) {
      const server = new AdminHttpServer({
        name: h.name,
        host: h.host,
        port: h.port,
        logger: this.logger,
        metrics: this.metrics.render,
        mailq: (filter) => mailqReport(this.queue, filter),
        stopping: () => this.shuttingDown !== null,
        problems: () => [...(this.spoolFull.state().full ? ['spool full: refusing messages with 452 4.3.1'] : []), ...(this.journalWatch?.problems() ?? [])],
        shaping: this.shaping.api(),
        status: () => this.status.state(),
      });
      await server.start();
      this.https.push(server);
    }
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
   * took the new listeners (src/node/reload.ts). On any error the running config stays and the
   * error is logged. From a config repository: the running revision's tree, or `load` (the
   * revision NodeConfigHost.switchTo runs).
   */
  async reload(load?: () => LoadResult): Promise<ReloadResult> {
    const r = await reloadConfig({
      // A node run from a repository reloads the revision it runs, or the one it switches to.
      load: load ?? (() => this.configHost?.loadRunning() ?? Daemon.load(this.opts)),
      running: () => this.config,
      broadcast: (method, params, timeoutMs) => this.pool!.broadcast(method, params, timeoutMs),
      claimListeners: (prev, next) => claimListenAddresses(listenAddresses(next), listenAddresses(prev)),
      logger: this.logger,
      apply: {
        config: (next) => {
          this.config = next;
          this.events.setLogLines(next.global.Event_Log_Lines);
          this.policy = bindingPolicy(next, () => this.cluster);
          this.shaping.reconfigure(next);
          this.inbound.apply(next);
        },
        queue: () => {
          this.queue.configChanged();
          this.queue.reroute();
        },
        cluster: (next) => this.cluster?.reconfigure(next),
      },
    });
    this.lastReload = { at: new Date(), ok: r.ok, message: r.message };
    return r;
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
    // No config switch may start while the node stops (it would reload through stopping workers).
    this.configCluster?.stop();
    this.listenClaim.release();
    // The cluster hands its addresses over first, before sessions drain.
    await stopCluster(this.cluster, this.logger);
    await Promise.allSettled(this.controls.map((c) => c.stop()));
    this.controls = [];
    this.clusterConsole?.stop();
    await this.aggregator?.stop();
    this.aggregator = null;
    await this.exporters?.stop();
    this.exporters = null;
    this.shaping.stop();
    this.inbound.stop();
    // Deliveries in flight report first (their workers must still be there to answer); what does
    // not finish in time stays in the spool and goes again after the restart.
    await this.queue.stop(DRAIN_GRACE_MS);
    if (this.pool !== null) await this.pool.stop(DRAIN_GRACE_MS);
    await this.events.flush();
    this.journalWatch?.stop();
    // After the drain, so /health answers 503 ("stopping") while sessions finish.
    for (const h of this.https) h.close();
    this.https = [];
    if (this.spoolWatchTimer !== null) clearInterval(this.spoolWatchTimer);
    this.spoolWatchTimer = null;
    if (this.spool !== null) {
      await this.spool.close();
      this.spool = null;
    }
  }
}
