// Issue 12: an address is on at most one node at every instant. Three real vipmta nodes with real
// corosync in network namespaces share six addresses while a sampler reads every node's plumbed
// addresses every few tens of ms (sampler.ts: a duplicate counts only when two consecutive samples show it).
// Scenarios in order, each waiting on a condition: start-up rebalance (one node first, then two
// more), SIGKILL of a vipmta (its guardian removes its addresses), its restart, death of a whole node
// (vipmta and corosync killed), a console move and a planned shutdown (break before make); last,
// `vipmta release-addresses` after a vipmta killed with its guardian.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath } from '../helpers/node-process.js';
import { ClusterLab, descendantPids, waitFor } from './harness.js';
import { AddressSampler, plumbedOn } from './sampler.js';
import { consoleCmd, owners, restartNode, startNode, waitStarted, type NodeRun } from './vipmta-node.js';

const VIPS = [201, 202, 203, 204, 205, 206].map((i) => `198.51.100.${i}`);

const BODY = `ESMTP_Listener {
${VIPS.map((a) => `  Listen "${a}:25" { }`).join('\n')}
}
${VIPS.map((a) => `Binding "b${a.split('.')[3]}" { Bind_Address = ${a} Enable_Duravip = true }`).join('\n')}
Cluster {
  View_Mature_Time = 1s
  If_Check_Interval = 2s
  Arp_Count = 2
  Arp_Interval = 100ms
  Topology "198.51.100.0/24" { Interface = "eth1" Cidrmask = 32 }
}
`;

let lab: ClusterLab;
let sampler: AddressSampler;
const nodes = new Map<string, NodeRun>();
const node = (name: string): NodeRun => nodes.get(name)!;

/** Every listed node agrees on the owners, each owns `perNode`, and has plumbed exactly what it owns. */
async function waitSettled(names: string[], perNode: number, what: string): Promise<Map<string, string>> {
  try {
    return await waitSettledOnce(names, perNode, what);
  } catch (e) {
    // What each node said, for the failure report.
    for (const n of names) console.log(`--- ${n}:\n${node(n).proc.lines.filter((l) => !l.includes('console command')).slice(-25).join('\n')}\n${node(n).proc.stderrLines.slice(-10).join('\n')}`);
    throw e;
  }
}

async function waitSettledOnce(names: string[], perNode: number, what: string): Promise<Map<string, string>> {
  return waitFor(`settled cluster (${what})`, async () => {
    const views = await Promise.all(names.map((n) => owners(node(n))));
    const byOwner = new Map<string, string>();
    for (const a of VIPS) {
      const o = views[0]!.get(a)?.owner ?? null;
      if (o === null || !names.includes(o)) return false;
      byOwner.set(a, o);
    }
    for (const v of views.slice(1)) for (const a of VIPS) if (v.get(a)?.owner !== byOwner.get(a)) return false;
    for (const n of names) {
      const mine = VIPS.filter((a) => byOwner.get(a) === n).sort();
      if (mine.length !== perNode) return false;
      if (JSON.stringify(await plumbedOn(lab.host(n))) !== JSON.stringify(mine)) return false;
    }
    return byOwner;
  }, { timeoutMs: 30_000, intervalMs: 100 });
}

/** The duplicates the sampler saw in one step, as text for the assertion message. */
function duplicatesIn(step: string): string[] {
  return sampler.duplicates().filter((d) => d.step === step).map((d) => `${d.address} on ${d.hosts.join('+')} at ${d.at[0]}..${d.at[1]}`);
}

beforeAll(async () => {
  lab = await ClusterLab.create({ nodes: 3, corosync: true });
  sampler = new AddressSampler(lab, 10);
  sampler.start();
}, 60_000);

afterAll(async () => {
  await sampler?.stop();
  if (sampler !== undefined) {
    const steps = [...new Set(sampler.samples.map((s) => s.step))];
    const per = steps.map((st) => `${st} ${sampler.samples.filter((s) => s.step === st).length}/${sampler.duplicates().filter((d) => d.step === st).length}`);
    console.log(`sampler: ${sampler.samples.length} samples (median period ${sampler.medianPeriod()} ms); samples/duplicates per step: ${per.join(', ')}`);
  }
  await lab?.destroy();
});

