// Test harness for cluster tests and bench/failover.ts: N hosts and a client in network namespaces on
// one bridge (in its own namespace), corosync per host with a private /run, processes started inside a host, waits on
// conditions, and cleanup that undoes all of it by name and by PID, also when a test fails.
// Runs on the test's main thread; blocks on `ip`/`corosync-quorumtool` child processes (a few ms
// each) and on the processes it is told to wait for. Needs root's CAP_NET_ADMIN/NET_RAW/SYS_ADMIN.
//
// Nothing touches the machine's own interfaces: every veth is created inside the bridge namespace
// with its peer moved straight into its host namespace, and 198.51.100.0/24 (TEST-NET-2, RFC 5737)
// and, with the ipv6 option, 2001:db8:5::/64 (RFC 3849) have no route out. Names carry a random
// suffix so parallel runs cannot collide.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { requireCommand, requireNetworkNamespaces } from '../helpers/preconditions.js';
import { waitFor, type WaitOptions } from '../helpers/wait.js';

// Re-exported: the cluster tests and the benches take them from here.
export { waitFor, type WaitOptions };

const execFileAsync = promisify(execFile);

/** 198.51.100.0/24: hosts are .11, .12, ...; the client is .100; tests use .200-.250 as cluster addresses. */
export const SUBNET_PREFIX = '198.51.100.';
export const CLIENT_ADDRESS = `${SUBNET_PREFIX}100`;
export const PREFIX_LENGTH = 24;
/** With LabOptions.ipv6: 2001:db8:5::/64 (RFC 3849 documentation prefix), hosts ::11, ::12, ...,
 *  the client ::100; tests use ::200-::250 as cluster addresses. Only inside the lab's namespaces. */
export const SUBNET6_PREFIX = '2001:db8:5::';
export const CLIENT_ADDRESS6 = `${SUBNET6_PREFIX}100`;
export const PREFIX_LENGTH6 = 64;

export interface LabOptions {
  /** Number of cluster hosts (1..9). */
  nodes: number;
  /** Start corosync on every host and wait until all are quorate. Default false. */
  corosync?: boolean;
  /** totem.token in ms; 500 is the lowest that stayed stable on these shared machines (ANCHORS.md). */
  token?: number;
  /**
   * totem.token_coefficient in ms, default 0. Corosync's default (650) adds 650 ms per node beyond
   * two to the token timeout: with three nodes a kill took 2.5 s to notice instead of ~1.1 s.
   */
  tokenCoefficient?: number;
  /** Also give every host and the client an IPv6 address (SUBNET6_PREFIX). Default false. */
  ipv6?: boolean;
}

/** One namespace of the lab: a cluster host or the client. */
export interface LabHost {
  /** "n1", "n2", ... or "client". */
  readonly name: string;
  /** Corosync nodeid (1-based host number); 0 for the client. */
  readonly nodeId: number;
  /** Network namespace name (for `ip netns exec`). */
  readonly ns: string;
  /** The host's interface on the lab network. */
  readonly ifname: string;
  readonly address: string;
  /** The host's IPv6 address with LabOptions.ipv6, else null. */
  readonly address6: string | null;
  readonly mac: string;
  /** The bridge-side veth end, in the bridge namespace. */
  readonly port: string;
  /** Per-host scratch directory (corosync.conf, its /run, its log). */
  readonly dir: string;
}

export interface SpawnOptions {
  /** Run under a private mount namespace with the host's own directory bind-mounted over /run. */
  privateRun?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Append stdout and stderr to this file instead of piping them (long-lived daemons). */
  logFile?: string;
}

const liveLabs = new Set<ClusterLab>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' runs synchronously on every normal exit, including vitest tearing down a fork after a
  // failure; signals are turned into an exit so that the same hook runs.
  process.on('exit', () => {
    for (const lab of liveLabs) lab.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => process.exit(128 + (os.constants.signals[sig] ?? 0)));
  }
}

/** Throws unless this process may create namespaces, veths and raw sockets (test/helpers/preconditions.ts). */
export function requireNetworkCapabilities(): void {
  requireNetworkNamespaces('builds a cluster lab (network namespaces, veths, raw ARP sockets, mount namespaces)');
}

function run(argv: string[], input?: string): string {
  const [cmd, ...args] = argv;
  try {
    return execFileSync(cmd!, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input: input ?? '' });
  } catch (e) {
    const err = e as Error & { stderr?: string; status?: number };
    throw new Error(`${argv.join(' ')} failed (exit ${err.status}): ${(err.stderr ?? '').trim()}`);
  }
}

