// Before the workers share a listening address with SO_REUSEPORT, the main thread makes sure no other
// program holds it (a bind probe without SO_REUSEPORT), that an address that is not a DuraVIP is on
// this host (a probe without IP_FREEBIND), and holds it until the workers listen, at start and for
// every reload. Main thread; short system calls, and /proc reads only to name who holds a port.
import fs from 'node:fs';
import os from 'node:os';
import { duravipEntries } from '../config/duravip.js';
import type { Config } from '../config/index.js';
import { VipError } from '../errors.js';
import { closeFd, holdPort, probeBind } from '../native/index.js';
import { canonicalAddress } from '../net/address.js';

/** One listening address of the config, as the workers will bind it. */
export interface ListenAddress {
  readonly kind: 'ESMTP_Listener' | 'ECCluster_Listener' | 'Http_Injection';
  /** "ip:port" as written in the config. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** IP_FREEBIND: a DuraVIP address (Enable_Duravip / Duravip_Follow), bound before it is plumbed. */
  readonly freeBind: boolean;
}

/** The canonical DuraVIP addresses of a config: the only ones bound with IP_FREEBIND. */
export function duravipAddresses(cfg: Pick<Config, 'esmtpListeners' | 'bindings' | 'lookup'>): ReadonlySet<string> {
  return new Set(duravipEntries(cfg).map((e) => e.address));
}

export function isDuravip(duravips: ReadonlySet<string>, host: string): boolean {
  const a = canonicalAddress(host);
  return a !== null && duravips.has(a);
}

export function listenAddresses(cfg: Config): ListenAddress[] {
  const dv = duravipAddresses(cfg);
  const of = (kind: ListenAddress['kind']) => (l: { name: string; host: string; port: number }): ListenAddress => ({
    kind, name: l.name, host: l.host, port: l.port, freeBind: isDuravip(dv, l.host),
  });
  // Http_Injection's uWS sockets cannot set IP_FREEBIND: its addresses are probed as on the host.
  const inject = (cfg.httpInjection?.listens ?? []).map((l): ListenAddress => ({ kind: 'Http_Injection', name: l.name, host: l.host, port: l.port, freeBind: false }));
  return [...cfg.esmtpListeners.map(of('ESMTP_Listener')), ...cfg.ecclusterListeners.map(of('ECCluster_Listener')), ...inject];
}

/** A listening TCP socket on this host, from /proc/net/tcp{,6}. */
export interface PortHolder {
  /** Canonical address it listens on ("0.0.0.0", "::" for wildcards). */
  address: string;
  uid: number;
  /** The processes that have it open and that we may look at (not those of other users). */
  pids: number[];
}

/** What the check needs from the system; tests give fakes. */
export interface ListenProbe {
  /** Throws the bind errno (EADDRINUSE, EADDRNOTAVAIL, EACCES) as probeBind does. */
  probe(a: ListenAddress): void;
  /** Listening sockets on `port` whose address overlaps `host` (equal, or a wildcard on either side). */
  holders(host: string, port: number): PortHolder[];
  /** A guard on the address until the workers listen (holdPort); null when it cannot be had. */
  hold(a: ListenAddress): number | null;
  release(fd: number): void;
  /** This process's pid. */
  readonly pid: number;
  /** The command line of a process, '' when it cannot be read. */
  cmdline(pid: number): string;
}

const key = (host: string, port: number): string => `${canonicalAddress(host) ?? host}|${port}`;
const where = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * Why each address of `next` cannot be listened on, one error per refused address (empty: all can).
 * `running` are the addresses this process listens on now: a port taken by them is ours to share.
 * Errors have the bind errno as code and say which listener, which address and who holds it.
 */
