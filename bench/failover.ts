// Failover as a client sees it (issue 5): a TCP connect every 10 ms from the lab's client namespace to
// the cluster address, and the time from a fault to the first connection the new owner answers.
// keepalived (Debian's, default settings) and vipmta run on the same kind of lab (three node namespaces
// and a client on one bridge, test/cluster/harness.ts) in the same run, one after the other.
//
// Cases (--cases): process  SIGKILL of the owner's keepalived (its service keeps running) / of the
//                           owner's vipmta (corosync keeps running)
//                  node     whole node: SIGKILL of everything on the owner and its bridge port detached
//                           at the same instant (a dead machine neither answers nor sends ARP)
//                  planned  SIGTERM of the owner's keepalived / vipmta
// Sampler (issue 12): every node's addresses every ~10 ms (test/cluster/sampler.ts); prints, per
//   system and case, the samples that show the address on two live nodes. vipmta's process case kills
//   vipmta only (its guardian outlives it, as in a real crash); the other cases kill the whole tree.
// Stability (--stability SECONDS): busy loops on both cores while the probe runs and every node's
//   addresses are polled every 250 ms; reports every address move and every change of answering node.
//
// Run (root; needs CAP_NET_ADMIN/RAW/SYS_ADMIN, keepalived and corosync; vipmta built: npm run build):
//   npm run bench:failover -- [--quick] [--reps N] [--systems keepalived,vipmta] [--cases process,node,planned]
//     [--stability SECONDS] [--load N] [--json] [--vipmta-root DIR] [--timeout-ms MS] [--logs DIR] [--settle MS]
// --quick: 3 repetitions per case; with --stability, at most 30 s. --json writes bench/results/failover-<time>.json.
// Main thread only; blocks on `ip` child processes (a few ms each) between measurements, never during one.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { repoRoot } from './lib/repo.js';
import { ClusterLab, descendantPids, waitFor, type LabHost, type LabProcess } from '../test/cluster/harness.js';
import { writeNodeConfig } from '../test/cluster/vipmta-node.js';
import { AddressSampler } from '../test/cluster/sampler.js';
import {
  answerMoves,
  firstAnswerFromNewOwner,
  nowMs,
  parseProbeLine,
  summarize,
  timeline,
  type FailoverResult,
  type TimelineRun,
  type Move,
  type ProbeRecord,
  type Summary,
} from './lib/failover-analysis.js';

type SystemName = 'keepalived' | 'vipmta';
type CaseName = 'process' | 'node' | 'planned';
const SYSTEMS: readonly SystemName[] = ['keepalived', 'vipmta'];
const CASES: readonly CaseName[] = ['process', 'node', 'planned'];

const VIP = '198.51.100.200';
const PORT = 25;
const PREFERRED = 'n1';
const here = path.dirname(fileURLToPath(import.meta.url));


const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    systems: { type: 'string', default: 'keepalived,vipmta' },
    cases: { type: 'string', default: 'process,node,planned' },
    stability: { type: 'string' },
    load: { type: 'string', default: String(os.cpus().length) },
    json: { type: 'boolean', default: false },
    'vipmta-root': { type: 'string' },
    'timeout-ms': { type: 'string', default: '60000' },
    token: { type: 'string', default: '500' },
    logs: { type: 'string' },
    settle: { type: 'string', default: '0' },
  },
  strict: true,
});

