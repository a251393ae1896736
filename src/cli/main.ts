// The `vipmta` command line: start a node, check a config, or talk to a running node's console.
// Exit status: 0 success, 1 failure (invalid config, command refused, node unreachable), 2 usage.
import { parseArgs } from 'node:util';
import { formatConfigError, loadConfigFile, defaultConfig } from '../config/index.js';
import { sendCommand } from '../control/client.js';
import { Daemon, StartupError } from '../daemon.js';
import { VERSION } from '../version.js';

const USAGE = `usage:
  vipmta start [-c FILE]                        run a node (without -c: the built-in single-node default)
  vipmta check-config [-c FILE]                 validate a config; binds nothing, opens nothing
  vipmta console [-s SOCKET | -c FILE] COMMAND  run a console command on a running node ("help" lists them)
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

function parse(args: string[], withSocket: boolean): { config: string | null; socket: string | null; positionals: string[] } | null {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: {
        config: { type: 'string', short: 'c' },
        ...(withSocket ? { socket: { type: 'string' as const, short: 's' } } : {}),
      },
      allowPositionals: withSocket,
      strict: true,
    });
    const v = values as { config?: string; socket?: string };
    return { config: v.config ?? null, socket: v.socket ?? null, positionals };
  } catch (err) {
    process.stderr.write(`vipmta: ${(err as Error).message}\n${USAGE}`);
    return null;
  }
}

async function start(args: string[]): Promise<number> {
  const a = parse(args, false);
  if (a === null) return 2;
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ configFile: a.config });
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
  const a = parse(args, false);
  if (a === null) return 2;
  const result = a.config === null ? { ok: true as const, config: defaultConfig() } : loadConfigFile(a.config);
  if (!result.ok) {
    for (const e of result.errors) process.stderr.write(formatConfigError(e) + '\n');
    process.stderr.write(`${result.errors.length} error(s)\n`);
    return 1;
  }
  process.stdout.write(`${a.config ?? '<built-in default>'}: configuration is valid (${result.config.files.length} file(s))\n`);
  return 0;
}

async function consoleCommand(args: string[]): Promise<number> {
  const a = parse(args, true);
  if (a === null) return 2;
  let socket = a.socket;
  if (socket === null) {
    const loaded = a.config === null ? { ok: true as const, config: defaultConfig() } : loadConfigFile(a.config);
    if (!loaded.ok) {
      for (const e of loaded.errors) process.stderr.write(formatConfigError(e) + '\n');
      return 1;
    }
    const first = loaded.config.controlListeners[0];
    if (first === undefined) {
      process.stderr.write('vipmta: the config has no Control_Listener; pass -s SOCKET\n');
      return 1;
    }
    socket = first.path;
  }
  try {
    process.stdout.write(await sendCommand(socket, a.positionals.length === 0 ? ['help'] : a.positionals));
    return 0;
  } catch (err) {
    process.stderr.write(`vipmta: ${(err as Error).message}\n`);
    return 1;
  }
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