describe('an address is never plumbed on two nodes', () => {
  it('start-up: one node takes all six, the two that join later get theirs without an overlap', async () => {
    sampler.mark('start-up');
    nodes.set('n1', startNode(lab, lab.host('n1'), BODY));
    await waitStarted(node('n1'));
    await waitSettled(['n1'], 6, 'n1 alone');
    for (const n of ['n2', 'n3']) nodes.set(n, startNode(lab, lab.host(n), BODY));
    await Promise.all(['n2', 'n3'].map((n) => waitStarted(node(n))));
    await waitSettled(['n1', 'n2', 'n3'], 2, 'rebalanced at start-up');
    await sampler.next();
    expect(duplicatesIn('start-up')).toEqual([]);
  });

  it('SIGKILL of a vipmta: its addresses are gone from its node before the others plumb them', async () => {
    sampler.mark('crash');
    const held = await plumbedOn(lab.host('n2'));
    expect(held).toHaveLength(2);
    const mark = node('n2').proc.lines.length;
    const killedAt = Date.now();
    await node('n2').proc.kill('SIGKILL');
    // Its guardian removes them at once (and says so on vipmta's stdout, which it shares); without
    // one they would stay until their lifetime ends.
    const said = await waitFor('the guardian\'s line', () => node('n2').proc.lines.slice(mark).find((l) => l.includes('DuraVIP guardian')));
    for (const a of held) expect(said).toContain(a);
    // Observation (same clock): how long the guardian took, against DEPARTED_GUARD_MS (50 ms).
    console.log(`vipmta SIGKILL: its guardian removed ${held.join(', ')} ${Date.parse((JSON.parse(said) as { time: string }).time) - killedAt} ms after the kill`);
    await waitFor('n2 to hold nothing', async () => (await plumbedOn(lab.host('n2'))).length === 0, { timeoutMs: 20_000 });
    await waitSettled(['n1', 'n3'], 3, 'after the crash');
    await sampler.next();
    expect(duplicatesIn('crash')).toEqual([]);

    sampler.mark('restart');
    restartNode(lab, node('n2'));
    await waitStarted(node('n2'));
    await waitSettled(['n1', 'n2', 'n3'], 2, 'after the restart');
    await sampler.next();
    expect(duplicatesIn('restart')).toEqual([]);
  });

  it('death of a whole node (vipmta and corosync killed): the others take over, and it comes back', async () => {
    sampler.mark('node death');
    await Promise.all([node('n3').proc.kill('SIGKILL'), lab.killCorosync(lab.host('n3'))]);
    await waitFor('n3 to hold nothing', async () => (await plumbedOn(lab.host('n3'))).length === 0, { timeoutMs: 20_000 });
    await waitSettled(['n1', 'n2'], 3, 'after the node died');
    await sampler.next();
    expect(duplicatesIn('node death')).toEqual([]);

    sampler.mark('node return');
    lab.startCorosync(lab.host('n3'));
    await lab.waitQuorate(lab.hosts, true, { timeoutMs: 20_000, members: [1, 2, 3] });
    restartNode(lab, node('n3'));
    await waitStarted(node('n3'));
    await waitSettled(['n1', 'n2', 'n3'], 2, 'after the node came back');
    await sampler.next();
    expect(duplicatesIn('node return')).toEqual([]);
  });

  it('a partition: the cut-off node releases, the pair takes over, and healing rebalances', async () => {
    sampler.mark('partition');
    const n3 = lab.host('n3');
    lab.isolate(n3);
    try {
      await waitFor('n3 to hold nothing', async () => (await plumbedOn(n3)).length === 0, { timeoutMs: 20_000 });
      await waitSettled(['n1', 'n2'], 3, 'the pair after the cut');
      await sampler.next();
    } finally {
      lab.heal(n3);
    }
    // Measured, not asserted: both sides see the ring break at the token timeout, and the cut-off
    // side's notice can lag the majority's by up to a token rotation (docs/cluster.md, "Never on two nodes").
    console.log(`partition: duplicate samples ${JSON.stringify(duplicatesIn('partition'))}`);
    sampler.mark('heal');
    await lab.waitQuorate(lab.hosts, true, { timeoutMs: 20_000, members: [1, 2, 3] });
    await waitSettled(['n1', 'n2', 'n3'], 2, 'after healing');
    await sampler.next();
    expect(duplicatesIn('heal')).toEqual([]);
  });

  it('a console move and a planned shutdown hand over break before make', async () => {
    sampler.mark('move');
    const before = await owners(node('n1'));
    const a = VIPS.find((x) => before.get(x)?.owner === 'n1')!;
    expect(await consoleCmd(node('n1'), 'cluster', 'duravip', 'move', a, 'to', 'n2')).toMatch(/moving/);
    await waitFor(`${a} on n2 only`, async () => {
      const [p1, p2] = await Promise.all([plumbedOn(lab.host('n1')), plumbedOn(lab.host('n2'))]);
      return p2.includes(a) && !p1.includes(a);
    }, { timeoutMs: 15_000 });
    await sampler.next();
    expect(duplicatesIn('move')).toEqual([]);

    sampler.mark('planned shutdown');
    await node('n1').proc.kill('SIGTERM');
    expect(node('n1').proc.exitCode).toBe(0);
    expect(await plumbedOn(lab.host('n1'))).toEqual([]);
    await waitSettled(['n2', 'n3'], 3, 'after the planned shutdown');
    await sampler.next();
    expect(duplicatesIn('planned shutdown')).toEqual([]);
    // The sampler did look, and saw every address somewhere.
    expect(sampler.samples.filter((s) => s.step === 'planned shutdown').length).toBeGreaterThan(2);
  });

  it('release-addresses (the systemd unit\'s ExecStopPost) removes what a node killed with its guardian left', async () => {
    // Not duplicate-free by design: with the guardian dead too, the addresses stay until this runs.
    sampler.mark('unit killed');
    const held = await plumbedOn(lab.host('n2'));
    expect(held.length).toBeGreaterThan(0);
    const guardian = descendantPids(node('n2').proc.pid).find((p) => readFileSync(`/proc/${p}/cmdline`, 'latin1').includes('guardian-main'));
    expect(guardian).toBeDefined();
    process.kill(guardian!, 'SIGKILL');
    await node('n2').proc.kill('SIGKILL');
    expect(await plumbedOn(lab.host('n2'))).toEqual(held);
    const out = lab.exec(lab.host('n2'), [process.execPath, cliPath, 'release-addresses', '-c', node('n2').conf]);
    expect(out).toMatch(/^removed /);
    expect(out.trim().slice('removed '.length).split(', ').sort()).toEqual(held);
    expect(await plumbedOn(lab.host('n2'))).toEqual([]);
  });
});