const root = repoRoot();
const vipmtaRoot = path.resolve(opt['vipmta-root'] ?? root);
const reps = Number(opt.reps ?? (opt.quick ? 3 : 10));
const systems = opt.systems.split(',').map((s) => s.trim()) as SystemName[];
const cases = opt.cases.split(',').map((s) => s.trim()) as CaseName[];
for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`--systems: unknown "${s}" (known: ${SYSTEMS.join(', ')})`);
for (const c of cases) if (!CASES.includes(c)) throw new Error(`--cases: unknown "${c}" (known: ${CASES.join(', ')})`);
const stabilitySeconds = opt.stability !== undefined ? (opt.quick ? Math.min(30, Number(opt.stability)) : Number(opt.stability)) : null;
const loadProcs = Number(opt.load);
const timeoutMs = Number(opt['timeout-ms']);
const token = Number(opt.token);
/** Extra wait after the owner is steady, before the fault (e.g. past vipmta's takeover ARP). */
const settleMs = Number(opt.settle);
if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps: expected a positive integer');
if (stabilitySeconds !== null && !(stabilitySeconds > 0)) throw new Error('--stability: expected seconds > 0');
// The compiled helpers sit next to this file (bench/lib/*.js under the output directory).
const probeJs = path.join(here, 'lib', 'failover-probe.js');
const responderJs = path.join(here, 'lib', 'failover-responder.js');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${s}\n`);
};

// ---- the probe ------------------------------------------------------------------------------------

/** The client-side probe process and the records it has reported so far. */
class Probe {
  readonly records: ProbeRecord[] = [];
  private parsed = 0;
  readonly proc: LabProcess;

  constructor(lab: ClusterLab) {
    this.proc = lab.spawn(lab.client, [process.execPath, probeJs, VIP, String(PORT), '10', '3000']);
  }

  /** Parses the lines that arrived since the last call. */
  update(): ProbeRecord[] {
    for (; this.parsed < this.proc.lines.length; this.parsed++) {
      const r = parseProbeLine(this.proc.lines[this.parsed]!);
      if (r !== null) this.records.push(r);
    }
    if (!this.proc.running) throw new Error(`probe exited: ${this.proc.stderrLines.join(' | ')}`);
    return this.records;
  }

  /** The node that answered every attempt started in the last `windowMs` (at least 10 attempts), or null. */
  steadyOwner(windowMs: number): string | null {
    const recs = this.update();
    // Attempts still in flight are not in `recs` yet: look at those that started in the window and ended.
    const end = nowMs() - 100;
    const win = recs.filter((r) => r.t0 >= end - windowMs && r.t0 < end);
    if (win.length < windowMs / 20) return null;
    const first = win[0]!.n;
    return first !== null && win.every((r) => r.r === 'ok' && r.n === first) ? first : null;
  }

  /** Drops records older than `keepMs` (long stability runs). */
  trim(beforeMs: number): void {
    this.update();
    let k = 0;
    while (k < this.records.length && this.records[k]!.te < beforeMs) k++;
    this.records.splice(0, k);
  }
}

// ---- the systems ----------------------------------------------------------------------------------

interface System {
  readonly name: SystemName;
  readonly lab: ClusterLab;
  /** Starts everything on every node. */
  start(): Promise<void>;
  /** Processes on `host` for the case, collected before the fault instant. */
  victims(host: LabHost, c: CaseName): LabProcess[];
  /** Brings `host` back after the case's fault. */
  restore(host: LabHost, c: CaseName): Promise<void>;
  /** Something about the run for the JSON (versions, configs). */
  describe(): Record<string, string>;
  /**
   * Kill only the victims themselves, not their children: vipmta's guardian is the part of a
   * vipmta crash that outlives it (a whole node's death takes everything).
   */
  spareChildren(c: CaseName): boolean;
}

function leftoverVip(lab: ClusterLab, host: LabHost): boolean {
  const out = lab.exec(host, ['ip', '-4', '-o', 'addr', 'show', 'dev', host.ifname]);
  return out.includes(` ${VIP}/`);
}

/** Removes the address a killed daemon left plumbed (keepalived always, vipmta until its lifetime ends). */
function removeLeftoverVip(lab: ClusterLab, host: LabHost): boolean {
  if (!leftoverVip(lab, host)) return false;
  lab.exec(host, ['ip', 'addr', 'del', `${VIP}/32`, 'dev', host.ifname]);
  return true;
}

class Keepalived implements System {
  readonly name = 'keepalived' as const;
  private readonly daemons = new Map<string, LabProcess>();
  private readonly responders = new Map<string, LabProcess>();

  constructor(readonly lab: ClusterLab) {}

  /** Priorities 150/100/50: the usual MASTER/BACKUP layout; everything else is keepalived's default. */
  private priority(host: LabHost): number {
    return Math.max(1, 200 - 50 * host.nodeId);
  }

  config(host: LabHost): string {
    // Defaults left alone: VRRP version 2, advert_int 1, preempt (on), no preempt_delay, initial state
    // BACKUP, garp_master_delay 5, garp_master_repeat 5, multicast 224.0.0.18, no authentication.
    return `# bench/failover.ts, lab ${this.lab.id}
