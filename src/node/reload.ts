// Config reload: validate the new file, offer its listeners to every worker, and only when all
// took them swap it in on the main thread; otherwise every worker goes back to the running
// listeners and the running config stays. Main thread; awaits worker calls, reads config files.
import type { Logger } from 'pino';
import { formatConfigError, formatConfigWarning, type Config, type ConfigError, type LoadResult } from '../config/index.js';
import { deliverySettings, offerListeners, type Broadcast } from './worker-settings.js';

export interface ReloadResult {
  ok: boolean;
  /** For the console and the log: what changed or why nothing did, and what waits for a restart. */
  message: string;
}

/** What a reload reads and changes; the daemon gives the real ones, tests give fakes. */
export interface ReloadHost {
  /** Reads and validates the config file again. */
  load(): LoadResult;
  running(): Config;
  /** Every worker (WorkerPool.broadcast). */
  broadcast: Broadcast;
  /** Why listeners `next` adds cannot be listened on (a port another program holds, an address not
   *  on the host and not a DuraVIP: listen-check.ts), checked before any worker binds; when none, the
   *  new addresses are held for the workers until release(). */
  claimListeners?(prev: Config, next: Config): { refused: Error[]; release(): void };
  logger: Logger;
  /** Main-thread appliers, called in this order once every worker took the new listeners. */
  apply: {
    /** Every config lookup sees `next` from now on, and a binding policy made from it. */
    config(next: Config): void;
    /** After the workers have the new delivery settings: queue limits and routes are looked up
     *  again (a Bind_Address may have changed, and with it the node that sends a binding's mail). */
    queue(): void;
    /** The DuraVIP manager takes the new stanzas. */
    cluster(next: Config): void;
  };
}

export async function reloadConfig(h: ReloadHost): Promise<ReloadResult> {
  const result = h.load();
  if (!result.ok) {
    const lines = result.errors.map(formatConfigError);
    h.logger.error({ errors: lines }, 'config reload failed; keeping the running config');
    return { ok: false, message: `config reload failed; keeping the running config:\n${lines.join('\n')}` };
  }
  const next = result.config;
  const prev = h.running();
  const notes = restartOnlyChanges(prev, next);
  const claim = h.claimListeners?.(prev, next) ?? { refused: [], release: () => undefined };
  if (claim.refused.length > 0) {
    const lines = claim.refused.map((e) => e.message);
    h.logger.error({ errors: lines }, 'config reload failed; keeping the running config');
    return { ok: false, message: `config reload failed; keeping the running config:\n${lines.join('\n')}` };
  }
  let applied: PromiseSettledResult<unknown>[];
  try {
    applied = await offerListeners(h.broadcast, next);
  } finally {
    claim.release();
  }
  const failed = applied.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    // Put every worker back on the running listeners so the node stays consistent.
    await offerListeners(h.broadcast, prev);
    const why = (failed.reason as Error).message;
    h.logger.error({ err: failed.reason }, 'config reload failed; keeping the running config');
    return { ok: false, message: `config reload failed; keeping the running config:\n${why}` };
  }
  h.apply.config(next);
  await h.broadcast('setDelivery', deliverySettings(next));
  h.apply.queue();
  if (next.global.Log_Level !== prev.global.Log_Level) {
    h.logger.level = next.global.Log_Level;
    await h.broadcast('setLogLevel', { level: next.global.Log_Level });
  }
  h.apply.cluster(next);
  for (const n of notes) h.logger.warn(n);
  const warnings = logConfigWarnings(h.logger, result.warnings);
  h.logger.info({ files: next.files }, 'config reloaded');
  return { ok: true, message: ['config reloaded', ...notes, ...warnings].join('\n') };
}

/** Logs what a loaded config exposes, one WARN line each (at start and after every reload); returns the lines. */
export function logConfigWarnings(logger: Logger, warnings: readonly ConfigError[]): string[] {
  const lines = warnings.map(formatConfigWarning);
  for (const l of lines) logger.warn(l);
  return lines;
}

/** Settings a running node cannot change; a reload takes the rest and says these wait for a restart. */
export function restartOnlyChanges(prev: Config, next: Config): string[] {
  const notes: string[] = [];
  if (prev.global.Worker_Threads !== next.global.Worker_Threads) notes.push('Worker_Threads changed: takes effect at the next restart');
  if (prev.spool.Directory !== next.spool.Directory) notes.push('Spool Directory changed: takes effect at the next restart');
  if (prev.global.Nodename !== next.global.Nodename) notes.push('Nodename changed: takes effect at the next restart');
  const cp = prev.controlListeners.map((c) => c.path).join('\n');
  if (cp !== next.controlListeners.map((c) => c.path).join('\n')) notes.push('Control_Listener changed: takes effect at the next restart');
  if (prev.httpListeners.map((h) => h.name).join('\n') !== next.httpListeners.map((h) => h.name).join('\n')) notes.push('Http_Listener changed: takes effect at the next restart');
  // The exporters and the aggregator hold subscribers, connections and files of their own; they
  // are made once, at start.
  const opts = (x: { options: unknown } | null): string => JSON.stringify(x?.options ?? null);
  if (opts(prev.logAggregator) !== opts(next.logAggregator)) notes.push('Log_Aggregator changed: takes effect at the next restart');
  const named = (xs: { name: string; options: unknown }[]): string => JSON.stringify(xs.map((x) => [x.name, x.options]));
  if (named(prev.eventWebhooks) !== named(next.eventWebhooks)) notes.push('Event_Webhook changed: takes effect at the next restart');
  if (named(prev.eventNats) !== named(next.eventNats)) notes.push('Event_Nats changed: takes effect at the next restart');
  return notes;
}
