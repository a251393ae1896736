// The cluster console on a real node where corosync cannot be reached: the node runs in a network
// namespace of its own (corosync's IPC is per namespace), so whether the host runs corosync does not
// matter. It starts, says plainly why it owns no DuraVIP, and a node without a Cluster stanza
// answers the cluster commands with a stable code. Loopback only; no Topology, so no interface is
// touched. Needs CAP_SYS_ADMIN and CAP_NET_ADMIN for the namespace (test/helpers/preconditions.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';

afterEach(async () => {
  await killAll();
});

function config(port: number, cluster: string): string {
  return `Nodename = "solo"
Worker_Threads = 1
ESMTP_Listener { Listen "127.0.0.1:${port}" { } }
Spool { Directory = "./spool" Sync = none }
Control_Listener { Listen "./run/control.sock" { } }
${cluster}
`;
}

describe('cluster console without corosync', () => {
  it('starts, logs that corosync is not running, and shows it on the console', async () => {
    const node = startVipmta(config(await freePort(), 'Cluster { View_Mature_Time = 2s }'), { privateNetwork: true });
    await node.waitStarted();
    const rec = await node.waitForLog((r) => r.msg.startsWith('cluster: cannot join corosync'));
    expect(rec.code).toBe('ERR_COROSYNC_NOT_RUNNING');
    expect(rec.msg).toMatch(/this node owns no DuraVIP until it can/);
    const info = await node.console('cluster', 'info');
    expect(info.status).toBe(0);
    expect(info.stdout).toMatch(/^node: solo/m);
    expect(info.stdout).toMatch(/^corosync: not connected \(ERR_COROSYNC_NOT_RUNNING: /m);
    const show = await node.console('cluster', 'duravip', 'show');
    expect(show.stdout).toMatch(/^no election yet \(corosync: not connected/);
    const move = await node.console('cluster', 'duravip', 'move', '192.0.2.1', 'to', 'solo');
    expect(move.status).toBe(1);
    expect(move.stderr).toMatch(/ERR_CLUSTER_REFUSED|no election has run yet/);
    const bad = await node.console('cluster', 'duravip', 'move', '192.0.2.1', 'solo');
    expect(bad.stderr).toMatch(/usage: cluster duravip move IP to NODE/);
    const all = await node.console('--cluster', 'version');
    expect(all.status).toBe(1);
    expect(all.stderr).toMatch(/ERR_CLUSTER_REFUSED|not in the console group \(corosync: ERR_COROSYNC_NOT_RUNNING/);
  });

  it('answers the cluster commands with ERR_CLUSTER_DISABLED without a Cluster stanza', async () => {
    const node = startVipmta(config(await freePort(), ''));
    await node.waitStarted();
    const r = await node.console('cluster', 'membership');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/without a Cluster stanza/);
  });

  it('runs console --cluster here on a node without a Cluster stanza, and says it is a single node', async () => {
    const node = startVipmta(config(await freePort(), ''));
    await node.waitStarted();
    const r = await node.console('--cluster', 'version');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^=== solo \(single node: no Cluster stanza\) ===\nvipmta /);
    const other = await node.console('--node', 'n2', 'version');
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/runs without a Cluster stanza: there is no node n2/);
    const bad = await node.console('--cluster', '--timeout', 'soon', 'version');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--timeout takes a duration like 10s/);
    const flag = await node.console('config', 'reload', '--cluster');
    expect(flag.status).toBe(1);
    expect(flag.stderr).toMatch(/unknown option --cluster for config reload/);
  });
});
