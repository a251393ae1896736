// `vipmta log ...`: the event journal's readers for operators (docs/events.md "Reading the journal").
// Through the running node's console socket when one answers; else straight from the spool
// directory of the config (-c FILE, or the built-in default), running the same commands
// (src/node/log-commands.ts) in this process. `log tail -f` polls. CLI process; it blocks on the
// socket, on small synchronous journal reads, and on a checkpoint's fsync.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlSocketPaths, defaultConfig, formatConfigError, loadConfigFile } from '../config/index.js';
import { sendRequest } from '../control/client.js';
import { CommandTable } from '../control/commands.js';
import { errorCode } from '../errors.js';
import { addLogCommands } from '../node/log-commands.js';

export const LOG_USAGE = `usage:
  vipmta log [-c FILE | -s SOCKET] tail [-n N] [-f] [--json]
  vipmta log [-c FILE | -s SOCKET] read --subscriber NAME [--max N] [--json] [--ack]
  vipmta log [-c FILE | -s SOCKET] subscribers [--json]
  vipmta log [-c FILE | -s SOCKET] subscribe NAME [--from start|end]
  vipmta log [-c FILE | -s SOCKET] unsubscribe NAME
  vipmta log [-c FILE | -s SOCKET] aggregator
Through the running node's console; when none answers, from the spool directory of FILE
(without -c: the built-in default's) in this process.
`;

/** How often `log tail -f` asks for new records. */
export const FOLLOW_POLL_MS = 250;
/** Most records one poll of `log tail -f` takes. */
const FOLLOW_BATCH = 1000;

type Runner = (argv: string[]) => Promise<string>;

class CommandFailed extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

export async function logCommand(args: string[]): Promise<number> {
  let config: string | null = null;
  let socket: string | null = null;
  let i = 0;
  for (; i < args.length; i++) {
    const m = /^(-c|--config|-s|--socket)(?:=(.*))?$/.exec(args[i]!);
    if (m === null) break;
    const v = m[2] ?? args[++i];
    if (v === undefined) {
      process.stderr.write(`vipmta: ${m[1]} needs a value\n${LOG_USAGE}`);
      return 2;
    }
    if (m[1] === '-c' || m[1] === '--config') config = v;
    else socket = v;
  }
  const rest = args.slice(i);
  if (rest.length === 0 || rest[0] === 'help' || rest[0] === '--help' || rest[0] === '-h') {
    process.stdout.write(LOG_USAGE);
    return rest.length === 0 ? 2 : 0;
  }
  const follow = rest[0] === 'tail' && rest.includes('-f');
  // -f is the client's (it polls); --next makes each answer end with where to read on.
  const argv = ['log', ...rest.filter((a) => !(follow && a === '-f')), ...(follow ? ['--next'] : [])];

  let run: Runner;
  try {
    run = await runner(config, socket, argv);
  } catch (err) {
    process.stderr.write(`vipmta: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    if (follow) return await tailFollow(run, argv);
    process.stdout.write(await run(argv));
    return 0;
  } catch (err) {
    process.stderr.write(`vipmta: ${(err as Error).message}\n`);
    return err instanceof CommandFailed && err.code === 'ERR_CONTROL_BAD_REQUEST' ? 2 : 1;
  }
}

/**
 * How the commands run: over the console socket when a node answers there, else in this process
 * over the spool directory (a node that is down leaves its socket refusing or gone). The probe is
 * the first command itself; only "nobody there" falls back, any answer (an error too) is the node's.
 */
async function runner(config: string | null, socket: string | null, first: string[]): Promise<Runner> {
  const sockets = socket !== null ? [socket] : config !== null ? controlSocketPaths(config) : defaultConfig().controlListeners.map((c) => c.path);
  const remote: Runner = async (argv) => {
    try {
      return (await sendRequest(sockets[0]!, { argv })).output;
    } catch (err) {
      throw new CommandFailed((err as Error).message, errorCode(err) ?? 'ERR_CONTROL_FAILED');
    }
  };
  if (sockets.length > 0) {
    try {
      const out = (await sendRequest(sockets[0]!, { argv: first })).output;
      let used = false;
      // The probe's answer is the first command's: given once, then the socket serves.
      return async (argv) => {
        if (!used && argv === first) {
          used = true;
          return out;
        }
        return remote(argv);
      };
    } catch (err) {
      const code = errorCode(err);
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw new CommandFailed((err as Error).message, code ?? 'ERR_CONTROL_FAILED');
      if (socket !== null) throw new Error(`${(err as Error).message} (with -s, the journal is read only through the node; give -c FILE to read the spool directly)`);
    }
  }
  // No node: this process reads the spool's journal files.
  const loaded = config === null ? { ok: true as const, config: defaultConfig() } : loadConfigFile(config);
  if (!loaded.ok) throw new Error(`${config}: invalid configuration\n${loaded.errors.map((e) => formatConfigError(e)).join('\n')}`);
  const dir = loaded.config.spool.Directory;
  if (first[1] === 'aggregator') throw new Error('no node answers on the console socket: log aggregator needs the running node');
  // Not made here: a wrong -c must not leave an empty journal behind (EventJournal creates events/).
  if (!fs.existsSync(path.join(dir, 'events'))) throw new Error(`no node answers${sockets[0] !== undefined ? ` on ${sockets[0]}` : ''}, and ${dir} holds no event journal (is -c the node's config, run from its directory?)`);
  process.stderr.write(`vipmta: no node answers${sockets[0] !== undefined ? ` on ${sockets[0]}` : ''}; reading the event journal in ${dir} directly\n`);
  const t = new CommandTable();
  addLogCommands(t, { spoolDirectory: () => dir, nodeName: () => loaded.config.global.Nodename, live: false });
  return async (argv) => {
    try {
      return await t.run(argv);
    } catch (err) {
      throw new CommandFailed((err as Error).message, errorCode(err) ?? 'ERR_CONTROL_FAILED');
    }
  };
}

/**
 * `log tail -f`: the last N records, then every new one until SIGINT/SIGTERM. The console answers
 * one request per connection and the journal tells JavaScript nothing when its commit thread
 * writes, so the client polls: every FOLLOW_POLL_MS one request for the records after the last
 * seen (`log tail --after SEQ --next`), which costs the node a native head read when nothing is new.
 */
async function tailFollow(run: Runner, argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  let stop = false;
  const ac = new AbortController();
  const onSignal = (): void => {
    stop = true;
    ac.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let req = argv;
    while (!stop) {
      const text = await run(req);
      const lines = text.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      const last = lines.pop() ?? '';
      const m = /^next (\d+)$/.exec(last) ?? /^\{"next":(\d+)\}$/.exec(last);
      if (m === null) throw new Error(`unexpected answer to ${req.join(' ')}: ${last}`);
      if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
      req = ['log', 'tail', '--after', String(Number(m[1]) - 1), '-n', String(FOLLOW_BATCH), ...(json ? ['--json'] : []), '--next'];
      if (!stop) await sleep(FOLLOW_POLL_MS, undefined, { signal: ac.signal }).catch(() => undefined);
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
