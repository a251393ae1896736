// The node's console commands (config, mailq, hold/release/rebind, message list/show, workers, status,
// spool corrupt, shutdown) and the queue views the HTTP admin API shares with them. The cluster's commands are
// in src/cluster/console.ts. Main thread; handlers await worker calls at most, never block.
import type { ClusterManager } from '../cluster/manager.js';
import { registerClusterCommands } from '../cluster/console.js';
import type { QueueSummary } from '../cluster/queue-summary.js';
import type { Config } from '../config/index.js';
import { CommandTable } from '../control/commands.js';
import type { MailqReport } from '../control/http.js';
import { ErrorCode, VipError } from '../errors.js';
import type { QueueManager, Selector } from '../queue/manager.js';
import type { CorruptEntry } from '../spool/index.js';
import { formatMailq, formatMessageList, throttleNote } from '../queue/views.js';
import { VERSION } from '../version.js';
import type { WorkerPool } from '../workers/pool.js';
import type { WorkerStats } from '../workers/protocol.js';
import type { ReloadResult } from './reload.js';
import type { SpoolFullState } from './spool-full.js';

type ConsoleQueue = Pick<QueueManager, 'mailq' | 'counts' | 'hold' | 'release' | 'rebind' | 'show' | 'list'>;

/** What the console reads and drives; the daemon is the real one. */
export interface ConsoleHost {
  config(): Config;
  /** The config file given at start; null for the built-in default. */
  readonly configFile: string | null;
  readonly queue: ConsoleQueue;
  pool(): Pick<WorkerPool, 'broadcast' | 'status' | 'deaths'> | null;
  cluster(): ClusterManager | null;
  reload(): Promise<ReloadResult>;
  shutdown(): Promise<void>;
  /** ms since the epoch. */
  readonly startedAt: number;
  lastReload(): { at: Date; ok: boolean } | null;
  /** What the spool's corrupt/ holds (listCorrupt). */
  spoolCorrupt(): Promise<CorruptEntry[]>;
  /** Whether the spool refuses commits for lack of space (SpoolFullWatch). */
  spoolFull(): SpoolFullState;
  /** `config show REV:PATH` on a node started from a config repository (node/config-repo-console.ts). */
  repoFile?(spec: string): Promise<string>;
  /** Every member's queue summary (node/cluster-console.ts), for `cluster membership`. */
  queueSummaries?(): readonly QueueSummary[];
}

/** The node's command table: its own commands, then the cluster's. */
export function nodeCommands(h: ConsoleHost): CommandTable {
  const t = new CommandTable();
  t.add('help', 'list the console commands', () => t.help());
  t.add('version', 'show the vipmta version', () => `vipmta ${VERSION} (node ${process.version})\n`);
  t.add('config show [REV:PATH]', 'print the running configuration, or a file of the config repository at a revision', (args) => {
    if (args.length === 0) return h.config().show();
    if (args.length > 1 || h.repoFile === undefined) throw badRequest(h.repoFile === undefined ? 'config show REV:PATH: this node runs a config file, not a config repository' : 'usage: config show [REV:PATH]');
    return h.repoFile(args[0]!);
  });
  t.add('config reload', 're-read and validate the config file; keep the running one on error', async () => {
    const r = await h.reload();
    if (!r.ok) {
      const err = new Error(r.message) as Error & { code: string };
      err.code = 'ERR_CONFIG_INVALID';
      throw err;
    }
    return r.message + '\n';
  });
  t.add('shutdown', 'stop accepting, finish sessions in flight, and exit', () => {
    setImmediate(() => void h.shutdown());
    return 'shutting down\n';
  });
  t.add('mailq [-d DOMAIN] [-b BINDING]', 'queued parts per binding and domain: active (AQ), deferred (DQ) and held (HQ)', (args) => {
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
    return formatMailq(h.queue.mailq(filter), h.queue.counts());
  });
  t.add('hold QUEUE-ID|all|[-b BINDING] [-d DOMAIN]', 'hold queued messages: no delivery until released', (args) => {
    const n = h.queue.hold(selector('hold', args));
    return `held ${n} part(s)\n`;
  });
  t.add('release QUEUE-ID|all|[-b BINDING] [-d DOMAIN]', 'release held messages for an attempt at once', (args) => {
    const n = h.queue.release(selector('release', args));
    return `released ${n} part(s)\n`;
  });
  t.add('rebind BINDING|all [DOMAIN]', 're-run binding assignment for queued mail (e.g. after a config reload)', (args) => {
    if (args.length < 1 || args.length > 2) throw badRequest('usage: rebind <binding|all> [domain]');
    const n = h.queue.rebind(args[0]!, args[1]);
    return `rebound ${n} part(s)\n`;
  });
  t.add('message list [-b BINDING] [-d DOMAIN] [--limit N]', 'queued messages, oldest first: queue id, sender, size, arrival, parts per state, next attempt', (args) => {
    const usage = 'usage: message list [-b binding] [-d domain] [--limit n]';
    const filter: { domain?: string; binding?: string } = {};
    let limit = 100;
    for (let i = 0; i < args.length; i += 2) {
      const v = args[i + 1];
      if (v === undefined) throw badRequest(usage);
      if (args[i] === '-b') filter.binding = v;
      else if (args[i] === '-d') filter.domain = v;
      else if (args[i] === '--limit' && /^\d+$/.test(v) && Number(v) > 0) limit = Number(v);
      else throw badRequest(usage);
    }
    return formatMessageList(h.queue.list(filter, limit));
  });
  t.add('message show QUEUE-ID', 'one queued message: its parts, bindings, attempts, next attempts and last replies', (args) => {
    if (args.length !== 1) throw badRequest('usage: message show <queue-id>');
    return formatMessage(h.queue, args[0]!);
  });
  t.add('workers', 'show the worker threads and what each has served', async () => workersReport(h.pool()!));
  t.add('status', 'show uptime, config source and the last reload', () => {
    const up = Math.round((Date.now() - h.startedAt) / 1000);
    const last = h.lastReload();
    const lines = [
      `vipmta ${VERSION} pid ${process.pid} up ${up}s`,
      `config: ${h.configFile ?? '<built-in>'} (${h.config().files.length} file(s))`,
      `last reload: ${last === null ? 'never' : `${last.at.toISOString()} ${last.ok ? 'ok' : 'FAILED'}`}`,
    ];
    const full = h.spoolFull();
    lines.push(full.full ? `spool: FULL since ${new Date(full.since!).toISOString()}, refusing messages with 452 4.3.1 (${full.refused} refused)` : 'spool: ok');
    return lines.join('\n') + '\n';
  });
  t.add('spool corrupt', 'what recovery moved to the spool\'s corrupt/ directory, with the reason', async () => formatCorrupt(await h.spoolCorrupt()));
  registerClusterCommands(t, () => h.cluster(), () => h.queueSummaries?.() ?? []);
  return t;
}

