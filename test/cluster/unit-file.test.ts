// packaging/vipmta.service checked for real without systemd as PID 1: Debian's `systemd-analyze
// verify` on a copy whose commands point at this checkout, then vipmta run the way the unit runs it,
// settings read from the unit (uid/gid nobody, no groups, exactly its capabilities as ambient and
// bounding set, NoNewPrivileges, RestrictAddressFamilies as a seccomp filter, ProtectSystem and
// ProtectHome as mounts) in a one-node lab with corosync from `vipmta cluster corosync-conf
// --ipc-user`, with an IPv4 and an IPv6 DuraVIP; its ExecStopPost after a SIGKILL; and once per
// capability without it, which must fail with an ERROR naming it.
// Test main thread; waits on systemd-analyze, setpriv'd vipmta, corosync and CLI child processes.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, repoRoot, runCli } from '../helpers/node-process.js';
import { hasCommand } from '../helpers/preconditions.js';
import { tempDir } from '../helpers/tmp.js';
import { ClusterLab, descendantPids, SUBNET6_PREFIX, waitFor, type LabHost, type LabProcess } from './harness.js';

const UNIT = path.join(repoRoot, 'packaging', 'vipmta.service');
/** nobody/nogroup: stands in for the unit's `vipmta` system user, which this machine does not have. */
const UID = 65534;
const GID = 65534;
const VIP = '198.51.100.211';
/** An IPv6 DuraVIP too: its announcements (Neighbour Advertisements) use raw AF_INET6 sockets. */
const VIP6 = `${SUBNET6_PREFIX}211`;
const here = path.dirname(fileURLToPath(import.meta.url));

/** The [Service] section's settings, every value of a repeated key in order (comments and blank lines dropped). */
function serviceSettings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s !== null) {
      section = s[1]!;
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (section !== 'Service' || kv === null) continue;
    out.set(kv[1]!, [...(out.get(kv[1]!) ?? []), kv[2]!]);
  }
  return out;
}

function one(settings: Map<string, string[]>, key: string): string | undefined {
  const v = settings.get(key);
  if (v !== undefined && v.length !== 1) throw new Error(`${UNIT}: ${key}= is set ${v.length} times; this test reads one`);
  return v?.[0];
}

/** A capability set as a CapXxx bitmask from /proc/PID/status, by the names setpriv knows (bit = position in --list-caps). */
function capMask(caps: readonly string[]): bigint {
  const known = execFileSync('setpriv', ['--list-caps'], { encoding: 'utf8' }).trim().split('\n');
  let mask = 0n;
  for (const c of caps) {
    const bit = known.indexOf(c.replace(/^CAP_/, '').toLowerCase());
    if (bit < 0) throw new Error(`${UNIT} names ${c}, which setpriv does not know as a capability (systemd ignores such a name silently)`);
    mask |= 1n << BigInt(bit);
  }
  return mask;
}

function requireTool(command: string, pkg: string, why: string): void {
  if (!hasCommand(command)) throw new Error(`precondition: this test ${why}, which needs "${command}" on PATH (apt-get install ${pkg})`);
}