/** A process started inside a lab host; stdout is split into lines for waiting on. */
export class LabProcess {
  readonly pid: number;
  readonly lines: string[] = [];
  readonly stderrLines: string[] = [];
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();

  constructor(child: ChildProcess, readonly host: LabHost, readonly argv: string[]) {
    if (child.pid === undefined) throw new Error(`could not start ${argv.join(' ')} in ${host.ns}`);
    this.child = child;
    this.pid = child.pid;
    const splitter = (into: string[]) => {
      let partial = '';
      return (d: Buffer) => {
        partial += d.toString();
        const parts = partial.split('\n');
        partial = parts.pop() ?? '';
        into.push(...parts);
        for (const w of this.waiters) w();
      };
    };
    child.stdout?.on('data', splitter(this.lines));
    child.stderr?.on('data', splitter(this.stderrLines));
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        for (const w of this.waiters) w();
        resolve();
      });
    });
  }

  get running(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  /** Writes one line to the process's stdin. */
  send(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  /** Waits for a stdout line at index >= `from` that satisfies `pred`; returns its index and text. */
  waitLine(pred: (line: string) => boolean, opts: { from?: number; timeoutMs?: number } = {}): Promise<{ index: number; line: string }> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    let next = opts.from ?? 0;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        for (; next < this.lines.length; next++) {
          if (pred(this.lines[next]!)) {
            cleanup();
            resolve({ index: next, line: this.lines[next]! });
            return;
          }
        }
        if (!this.running) {
          cleanup();
          reject(new Error(`${this.argv.join(' ')} in ${this.host.ns} exited (${this.exitCode ?? this.exitSignal}) ` +
            `before the expected line; stderr: ${this.stderrLines.join('\n')}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a line from ${this.argv.join(' ')} in ${this.host.ns}; ` +
          `stdout so far: ${this.lines.slice(-5).join(' | ')}; stderr: ${this.stderrLines.slice(-5).join(' | ')}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /**
   * Sends `signal` to the process and to every process below it (by PID; children first, so a
   * child with PR_SET_PDEATHSIG does not get a gentler signal from its parent's death first), then
   * waits for the process and its descendants to be gone. For daemons that fork workers (keepalived's
   * VRRP child): killing only the parent would leave the child running in the namespace.
   */
  async killTree(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 5000): Promise<void> {
    const pids = this.running ? [...descendantPids(this.pid), this.pid] : [];
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // ESRCH: already gone
      }
    }
    await this.exited;
    await waitFor(`descendants of ${this.argv[0]} (${this.pid}) to exit`, () => pids.every((p) => !pidAlive(p)),
      { timeoutMs, intervalMs: 10 });
  }

  /** Sends `signal` by PID and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) {
      try {
        process.kill(this.pid, signal);
      } catch {
        // ESRCH: it exited between the check and the kill; the 'exit' event follows.
      }
    }
    await this.exited;
  }
}

/**
 * One lab: a bridge namespace, `nodes` host namespaces and a client namespace, with corosync on
 * each host when asked. Create with {@link ClusterLab.create}; always {@link destroy} it (afterAll);
 * a process-exit hook destroys whatever a crashed test left.
 */
export class ClusterLab {
  readonly id: string;
  readonly dir: string;
  readonly bridgeNs: string;
  readonly hosts: LabHost[] = [];
  client!: LabHost;
  readonly token: number;
  readonly tokenCoefficient: number;
  private readonly namespaces: string[] = [];
  private readonly processes = new Set<LabProcess>();
  private readonly corosyncs = new Map<string, LabProcess>();
  /** PIDs of corosync instances we killed: their /dev/shm/qb-* files are removed on destroy. */
  private readonly deadCorosyncPids = new Set<number>();
  private destroyed = false;

  private constructor(readonly options: LabOptions) {
    this.id = randomBytes(3).toString('hex');
    this.dir = path.join(os.tmpdir(), `vipmta-lab-${this.id}`);
    this.bridgeNs = `vipmta-${this.id}-br`;
    this.token = options.token ?? 500;
    this.tokenCoefficient = options.tokenCoefficient ?? 0;
  }

  static async create(options: LabOptions): Promise<ClusterLab> {
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 9) {
      throw new Error(`nodes must be 1..9, got ${options.nodes}`);
    }
    requireNetworkCapabilities();
    if (options.corosync === true) requireCommand('corosync', 'corosync-quorumtool'); // before building anything
    installExitHook();
    const lab = new ClusterLab(options);
    liveLabs.add(lab);
    try {
      lab.buildNetwork();
      if (options.corosync === true) {
        for (const h of lab.hosts) lab.startCorosync(h);
        await lab.waitQuorate(lab.hosts, true, { timeoutMs: 20_000 });
      }
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  private addNs(ns: string): void {
    run(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
    run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }

  private addHost(name: string, nodeId: number, address: string, address6: string | null, port: string): LabHost {
    const ns = `vipmta-${this.id}-${name}`;
    this.addNs(ns);
    // Made inside the bridge namespace, peer moved straight into the host's: never in the root netns.
    run(['ip', '-n', this.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns]);
    run(['ip', '-n', this.bridgeNs, 'link', 'set', port, 'master', 'br0', 'up']);
    run(['ip', '-n', ns, 'addr', 'add', `${address}/${PREFIX_LENGTH}`, 'dev', 'eth1']);
    // nodad: usable at once, as the lab's IPv4 addresses are (no second of 'tentative').
    if (address6 !== null) run(['ip', '-n', ns, 'addr', 'add', `${address6}/${PREFIX_LENGTH6}`, 'dev', 'eth1', 'nodad']);
    run(['ip', '-n', ns, 'link', 'set', 'eth1', 'up']);
    const link = JSON.parse(run(['ip', '-n', ns, '-j', 'link', 'show', 'eth1'])) as Array<{ address: string }>;
    const dir = path.join(this.dir, name);
    mkdirSync(path.join(dir, 'run'), { recursive: true });
    mkdirSync(path.join(dir, 'state'), { recursive: true });
    return { name, nodeId, ns, ifname: 'eth1', address, address6, mac: link[0]!.address, port, dir };
  }

  private buildNetwork(): void {
    mkdirSync(this.dir, { recursive: true });
    this.addNs(this.bridgeNs);
    // STP is off by default, so ports forward at once (no forward_delay): the lab is usable immediately.
    run(['ip', '-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    run(['ip', '-n', this.bridgeNs, 'link', 'set', 'br0', 'up']);
    const v6 = this.options.ipv6 === true;
    for (let i = 1; i <= this.options.nodes; i++) {
      this.hosts.push(this.addHost(`n${i}`, i, `${SUBNET_PREFIX}${10 + i}`, v6 ? `${SUBNET6_PREFIX}${10 + i}` : null, `p${i}`));
    }
    this.client = this.addHost('client', 0, CLIENT_ADDRESS, v6 ? CLIENT_ADDRESS6 : null, 'pc');
  }

  host(name: string): LabHost {
    const h = [...this.hosts, this.client].find((x) => x.name === name);
    if (h === undefined) throw new Error(`no host ${name} in lab ${this.id}`);
    return h;
  }

  /** Runs a command to completion inside the host's namespace; returns stdout, throws with stderr. */
  exec(host: LabHost, argv: string[], input?: string): string {
    return run(['ip', 'netns', 'exec', host.ns, ...argv], input);
  }

  /** Like {@link exec} but without blocking the event loop; resolves with stdout and the exit code. */
  async execAsync(host: LabHost, argv: string[]): Promise<{ stdout: string; code: number }> {
    try {
      const { stdout } = await execFileAsync('ip', ['netns', 'exec', host.ns, ...argv], { encoding: 'utf8' });
      return { stdout, code: 0 };
    } catch (e) {
      const err = e as { stdout?: string; code?: number | string };
      return { stdout: err.stdout ?? '', code: typeof err.code === 'number' ? err.code : -1 };
    }
  }

  /**
   * Starts a long-lived process inside the host's namespace, tracked for cleanup by PID. `ip netns
   * exec`, `unshare` (without --fork) and `sh -c 'exec ...'` all exec in place, so the PID we get
   * is the PID of the program itself, and killing it kills exactly that program.
   */
  spawn(host: LabHost, argv: string[], opts: SpawnOptions = {}): LabProcess {
    let full = ['ip', 'netns', 'exec', host.ns, ...argv];
    if (opts.privateRun === true) {
      // corosync always writes /run/corosync.pid: give each instance its own /run (ANCHORS.md).
      // --propagation private keeps the bind mount from leaking back into the parent namespace.
      const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      full = ['ip', 'netns', 'exec', host.ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c',
        `mount --bind '${path.join(host.dir, 'run')}' /run && exec ${quoted}`];
    }
    let stdio: Array<'pipe' | 'ignore' | number> = ['pipe', 'pipe', 'pipe'];
    let logFd = -1;
    if (opts.logFile !== undefined) {
      logFd = openSync(opts.logFile, 'a');
      stdio = ['ignore', logFd, logFd];
    }
    const child = spawn(full[0]!, full.slice(1), { stdio, env: opts.env ?? process.env });
    if (logFd >= 0) closeSync(logFd);
    const p = new LabProcess(child, host, argv);
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    return p;
  }

  // ---- corosync -------------------------------------------------------------------------------

  /** corosync.conf(5) for one host: knet on the lab network, votequorum expecting every host. */
  corosyncConfig(host: LabHost): string {
    const nodes = this.hosts
      .map((h) => `  node {\n    ring0_addr: ${h.address}\n    nodeid: ${h.nodeId}\n    name: ${h.name}\n  }`)
      .join('\n');
    // two_node lets a two-host lab keep quorum with one (votequorum(5)); with three or more the
    // majority rule applies, which is what the partition tests rely on.
    const twoNode = this.hosts.length === 2 ? '  two_node: 1\n' : '';
    return `# Generated by test/cluster/harness.ts for lab ${this.id}
totem {
  version: 2
  cluster_name: vipmta-${this.id}
  transport: knet
  token: ${this.token}
  token_coefficient: ${this.tokenCoefficient}
  crypto_cipher: none
  crypto_hash: none
}
nodelist {
${nodes}
}
quorum {
  provider: corosync_votequorum
  expected_votes: ${this.hosts.length}
${twoNode}}
system {
  # ringid files go here instead of the shared /var/lib/corosync; RR scheduling would let a busy
  # lab starve the machine's other work.
  state_dir: ${path.join(host.dir, 'state')}
  sched_rr: no
}
logging {
  # The blackbox would leave 8 MiB in /dev/shm per killed instance; stderr goes to corosync.log.
  blackbox: off
  to_stderr: yes
  to_logfile: no
  to_syslog: no
  timestamp: hires
}
`;
  }

  /** Starts corosync in the foreground on `host` (private /run); does not wait for membership.
   *  `text`: the corosync.conf to run instead of {@link corosyncConfig} (a generated one). */
  startCorosync(host: LabHost, text?: string): LabProcess {
    const old = this.corosyncs.get(host.name);
    if (old !== undefined && old.running) throw new Error(`corosync already runs on ${host.name}`);
    requireCommand('corosync', 'corosync-quorumtool');
    const conf = path.join(host.dir, 'corosync.conf');
    writeFileSync(conf, text ?? this.corosyncConfig(host));
    const p = this.spawn(host, ['corosync', '-f', '-c', conf], {
      privateRun: true,
      logFile: path.join(host.dir, 'corosync.log'),
    });
    this.corosyncs.set(host.name, p);
    return p;
  }

  corosync(host: LabHost): LabProcess | undefined {
    return this.corosyncs.get(host.name);
  }

  /** Kills the host's corosync by PID and removes its libqb shared memory (ANCHORS.md). */
  async killCorosync(host: LabHost, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.corosyncs.get(host.name);
    if (p === undefined) return;
    await p.kill(signal);
    this.deadCorosyncPids.add(p.pid);
    removeQbShm(this.deadCorosyncPids);
  }

  /**
   * `corosync-quorumtool -s` in the host's namespace (its IPC is per network namespace):
   * exit 0 = quorate, 2 = not quorate, anything else = no answer (corosync down or starting).
   */
  async quorumStatus(host: LabHost): Promise<{ quorate: boolean; members: number[] } | null> {
    const r = await this.execAsync(host, ['corosync-quorumtool', '-s', '-p']);
    if (r.code !== 0 && r.code !== 2) return null;
    // Membership table rows: "         1          1 n1 (local)" (nodeid, votes, name).
    const members = [...r.stdout.matchAll(/^\s+(\d+)\s+\d+\s+\S+/gm)].map((m) => Number(m[1]));
    return { quorate: r.code === 0, members };
  }

  /** Waits until every given host reports `quorate` (and, if given, exactly these member nodeids). */
  async waitQuorate(hosts: LabHost[], quorate: boolean, opts: WaitOptions & { members?: number[] } = {}): Promise<void> {
    const want = opts.members === undefined ? undefined : [...opts.members].sort().join(',');
    await waitFor(`${hosts.map((h) => h.name).join(',')} quorate=${quorate}${want === undefined ? '' : ` members=${want}`}`, async () => {
      for (const h of hosts) {
        const s = await this.quorumStatus(h);
        if (s === null || s.quorate !== quorate) return false;
        if (want !== undefined && [...s.members].sort().join(',') !== want) return false;
      }
      return true;
    }, { intervalMs: 50, ...opts });
  }

  /**
   * One TCP connect from `from` to address:port, as a reachability probe that needs no ping binary:
   * 'refused' (a RST: the host answered), 'connected', or the error code ('EHOSTUNREACH', 'ETIMEDOUT').
   */
  async tcpProbe(from: LabHost, address: string, port = 9, timeoutMs = 2000): Promise<string> {
    const script = `const s = require('node:net').connect(${port}, ${JSON.stringify(address)});
      s.setTimeout(${timeoutMs}, () => { console.log('ETIMEDOUT'); process.exit(0); });
      s.on('connect', () => { console.log('connected'); process.exit(0); });
      s.on('error', (e) => { console.log(e.code === 'ECONNREFUSED' ? 'refused' : e.code); process.exit(0); });`;
    const r = await this.execAsync(from, [process.execPath, '-e', script]);
    return r.stdout.trim();
  }

  // ---- faults ---------------------------------------------------------------------------------

  /** Cuts the host off the bridge (its link stays up, nothing reaches it). */
  isolate(host: LabHost): void {
    run(['ip', '-n', this.bridgeNs, 'link', 'set', host.port, 'nomaster']);
  }

  heal(host: LabHost): void {
    run(['ip', '-n', this.bridgeNs, 'link', 'set', host.port, 'master', 'br0']);
  }

  // ---- cleanup --------------------------------------------------------------------------------

  /** Kills every process we started (by PID), removes their shared memory, namespaces and files. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    for (const p of [...this.processes]) {
      // The whole tree: once the parent is reaped its children are no longer ours to find.
      await Promise.race([p.killTree('SIGKILL', 2000).catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
    }
    this.destroySync();
  }

  /** The synchronous part of {@link destroy}, also used by the process-exit hook. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    liveLabs.delete(this);
    for (const p of this.processes) {
      // Descendants too (forking daemons): a namespace with a process left in it lives on.
      for (const pid of [...descendantPids(p.pid), p.pid]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const p of this.corosyncs.values()) this.deadCorosyncPids.add(p.pid);
    // Deleting a namespace only drops its name; one with a process left in it lives on, so the
    // kills come first. Veths go with their namespace (both ends: the peer dies with its partner).
    for (const ns of [...this.namespaces].reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    removeQbShm(this.deadCorosyncPids);
    // VIPMTA_LAB_KEEP=DIR keeps a copy of the lab's files (corosync.conf and corosync.log per host) for a post-mortem.
    const keep = process.env.VIPMTA_LAB_KEEP;
    if (keep !== undefined) {
      cpSync(this.dir, path.join(keep, this.id), { recursive: true, filter: (f) => { try { return !lstatSync(f).isSocket(); } catch { return false; } } });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Namespace names this lab made (for tests of the harness itself). */
  namespaceNames(): string[] {
    return [...this.namespaces];
  }
}

/** Whether a process exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** PIDs of every live descendant of `root`, from the parent PIDs in /proc/<pid>/stat (one scan). */
export function descendantPids(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // exited between readdir and read
    }
    // comm may contain spaces and parentheses: fields start after the last ')'; ppid is the second.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const l = children.get(ppid);
    if (l === undefined) children.set(ppid, [Number(name)]);
    else l.push(Number(name));
  }
  const out: number[] = [];
  const todo = [...(children.get(root) ?? [])];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * libqb names its IPC shared memory /dev/shm/qb-<server pid>-<client pid>-<fd>-<random> (a
 * directory of ring buffers in libqb 2.x); a SIGKILLed server cannot remove it, and they would pile
 * up across runs (ANCHORS.md).
 */
export function removeQbShm(pids: Set<number>): void {
  if (pids.size === 0 || !existsSync('/dev/shm')) return;
  for (const f of readdirSync('/dev/shm')) {
    const m = /^qb-(\d+)-(\d+)-/.exec(f);
    const box = /^qb-corosync-(\d+)-blackbox-/.exec(f);  // the flight recorder, 8 MiB per instance
    if ((m !== null && (pids.has(Number(m[1])) || pids.has(Number(m[2])))) || (box !== null && pids.has(Number(box[1])))) {
      rmSync(path.join('/dev/shm', f), { recursive: true, force: true });
    }
  }
}
