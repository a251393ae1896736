// The cluster test harness itself: namespaces and veths made and removed without touching the
// machine's own network, corosync per host with a private /run forming a quorate membership, and
// the faults later tests rely on (kill a node's corosync, isolate a node). Main test thread; waits
// on `ip` and `corosync-quorumtool` in child processes.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterLab, descendantPids, pidAlive, requireNetworkCapabilities, waitFor, type LabHost } from './harness.js';

function rootLinks(): string[] {
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>;
  return links.map((l) => l.ifname).sort();
}

function netnsList(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

describe('ClusterLab network', () => {
  it('passes the capability check as root', () => {
    expect(() => requireNetworkCapabilities()).not.toThrow();
  });

  it('builds hosts and a client on one bridge without touching the root namespace, and removes everything', async () => {
    const before = rootLinks();
    const lab = await ClusterLab.create({ nodes: 2 });
    const names = lab.namespaceNames();
    try {
      expect(names).toHaveLength(4);
      expect(netnsList()).toEqual(expect.arrayContaining(names));
      expect(names.every((n) => n.includes(lab.id))).toBe(true);
      // A parallel run might add or remove its own links meanwhile: look only for links of ours.
      expect(rootLinks().filter((l) => !before.includes(l) && /^(p\d|pc|eth1|br0)$/.test(l))).toEqual([]);
      const [n1, n2] = lab.hosts as [LabHost, LabHost];
      // Reachability over the bridge; no route leaves the lab.
      expect(await lab.tcpProbe(n1, n2.address)).toBe('refused');
      expect(await lab.tcpProbe(lab.client, n1.address)).toBe('refused');
      expect(await lab.tcpProbe(n1, '192.0.2.1', 9, 500)).toBe('ENETUNREACH');
      expect(lab.exec(n1, ['ip', '-4', 'route', 'show', 'default'])).toBe('');
      expect(new Set(lab.hosts.map((h) => h.mac).concat(lab.client.mac)).size).toBe(3);
    } finally {
      await lab.destroy();
    }
    expect(netnsList().filter((n) => names.includes(n))).toEqual([]);
    expect(existsSync(lab.dir)).toBe(false);
  });

  it('gives two labs distinct names so parallel runs do not collide', async () => {
    const [a, b] = await Promise.all([ClusterLab.create({ nodes: 1 }), ClusterLab.create({ nodes: 1 })]);
    try {
      expect(a.id).not.toBe(b.id);
      expect(a.namespaceNames().filter((n) => b.namespaceNames().includes(n))).toEqual([]);
    } finally {
      await a.destroy();
      await b.destroy();
    }
  });

  it('kills the processes it started by PID on destroy', async () => {
    const lab = await ClusterLab.create({ nodes: 1 });
    const p = lab.spawn(lab.hosts[0]!, ['sleep', '600']);
    await lab.destroy();
    await p.exited;
    expect(p.exitSignal).toBe('SIGKILL');
  });
});

describe('ClusterLab process trees', () => {
  it('kills a forking process with its children (killTree), and destroy reaches children too', async () => {
    const lab = await ClusterLab.create({ nodes: 1 });
    try {
      const host = lab.hosts[0]!;
      // The shell stays the parent of two sleeps, like keepalived and its VRRP child.
      const p = lab.spawn(host, ['sh', '-c', 'sleep 600 & sleep 600 & echo started; wait']);
      await p.waitLine((l) => l === 'started');
      const children = await waitFor('two children', () => (descendantPids(p.pid).length === 2 ? descendantPids(p.pid) : null));
      await p.killTree('SIGKILL');
      expect(children.filter(pidAlive)).toEqual([]);
      const q = lab.spawn(host, ['sh', '-c', 'sleep 600 & echo started; wait']);
      await q.waitLine((l) => l === 'started');
      const orphanable = await waitFor('one child', () => (descendantPids(q.pid).length === 1 ? descendantPids(q.pid) : null));
      await lab.destroy();
      await waitFor('the child killed by destroy', () => orphanable.every((pid) => !pidAlive(pid)));
    } finally {
      await lab.destroy();
    }
  });
});

describe('ClusterLab corosync', () => {
  let lab: ClusterLab;
  let n1: LabHost;
  let n2: LabHost;
  let n3: LabHost;

  beforeAll(async () => {
    lab = await ClusterLab.create({ nodes: 3, corosync: true });
    [n1, n2, n3] = lab.hosts as [LabHost, LabHost, LabHost];
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('forms one quorate membership of all three hosts', async () => {
    for (const h of lab.hosts) {
      expect(await lab.quorumStatus(h)).toEqual({ quorate: true, members: [1, 2, 3] });
    }
  });

  it('gives each corosync its own /run for its pid file', () => {
    for (const h of lab.hosts) {
      const pid = Number(readFileSync(path.join(h.dir, 'run', 'corosync.pid'), 'utf8').trim());
      expect(pid).toBe(lab.corosync(h)!.pid);
    }
  });

  it('answers only inside the host\'s namespace (corosync IPC is per network namespace)', async () => {
    expect(await lab.quorumStatus(lab.client)).toBeNull();
  });

  it('loses quorum on an isolated host and keeps it on the pair; healing restores all three', async () => {
    lab.isolate(n3);
    const t0 = Date.now();
    await lab.waitQuorate([n3], false, { timeoutMs: 10_000 });
    await lab.waitQuorate([n1, n2], true, { members: [1, 2], timeoutMs: 10_000 });
    const split = Date.now() - t0;
    lab.heal(n3);
    await lab.waitQuorate([n1, n2, n3], true, { members: [1, 2, 3], timeoutMs: 15_000 });
    console.log(`isolate: pair has a 2-member view after ${split} ms (token ${lab.token} ms)`);
  });

  it('gives the survivors a new quorate view after SIGKILL of one corosync, and removes its shared memory', async () => {
    const pid = lab.corosync(n3)!.pid;
    const t0 = Date.now();
    await lab.killCorosync(n3);
    await lab.waitQuorate([n1, n2], true, { members: [1, 2], timeoutMs: 10_000, intervalMs: 20 });
    console.log(`kill -9 corosync: new view after ${Date.now() - t0} ms (token ${lab.token} ms)`);
    expect(readdirSync('/dev/shm').filter((f) => f.startsWith(`qb-${pid}-`))).toEqual([]);
    expect(await lab.quorumStatus(n3)).toBeNull();
  });
});
