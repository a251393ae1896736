// The `vipmta` command line: start a node, check a config, or talk to a running node's console.
// Exit status: 0 success, 1 failure (invalid config, command refused, node unreachable), 2 usage.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SHIPPED_RULES, controlSocketPaths, defaultConfig, formatConfigError, formatConfigWarning, loadConfigFile } from '../config/index.js';
import { sendRequest } from '../control/client.js';
import { MAX_CLUSTER_TIMEOUT_MS, type ControlRequest } from '../control/protocol.js';
import os from 'node:os';
import { clusterCommand } from './corosync-conf.js';
import { CONFIG_USAGE, configCommand } from './config-repo.js';
import { logCommand } from './log.js';
import { Daemon, StartupError } from '../node/daemon.js';
import { hashPassword } from '../config/password.js';
import { VERSION } from '../version.js';

const USAGE = `usage:
  vipmta start [-c FILE]                        run a node (without -c: the built-in single-node default)
  vipmta start --repo DIR [--nodename NAME]     run a node from a config repository (NAME: the host name by default)
  vipmta check-config [-c FILE]                 validate a config; binds nothing, opens nothing
  vipmta console [-s SOCKET | -c FILE] COMMAND  run a console command on a running node ("help" lists them)
  vipmta console [-s SOCKET | -c FILE] (--cluster | --node NAME) [--timeout DURATION] COMMAND
                                                run it on every member of the cluster, or on one (default timeout 10s)
  vipmta release-addresses [-c FILE]            remove the DuraVIPs a stopped node left plumbed (systemd ExecStopPost)
  vipmta cluster corosync-conf -c FILE [--authkey PATH] [--output FILE] [--ipc-user USER]
                                                the corosync.conf for the Cluster's Node list (creates the authkey if missing)
  vipmta log [-c FILE | -s SOCKET] tail [-n N] [-f] [--json] | read --subscriber NAME [--max N] [--json] [--ack]
             | subscribers | subscribe NAME [--from start|end] | unsubscribe NAME
                                                the event journal (vipmta log help); without a running node, from FILE's spool
${CONFIG_USAGE.replace(/^usage:\n/, '')}  vipmta hash-password                          read a password on standard input, print its Auth_Users hash
  vipmta --version
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start':
      return start(rest);
    case 'check-config':
      return checkConfig(rest);
    case 'console':
      return consoleCommand(rest);
    case 'hash-password':
      return hashPasswordCommand();
    case 'release-addresses':
      return releaseAddresses(rest);
    case 'cluster':
      return clusterCommand(rest);
    case 'log':
      return logCommand(rest);
    case 'config':
      return configCommand(rest);
    case '--version':
    case '-V':
    case 'version':
      process.stdout.write(`vipmta ${VERSION}\n`);
      return 0;
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(cmd === undefined ? USAGE : `vipmta: unknown command "${cmd}"\n${USAGE}`);
      return 2;
  }
}

function parse(args: string[]): { config: string | null } | null {
  try {
    const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
    return { config: values.config ?? null };
  } catch (err) {
    process.stderr.write(`vipmta: ${(err as Error).message}\n${USAGE}`);
    return null;
  }
}

async function start(args: string[]): Promise<number> {
  let a: { config: string | null; repo: string | null; nodename: string | null };
  try {
    const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, repo: { type: 'string' }, nodename: { type: 'string' } }, strict: true });
    a = { config: values.config ?? null, repo: values.repo ?? null, nodename: values.nodename ?? null };
    if (a.repo !== null && a.config !== null) throw new Error('give -c FILE or --repo DIR, not both');
    if (a.nodename !== null && a.repo === null) throw new Error('--nodename goes with --repo');
  } catch (err) {
    process.stderr.write(`vipmta: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ configFile: a.config, ...(a.repo !== null ? { repo: { dir: a.repo, node: a.nodename ?? os.hostname() } } : {}) });
  } catch (err) {
    if (err instanceof StartupError) {
      process.stderr.write(`vipmta: ${err.message}\n${err.details.map((d) => `  ${d}\n`).join('')}`);
      return 1;
    }
    throw err;
  }
  return daemon.stopped;
}

function checkConfig(args: string[]): number {
  const a = parse(args);
  if (a === null) return 2;
  const result = a.config === null ? { ok: true as const, config: defaultConfig(), warnings: [] } : loadConfigFile(a.config);
  if (!result.ok) {
    for (const e of result.errors) process.stderr.write(formatConfigError(e) + '\n');
    process.stderr.write(`${result.errors.length} error(s)\n`);
    return 1;
  }
  // Warnings do not fail the check (exit 0): the operator may mean them, but is told.
  for (const w of result.warnings) process.stderr.write(formatConfigWarning(w) + '\n');
  const warned = result.warnings.length ? `, ${result.warnings.length} warning(s)` : '';
  // The operator's files; the shipped shaping rules are said apart (Shaping_Default_Rules).
  const own = result.config.files.filter((f) => f !== SHIPPED_RULES).length;
  const shipped = result.config.files.includes(SHIPPED_RULES) ? ' and the shipped shaping rules' : '';
  process.stdout.write(`${a.config ?? '<built-in default>'}: configuration is valid (${own} file(s)${shipped}${warned})\n`);
  return 0;
}