describe('packaging/vipmta.service', () => {
  it('passes systemd-analyze verify with its commands pointing at this checkout', () => {
    requireTool('systemd-analyze', 'systemd', 'checks the unit with systemd-analyze verify');
    // A directory of its own: verify loads every unit beside the one it checks.
    const dir = tempDir('vipmta-unit-');
    const unit = path.join(dir, 'vipmta.service');
    const text = readFileSync(UNIT, 'utf8');
    expect(text).toMatch(/^ExecStart=\/usr\/bin\/vipmta /m);
    expect(text).toMatch(/^ExecStopPost=\/usr\/bin\/vipmta /m);
    writeFileSync(unit, text.replaceAll('/usr/bin/vipmta ', `${cliPath} `));
    let out: string;
    try {
      // stderr into stdout: systemd 252 reports most complaints (unknown keys, bad values) on
      // stderr and still exits 0, so any output at all is a failure.
      out = execFileSync('sh', ['-c', 'exec systemd-analyze verify "$1" 2>&1', 'sh', unit], { encoding: 'utf8', cwd: dir });
    } catch (e) {
      const err = e as { status?: number; stdout?: string };
      throw new Error(`systemd-analyze verify exited ${err.status}: ${err.stdout ?? ''}`);
    }
    expect(out.trim()).toBe('');
  });

  it('names only capabilities that exist, the same set for ambient and bounding, and NoNewPrivileges', () => {
    const s = serviceSettings(readFileSync(UNIT, 'utf8'));
    const bounding = one(s, 'CapabilityBoundingSet')!.split(/\s+/);
    const ambient = one(s, 'AmbientCapabilities')!.split(/\s+/);
    expect(capMask(ambient)).toBe(capMask(bounding));
    expect(one(s, 'NoNewPrivileges')).toBe('yes');
  });
});

// ---- vipmta as the unit runs it ------------------------------------------------------------------

let lab: ClusterLab | undefined;
let host: LabHost;
let conf: string;
let caps: string[];
let noNewPrivs: boolean;
let sandbox: string[];
/** The seccomp helper that applies RestrictAddressFamilies= (fixtures/restrict-address-families.c), and its list. */
let restrictAf: string;
let families: string;
const runs: LabProcess[] = [];

/** RestrictAddressFamilies= as the helper takes it: "1,2,10,..." (numbers from linux/socket.h). */
function afNumbers(value: string): string {
  const NUMBERS: Record<string, number> = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16, AF_PACKET: 17 };
  if (value.startsWith('~')) throw new Error('RestrictAddressFamilies= as a deny list is not emulated by this test');
  return value.split(/\s+/).map((f) => {
    const n = NUMBERS[f];
    if (n === undefined) throw new Error(`RestrictAddressFamilies= names ${f}: add its number (linux/socket.h) to this test`);
    return String(n);
  }).join(',');
}

/** The mounts for the unit's ProtectSystem/ProtectHome, as shell commands (run in a private mount namespace). */
function sandboxMounts(settings: Map<string, string[]>): string[] {
  const cmds: string[] = [];
  const system = one(settings, 'ProtectSystem');
  const ro = system === 'full' ? ['/usr', '/boot', '/efi', '/etc'] : system === 'yes' ? ['/usr', '/boot', '/efi'] : [];
  if (system !== undefined && !['full', 'yes', 'no'].includes(system)) throw new Error(`ProtectSystem=${system} is not emulated by this test`);
  for (const d of ro.filter((x) => existsSync(x))) cmds.push(`mount --rbind ${d} ${d}`, `mount -o remount,bind,ro ${d}`);
  const home = one(settings, 'ProtectHome');
  if (home !== undefined && !['yes', 'no'].includes(home)) throw new Error(`ProtectHome=${home} is not emulated by this test`);
  if (home === 'yes') {
    for (const d of ['/home', '/root', '/run/user'].filter((x) => existsSync(x))) cmds.push(`mount -t tmpfs -o ro,mode=000 tmpfs ${d}`);
  }
  return cmds;
}

/** A directory owned by the unit's user with the unit's mode, as systemd makes StateDirectory/RuntimeDirectory. */
function userDir(p: string): string {
  mkdirSync(p, { recursive: true });
  chownSync(p, UID, GID);
  chmodSync(p, 0o750);
  return p;
}

interface Run {
  readonly proc: LabProcess;
  readonly socket: string;
  readonly state: string;
  readonly conf: string;
}

