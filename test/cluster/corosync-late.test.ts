// A vipmta started while corosync is down or stopped (issue 12, section 3): it must start and serve
// SMTP on its ordinary listeners at once, own no DuraVIP, and join the cluster and take its share of
// the DuraVIPs when corosync comes up (or continues) later, without a restart. Two real vipmta nodes
// in a ClusterLab created without corosync; the test starts corosync on both hosts afterwards, then
// restarts one vipmta while its corosync is SIGSTOPped (it accepts connections but answers nothing).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterLab, waitFor, type LabHost } from './harness.js';
import {
  consoleCmd, greeting, owners, plumbed, restartNode, startNode, waitClientSees, waitStarted, type NodeRun,
} from './vipmta-node.js';

const VIPS = ['198.51.100.211', '198.51.100.212'];

/** The host's own address is an ordinary listener; the two VIPs are DuraVIPs. */
function body(host: LabHost): string {
  return `ESMTP_Listener {
  Listen "${host.address}:25" { }
${VIPS.map((a) => `  Listen "${a}:25" { }`).join('\n')}
}
${VIPS.map((a) => `Binding "b${a.split('.')[3]}" { Bind_Address = ${a} Enable_Duravip = true }`).join('\n')}
Cluster {
  View_Mature_Time = 1s
  If_Check_Interval = 2s
  Arp_All_Hosts = true
  Arp_Count = 3
  Arp_Interval = 100ms
  Topology "198.51.100.0/24" { Interface = "eth1" Cidrmask = 32 }
}
`;
}

let lab: ClusterLab;
let hosts: LabHost[];
const nodes: NodeRun[] = [];

beforeAll(async () => {
  lab = await ClusterLab.create({ nodes: 2, corosync: false });
  hosts = lab.hosts;
}, 60_000);

afterAll(async () => {
  for (const n of nodes) await n.proc.kill('SIGTERM').catch(() => undefined);
  await lab?.destroy();
}, 60_000);

describe('vipmta started before corosync', () => {
  it('starts and serves SMTP on its own address without corosync, owning no DuraVIP', async () => {
    for (const h of hosts) nodes.push(startNode(lab, h, body(h)));
    for (const n of nodes) await waitStarted(n);
    for (const n of nodes) {
      expect(await greeting(lab, n.host.address)).toMatch(new RegExp(`^220 ${n.host.name}\\.lab\\.example `));
      // It said at start that it has corosync support (the libraries are loaded at run time)...
      await n.proc.waitLine((l) => l.includes('"msg":"cluster: corosync support available"') && l.includes('libcpg.so.4'));
      // ...why it owns nothing, and keeps trying.
      await n.proc.waitLine((l) => l.includes('cannot join corosync') && l.includes('ERR_COROSYNC_NOT_RUNNING'));
      expect(plumbed(lab, n.host)).toEqual([]);
      expect(await consoleCmd(n, 'cluster', 'info')).toMatch(/corosync: not connected \(ERR_COROSYNC_NOT_RUNNING/);
    }
  }, 60_000);

  it('joins when corosync comes up and takes the DuraVIPs, one per node', async () => {
    for (const h of hosts) lab.startCorosync(h);
    await lab.waitQuorate(hosts, true, { timeoutMs: 20_000 });
    for (const n of nodes) await n.proc.waitLine((l) => l.includes('cluster: joined the corosync group'), { timeoutMs: 15_000 });
    const byOwner = await waitFor('both nodes agree on one DuraVIP each, plumbed', async () => {
      const views = await Promise.all(nodes.map((n) => owners(n)));
      const got = new Map(VIPS.map((a) => [a, views[0]!.get(a)?.owner ?? null]));
      if ([...got.values()].some((o) => o === null)) return false;
      if (views.some((v) => VIPS.some((a) => v.get(a)?.owner !== got.get(a)))) return false;
      if (new Set(got.values()).size !== 2) return false;
      for (const n of nodes) {
        const mine = VIPS.filter((a) => got.get(a) === n.host.name).sort();
        if (JSON.stringify(plumbed(lab, n.host)) !== JSON.stringify(mine)) return false;
      }
      return got as Map<string, string>;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    for (const [a, o] of byOwner) await waitClientSees(lab, a, lab.host(o));
  }, 90_000);

  it('starts while its corosync is SIGSTOPped, and joins once corosync continues', async () => {
    const n = nodes[0]!;
    await n.proc.kill('SIGTERM');
    const cs = lab.corosync(n.host)!;
    process.kill(cs.pid, 'SIGSTOP');
    let continued = false;
    try {
      restartNode(lab, n);
      await waitStarted(n);
      expect(await greeting(lab, n.host.address)).toMatch(new RegExp(`^220 ${n.host.name}\\.lab\\.example `));
      expect(await consoleCmd(n, 'cluster', 'info')).toMatch(/corosync: not connected \(waiting for corosync to answer\)/);
      // The join waits for corosync's answer, and says so.
      await n.proc.waitLine((l) => l.includes('cluster: corosync has not answered the join for 5000 ms (stopped?)'), { timeoutMs: 15_000 });
      process.kill(cs.pid, 'SIGCONT');
      continued = true;
      await n.proc.waitLine((l) => l.includes('cluster: joined the corosync group'), { timeoutMs: 20_000 });
      await waitFor(`${n.host.name} owns a DuraVIP again`, async () => plumbed(lab, n.host).length === 1, { timeoutMs: 30_000, intervalMs: 200 });
    } finally {
      if (!continued) process.kill(cs.pid, 'SIGCONT');
    }
  }, 90_000);
});
