// The console's config repository commands (`config propose`, `log`, `diff`, `revert`, `apply`,
// `status`, and `config show REV:PATH` through console.ts): they read the node's repository and
// hand changes to its coordinator (LocalCoordinator, or the cluster's config group). Main thread;
// handlers await `git` children and the coordinator.
import type { CommandTable } from '../control/commands.js';
import type { ConfigRepository, MemberConfigState } from '../config/repo/types.js';
import { decodeChangeSet, formatRefusal, type ProposeAnswer } from '../config/repo/wire.js';
import { ErrorCode, VipError } from '../errors.js';
import type { NodeConfigHost } from './config-repo.js';

const short = (rev: string): string => (rev === '' ? '-' : rev.slice(0, 12));

function badRequest(message: string): VipError {
  return new VipError(ErrorCode.CONTROL_BAD_REQUEST, message);
}

/** Adds the commands; `host()` is null on a node that runs a config file (they say so). */
export function addConfigRepoCommands(t: CommandTable, host: () => NodeConfigHost | null): void {
  const need = (): NodeConfigHost => {
    const h = host();
    if (h === null) throw new VipError(ErrorCode.CONFIG_REPO, 'this node runs a config file, not a config repository (start it with vipmta start --repo DIR)');
    return h;
  };
  t.add('config propose CHANGESET', 'propose a change to the config repository (what `vipmta config commit` sends); answers JSON', async (args) => {
    if (args.length !== 1) throw badRequest('usage: config propose <base64 change set>');
    const h = need();
    const r = await h.coordinator().propose(decodeChangeSet(args[0]!));
    const answer: ProposeAnswer = { ...r, repository: h.repo.dir };
    return JSON.stringify(answer) + '\n';
  }, { privateArgs: true }); // whole files, secrets included: the log names the command only
  t.add('config log [-n N] [PATH]', 'the config repository\'s revisions, newest first (* : the one this node runs)', async (args) => {
    const h = need();
    let max: number | undefined;
    let file: string | undefined;
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '-n' && /^\d+$/.test(args[i + 1] ?? '')) max = Number(args[++i]);
      else if (file === undefined && !args[i]!.startsWith('-')) file = args[i];
      else throw badRequest('usage: config log [-n N] [PATH]');
    }
    return formatLog(await h.repo.log({ ...(max !== undefined ? { max } : {}), ...(file !== undefined ? { path: file } : {}) }), h.running());
  });
  t.add('config diff [REV [REV2]]', 'what a revision changed (default: the head), or the difference between two', async (args) => {
    const h = need();
    if (args.length > 2) throw badRequest('usage: config diff [REV [REV2]]');
    const rev = args[0] ?? (await h.repo.head());
    if (rev === '') return '';
    return h.repo.diff(rev, args[1]);
  });
  t.add('config revert REV [--author AUTHOR]', 'commit a change that undoes REV (refused when a file it changed changed since)', async (args) => {
    const h = need();
    const at = args.indexOf('--author');
    const author = at >= 0 ? args[at + 1] : `vipmta <vipmta@${h.node}>`;
    const rest = at >= 0 ? [...args.slice(0, at), ...args.slice(at + 2)] : args;
    if (rest.length !== 1 || author === undefined) throw badRequest('usage: config revert REV [--author "NAME <EMAIL>"]');
    const cs = await h.repo.revertChanges(rest[0]!, author, Math.floor(Date.now() / 1000));
    const r = await h.coordinator().propose(cs);
    if (!r.ok) throw new VipError(ErrorCode.CONFIG_REFUSED, formatRefusal(r).trimEnd());
    return r.message + '\n';
  });
  t.add('config apply REV', 'run a committed revision on this node (by hand, as with Config_Auto_Apply = false)', async (args) => {
    if (args.length !== 1) throw badRequest('usage: config apply REV');
    const r = await need().switchTo(args[0]!);
    if (!r.ok) throw new VipError(ErrorCode.CONFIG_INVALID, r.message);
    return r.message.endsWith('\n') ? r.message : r.message + '\n';
  });
  t.add('config repository', 'the directory of this node\'s config repository (what `vipmta config checkout` clones)', () => need().repo.dir + '\n');
  t.add('config status', 'the revision each member runs, its head, Config_Auto_Apply, and local drift', async () => formatStatus(await need().coordinator().status()));
}

/** `config show REV:PATH`: a file of the repository at a revision. */
export async function showRepoFile(repo: ConfigRepository, spec: string): Promise<string> {
  const i = spec.indexOf(':');
  if (i <= 0 || i === spec.length - 1) throw badRequest('usage: config show [REV:PATH]');
  return (await repo.show(spec.slice(0, i), spec.slice(i + 1))).toString('utf8');
}

function formatLog(revs: Awaited<ReturnType<ConfigRepository['log']>>, running: string): string {
  const out: string[] = [];
  for (const r of revs) {
    const [subject, ...body] = r.message.split('\n');
    out.push(`${r.rev === running ? '*' : ' '} ${short(r.rev)}  ${new Date(r.time * 1000).toISOString().replace('.000Z', 'Z')}  ${r.author}  ${subject}`);
    for (const l of body) if (l.trim() !== '') out.push(`      ${l}`);
    out.push(`      ${r.files.join(' ')}`);
  }
  return out.length === 0 ? 'no revisions\n' : out.join('\n') + '\n';
}

function formatStatus(states: readonly MemberConfigState[]): string {
  const rows = [['Node', 'Running', 'Head', 'Auto_Apply', 'Drift']];
  for (const s of states) {
    rows.push([s.node, short(s.running), short(s.head), s.autoApply ? 'yes' : 'no', s.drift.length === 0 ? '-' : s.drift.join(' ')]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