global_defs {
  router_id ${host.name}
}
vrrp_instance VIP_200 {
  interface ${host.ifname}
  virtual_router_id 200
  priority ${this.priority(host)}
  virtual_ipaddress {
    ${VIP}/32 dev ${host.ifname}
  }
}
`;
  }

  private startDaemon(host: LabHost): void {
    const conf = path.join(host.dir, 'keepalived.conf');
    fs.writeFileSync(conf, this.config(host));
    // -n: stay in the foreground (the VRRP child is still forked); -P: VRRP only; private /run for the
    // pid files (/run/keepalived.pid, /run/vrrp.pid), as for corosync.
    this.daemons.set(host.name, this.lab.spawn(host, ['keepalived', '-n', '-l', '-D', '-P', '-f', conf], {
      privateRun: true,
      logFile: path.join(host.dir, 'keepalived.log'),
    }));
  }

  private async startResponder(host: LabHost): Promise<void> {
    const p = this.lab.spawn(host, [process.execPath, responderJs, host.name, String(PORT)]);
    this.responders.set(host.name, p);
    await p.waitLine((l) => l.startsWith('listening'));
  }

  async start(): Promise<void> {
    for (const h of this.lab.hosts) {
      removeLeftoverVip(this.lab, h);
      await this.startResponder(h);
      this.startDaemon(h);
    }
  }

  spareChildren(): boolean {
    return false; // its VRRP child is part of keepalived
  }

  victims(host: LabHost, c: CaseName): LabProcess[] {
    const d = this.daemons.get(host.name)!;
    return c === 'node' ? [d, this.responders.get(host.name)!] : [d];
  }

  async restore(host: LabHost, c: CaseName): Promise<void> {
    // SIGKILL leaves the address plumbed (ANCHORS.md): clean up as an init script would at start.
    removeLeftoverVip(this.lab, host);
    if (c === 'node') {
      this.lab.heal(host);
      await this.startResponder(host);
    }
    this.startDaemon(host);
  }

  describe(): Record<string, string> {
    // keepalived prints its version on stderr.
    const v = this.lab.exec(this.lab.hosts[0]!, ['sh', '-c', 'keepalived --version 2>&1']);
    return { version: v.split('\n')[0] ?? '', config_n1: this.config(this.lab.hosts[0]!) };
  }
}

class Vipmta implements System {
  readonly name = 'vipmta' as const;
  private readonly daemons = new Map<string, LabProcess>();
  private readonly written = new Map<string, { dir: string; conf: string; socket: string }>();

  constructor(readonly lab: ClusterLab) {}

  /** The node-specific part; the common settings come from test/cluster/vipmta-node.ts (the cluster tests' own). */
  body(host: LabHost): string {
    return `Cluster {
  Nodename = "${host.name}"
  Topology "198.51.100.0/24" { Interface = "${host.ifname}"  Cidrmask = 32 }
  Arp_All_Hosts = true
}
ESMTP_Listener {
  Listen "${VIP}:${PORT}" { Enable_Duravip = true  Duravip_Preference = "${PREFERRED}" }
}
`;
  }

  config(host: LabHost): string {
    return fs.readFileSync(this.files(host).conf, 'utf8');
  }

  private files(host: LabHost): { dir: string; conf: string; socket: string } {
    let f = this.written.get(host.name);
    if (f === undefined) {
      f = writeNodeConfig(host, this.body(host));
      this.written.set(host.name, f);
    }
    return f;
  }

  socket(host: LabHost): string {
    return this.files(host).socket;
  }

  private async startDaemon(host: LabHost): Promise<void> {
    const { conf, socket } = this.files(host);
    fs.rmSync(socket, { force: true });
    const p = this.lab.spawn(host, [process.execPath, path.join(vipmtaRoot, 'bin', 'vipmta.js'), 'start', '-c', conf], {
      logFile: path.join(host.dir, 'vipmta.log'),
    });
    this.daemons.set(host.name, p);
    await waitFor(`vipmta on ${host.name} to open its console socket`, () => {
      if (!p.running) throw new Error(`vipmta on ${host.name} exited (${p.exitCode ?? p.exitSignal}); log: ${this.logTail(host)}`);
      return fs.existsSync(this.socket(host));
    }, { timeoutMs: 30_000, intervalMs: 50 });
  }

  /** A console command on the node (in its namespace, through its socket); its output or the error. */
  async console(host: LabHost, command: string): Promise<string> {
    const r = await this.lab.execAsync(host, [process.execPath, path.join(vipmtaRoot, 'bin', 'vipmta.js'), 'console', '-s', this.socket(host), ...command.split(' ')]);
    return r.code === 0 ? r.stdout.trim() : `(exit ${r.code}) ${r.stdout.trim()}`;
  }

  logTail(host: LabHost): string {
    try {
      return fs.readFileSync(path.join(host.dir, 'vipmta.log'), 'utf8').trim().split('\n').slice(-5).join(' | ');
    } catch {
      return '(no log)';
    }
  }

  async start(): Promise<void> {
    for (const h of this.lab.hosts) removeLeftoverVip(this.lab, h);
    for (const h of this.lab.hosts) await this.startDaemon(h);
  }

  spareChildren(c: CaseName): boolean {
    return c === 'process';
  }

  victims(host: LabHost, c: CaseName): LabProcess[] {
    const d = this.daemons.get(host.name)!;
    return c === 'node' ? [d, this.lab.corosync(host)!] : [d];
  }

  async restore(host: LabHost, c: CaseName): Promise<void> {
    if (c === 'node') {
      // The dead node's address (if its lifetime has not run out) goes before it is back on the wire.
      removeLeftoverVip(this.lab, host);
      await this.lab.killCorosync(host); // already dead: removes its /dev/shm files
      this.lab.heal(host);
      this.lab.startCorosync(host);
      await this.lab.waitQuorate(this.lab.hosts, true, { members: this.lab.hosts.map((h) => h.nodeId), timeoutMs: 30_000 });
    }
    await this.startDaemon(host);
  }

  describe(): Record<string, string> {
    return { root: vipmtaRoot, token: String(this.lab.token), config_n1: this.config(this.lab.hosts[0]!) };
  }
}

// ---- one failover --------------------------------------------------------------------------------

interface Rep {
  system: SystemName;
  case: CaseName;
  rep: number;
  oldOwner: string;
  ok: boolean;
  error: string;
  result: FailoverResult | null;
  /** Answers from the old owner after the new owner's first answer (in the 3 s that follow): flapping. */
  oldOwnerAfter: number;
  /**
   * Attempts started after that answer that got no greeting (refused by a dead owner that still has
   * the address, timed out): the client going back to the old owner's MAC.
   */
  lostAfter: number;
  /** Whether the dead owner still had the address plumbed when it was restored. */
  leftoverAddress: boolean | null;
  /** Outcomes of the attempts started from 100 ms before the fault to 3 s after, as runs (by start time). */
  timeline: TimelineRun[];
}

/** Waits until one node answers every attempt for a second; prefers `preferred` for up to `preferMs`. */
async function waitSteady(lab: ClusterLab, probe: Probe, preferMs: number): Promise<string> {
  const t0 = Date.now();
  try {
    return await waitFor('one node answering every attempt for 1 s', () => {
      const o = probe.steadyOwner(1000);
      if (o === null) return null;
      if (o !== PREFERRED && Date.now() - t0 < preferMs) return null;
      return o;
    }, { timeoutMs: preferMs + 30_000, intervalMs: 100 });
  } catch (e) {
    // Say what the client saw and who has the address, so a failure says where to look.
    const seen = new Map<string, number>();
    for (const r of probe.update().slice(-300)) {
      const k = r.r === 'ok' ? `answered by ${r.n}` : r.r;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    const outcomes = [...seen].map(([k, v]) => `${k} x${v}`).join(', ');
    throw new Error(`${(e as Error).message}; nodes with ${VIP} plumbed: ${await holders(lab)}; ` +
      `the probe's last ${Math.min(300, probe.records.length)} attempts: ${outcomes}`);
  }
}

