// `vipmta config ...`: make a config repository (init), take a working copy of a node's (checkout),
// send a working copy's changes to the node as a ChangeSet (commit, edit), and the console's
// repository commands (log, diff, show, revert, apply, status). Runs in the CLI process; waits on
// `git` children, the editor and the control socket.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { controlSocketPaths, DEFAULT_CONFIG_TEXT } from '../config/index.js';
import { GitConfigRepository } from '../config/repo/repository.js';
import type { ChangeSet, FileChange } from '../config/repo/types.js';
import { encodeChangeSet, formatRefusal, type ProposeAnswer } from '../config/repo/wire.js';
import { sendRequest } from '../control/client.js';
import { MAX_REQUEST_BYTES } from '../control/protocol.js';

export const CONFIG_USAGE = `usage:
  vipmta config init DIR [--from FILE]           make a config repository: FILE (or the built-in default) as default/vipmta.conf
  vipmta config checkout DIR [-s SOCKET | -c FILE]
                                                 a working copy of the node's repository (git clone)
  vipmta config commit -m MESSAGE [-s SOCKET | -c FILE] [FILES...]
                                                 in a working copy: propose its changes (or only FILES) to the node
  vipmta config edit [PATH] [-m MESSAGE] [-s SOCKET | -c FILE]
                                                 edit PATH (default default/vipmta.conf) with $EDITOR and commit it
  vipmta config (log [-n N] [PATH] | diff [REV [REV2]] | show REV:PATH | revert REV | apply REV | status | repository)
                [-s SOCKET | -c FILE]            the node's repository, through its console
`;

/** Who a change is from: the user at this host, as git writes it. */
export function committer(): string {
  const user = process.env.USER ?? os.userInfo().username;
  return `${user} <${user}@${os.hostname()}>`;
}

interface Parsed {
  socket: string | null;
  config: string | null;
  message: string | null;
  from: string | null;
  rest: string[];
}

/** -s/-c/-m/--from anywhere, the rest in order; null (with the usage printed) on a bad flag. */
function parse(args: string[]): Parsed | null {
  const p: Parsed = { socket: null, config: null, message: null, from: null, rest: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^(-s|--socket|-c|--config|-m|--message|--from)(?:=(.*))?$/s.exec(a);
    if (m === null) {
      if (a === '--') {
        p.rest.push(...args.slice(i + 1));
        break;
      }
      p.rest.push(a);
      continue;
    }
    const v = m[2] ?? args[++i];
    if (v === undefined) {
      process.stderr.write(`vipmta: ${m[1]} needs a value\n${CONFIG_USAGE}`);
      return null;
    }
    if (m[1] === '-s' || m[1] === '--socket') p.socket = v;
    else if (m[1] === '-c' || m[1] === '--config') p.config = v;
    else if (m[1] === '--from') p.from = v;
    else p.message = v;
  }
  return p;
}

function socketOf(p: Parsed): string {
  if (p.socket !== null) return p.socket;
  if (p.config !== null) {
    const paths = controlSocketPaths(p.config);
    if (paths.length === 0) throw new Error(`${p.config} names no Control_Listener; pass -s SOCKET`);
    return paths[0]!;
  }
  // The built-in default's socket, relative to where the node was started.
  const fallback = path.resolve('var/run/vipmta.sock');
  if (fs.existsSync(fallback)) return fallback;
  throw new Error('no control socket: pass -s SOCKET or -c FILE');
}

/** Runs git on the operator's working copy with the operator's own git settings (their
 *  safe.directory for a repository another user owns, their hooks in their copy); never a prompt. */