export function listenRefusals(next: readonly ListenAddress[], running: readonly ListenAddress[], sys: ListenProbe = systemProbe): VipError[] {
  const ours = new Set(running.map((a) => key(a.host, a.port)));
  const refused: VipError[] = [];
  const seen = new Map<string, ListenAddress>();
  for (const a of next) {
    const k = key(a.host, a.port);
    const twin = seen.get(k);
    seen.set(k, a);
    if (twin !== undefined && twin.kind !== a.kind) {
      // Both would join one SO_REUSEPORT group, and the kernel would mix SMTP and #mmove connections.
      refused.push(new VipError('EADDRINUSE', `${a.kind} "${a.name}" cannot listen on ${where(a.host, a.port)}: ${twin.kind} "${twin.name}" listens there (EADDRINUSE)`));
      continue;
    }
    if (a.port === 0) continue;
    try {
      sys.probe(a);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'EINVAL';
      if (code === 'EADDRINUSE' && (ours.has(k) || heldOnlyByUs(sys, a))) continue;
      const why = code === 'EADDRINUSE' ? `the port is in use by ${describeHolders(sys, a)}`
        : code === 'EADDRNOTAVAIL' ? 'the address is not on this host and not a DuraVIP (only Enable_Duravip or Duravip_Follow addresses are bound before they are plumbed)'
        : code === 'EACCES' ? 'a port below 1024 needs privileges (CAP_NET_BIND_SERVICE)'
        : (err as Error).message;
      // The errno code last, as the addon's errors have it: scripts and logs match on it.
      refused.push(new VipError(code, `${a.kind} "${a.name}" cannot listen on ${where(a.host, a.port)}: ${why} (${code})`, { syscall: 'bind' }));
    }
  }
  return refused;
}

/** The outcome of {@link claimListenAddresses}. */
export interface ListenClaim {
  /** Why addresses cannot be listened on; when any, nothing is held. */
  readonly refused: VipError[];
  /** Lets the addresses go: once the workers listen on them, or when they will not. Idempotent. */
  release(): void;
}

/**
 * Checks `next` as listenRefusals does and, when all can be listened on, holds each new address with
 * a guard (holdPort) that keeps every other program out, another vipmta's check included, until
 * release(): the workers bind only after the spool is recovered, seconds later at times.
 */
export function claimListenAddresses(next: readonly ListenAddress[], running: readonly ListenAddress[], sys: ListenProbe = systemProbe): ListenClaim {
  const refused = listenRefusals(next, running, sys);
  const held: number[] = [];
  if (refused.length === 0) {
    const ours = new Set(running.map((a) => key(a.host, a.port)));
    for (const a of next) {
      if (a.port === 0 || ours.has(key(a.host, a.port))) continue;
      const fd = sys.hold(a);
      if (fd !== null) held.push(fd);
    }
  }
  return { refused, release: () => { for (const fd of held.splice(0)) sys.release(fd); } };
}

/** At start (nothing of ours listens yet): throws a VipError naming every address refused; else the
 *  claim to release once the workers listen. */
export function assertListenable(cfg: Config, sys: ListenProbe = systemProbe): ListenClaim {
  const claim = claimListenAddresses(listenAddresses(cfg), [], sys);
  const { refused } = claim;
  if (refused.length > 0) throw new VipError(refused[0]!.code, refused.map((e) => e.message).join('; '), { syscall: 'bind' });
  return claim;
}

/** A reload adds a wildcard next to our own specific listener (or the reverse): the probe collides
 *  with our sockets only, which is sharing among our own workers. */
function heldOnlyByUs(sys: ListenProbe, a: ListenAddress): boolean {
  const hs = sys.holders(a.host, a.port);
  return hs.length > 0 && hs.every((h) => h.pids.length > 0 && h.pids.every((p) => p === sys.pid));
}

function describeHolders(sys: ListenProbe, a: ListenAddress): string {
  const pids = new Set<number>();
  let hidden = false;
  for (const h of sys.holders(a.host, a.port)) {
    for (const p of h.pids) if (p !== sys.pid) pids.add(p);
    if (h.pids.length === 0) hidden = true;
  }
  // Nothing listening: a socket bound without listening, such as the guard of a vipmta starting up.
  if (pids.size === 0) return hidden ? 'another program (of another user: run as root to see which)' : 'another program (bound, not listening yet: a vipmta starting?)';
  const [pid] = [...pids].sort((x, y) => x - y) as [number];
  const cmd = sys.cmdline(pid);
  // bin/vipmta.js, or an installed `vipmta` command.
  if (/(^|[/\s])vipmta(\.js)?(\s|$)/.test(cmd)) return `another vipmta (pid ${pid})`;
  const shown = cmd.length > 80 ? `${cmd.slice(0, 77)}...` : cmd;
  return `another program (pid ${pid}${shown === '' ? '' : `: ${shown}`})`;
}

