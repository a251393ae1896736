// `vipmta console --cluster` / `--node` on three real vipmta nodes with real corosync in network
// namespaces (issue 14): mail held on all three (a cluster-wide suspension, run once) is summed by
// `--cluster mailq`; `--cluster config reload` reloads every node once, at the same agreed point,
// and the DuraVIP whose preference it changes changes owner once on every node; a stopped vipmta
// gets "n3: no answer within 2 s" and exit 1, a killed node is named as not in the view.
// Test main thread; waits on lab processes and console commands.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, runCli } from '../helpers/node-process.js';
import { requireCommand } from '../helpers/preconditions.js';
import { ClusterLab, waitFor, type LabHost } from './harness.js';
import { consoleCmd, startNode, waitStarted, writeNodeConfig, type NodeRun } from './vipmta-node.js';

const VIP = '198.51.100.200';

function body(h: LabHost, preference: string): string {
  return `Resolver_Servers = ( "127.0.0.1:9" )
Retry_Interval = 1h
Connect_Timeout = 3s
Mx_Rollup = false
Shaping_Default_Rules = false
# Nothing listens there: the mail is held by the suspension anyway.
Domain "dest.test" { Routes = ( "198.51.100.100:2599" ) }
ESMTP_Listener {
  Relay_Hosts = ( "198.51.100.0/24" )
  Listen "${h.address}:25" { }
}
Binding "b200" { Bind_Address = ${VIP} Enable_Duravip = true Duravip_Preference = "${preference}" }
Cluster {
  Cluster_Secret = "console test secret"
  View_Mature_Time = 1s
  If_Check_Interval = 2s
  Topology "198.51.100.0/24" { Interface = "eth1" Cidrmask = 32 }
}
`;
}

let lab: ClusterLab;
const nodes = new Map<string, NodeRun>();
const node = (name: string): NodeRun => nodes.get(name)!;

/** `vipmta console -s SOCKET ARGS...` on a node: status and output, never throws. */
function cli(n: NodeRun, ...argv: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return runCli([cliPath, 'console', '-s', n.socket, ...argv], n.dir);
}

