// Runs real vipmta processes inside ClusterLab hosts: a config per node, the compiled CLI (dist/)
// started in the host's network namespace (corosync's IPC is per namespace), its JSON log lines,
// its console over the control socket, and what a client on the lab network sees of a DuraVIP
// (which node answers SMTP on it, which MAC its neighbour entry holds). Test main thread.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cliPath, runCli } from '../helpers/node-process.js';
import { waitFor, type ClusterLab, type LabHost, type LabProcess } from './harness.js';

export interface NodeRun {
  readonly host: LabHost;
  readonly dir: string;
  readonly socket: string;
  readonly conf: string;
  proc: LabProcess;
}

/** Writes `body` (the node-specific part) under the common settings and starts vipmta on the host. */
/** The common settings a node's body may change (written once: the config refuses an option twice). */
export interface NodeSettings {
  workerThreads?: number;
  logLevel?: string;
}

export function writeNodeConfig(host: LabHost, body: string, settings: NodeSettings = {}): { dir: string; conf: string; socket: string } {
  const dir = path.join(host.dir, 'vipmta');
  mkdirSync(dir, { recursive: true });
  const socket = path.join(dir, 'ctl.sock');
  const conf = path.join(dir, 'vipmta.conf');
  writeFileSync(conf, `Nodename = "${host.name}"
Hostname = "${host.name}.lab.example"
Worker_Threads = ${settings.workerThreads ?? 1}
Log_Level = "${settings.logLevel ?? 'info'}"
Spool { Directory = "${path.join(dir, 'spool')}" Sync = none }
Control_Listener { Listen "${socket}" { } }
${body}
`);
  return { dir, conf, socket };
}

export function startNode(lab: ClusterLab, host: LabHost, body: string, settings: NodeSettings = {}): NodeRun {
  const { dir, conf, socket } = writeNodeConfig(host, body, settings);
  const proc = lab.spawn(host, [process.execPath, cliPath, 'start', '-c', conf]);
  return { host, dir, socket, conf, proc };
}

export function restartNode(lab: ClusterLab, n: NodeRun): void {
  n.proc = lab.spawn(n.host, [process.execPath, cliPath, 'start', '-c', n.conf]);
}

export async function waitStarted(n: NodeRun): Promise<void> {
  await n.proc.waitLine((l) => l.includes('"msg":"vipmta started"'), { timeoutMs: 30_000 });
}

/** One console command; throws with the node's answer when it fails. */
export async function consoleCmd(n: NodeRun, ...argv: string[]): Promise<string> {
  const r = await runCli([cliPath, 'console', '-s', n.socket, ...argv], n.dir);
  if (r.status !== 0) throw new Error(`console ${argv.join(' ')} on ${n.host.name}: exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Like consoleCmd but returns the failure instead of throwing. */
export async function consoleTry(n: NodeRun, ...argv: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return runCli([cliPath, 'console', '-s', n.socket, ...argv], n.dir);
}

/**
 * address -> owner, from `cluster duravip show` ("ADDR  what  owner NODE  tags"). Throws on an
 * address line it cannot read: an empty map from a changed format would let every check that
 * loops over the owners pass without checking anything.
 */
export function parseOwners(show: string): Map<string, { owner: string | null; tags: string }> {
  const out = new Map<string, { owner: string | null; tags: string }>();
  for (const line of show.split('\n').filter((l) => /^\d+\.\d+\.\d+\.\d+\s/.test(l))) {
    const m = /^(\d+\.\d+\.\d+\.\d+)\s+.*?\s+owner (\S+)\s+(.*)$/.exec(line);
    if (m === null) throw new Error(`cannot read this line of cluster duravip show: ${JSON.stringify(line)}`);
    out.set(m[1]!, { owner: m[2] === '-' ? null : m[2]!, tags: m[3]! });
  }
  return out;
}

export async function owners(n: NodeRun): Promise<Map<string, { owner: string | null; tags: string }>> {
  return parseOwners(await consoleCmd(n, 'cluster', 'duravip', 'show'));
}

/**
 * Addresses on the host's lab interface other than its own, from `ip -j addr`: in the lab only
 * vipmta adds any (this iproute2 does not print IFA_PROTO, so the tag itself is not visible here).
 */
export function plumbed(lab: ClusterLab, host: LabHost): string[] {
  const j = JSON.parse(lab.exec(host, ['ip', '-j', '-4', 'addr', 'show', 'dev', host.ifname])) as Array<{ addr_info: Array<{ local: string }> }>;
  return j.flatMap((i) => i.addr_info).filter((a) => a.local !== host.address).map((a) => a.local).sort();
}

/** The SMTP greeting the client gets on address:25 ("220 n2.lab.example ESMTP ..."), or the error code. */
export async function greeting(lab: ClusterLab, address: string): Promise<string> {
  const script = `const s = require('node:net').connect(25, ${JSON.stringify(address)});
    s.setTimeout(2000, () => { console.log('ETIMEDOUT'); process.exit(0); });
    s.once('data', (d) => { console.log(d.toString().split('\\r\\n')[0]); s.destroy(); process.exit(0); });
    s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
  const r = await lab.execAsync(lab.client, [process.execPath, '-e', script]);
  return r.stdout.trim();
}

/** The MAC the client's neighbour table holds for the address, or null. */
export function clientNeighbourMac(lab: ClusterLab, address: string): string | null {
  const j = JSON.parse(lab.exec(lab.client, ['ip', '-j', '-4', 'neigh', 'show', address])) as Array<{ lladdr?: string }>;
  return j[0]?.lladdr ?? null;
}

/** Waits until the client reaches the address on the given node: greeting names it and the neighbour entry holds its MAC. */
export async function waitClientSees(lab: ClusterLab, address: string, host: LabHost, timeoutMs = 15_000): Promise<void> {
  await waitFor(`${address} answering from ${host.name} (greeting and neighbour MAC ${host.mac})`, async () => {
    const g = await greeting(lab, address);
    const mac = clientNeighbourMac(lab, address);
    if (g.startsWith(`220 ${host.name}.lab.example`) && mac === host.mac) return true;
    // Thrown, not false: a timeout then says which half was missing (waitFor names the last error).
    throw new Error(`the client got greeting ${JSON.stringify(g)} and neighbour MAC ${mac ?? 'none'}`);
  }, { timeoutMs, intervalMs: 100 });
}