/**
 * Issue 12: every node's addresses read every ~10 ms through all the cases; a duplicate is the
 * address on two nodes in two consecutive samples (test/cluster/sampler.ts). Steps: "CASE#N fault"
 * from before the fault to the restore, "CASE#N restore" for the restore and the next steady state.
 */
let sampler: AddressSampler | null = null;

interface SamplerSummary {
  samples: number;
  medianPeriodMs: number;
  /** Per case: duplicates in its fault steps (a dead node's own namespace excluded: its port is detached). */
  duplicates: Record<string, number>;
  /** Duplicates while nodes were restored (restarts, rebalancing back to the preferred node). */
  restoreDuplicates: number;
}

function samplerSummary(s: AddressSampler, reps: readonly Rep[]): SamplerSummary {
  const duplicates: Record<string, number> = {};
  let restoreDuplicates = 0;
  for (const d of s.duplicates()) {
    const m = /^(\w+)#(\d+) (fault|restore)$/.exec(d.step);
    if (m === null) continue;
    if (m[3] === 'restore') {
      restoreDuplicates++;
      continue;
    }
    const r = reps.find((x) => x.case === m[1] && x.rep === Number(m[2]));
    const live = m[1] === 'node' && r !== undefined ? d.hosts.filter((h) => h !== r.oldOwner) : d.hosts;
    if (live.length >= 2) duplicates[m[1]!] = (duplicates[m[1]!] ?? 0) + 1;
  }
  for (const c of cases) duplicates[c] ??= 0;
  return { samples: s.samples.length, medianPeriodMs: s.medianPeriod(), duplicates, restoreDuplicates };
}

