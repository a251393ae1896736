// Runs the `git` command (Debian's package) for the config repository: always as a child process
// through execFile, with an environment of our own so that neither the operator's nor the system's
// git configuration, hooks, pager or credential prompts change what a command does or produces.
// Main thread; every call is asynchronous and waits only on the child.
import { execFile } from 'node:child_process';
import { ErrorCode, VipError } from '../../errors.js';

export interface GitOptions {
  /** The repository's work tree (git runs there). */
  readonly cwd: string;
  /** Extra variables (GIT_INDEX_FILE, GIT_AUTHOR_NAME, ...), on top of the clean environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Written to git's standard input. */
  readonly input?: Buffer | string;
  /** Exit statuses other than 0 that are an answer, not a failure (`rev-parse --verify -q`: 1). */
  readonly okStatus?: readonly number[];
}

export interface GitResult {
  readonly status: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Larger than any config repository's bundle or diff we expect; git's output beyond it is an error. */
const MAX_OUTPUT = 256 * 1024 * 1024;

/**
 * The environment every git command runs with: no system or global config (so `user.*`,
 * `commit.gpgsign`, `core.autocrlf` and the like cannot differ between members), the C locale (its
 * messages are what we show), and never a prompt.
 */
export function gitEnv(extra?: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: '/nonexistent',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    LC_ALL: 'C',
    GIT_TERMINAL_PROMPT: '0',
    GIT_PAGER: 'cat',
    GIT_OPTIONAL_LOCKS: '0',
    ...extra,
  };
}

/** Options before the subcommand: no hooks (a hook could change a commit or refuse it on one
 *  member only), no automatic gc in the middle of a commit. */
const PRELUDE = ['-c', 'core.hooksPath=/dev/null', '-c', 'gc.auto=0', '-c', 'core.autocrlf=false', '-c', 'advice.detachedHead=false'];

/** Runs `git ARGS`; rejects with VipError CONFIG_REPO naming the command and git's stderr. */
export function git(args: readonly string[], opts: GitOptions): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      [...PRELUDE, ...args],
      { cwd: opts.cwd, env: gitEnv(opts.env), encoding: 'buffer', maxBuffer: MAX_OUTPUT, windowsHide: true },
      (err, stdout, stderr) => {
        const errText = stderr.toString('utf8').trim();
        if (err === null) {
          resolve({ status: 0, stdout, stderr: errText });
          return;
        }
        const status = typeof err.code === 'number' ? err.code : -1;
        if (opts.okStatus?.includes(status)) {
          resolve({ status, stdout, stderr: errText });
          return;
        }
        const why = errText !== '' ? errText : typeof err.code === 'string' ? `${err.code} ${err.message}` : `exit status ${status}`;
        reject(new VipError(ErrorCode.CONFIG_REPO, `git ${args.join(' ')}: ${why}`, { cause: err }));
      },
    );
    // A git that exits before reading its input closes the pipe: that is told by its status.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** git's standard output as text, without the trailing newline. */
export async function gitText(args: readonly string[], opts: GitOptions): Promise<string> {
  return (await git(args, opts)).stdout.toString('utf8').replace(/\n$/, '');
}