async function releaseAddresses(args: string[]): Promise<number> {
  const a = parse(args);
  if (a === null) return 2;
  const result = a.config === null ? { ok: true as const, config: defaultConfig() } : loadConfigFile(a.config);
  if (!result.ok) {
    for (const e of result.errors) process.stderr.write(formatConfigError(e) + '\n');
    return 1;
  }
  if (result.config.cluster === null) return 0; // no DuraVIPs: nothing to release
  const { releaseTaggedAddresses } = await import('../cluster/plumbing.js');
  const { default: pino } = await import('pino');
  const removed = releaseTaggedAddresses(result.config.cluster.topologies, pino({ level: 'error' }, pino.destination(2)));
  process.stdout.write(removed.length > 0 ? `removed ${removed.join(', ')}\n` : 'nothing to remove\n');
  return 0;
}

async function consoleCommand(args: string[]): Promise<number> {
  // Only leading -c/-s (and --cluster, --node, --timeout) belong to us: everything from the first
  // other word on is the command and its own flags (`mailq -d example.com -b news`), passed through
  // untouched (the node refuses flags the command does not know).
  let config: string | null = null;
  let socket: string | null = null;
  let cluster = false;
  let node: string | null = null;
  let timeoutMs: number | null = null;
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (a === '--cluster') {
      cluster = true;
      continue;
    }
    const m = /^(-c|--config|-s|--socket|--node|--timeout)(?:=(.*))?$/.exec(a);
    if (m === null) break;
    const value = m[2] ?? args[++i];
    if (value === undefined) {
      process.stderr.write(`vipmta: ${m[1]} needs a value\n${USAGE}`);
      return 2;
    }
    if (m[1] === '-c' || m[1] === '--config') config = value;
    else if (m[1] === '--node') node = value;
    else if (m[1] === '--timeout') {
      timeoutMs = parseTimeout(value);
      if (timeoutMs === null) {
        process.stderr.write(`vipmta: --timeout takes a duration like 10s, 500ms or 2m (at most ${MAX_CLUSTER_TIMEOUT_MS / 1000}s), not "${value}"\n`);
        return 2;
      }
    } else socket = value;
  }
  if (cluster && node !== null) {
    process.stderr.write(`vipmta: give --cluster or --node NAME, not both\n${USAGE}`);
    return 2;
  }
  if (timeoutMs !== null && !cluster && node === null) {
    process.stderr.write(`vipmta: --timeout goes with --cluster or --node\n${USAGE}`);
    return 2;
  }
  const a = { config, positionals: args.slice(i) };
  if (socket === null) {
    if (a.config === null) {
      const found = defaultSocket();
      if (typeof found !== 'string') {
        process.stderr.write(`vipmta: no control socket found; tried ${found.tried.join(', ')}; pass -s SOCKET or -c FILE\n`);
        return 1;
      }
      socket = found;
    } else {
      // Lenient on purpose: a node must stay reachable while its config file has errors.
      const paths = controlSocketPaths(a.config);
      if (paths.length === 0) {
        process.stderr.write(`vipmta: ${a.config} names no Control_Listener; pass -s SOCKET\n`);
        return 1;
      }
      socket = paths[0]!;
    }
  }
  const req: ControlRequest = { argv: a.positionals.length === 0 ? ['help'] : a.positionals };
  if (cluster) req.cluster = true;
  if (node !== null) req.node = node;
  if (timeoutMs !== null) req.timeoutMs = timeoutMs;
  try {
    // The node waits up to the members' timeout before it answers.
    const r = await sendRequest(socket, req, 60_000 + (timeoutMs ?? 0));
    process.stdout.write(r.output);
    return r.status;
  } catch (err) {
    process.stderr.write(`vipmta: ${(err as Error).message}\n`);
    return 1;
  }
}

/** "10s", "500ms", "2m", "10" (seconds) as ms; null when it is not one, or out of range. */
function parseTimeout(v: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (m === null) return null;
  const ms = Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000));
  return ms >= 1 && ms <= MAX_CLUSTER_TIMEOUT_MS ? ms : null;
}

/**
 * The socket of a node started with the built-in default: its path is relative to the directory the
 * node was started in, which the console cannot know. Tried in order: the working directory (the
 * node was started here), then the package's own directory (where `npm start` runs it). The first
 * that exists is used; else the paths tried, for the error.
 */
function defaultSocket(): string | { tried: string[] } {
  // The built-in config's path, resolved against the working directory: var/run/vipmta.sock.
  const rel = path.relative(process.cwd(), defaultConfig().controlListeners[0]!.path);
  const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const tried = [...new Set([path.join(process.cwd(), rel), path.join(packageDir, rel)])];
  for (const p of tried) {
    try {
      if (fs.statSync(p).isSocket()) return p;
    } catch {
      // ENOENT and the like: try the next.
    }
  }
  return { tried };
}

async function hashPasswordCommand(): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') {
    process.stderr.write('vipmta: no password on standard input\n');
    return 1;
  }
  process.stdout.write((await hashPassword(password)) + '\n');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // The daemon's handles are closed by now; exit explicitly so a stray timer cannot hold us.
    if (process.argv[2] === 'start') process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`vipmta: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