async function oneFailover(sys: System, probe: Probe, c: CaseName, rep: number): Promise<Rep> {
  const lab = sys.lab;
  const oldOwner = await waitSteady(lab, probe, 30_000);
  // A random phase against VRRP's advert timer and corosync's token rotation (plus --settle).
  await sleep(settleMs + 200 + Math.random() * 1000);
  if (probe.steadyOwner(1000) !== oldOwner) throw new Error(`owner moved from ${oldOwner} before the fault`);
  const host = lab.host(oldOwner);
  const victims = sys.victims(host, c);
  const signal: NodeJS.Signals = c === 'planned' ? 'SIGTERM' : 'SIGKILL';
  const out: Rep = { system: sys.name, case: c, rep, oldOwner, ok: false, error: '', result: null, oldOwnerAfter: 0, lostAfter: 0, leftoverAddress: null, timeline: [] };
  // The fault instant is taken right before the signals; the port is detached right after (an `ip`
  // command, a few ms), so that part of a node death is counted against the system under test.
  // Every PID (daemons and their children, child first) is collected before the instant: the /proc
  // scan takes a few ms that must not count against the system under test.
  const spare = sys.spareChildren(c);
  const pids = victims.flatMap((p) => (spare ? [p.pid] : [...descendantPids(p.pid), p.pid]));
  sampler?.mark(`${c}#${rep} fault`);
  const faultMs = nowMs();
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
  if (c === 'node') lab.isolate(host);
  const killed = victims.map((p) => (spare ? p.kill(signal) : p.killTree(signal, 10_000)));
  try {
    const r = await waitFor(`an answer from a node other than ${oldOwner}`, () => firstAnswerFromNewOwner(probe.update(), faultMs, oldOwner),
      { timeoutMs, intervalMs: 20 });
    // Attempts still in flight at that answer end within the probe's 3 s timeout: count them afterwards.
    await sleep(3200);
    out.result = firstAnswerFromNewOwner(probe.update(), faultMs, oldOwner) ?? r;
    out.ok = true;
    const after = faultMs + out.result.failoverMs;
    out.oldOwnerAfter = probe.update().filter((x) => x.r === 'ok' && x.n === oldOwner && x.tc !== null && x.tc > after).length;
    out.lostAfter = probe.update().filter((x) => x.r !== 'ok' && x.t0 > after).length;
    out.timeline = timeline(probe.update(), faultMs, faultMs - 100, faultMs + 3000);
  } catch (e) {
    out.error = (e as Error).message;
  }
  await Promise.all(killed);
  out.leftoverAddress = leftoverVip(lab, host);
  sampler?.mark(`${c}#${rep} restore`);
  await sys.restore(host, c);
  return out;
}