function run(cmd: string, args: readonly string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { cwd, env: { ...process.env, LC_ALL: 'C', GIT_TERMINAL_PROMPT: '0' }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

export async function configCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const p = parse(rest);
  if (p === null) return 2;
  try {
    switch (sub) {
      case 'init':
        return await init(p);
      case 'checkout':
        return await checkout(p);
      case 'commit':
        return await commit(p, process.cwd(), p.rest);
      case 'edit':
        return await edit(p);
      case 'log':
      case 'diff':
      case 'show':
      case 'apply':
      case 'status':
      case 'repository':
        return await forward(p, ['config', sub, ...p.rest]);
      case 'revert':
        return await forward(p, ['config', 'revert', ...p.rest, '--author', committer()]);
      default:
        process.stderr.write(sub === undefined ? CONFIG_USAGE : `vipmta: unknown config command "${sub}"\n${CONFIG_USAGE}`);
        return 2;
    }
  } catch (err) {
    process.stderr.write(`vipmta: ${(err as Error).message}\n`);
    return 1;
  }
}

async function forward(p: Parsed, argv: string[]): Promise<number> {
  const r = await sendRequest(socketOf(p), { argv }, 120_000);
  process.stdout.write(r.output);
  return r.status;
}

async function init(p: Parsed): Promise<number> {
  if (p.rest.length !== 1) {
    process.stderr.write(CONFIG_USAGE);
    return 2;
  }
  const text = p.from === null ? Buffer.from(DEFAULT_CONFIG_TEXT) : fs.readFileSync(p.from);
  const cs: ChangeSet = {
    base: '', author: committer(), time: Math.floor(Date.now() / 1000),
    message: p.message ?? (p.from === null ? 'vipmta config init: the built-in default' : `vipmta config init --from ${p.from}`),
    files: [{ path: 'default/vipmta.conf', content: text }],
  };
  const repo = await GitConfigRepository.init(p.rest[0]!, cs);
  if (p.from !== null && /^\s*include\b/im.test(text.toString('utf8'))) {
    process.stderr.write(`vipmta: ${p.from} includes other files: commit them into default/ too (vipmta config commit)\n`);
  }
  process.stdout.write(`initialized ${repo.dir} at ${await repo.head()}\n`);
  return 0;
}

async function checkout(p: Parsed): Promise<number> {
  if (p.rest.length !== 1) {
    process.stderr.write(CONFIG_USAGE);
    return 2;
  }
  const repo = (await sendRequest(socketOf(p), { argv: ['config', 'repository'] })).output.trim();
  await run('git', ['clone', '-q', repo, path.resolve(p.rest[0]!)], process.cwd());
  process.stdout.write(`checked out ${repo} in ${path.resolve(p.rest[0]!)}\n`);
  return 0;
}

/** The working copy's changes against its HEAD (tracked edits, deletions, untracked files), or FILES. */
async function changes(top: string, cwd: string, only: readonly string[]): Promise<FileChange[]> {
  let paths: string[];
  if (only.length > 0) {
    paths = only.map((f) => path.relative(top, path.resolve(cwd, f)).split(path.sep).join('/'));
  } else {
    paths = [];
    const out = (await run('git', ['status', '--porcelain', '-z', '--untracked-files=all'], top)).split('\0');
    for (let i = 0; i < out.length; i++) {
      const e = out[i]!;
      if (e.length < 4) continue;
      paths.push(e.slice(3));
      if (e[0] === 'R' || e[0] === 'C') paths.push(out[++i]!); // a rename: the old path is deleted
    }
  }
  return [...new Set(paths)].sort().map((rel) => {
    const abs = path.join(top, rel);
    return { path: rel, content: fs.existsSync(abs) ? fs.readFileSync(abs) : null };
  });
}

async function commit(p: Parsed, cwd: string, only: readonly string[]): Promise<number> {
  if (p.message === null) {
    process.stderr.write(`vipmta: config commit needs -m MESSAGE\n${CONFIG_USAGE}`);
    return 2;
  }
  const top = (await run('git', ['rev-parse', '--show-toplevel'], cwd)).trim();
  const base = (await run('git', ['rev-parse', '--verify', '-q', 'HEAD^{commit}'], top).catch(() => '')).trim();
  const files = await changes(top, cwd, only);
  if (files.length === 0) {
    process.stderr.write('vipmta: nothing to commit: the working copy has no changes\n');
    return 1;
  }
  const cs: ChangeSet = { base, message: p.message, author: committer(), time: Math.floor(Date.now() / 1000), files };
  const arg = encodeChangeSet(cs);
  if (arg.length > MAX_REQUEST_BYTES - 1024) throw new Error(`the change is ${arg.length} bytes encoded; the control socket takes at most ${MAX_REQUEST_BYTES}: commit fewer files at once`);
  const r = await sendRequest(socketOf(p), { argv: ['config', 'propose', arg] }, 120_000);
  const answer = JSON.parse(r.output) as ProposeAnswer;
  if (!answer.ok) {
    process.stderr.write(formatRefusal(answer));
    return 1;
  }
  process.stdout.write(`${answer.message}\n`);
  // The working copy catches up with the revision it proposed: what it committed is staged first,
  // so that the fast-forward finds the index already at the new content.
  await run('git', ['add', '-A', '--', ...files.map((f) => f.path)], top);
  await run('git', ['pull', '-q', '--ff-only', answer.repository, 'main'], top);
  return 0;
}

async function edit(p: Parsed): Promise<number> {
  if (p.rest.length > 1) {
    process.stderr.write(CONFIG_USAGE);
    return 2;
  }
  const rel = p.rest[0] ?? 'default/vipmta.conf';
  const socket = socketOf(p);
  const repo = (await sendRequest(socket, { argv: ['config', 'repository'] })).output.trim();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vipmta-config-edit-'));
  try {
    const wc = path.join(tmp, 'wc');
    await run('git', ['clone', '-q', repo, wc], tmp);
    const file = path.join(wc, rel);
    const before = fs.existsSync(file) ? fs.readFileSync(file) : null;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const editor = process.env.VISUAL ?? process.env.EDITOR ?? 'vi';
    // As git runs it: the editor variable may carry arguments.
    const ed = spawnSync('/bin/sh', ['-c', `${editor} "$1"`, editor, file], { stdio: 'inherit' });
    if (ed.status !== 0) throw new Error(`the editor (${editor}) exited with ${ed.status ?? ed.signal}; nothing committed`);
    const after = fs.existsSync(file) ? fs.readFileSync(file) : null;
    if ((before === null && after === null) || (before !== null && after !== null && before.equals(after))) {
      process.stdout.write(`${rel} unchanged; nothing committed\n`);
      return 0;
    }
    return await commit({ ...p, socket, message: p.message ?? `vipmta config edit ${rel}` }, wc, [rel]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