/** Runs `vipmta ARGS` in n1's namespace as the unit would: nobody, `withCaps` (ambient, inheritable, bounding), its sandbox. */
function unprivileged(state: string, withCaps: readonly string[], args: readonly string[]): LabProcess {
  const list = ['-all', ...withCaps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
  const setpriv = ['setpriv', `--reuid=${UID}`, `--regid=${GID}`, '--clear-groups',
    `--inh-caps=${list}`, `--ambient-caps=${list}`, `--bounding-set=${list}`, ...(noNewPrivs ? ['--no-new-privs'] : []),
    restrictAf, families,
    // WorkingDirectory=: the state directory. `env -C` and sh's exec keep the PID the lab tracks.
    'env', '-C', state, 'HOME=/nonexistent', 'USER=nobody', 'LOGNAME=nobody',
    process.execPath, cliPath, ...args];
  const quoted = setpriv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const proc = lab!.spawn(host, ['unshare', '-m', '--propagation', 'private', 'sh', '-c', [...sandbox, `exec ${quoted}`].join(' && ')]);
  runs.push(proc);
  return proc;
}

/** Starts vipmta (ExecStart) with its own state and runtime directories, from the config `conf`. */
function startUnprivileged(label: string, withCaps: readonly string[]): Run {
  const state = userDir(path.join(host.dir, `state-${label}`));
  const runtime = userDir(path.join(host.dir, `run-${label}`));
  const socket = path.join(runtime, 'vipmta.sock');
  const text = readFileSync(conf, 'utf8').replaceAll('@STATE@', state).replaceAll('@RUNTIME@', runtime);
  const myConf = path.join(path.dirname(conf), `vipmta-${label}.conf`);
  writeFileSync(myConf, text, { mode: 0o644 });
  return { proc: unprivileged(state, withCaps, ['start', '-c', myConf]), socket, state, conf: myConf };
}

/** "Uid:\t65534\t..." etc. of /proc/PID/status. */
function procStatus(pid: number): Map<string, string> {
  return new Map(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).trim()] as [string, string];
  }));
}

/** The lines of a run that report a failure (pino's error/fatal, or anything on stderr). */
function failures(r: Run): string[] {
  return [...r.proc.lines.filter((l) => /"level":"(error|fatal)"/.test(l)), ...r.proc.stderrLines.filter((l) => l.trim() !== '')];
}

/** One SMTP transaction from the client namespace; the reply line to each step. */
async function sendMail(address: string): Promise<string[]> {
  const script = `const s = require('node:net').connect(25, ${JSON.stringify(address)});
    const steps = ['EHLO client.lab.example', 'MAIL FROM:<sender@lab.example>', 'RCPT TO:<rcpt@dest.example>', 'DATA',
      'Subject: unprivileged\\r\\n\\r\\nhello\\r\\n.', 'QUIT'];
    const replies = []; let buf = '';
    s.setTimeout(10000, () => { console.log(JSON.stringify([...replies, 'ETIMEDOUT'])); process.exit(0); });
    s.on('error', (e) => { console.log(JSON.stringify([...replies, e.code])); process.exit(0); });
    s.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\\r\\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 2);
        if (/^\\d{3}-/.test(line)) continue;
        replies.push(line);
        const next = steps[replies.length - 1];
        if (next === undefined) { console.log(JSON.stringify(replies)); process.exit(0); }
        s.write(next + '\\r\\n');
      }
    });`;
  const r = await lab!.execAsync(lab!.client, [process.execPath, '-e', script]);
  return JSON.parse(r.stdout.trim() || '[]') as string[];
}

/** Which of the two DuraVIPs are on n1's interface (`ip -n NS addr`). */
function plumbedVips(): string[] {
  const out = lab!.exec(host, ['ip', 'addr', 'show', 'dev', host.ifname]);
  return [VIP, VIP6].filter((a) => out.includes(` ${a}/${a.includes(':') ? 128 : 32} `));
}

async function stop(r: Run): Promise<void> {
  await r.proc.kill('SIGTERM').catch(() => undefined);
  await waitFor(`the DuraVIPs gone from ${host.name} after the stop`, () => plumbedVips().length === 0, { timeoutMs: 15_000, intervalMs: 100 });
}