// ---- stability -----------------------------------------------------------------------------------

interface Stability {
  system: SystemName;
  seconds: number;
  loadProcesses: number;
  ownerAtStart: string;
  /** Changes of the set of nodes that have the address plumbed (polled every 250 ms). */
  addressMoves: Array<{ atS: number; holders: string }>;
  /** Changes of the node answering the probe. */
  answerMoves: Array<{ atS: number; from: string; to: string }>;
  attempts: number;
  unanswered: number;
  polls: number;
  loadavg: string;
}

async function holders(lab: ClusterLab): Promise<string> {
  const rs = await Promise.all(lab.hosts.map((h) => lab.execAsync(h, ['ip', '-4', '-o', 'addr', 'show', 'dev', h.ifname])));
  return lab.hosts.filter((_, k) => rs[k]!.stdout.includes(` ${VIP}/`)).map((h) => h.name).join(',') || '(none)';
}

async function stability(sys: System, probe: Probe, seconds: number): Promise<Stability> {
  const lab = sys.lab;
  const ownerAtStart = await waitSteady(lab, probe, 30_000);
  log(`${sys.name}: ${ownerAtStart} owns ${VIP}; ${loadProcs} busy loops for ${seconds} s`);
  const loops: LabProcess[] = [];
  for (let k = 0; k < loadProcs; k++) loops.push(lab.spawn(lab.hosts[k % lab.hosts.length]!, ['sh', '-c', 'while :; do :; done']));
  const t0 = nowMs();
  const res: Stability = {
    system: sys.name, seconds, loadProcesses: loadProcs, ownerAtStart, addressMoves: [], answerMoves: [],
    attempts: 0, unanswered: 0, polls: 0, loadavg: '',
  };
  let last = await holders(lab);
  const moves: Move[] = [];
  let lastAnswer: ProbeRecord | null = null;
  let nextReport = t0 + 60_000;
  while (nowMs() - t0 < seconds * 1000) {
    await sleep(250);
    const h = await holders(lab);
    res.polls++;
    if (h !== last) {
      res.addressMoves.push({ atS: (nowMs() - t0) / 1000, holders: h });
      log(`${sys.name}: address holders ${last} -> ${h}`);
      last = h;
    }
    // Consume the probe's records as we go, so a ten-minute run does not keep 60,000 of them.
    const recs = probe.update().filter((r) => r.t0 >= t0);
    const withPrev = lastAnswer === null ? recs : [lastAnswer, ...recs];
    moves.push(...answerMoves(withPrev));
    for (const r of recs) {
      res.attempts++;
      if (r.r !== 'ok') res.unanswered++;
      if (r.r === 'ok' && r.tc !== null && (lastAnswer === null || r.tc > lastAnswer.tc!)) lastAnswer = r;
    }
    probe.records.splice(0, probe.records.length);
    if (nowMs() >= nextReport) {
      log(`${sys.name}: ${Math.round((nowMs() - t0) / 1000)} s, ${res.addressMoves.length} address moves, ${moves.length} answer moves, ${res.unanswered} of ${res.attempts} unanswered`);
      nextReport += 60_000;
    }
  }
  res.loadavg = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  for (const p of loops) await p.killTree('SIGKILL');
  res.answerMoves = moves.map((m) => ({ atS: (m.atMs - t0) / 1000, from: m.from, to: m.to }));
  return res;
}

// ---- the run ---------------------------------------------------------------------------------------

