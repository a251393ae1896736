// What cluster-wide limits cost at full delivery rate (issue 13): three vipmta nodes with real
// corosync in network namespaces (test/cluster/harness.ts), one DuraVIP binding each, deliver a
// held queue to Postfix's smtp-sink in the client namespace; once with no cluster limit on the
// destination (the anchor) and once with cluster limits that never bind
// (Cluster_Max_Outbound_Connections, Cluster_Outbound_Throttle_Messages and _Connections set far
// above what the run reaches), alternating the order per repetition. Reports per variant the
// delivery rate, vipmta's CPU per message (every node's process tree), and the shaping group's CPG
// messages per node per second while delivering (the nodes' /metrics). The mail is held cluster-wide
// by `shaping suspend` and released at one instant by `shaping resume` (an agreed message).
//
//   npm run bench:shaping-cluster -- [--messages N] [--reps R] [--size BYTES] [--variants none,limits] [--json]
// Defaults: 5,000 messages per node, 2 repetitions, 4 KiB. Root; corosync, smtp-source, smtp-sink.
// The nodes run as the cluster tests run them (test/cluster/vipmta-node.ts: Log_Level info, one
// worker thread, Spool Sync = none): both variants alike, so the ratio is what the limits cost.
// Main thread; blocks on `ip` calls between runs, awaits child processes. Every namespace and
// process it made is removed at the end, also on failure (the harness's exit hook covers a crash).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ClusterLab, waitFor, type LabHost, type LabProcess } from '../test/cluster/harness.js';
import { writeNodeConfig } from '../test/cluster/vipmta-node.js';
import { treeCpuSeconds } from './lib/proc.js';
import { f0, f2, machineLine } from './lib/report.js';
import { repoRoot } from './lib/repo.js';

