// `vipmta cluster corosync-conf -c CONFIG [--authkey PATH] [--output FILE] [--ipc-user USER]`: the
// corosync.conf for the cluster a vipmta config describes (src/cluster/corosync-conf.ts), and the
// corosync authkey it names, created when missing (never overwritten). A short-lived CLI process;
// blocks on reading the config and writing two small files.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { corosyncConf } from '../cluster/corosync-conf.js';
import { formatConfigError, loadConfigFile } from '../config/index.js';
import { ErrorCode, VipError, errorCode } from '../errors.js';

export const DEFAULT_AUTHKEY = '/etc/corosync/authkey';
/** corosync-keygen(8)'s default size; knet takes keys of 128 to 4096 bytes. */
export const AUTHKEY_BYTES = 256;
const AUTHKEY_MIN = 128;
const AUTHKEY_MAX = 4096;

export const CLUSTER_USAGE = `usage:
  vipmta cluster corosync-conf -c FILE [--authkey PATH] [--output FILE] [--ipc-user USER]
      print (or write to FILE) the corosync.conf for the cluster FILE's Cluster / Node list describes;
      PATH (default ${DEFAULT_AUTHKEY}) is created with ${AUTHKEY_BYTES} random bytes, mode 0400, when missing,
      and never overwritten: create it on one node and copy it to the others before running this there.
      --ipc-user: the user vipmta runs as (packaging/vipmta.service: vipmta), allowed to use corosync's IPC.
`;

/**
 * Makes sure `file` holds a usable corosync key: creates it (corosync-keygen's format: random bytes,
 * mode 0400, written with O_EXCL so a key that appears meanwhile is never replaced) when missing, else
 * checks it is a regular file of 128 to 4096 bytes. Returns whether it was created. Throws VipError
 * ERR_AUTHKEY with what is wrong.
 */
export function ensureAuthkey(file: string): { created: boolean } {
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw authkeyError(file, err);
  }
  if (st !== null) {
    if (!st.isFile()) throw new VipError(ErrorCode.AUTHKEY, `authkey ${file} exists but is not a regular file`);
    if (st.size < AUTHKEY_MIN || st.size > AUTHKEY_MAX) {
      throw new VipError(ErrorCode.AUTHKEY, `authkey ${file} has ${st.size} bytes; corosync takes ${AUTHKEY_MIN} to ${AUTHKEY_MAX} (corosync-keygen writes ${AUTHKEY_BYTES}); it is left as it is`);
    }
    return { created: false };
  }
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o400);
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return ensureAuthkey(file); // made meanwhile: check it instead
    throw authkeyError(file, err);
  }
  let written = false;
  try {
    fs.writeSync(fd, randomBytes(AUTHKEY_BYTES));
    fs.fchmodSync(fd, 0o400); // the umask may have taken bits off, never added: make it exact
    fs.fsyncSync(fd);
    written = true;
  } catch (err) {
    throw authkeyError(file, err);
  } finally {
    fs.closeSync(fd);
    if (!written) fs.rmSync(file, { force: true }); // a short key would be kept forever: never leave one
  }
  return { created: true };
}

function authkeyError(file: string, err: unknown): VipError {
  const code = errorCode(err);
  const hint = code === 'ENOENT' ? ` (its directory ${path.dirname(file)} does not exist: is corosync installed?)` : code === 'EACCES' || code === 'EPERM' ? ' (run as root)' : '';
  return new VipError(ErrorCode.AUTHKEY, `cannot create authkey ${file}: ${(err as Error).message}${hint}`, { cause: err });
}

/** Writes `text` to `file` through a temporary file and a rename: corosync never reads half of it. */
function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** `vipmta cluster SUBCOMMAND ...`; returns the exit status (0, 1 failure, 2 usage). */
export function clusterCommand(args: string[]): number {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    process[sub === undefined ? 'stderr' : 'stdout'].write(CLUSTER_USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'corosync-conf') {
    process.stderr.write(`vipmta: unknown cluster command "${sub}" (a running node's cluster commands are \`vipmta console cluster ...\`)\n${CLUSTER_USAGE}`);
    return 2;
  }
  let values: { config?: string; authkey?: string; output?: string; 'ipc-user'?: string };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { config: { type: 'string', short: 'c' }, authkey: { type: 'string' }, output: { type: 'string', short: 'o' }, 'ipc-user': { type: 'string' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`vipmta: ${(err as Error).message}\n${CLUSTER_USAGE}`);
    return 2;
  }
  if (values.config === undefined) {
    process.stderr.write(`vipmta: cluster corosync-conf needs -c FILE (the vipmta config with the Cluster's Node list)\n${CLUSTER_USAGE}`);
    return 2;
  }
  const loaded = loadConfigFile(values.config);
  if (!loaded.ok) {
    for (const e of loaded.errors) process.stderr.write(formatConfigError(e) + '\n');
    process.stderr.write(`${loaded.errors.length} error(s)\n`);
    return 1;
  }
  const keyfile = path.resolve(values.authkey ?? DEFAULT_AUTHKEY);
  try {
    // The text first: a config that cannot give a corosync.conf creates no key.
    const text = corosyncConf(loaded.config, { keyfile, source: path.resolve(values.config), ipcUser: values['ipc-user'] ?? null });
    const { created } = ensureAuthkey(keyfile);
    process.stderr.write(created
      ? `vipmta: created authkey ${keyfile} (${AUTHKEY_BYTES} random bytes, mode 0400): copy it to every other node (the same key everywhere) before starting corosync there\n`
      : `vipmta: using the existing authkey ${keyfile}\n`);
    if (values.output === undefined) {
      process.stdout.write(text);
    } else {
      writeAtomically(values.output, text);
      process.stderr.write(`vipmta: wrote ${values.output}\n`);
    }
    return 0;
  } catch (err) {
    const code = errorCode(err);
    process.stderr.write(`vipmta: ${code !== undefined && code.startsWith('ERR_') ? `${code}: ` : ''}${(err as Error).message}\n`);
    return 1;
  }
}