/** The run with the unit's whole set: everything the unit promises works. */
async function fullRun(r: Run): Promise<void> {
  await r.proc.waitLine((l) => l.includes('"msg":"vipmta started"'), { timeoutMs: 30_000 });
  // What the kernel says the process has, not what we asked setpriv for.
  const mask = capMask(caps).toString(16).padStart(16, '0');
  const st = procStatus(r.proc.pid);
  expect(st.get('Uid')).toBe(`${UID}\t${UID}\t${UID}\t${UID}`);
  expect(st.get('Gid')).toBe(`${GID}\t${GID}\t${GID}\t${GID}`);
  expect(st.get('Groups')).toBe('');
  for (const k of ['CapPrm', 'CapEff', 'CapAmb', 'CapBnd']) expect([k, st.get(k)]).toEqual([k, mask]);
  expect(st.get('NoNewPrivs')).toBe(noNewPrivs ? '1' : '0');
  expect(st.get('Seccomp')).toBe('2'); // the RestrictAddressFamilies= filter is in place

  await r.proc.waitLine((l) => l.includes('cluster: joined the corosync group'), { timeoutMs: 20_000 });
  await waitFor(`${VIP} and ${VIP6} plumbed on ${host.name} (ip -n ${host.ns} addr)`, () => plumbedVips().length === 2, { timeoutMs: 20_000, intervalMs: 100 });
  // The guardian it started (it removes the VIP if vipmta dies) has the same user and set.
  const kids = descendantPids(r.proc.pid);
  expect(kids.length).toBeGreaterThan(0);
  for (const pid of kids) {
    const c = procStatus(pid);
    expect([pid, c.get('Uid'), c.get('CapEff'), c.get('CapAmb')]).toEqual([pid, `${UID}\t${UID}\t${UID}\t${UID}`, mask, mask]);
  }

  // Gratuitous ARP on the wire: the client learnt the VIP's MAC without asking for it.
  await waitFor(`the client's neighbour entry for ${VIP} from the gratuitous ARP`, () => {
    const j = JSON.parse(lab!.exec(lab!.client, ['ip', '-j', '-4', 'neigh', 'show', VIP])) as Array<{ lladdr?: string }>;
    return j[0]?.lladdr === host.mac;
  }, { timeoutMs: 10_000, intervalMs: 100 });
  const arp = await runCli([cliPath, 'console', '-s', r.socket, 'cluster', 'arp', 'show'], host.dir);
  expect(arp.status, arp.stderr).toBe(0);
  // "ADDRESS  eth1  BROADCASTS  UNICASTS  LAST SENT  NOTE": sent (ARP; NA for IPv6), and no error noted.
  for (const a of [VIP, VIP6]) {
    const row = /^(\S+)\s+(\S+)\s+(\d+)\s+\d+\s+(.*)$/.exec(arp.stdout.split('\n').find((l) => l.startsWith(`${a} `)) ?? '');
    expect(row?.slice(1, 3), arp.stdout).toEqual([a, host.ifname]);
    expect(Number(row![3]), arp.stdout).toBeGreaterThanOrEqual(1);
    expect(row![4], arp.stdout).toMatch(/ ago\s*$/);
  }

  // Port 25 on the host's own address and on the VIP, and a message accepted on the VIP.
  expect(await sendMail(host.address)).toEqual(expect.arrayContaining([expect.stringMatching(/^250 /)]));
  for (const a of [VIP, VIP6]) {
    const replies = await sendMail(a);
    expect(replies[0], JSON.stringify(replies)).toMatch(/^220 n1\.lab\.example /);
    expect(replies.slice(1, 5).map((x) => x.slice(0, 3)), JSON.stringify(replies)).toEqual(['250', '250', '250', '354']);
    expect(replies[5], JSON.stringify(replies)).toMatch(/^250 /);
  }

  const info = await runCli([cliPath, 'console', '-s', r.socket, 'cluster', 'info'], host.dir);
  expect(info.status, info.stderr).toBe(0);
  expect(/^holds: (.*)$/m.exec(info.stdout)?.[1]?.split(', ').sort(), info.stdout).toEqual([VIP, VIP6].sort());
  expect(info.stdout).not.toMatch(/plumbing error/);
  expect(failures(r)).toEqual([]);
}