/** Copies every node's logs (vipmta, corosync, keepalived) out of the lab before it is removed. */
function keepLogs(lab: ClusterLab, dir: string): void {
  for (const h of lab.hosts) {
    const to = path.join(dir, h.name);
    fs.mkdirSync(to, { recursive: true });
    for (const f of ['vipmta.log', 'corosync.log', 'keepalived.log']) {
      const from = path.join(h.dir, f);
      if (fs.existsSync(from)) fs.copyFileSync(from, path.join(to, f));
    }
  }
  log(`kept the logs in ${dir}`);
}

async function makeSystem(name: SystemName): Promise<System> {
  const lab = await ClusterLab.create(name === 'vipmta' ? { nodes: 3, corosync: true, token } : { nodes: 3 });
  return name === 'vipmta' ? new Vipmta(lab) : new Keepalived(lab);
}

interface SystemRun {
  system: SystemName;
  error: string;
  about: Record<string, string>;
  reps: Rep[];
  stability: Stability | null;
  sampler: SamplerSummary | null;
}

async function runSystem(name: SystemName): Promise<SystemRun> {
  const run: SystemRun = { system: name, error: '', about: {}, reps: [], stability: null, sampler: null };
  let sys: System | null = null;
  try {
    sys = await makeSystem(name);
    run.about = sys.describe();
    log(`${name}: lab ${sys.lab.id} up; starting`);
    await sys.start();
    const probe = new Probe(sys.lab);
    sampler = new AddressSampler(sys.lab, 10, path.join(root, 'test', 'cluster', 'sampler.py'));
    sampler.start();
    if (stabilitySeconds !== null) {
      run.stability = await stability(sys, probe, stabilitySeconds);
    } else {
      for (const c of cases) {
        for (let k = 0; k < reps; k++) {
          const r = await oneFailover(sys, probe, c, k);
          run.reps.push(r);
          log(`${name} ${c} #${k + 1}: ${r.ok ? `${r.result!.failoverMs.toFixed(0)} ms (${r.oldOwner} -> ${r.result!.newOwner}; ` +
            `${r.result!.unanswered} unanswered, ${r.result!.refused} refused, ${r.oldOwnerAfter} old-owner answers and ${r.lostAfter} failed attempts in the 3 s after)` : `FAILED ${r.error}`}`);
          if (r.oldOwnerAfter > 0 || r.lostAfter > 0) log(`  timeline: ${r.timeline.map((t) => `${t.what} x${t.count} [${t.fromMs}..${t.toMs}]`).join(', ')}`);
          probe.trim(nowMs() - 120_000);
        }
      }
    }
  } catch (e) {
    run.error = (e as Error).message;
    log(`${name}: FAILED ${run.error}`);
    if (sys !== null && sys instanceof Vipmta) {
      for (const h of sys.lab.hosts) {
        const show = await sys.console(h, 'cluster duravip show');
        run.about[`duravip_show_${h.name}`] = show;
        log(`  ${h.name} log: ${sys.logTail(h)}\n  ${h.name} cluster duravip show: ${show.replaceAll('\n', ' | ')}`);
      }
    }
  } finally {
    if (sampler !== null) {
      await sampler.stop();
      run.sampler = samplerSummary(sampler, run.reps);
      sampler = null;
    }
    if (sys !== null && opt.logs !== undefined) keepLogs(sys.lab, path.resolve(opt.logs, `${name}-${sys.lab.id}`));
    await sys?.lab.destroy();
  }
  return run;
}

const CASE_TITLE: Record<CaseName, string> = {
  process: 'process SIGKILL (keepalived: keepalived only; vipmta: vipmta only, corosync lives)',
  node: 'whole node SIGKILL (all its processes, port detached)',
  planned: 'planned: SIGTERM of the owner\'s keepalived / vipmta',
};
const TARGET: Record<CaseName, string> = { process: '<= 200 ms', node: '<= 1,200 ms', planned: '<= 50 ms' };