/** The real system: probeBind, /proc/net/tcp{,6} and /proc/PID/fd. */
export const systemProbe: ListenProbe = {
  probe: (a) => probeBind({ host: a.host, port: a.port, freeBind: a.freeBind }),
  hold: (a) => {
    try {
      return holdPort({ host: a.host, port: a.port, freeBind: a.freeBind });
    } catch {
      // Best effort: a foreign connection in TIME_WAIT on the port (one that set no SO_REUSEPORT)
      // refuses the guard but not our workers, which set SO_REUSEADDR; the probe has passed.
      return null;
    }
  },
  release: closeFd,
  holders: (host, port) => {
    const wanted = canonicalAddress(host) ?? host;
    const listening = [...procListeners('/proc/net/tcp', 4), ...procListeners('/proc/net/tcp6', 6)].filter(
      (l) => l.port === port && overlaps(wanted, l.address),
    );
    if (listening.length === 0) return [];
    const owners = socketOwners(new Set(listening.map((l) => l.inode)));
    return listening.map((l) => ({ address: l.address, uid: l.uid, pids: owners.get(l.inode) ?? [] }));
  },
  pid: process.pid,
  cmdline: (pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter((s) => s !== '').join(' ');
    } catch {
      return '';
    }
  },
};

const WILDCARDS = new Set(['0.0.0.0', '::']);

/** Whether a socket on `b` collides with a bind on `a` (the kernel's rule, v6-only sockets assumed,
 *  except that a "::" holder may be dual-stack and so collide with any IPv4 address). */
function overlaps(a: string, b: string): boolean {
  const v6a = a.includes(':');
  const v6b = b.includes(':');
  if (v6a !== v6b) return b === '::';
  return a === b || WILDCARDS.has(a) || WILDCARDS.has(b);
}

interface ProcListener {
  address: string;
  port: number;
  uid: number;
  inode: string;
}

/** LISTEN (state 0A) sockets from a /proc/net/tcp-format file; [] if it cannot be read. */
function procListeners(file: string, family: 4 | 6): ProcListener[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return [];
  }
  const out: ProcListener[] = [];
  for (const line of text.split('\n').slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '0A') continue;
    const [hex, portHex] = f[1]!.split(':') as [string, string];
    const address = family === 4 ? procV4(hex) : procV6(hex);
    if (address === null) continue;
    out.push({ address, port: parseInt(portHex, 16), uid: Number(f[7]), inode: f[9]! });
  }
  return out;
}

/** The kernel prints each 32-bit word of the address in host byte order. */
function wordBytes(hex8: string): number[] {
  const b = [0, 2, 4, 6].map((i) => parseInt(hex8.slice(i, i + 2), 16));
  return os.endianness() === 'LE' ? b.reverse() : b;
}

function procV4(hex: string): string | null {
  return hex.length === 8 ? wordBytes(hex).join('.') : null;
}

function procV6(hex: string): string | null {
  if (hex.length !== 32) return null;
  const bytes = [0, 8, 16, 24].flatMap((i) => wordBytes(hex.slice(i, i + 8)));
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return canonicalAddress(groups.join(':'));
}

/** pid(s) holding each socket inode, over the processes whose fds we may read. */
function socketOwners(inodes: ReadonlySet<string>): Map<string, number[]> {
  const owners = new Map<string, number[]>();
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return owners;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m === null || !inodes.has(m[1]!)) continue;
      const list = owners.get(m[1]!) ?? [];
      if (!list.includes(Number(pid))) list.push(Number(pid));
      owners.set(m[1]!, list);
    }
  }
  return owners;
}