/** `message show`: the message line, then one line per part (and its last reply, if deferred). */
export function formatMessage(queue: Pick<QueueManager, 'show'>, id: string): string {
  const m = queue.show(id);
  if (m === null) throw new VipError(ErrorCode.CONTROL_NOT_FOUND, `no queued message ${id}`);
  const lines = [`${m.id}  from <${m.from}>  size ${m.size}  arrived ${new Date(m.arrival).toISOString()}`];
  for (const p of m.parts) {
    const next = p.nextAttempt === null ? '-' : new Date(p.nextAttempt).toISOString();
    const via = p.via === null ? '' : `  via default/#mmove to ${p.via}`;
    const throttled = p.throttledUntil === undefined ? '' : `  ${throttleNote(p.throttledUntil)}`;
    lines.push(`  ${p.bindingGroup}/${p.binding}  ${p.domain || '(none)'}  ${p.state}${via}${throttled}  attempts ${p.attempts}  next ${next}  rcpt ${p.rcpt.map((r) => `<${r}>`).join(' ')}`);
    if (p.lastReply !== null) lines.push(`    last reply: ${p.lastReply}`);
  }
  return lines.join('\n') + '\n';
}

/** `spool corrupt`: one row per saved region, then the count. */
export function formatCorrupt(entries: readonly CorruptEntry[]): string {
  const rows = entries.map((e) => [new Date(e.savedAt).toISOString(), e.id, e.savedAs, e.file, e.offset === null ? '-' : String(e.offset), e.length === null ? '-' : String(e.length), e.reason]);
  const head = ['Saved', 'Queue id', 'As', 'From', 'Offset', 'Length', 'Reason'];
  return (rows.length === 0 ? '' : table([head, ...rows])) + `corrupt: ${entries.length} record(s)\n`;
}

/** `workers`: one row per slot with what its worker reports (a worker that does not answer shows '-'). */
export async function workersReport(pool: Pick<WorkerPool, 'broadcast' | 'status' | 'deaths'>): Promise<string> {
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

/** The console's mailq as data (GET /stats/queues/mailq). */
export function mailqReport(queue: Pick<QueueManager, 'mailq' | 'counts'>, filter: { domain?: string; binding?: string }): MailqReport {
  const c = queue.counts();
  return { rows: queue.mailq(filter), totals: { messages: c.messages, active: c.active, deferred: c.deferred, hold: c.hold } };
}

/** `all`, a queue id, or -b BINDING and/or -d DOMAIN. */
export function selector(cmd: string, args: string[]): Selector {
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

function badRequest(message: string): Error {
  return new VipError(ErrorCode.CONTROL_BAD_REQUEST, message);
}

/** Left-aligned columns, two spaces apart: the console's table layout. (src/control/table.ts is to
 *  become its one home; this copy goes then.) */
function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