const fms = (n: number | undefined): string => (n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const fsum = (s: Summary | null): string => (s === null ? '-' : `${fms(s.median)} / ${fms(s.p90)} / ${fms(s.max)}`);

function summaries(runs: SystemRun[]): Record<string, Record<string, Summary | null>> {
  const out: Record<string, Record<string, Summary | null>> = {};
  for (const r of runs) {
    out[r.system] = {};
    for (const c of cases) out[r.system]![c] = summarize(r.reps.filter((x) => x.case === c && x.ok).map((x) => x.result!.failoverMs));
  }
  return out;
}

function table(runs: SystemRun[]): string {
  const s = summaries(runs);
  const lines = [
    '| case | keepalived median / p90 / max ms (ok/N) | vipmta median / p90 / max ms (ok/N) | vipmta / keepalived (median) | vipmta target (median) |',
    '|---|---:|---:|---:|---|',
  ];
  const cell = (sys: SystemName, c: CaseName): string => {
    const run = runs.find((r) => r.system === sys);
    if (run === undefined) return 'not run';
    if (run.error !== '' && run.reps.length === 0) return `failed: ${run.error.replaceAll('|', '/').slice(0, 120)}`;
    const all = run.reps.filter((x) => x.case === c);
    return `${fsum(s[sys]?.[c] ?? null)} (${all.filter((x) => x.ok).length}/${all.length})`;
  };
  for (const c of cases) {
    const k = s['keepalived']?.[c];
    const v = s['vipmta']?.[c];
    const ratio = k && v ? `${(v.median / k.median).toFixed(3)}x` : '-';
    lines.push(`| ${CASE_TITLE[c]} | ${cell('keepalived', c)} | ${cell('vipmta', c)} | ${ratio} | ${TARGET[c]} |`);
  }
  return lines.join('\n');
}

function stabilityTable(runs: SystemRun[]): string {
  const lines = ['| system | seconds | busy loops | address moves | answering-node changes | unanswered / attempts | load average at end |', '|---|---:|---:|---:|---:|---:|---|'];
  for (const r of runs) {
    const st = r.stability;
    if (st === null) {
      lines.push(`| ${r.system} | failed: ${r.error.replaceAll('|', '/').slice(0, 160)} | | | | | |`);
      continue;
    }
    lines.push(`| ${r.system} | ${st.seconds} | ${st.loadProcesses} | ${st.addressMoves.length} | ${st.answerMoves.length} | ${st.unanswered} / ${st.attempts} | ${st.loadavg} |`);
  }
  return lines.join('\n');
}

function header(): string {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  return [
    `date ${new Date().toISOString()}; ${os.cpus().length} CPU (${cpu}); Node ${process.version}; ${os.release()}`,
    `probe: TCP connect every 10 ms from the client namespace to ${VIP}:${PORT}, 3 s per attempt; failover = fault to the completed handshake of the first connection another node answered`,
    stabilitySeconds === null ? `repetitions per case: ${reps}; corosync token ${token} ms (vipmta)` : `stability: ${stabilitySeconds} s with ${loadProcs} busy loops`,
  ].join('\n');
}

async function main(): Promise<void> {
  process.stdout.write(header() + '\n\n');
  const runs: SystemRun[] = [];
  for (const s of systems) runs.push(await runSystem(s));
  process.stdout.write((stabilitySeconds === null ? table(runs) : stabilityTable(runs)) + '\n');
  for (const r of runs) {
    const sm = r.sampler;
    if (sm === null) continue;
    process.stdout.write(`${r.system}: sampler ${sm.samples} samples (median period ${sm.medianPeriodMs} ms); address on two live nodes ` +
      `(two agreeing samples): ${Object.entries(sm.duplicates).map(([c, n]) => `${c} ${n}`).join(', ')}; while restoring ${sm.restoreDuplicates}\n`);
  }
  if (opt.json) {
    const dir = path.join(root, 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const kind = stabilitySeconds === null ? 'failover' : 'failover-stability';
    const file = path.join(dir, `${kind}-${new Date().toISOString().replaceAll(':', '-')}.json`);
    fs.writeFileSync(file, JSON.stringify({ header: header(), argv: process.argv.slice(2), summaries: summaries(runs), runs }, null, 2) + '\n');
    log(`wrote ${file}`);
  }
  if (runs.some((r) => r.error !== '' || r.reps.some((x) => !x.ok))) process.exitCode = 1;
}

await main();