describe('vipmta as packaging/vipmta.service runs it (unprivileged, exactly the unit\'s capabilities)', () => {
  beforeAll(async () => {
    requireTool('setpriv', 'util-linux', 'runs vipmta with the unit\'s user and capabilities through setpriv');
    requireTool('env', 'coreutils', 'starts vipmta in its working directory with env -C');
    requireTool('cc', 'gcc', 'builds the seccomp helper that applies RestrictAddressFamilies=');
    const settings = serviceSettings(readFileSync(UNIT, 'utf8'));
    caps = one(settings, 'AmbientCapabilities')!.split(/\s+/);
    noNewPrivs = one(settings, 'NoNewPrivileges') === 'yes';
    sandbox = sandboxMounts(settings);
    families = afNumbers(one(settings, 'RestrictAddressFamilies')!);
    lab = await ClusterLab.create({ nodes: 1, ipv6: true });
    host = lab.hosts[0]!;
    // Beside the lab's files (0755 directories: the unit's user must be able to run it).
    restrictAf = path.join(host.dir, 'restrict-address-families');
    execFileSync('cc', ['-O2', '-o', restrictAf, path.join(here, 'fixtures', 'restrict-address-families.c')], { stdio: 'pipe' });
    for (const d of [path.dirname(host.dir), host.dir]) chmodSync(d, 0o755); // whatever the umask
    // The unit's user must be able to read this checkout (a 0700 home or ProtectHome hides it).
    const probe = unprivileged(userDir(path.join(host.dir, 'state-probe')), caps, ['--version']);
    await probe.exited;
    if (probe.exitCode !== 0) {
      throw new Error(`precondition: uid ${UID} in the unit's sandbox cannot run ${cliPath} (exit ${probe.exitCode}: ` +
        `${probe.stderrLines.join(' ')}): put the checkout where any user may read it, outside /home and /root`);
    }
    // Gratuitous ARP creates neighbour entries on the client (else only updates them): its
    // neighbour table then proves the frame went out, before the client ever asks for the VIP.
    lab.exec(lab.client, ['sh', '-c', `echo 1 > /proc/sys/net/ipv4/conf/${lab.client.ifname}/arp_accept`]);
    // The operator's config, root's and world-readable like /etc/vipmta; @STATE@/@RUNTIME@ per run.
    const etc = path.join(host.dir, 'etc');
    mkdirSync(etc, { recursive: true });
    conf = path.join(etc, 'vipmta.conf');
    writeFileSync(conf, `Nodename = "${host.name}"
Hostname = "${host.name}.lab.example"
Worker_Threads = 1
Log_Level = "info"
Spool { Directory = "@STATE@/spool" Sync = none }
Control_Listener { Listen "@RUNTIME@/vipmta.sock" { } }
Resolver_Servers = ( "127.0.0.1:9" )
Domain "dest.example" { Routes = ( "127.0.0.1:9" ) }
ESMTP_Listener {
  Relay_Hosts = ( "198.51.100.0/24" "${SUBNET6_PREFIX}/64" )
  Listen "${host.address}:25" { }
  Listen "${VIP}:25" { }
  Listen "[${VIP6}]:25" { }
}
Binding "b211" { Bind_Address = ${VIP} Enable_Duravip = true }
Binding "b6" { Bind_Address = "${VIP6}" Enable_Duravip = true }
Cluster {
  Cluster_Name = "lab-${lab.id}"
  Corosync_Token = 500ms
  Node "${host.name}" { Cluster_Address = ${host.address} }
  View_Mature_Time = 1s
  # Addresses live 3 checks (60 s): the ExecStopPost test must see release-addresses remove the
  # VIP, not the kernel expire it.
  If_Check_Interval = 20s
  Arp_Count = 3
  Arp_Interval = 100ms
  Topology "198.51.100.0/24" { Interface = "${host.ifname}" Cidrmask = 32 }
  Topology "${SUBNET6_PREFIX}/64" { Interface = "${host.ifname}" Cidrmask = 128 }
}
`, { mode: 0o644 });
    // corosync.conf as an operator makes it, with the IPC user the unit runs as.
    const generated = path.join(etc, 'corosync.conf');
    const g = await runCli([cliPath, 'cluster', 'corosync-conf', '-c', conf, '--authkey', path.join(etc, 'authkey'),
      '--output', generated, '--ipc-user', 'nobody'], etc);
    if (g.status !== 0) throw new Error(`vipmta cluster corosync-conf: exit ${g.status}: ${g.stderr}`);
    // Lab only (corosync-conf.test.ts): private state directory, logs on stderr, no blackbox.
    lab.startCorosync(host, `${readFileSync(generated, 'utf8')}
system {
  state_dir: ${path.join(host.dir, 'state')}
  sched_rr: no
}
logging {
  to_syslog: no
  to_logfile: no
  to_stderr: yes
  blackbox: off
}
`);
    await lab.waitQuorate([host], true, { timeoutMs: 20_000 });
  }, 60_000);

  afterAll(async () => {
    for (const p of runs) await p.kill('SIGKILL').catch(() => undefined);
    await lab?.destroy();
  }, 60_000);

  it('runs as nobody with exactly those capabilities: binds 25, takes and announces the DuraVIP, accepts mail, answers the console', async () => {
    const r = startUnprivileged('full', caps);
    try {
      await fullRun(r);
    } finally {
      await stop(r);
    }
  }, 90_000);

  it('ExecStopPost (release-addresses) with the unit\'s user and capabilities removes the VIP of a SIGKILLed vipmta and guardian', async () => {
    const r = startUnprivileged('killed', caps);
    try {
      await r.proc.waitLine((l) => l.includes('"msg":"vipmta started"'), { timeoutMs: 30_000 });
      await waitFor(`${VIP} and ${VIP6} plumbed on ${host.name}`, () => plumbedVips().length === 2, { timeoutMs: 20_000, intervalMs: 100 });
      // systemctl kill -s KILL: vipmta and its guardian at once (children first), nobody left to release it.
      await r.proc.killTree('SIGKILL');
      expect(plumbedVips()).toEqual([VIP, VIP6]);
      const post = unprivileged(r.state, caps, ['release-addresses', '-c', r.conf]);
      await post.exited;
      expect([post.exitCode, post.stderrLines.join('\n')]).toEqual([0, '']);
      expect(plumbedVips()).toEqual([]);
    } finally {
      await stop(r);
    }
  }, 60_000);

  // One run per capability of the unit, without it: the claim "and nothing more" is tested by the
  // run above, "each is needed" here, and a missing one must be named in an ERROR, not guessed at.
  for (const cap of ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_NET_BIND_SERVICE']) {
    it(`without ${cap} fails with an ERROR that names it`, async () => {
      expect(caps).toContain(cap);
      const r = startUnprivileged(`no-${cap}`, caps.filter((c) => c !== cap));
      try {
        const named = await waitFor(`an error naming ${cap}`, () => failures(r).find((l) => l.includes(cap)) ?? (r.proc.running ? false : 'it exited without one'),
          { timeoutMs: 30_000, intervalMs: 100 }).catch(() => 'none within 30 s');
        if (!named.includes(cap) && r.proc.running) {
          // What the node itself says, for the failure message.
          const arp = await runCli([cliPath, 'console', '-s', r.socket, 'cluster', 'arp', 'show'], host.dir);
          const info = await runCli([cliPath, 'console', '-s', r.socket, 'cluster', 'info'], host.dir);
          r.proc.lines.push(`[console] ${arp.stdout}${arp.stderr}`, `[console] ${info.stdout}${info.stderr}`);
        }
        expect(named, `failures: ${failures(r).join('\n')}\nlast lines: ${r.proc.lines.slice(-10).join('\n')}`).toContain(cap);
      } finally {
        await stop(r); // the next run needs port 25 and the VIP free
      }
    }, 60_000);
  }
});