const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '5000' },
    reps: { type: 'string', default: '2' },
    size: { type: 'string', default: '4096' },
    variants: { type: 'string', default: 'none,limits' },
    json: { type: 'boolean', default: false },
  },
  strict: true,
});
const perNode = Number(opt.messages);
const reps = Number(opt.reps);
const size = Number(opt.size);
for (const [k, v] of [['messages', perNode], ['reps', reps], ['size', size]] as const) {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${k}: expected a positive integer`);
}

// The compiled bench runs from node_modules/.cache: the CLI is found from the repository root.
const cli = path.join(repoRoot(), 'bin', 'vipmta.js');
interface NodeRun { host: LabHost; socket: string; proc: LabProcess }

function startNode(lab: ClusterLab, h: LabHost, conf: string): NodeRun {
  const w = writeNodeConfig(h, conf);
  return { host: h, socket: w.socket, proc: lab.spawn(h, [process.execPath, cli, 'start', '-c', w.conf]) };
}
async function waitStarted(n: NodeRun): Promise<void> {
  await n.proc.waitLine((l) => l.includes('"msg":"vipmta started"'), { timeoutMs: 30_000 });
}
let labNow: ClusterLab;
async function consoleCmd(n: NodeRun, ...argv: string[]): Promise<string> {
  const r = await labNow.execAsync(n.host, [process.execPath, cli, 'console', '-s', n.socket, ...argv]);
  if (r.code !== 0) throw new Error(`console ${argv.join(' ')} on ${n.host.name}: exit ${r.code}: ${r.stdout}`);
  return r.stdout;
}

const SINK = { host: '198.51.100.100', port: 2525 };
const LIMITS = `  Cluster_Max_Outbound_Connections = 10000
  Cluster_Outbound_Throttle_Messages = "100000000/60s"
  Cluster_Outbound_Throttle_Connections = "10000000/60s"`;
type Variant = 'none' | 'limits';
const variants = opt.variants.split(',') as Variant[];
for (const v of variants) if (v !== 'none' && v !== 'limits') throw new Error(`--variants: unknown "${v}" (none, limits)`);

function body(h: LabHost, variant: Variant): string {
  const i = h.nodeId;
  return `Resolver_Servers = ( "127.0.0.1:9" )
Shaping_Default_Rules = false
Domain "bench.test" {
  Routes = ( "${SINK.host}:${SINK.port}" )
${variant === 'limits' ? LIMITS : ''}
}
ESMTP_Listener {
  Relay_Hosts = ( "198.51.100.0/24" )
  Listen "${h.address}:25" { Binding = "b${i}" }
}
Binding "b${i}" { Bind_Address = 198.51.100.${200 + i} Enable_Duravip = true Duravip_Preference = "${h.name}" }
Http_Listener { Listen "127.0.0.1:2081" { } }
Cluster {
  View_Mature_Time = 1s
  If_Check_Interval = 2s
  Arp_Count = 1
  Topology "198.51.100.0/24" { Interface = "eth1" Cidrmask = 32 }
}
`;
}

/** smtp-sink -c in the client namespace, its \r-separated counters turned into lines by a node wrapper. */
function sinkScript(): string {
  return `const { spawn } = require('node:child_process');
const c = spawn('/usr/sbin/smtp-sink', ['-c', '-u', 'nobody', '${SINK.host}:${SINK.port}', '1024'], { stdio: ['ignore', 'pipe', 'inherit'] });
let last = '';
c.stdout.on('data', (d) => { const m = /mesg=(\\d+)\\s*$/.exec(d.toString('latin1').split('\\r').filter(Boolean).pop() || ''); if (m) last = m[1]; });
const t = setInterval(() => { if (last !== '') { process.stdout.write('mesg=' + last + '\\n'); last = ''; } }, 20);
process.on('SIGTERM', () => { clearInterval(t); c.kill('SIGTERM'); process.exit(0); });
console.log('listening');
`;
}

/** The shaping group's messages this node sent (its /metrics), 0 if the series is missing. */
async function cpgSent(lab: ClusterLab, n: NodeRun): Promise<number> {
  const r = await lab.execAsync(n.host, [process.execPath, '-e', `fetch('http://127.0.0.1:2081/metrics').then((r) => r.text()).then((t) => console.log(t))`]);
  const m = /^vipmta_shaping_group_messages_sent_total(?:\{[^}]*\})? (\d+)/m.exec(r.stdout);
  return m === null ? 0 : Number(m[1]);
}

interface Result {
  variant: Variant;
  rep: number;
  messages: number;
  seconds: number;
  msgPerSec: number;
  cpuMsPerMsg: number;
  cpgPerNodePerSec: number;
}

async function runOnce(variant: Variant, rep: number): Promise<Result> {
  const lab = await ClusterLab.create({ nodes: 3, corosync: true });
  labNow = lab;
  try {
    const sink = lab.spawn(lab.client, [process.execPath, '-e', sinkScript()]);
    await sink.waitLine((l) => l === 'listening', { timeoutMs: 10_000 });
    const nodes = lab.hosts.map((h) => startNode(lab, h, body(h, variant)));
    await Promise.all(nodes.map(waitStarted));
    await Promise.all(nodes.map((n) => n.proc.waitLine((l) => l.includes('"msg":"shaping: joined the shaping group"') || l.includes('joined the shaping group'), { timeoutMs: 30_000 }).catch(() => undefined)));
    // Held everywhere (an agreed suspension), filled, then released at one instant.
    await consoleCmd(nodes[0]!, 'shaping', 'suspend', 'bench.test', '1h', 'bench');
    for (const n of nodes) await waitFor(`${n.host.name} lists the suspension`, async () => !(await consoleCmd(n, 'shaping', 'suspensions')).startsWith('no restriction'), { timeoutMs: 10_000 });
    await Promise.all(nodes.map(async (n) => {
      const r = await lab.execAsync(lab.client, ['smtp-source', '-s', '16', '-m', String(perNode), '-l', String(size),
        '-f', 'sender@lab.test', '-t', 'rcpt@bench.test', `${n.host.address}:25`]);
      if (r.code !== 0) throw new Error(`smtp-source to ${n.host.name} exited ${r.code}: ${r.stdout}`);
    }));
    for (const n of nodes) await waitFor(`${n.host.name} queued ${perNode}`, async () => (await consoleCmd(n, 'mailq')).includes(`Total: ${perNode} message(s)`), { timeoutMs: 60_000, intervalMs: 250 });
    const total = perNode * nodes.length;
    const cpu0 = nodes.map((n) => treeCpuSeconds(n.proc.pid));
    const cpg0 = await Promise.all(nodes.map((n) => cpgSent(lab, n)));
    const t0 = performance.now();
    await consoleCmd(nodes[0]!, 'shaping', 'resume', 'bench.test');
    const done = (): boolean => {
      const last = sink.lines.filter((l) => l.startsWith('mesg=')).pop();
      return last !== undefined && Number(last.slice(5)) >= total;
    };
    await waitFor(`the sink counted ${total}`, done, { timeoutMs: 600_000, intervalMs: 20 });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = nodes.reduce((s, n, i) => s + treeCpuSeconds(n.proc.pid) - cpu0[i]!, 0);
    const cpg1 = await Promise.all(nodes.map((n) => cpgSent(lab, n)));
    const cpg = cpg1.reduce((s, v, i) => s + v - cpg0[i]!, 0);
    return {
      variant, rep, messages: total, seconds, msgPerSec: total / seconds,
      cpuMsPerMsg: (cpu * 1000) / total, cpgPerNodePerSec: cpg / nodes.length / seconds,
    };
  } finally {
    await lab.destroy();
  }
}

const results: Result[] = [];
for (let rep = 1; rep <= reps; rep++) {
  const order = rep % 2 === 1 ? variants : [...variants].reverse();
  for (const v of order) {
    const r = await runOnce(v, rep);
    process.stderr.write(`rep ${rep} ${v}: ${f0(r.msgPerSec)} msg/s, ${f2(r.cpuMsPerMsg)} ms CPU/msg, ${f2(r.cpgPerNodePerSec)} CPG msg/node/s\n`);
    results.push(r);
  }
}

const lines = [
  `# Cluster-wide limits that do not bind, against none (3 nodes, ${f0(perNode)} x ${size} B per node)`,
  '',
  machineLine(),
  '',
  '| rep | variant | msg/s | CPU ms/msg (all nodes) | CPG messages per node per s | CPU ratio limits/none |',
  '|---:|---|---:|---:|---:|---:|',
];
for (let rep = 1; rep <= reps; rep++) {
  const none = results.find((r) => r.rep === rep && r.variant === 'none');
  for (const r of results.filter((x) => x.rep === rep)) {
    lines.push(`| ${rep} | ${r.variant} | ${f0(r.msgPerSec)} | ${r.cpuMsPerMsg.toFixed(3)} | ${f2(r.cpgPerNodePerSec)} | ${r.variant === 'limits' && none !== undefined ? f2(r.cpuMsPerMsg / none.cpuMsPerMsg) : ''} |`);
  }
}
console.log(lines.join('\n'));
if (opt.json) {
  const dir = path.join(repoRoot(), 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `shaping-cluster-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify({ machine: machineLine(), perNode, size, results }, null, 2));
  console.log(`\nwritten: ${file}`);
}