function records(n: NodeRun, msg: string, from: number): Record<string, unknown>[] {
  return n.proc.lines.slice(from).filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function inject(h: LabHost, count: number): Promise<void> {
  const r = await lab.execAsync(lab.client, ['smtp-source', '-s', '1', '-m', String(count), '-l', '256', '-f', 'sender@lab.example', '-t', 'rcpt@dest.test', `${h.address}:25`]);
  if (r.code !== 0) throw new Error(`smtp-source to ${h.address} exited ${r.code}: ${r.stdout}`);
}

/** The owner of VIP as `cluster duravip show` says on that node. */
async function ownerOn(n: NodeRun): Promise<string | null> {
  const show = await consoleCmd(n, 'cluster', 'duravip', 'show');
  return new RegExp(`^${VIP.replaceAll('.', '\\.')}\\s.*\\sowner (\\S+)`, 'm').exec(show)?.[1] ?? null;
}

beforeAll(async () => {
  requireCommand('smtp-source');
  lab = await ClusterLab.create({ nodes: 3, corosync: true });
  for (const h of lab.hosts) nodes.set(h.name, startNode(lab, h, body(h, 'n1'), { logLevel: 'debug' }));
  await Promise.all([...nodes.values()].map(waitStarted));
  for (const n of nodes.values()) await n.proc.waitLine((l) => l.includes('"msg":"cluster console: joined the console group"'), { timeoutMs: 20_000 });
  // Every member knows every other's name (hellos) before the tests ask.
  await waitFor('n1 sees three members in the console group', async () => {
    const r = await cli(node('n1'), '--cluster', 'version');
    return r.status === 0 && /=== n1 ===[\s\S]*=== n2 ===[\s\S]*=== n3 ===/.test(r.stdout);
  }, { timeoutMs: 20_000, intervalMs: 300 });
  await waitFor(`${VIP} owned by n1 everywhere`, async () => (await Promise.all(['n1', 'n2', 'n3'].map((x) => ownerOn(node(x))))).every((o) => o === 'n1'), { timeoutMs: 30_000, intervalMs: 300 });
}, 120_000);

afterAll(async () => {
  await lab?.destroy();
});

describe('console across the cluster', () => {
  it('sums mailq over the three nodes while mail is held on each', async () => {
    const suspend = await cli(node('n1'), '--cluster', 'shaping', 'suspend', 'dest.test', '1h', 'console test');
    expect(suspend.status).toBe(0);
    expect(suspend.stdout).toMatch(/^=== n1 \(cluster-wide: run once here; the shaping group applies it on every node\) ===\nsuspending dest\.test \(every binding\)/);
    for (const n of nodes.values()) {
      await waitFor(`${n.host.name} lists the suspension`, async () => /dest\.test/.test(await consoleCmd(n, 'shaping', 'suspensions')), { timeoutMs: 10_000 });
    }
    await Promise.all([inject(node('n1').host, 1), inject(node('n2').host, 2), inject(node('n3').host, 3)]);
    for (const [name, count] of [['n1', 1], ['n2', 2], ['n3', 3]] as const) {
      await waitFor(`${name} has ${count} queued`, async () => (await consoleCmd(node(name), 'mailq')).includes(`Total: ${count} message(s)`), { timeoutMs: 15_000 });
    }
    const r = await cli(node('n2'), '--cluster', 'mailq');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // Each node's own mailq under its name, in name order, then the sum.
    const headers = [...r.stdout.matchAll(/^=== (.*) ===$/gm)].map((m) => m[1]);
    expect(headers).toEqual(['n1', 'n2', 'n3', 'cluster: 3 of 3 node(s)']);
    const sum = r.stdout.slice(r.stdout.indexOf('=== cluster'));
    const rows = sum.split('\n').map((l) => l.split(/\s{2,}/));
    expect(rows[1]).toEqual(['Group/Binding', 'Domain', 'n1', 'n2', 'n3', 'Total', 'AQ', 'DQ', 'HQ']);
    const dest = rows.find((x) => x[1] === 'dest.test');
    expect(dest?.slice(2, 6)).toEqual(['1', '2', '3', '6']);
    expect(Number(dest![6]) + Number(dest![7]) + Number(dest![8])).toBe(6);
    expect(sum).toMatch(/^Total: 6 message\(s\) on 3 node\(s\)/m);
    // A flag the command does not know is refused, not run on this node only.
    const bad = await cli(node('n1'), 'config', 'reload', '--cluster');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/unknown option --cluster for config reload/);
  }, 90_000);

  it('reloads every node once on `--cluster config reload`, elects once with every new configuration, and the changed DuraVIP moves once', async () => {
    const marks = new Map([...nodes].map(([name, n]) => [name, n.proc.lines.length]));
    for (const n of nodes.values()) writeNodeConfig(n.host, body(n.host, 'n3'), { logLevel: 'debug' });
    const r = await cli(node('n2'), '--cluster', 'config', 'reload');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^=== n1 ===\nconfig reloaded\n=== n2 ===\nconfig reloaded\n=== n3 ===\nconfig reloaded\n$/);
    await waitFor(`${VIP} owned by n3 everywhere`, async () => (await Promise.all(['n1', 'n2', 'n3'].map((x) => ownerOn(node(x))))).every((o) => o === 'n3'), { timeoutMs: 20_000, intervalMs: 200 });
    for (const [name, n] of nodes) {
      const from = marks.get(name)!;
      expect(records(n, 'config reloaded', from), `${name} reloads`).toHaveLength(1);
      expect(records(n, 'cluster console: running a request', from).map((x) => x.command)).toEqual(['config reload']);
      // While the members announce their new configuration one by one, the preference is in
      // conflict and the owner stays; it moves once every member has the same one.
      const changes = records(n, 'DuraVIP owner', from).filter((x) => x.address === VIP);
      expect(changes.map((x) => [x.previous, x.owner]), `${name}'s owner changes`).toEqual([['n1', 'n3']]);
      // One reload round: no election ran while members had different configurations (each such
      // election warned that the preferences are in conflict), and the round closed by itself.
      const lines = n.proc.lines.slice(from);
      const opened = lines.findIndex((l) => l.includes('"msg":"cluster: reload round: elections wait'));
      const closed = lines.findIndex((l) => l.includes('"msg":"cluster: reload round complete'));
      expect([opened >= 0, closed > opened], `${name}'s round opened and closed`).toEqual([true, true]);
      const elections = lines.map((l, i) => (l.includes('"msg":"cluster: election"') ? i : -1)).filter((i) => i >= 0);
      expect(elections.filter((i) => i > opened && i < closed), `${name}'s elections during the round`).toEqual([]);
      expect(elections.filter((i) => i > closed).length, `${name} elected after the round`).toBeGreaterThan(0);
      expect(records(n, 'cluster: reload round ended without every member\'s reload; electing now', from)).toEqual([]);
    }
  }, 60_000);

  it('names a stopped node that does not answer within the timeout, and a killed one that left the view', async () => {
    const n3 = node('n3');
    process.kill(n3.proc.pid, 'SIGSTOP');
    try {
      const one = await cli(node('n1'), '--node', 'n3', '--timeout', '2s', 'version');
      expect(one.stdout).toBe('n3: no answer within 2 s\n');
      expect(one.status).toBe(1);
      const all = await cli(node('n1'), '--cluster', '--timeout', '2s', 'version');
      expect(all.stdout).toMatch(/^=== n1 ===\nvipmta \S+ .*\n=== n2 ===\nvipmta .*\nn3: no answer within 2 s\n$/);
      expect(all.status).toBe(1);
    } finally {
      process.kill(n3.proc.pid, 'SIGCONT');
    }
    // The whole node dies: once the others see it go, --node names the members that are left.
    await Promise.all([n3.proc.kill('SIGKILL'), lab.killCorosync(n3.host)]);
    await waitFor('n1 cannot see n3', async () => /cannot see 1 member\(s\) from here: n3 \(left the group/.test((await cli(node('n1'), '--cluster', 'version')).stdout), { timeoutMs: 20_000, intervalMs: 300 });
    const gone = await cli(node('n1'), '--node', 'n3', 'version');
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(/n3 is not a member of the view; members: n1, n2 \(n3: left the group \(\w+\)\)/);
    const partial = await cli(node('n2'), '--cluster', 'version');
    expect(partial.status).toBe(1);
    expect(partial.stdout).toMatch(/=== n1 ===[\s\S]*=== n2 ===[\s\S]*cannot see 1 member\(s\) from here: n3 \(left the group \(\w+\)\)\n$/);
  }, 60_000);
});
