// `cluster drain` end to end: three real vipmta nodes with real corosync in network namespaces,
// Postfix's smtp-source injecting on n2 (the node drained) and on n1 while the drain runs, and the
// lab sink recording every delivery. n2 prefers two DuraVIPs (.201, .202), n1 one (.203); mail on
// n2 is on b201 (a DuraVIP) and on `default` (no Bind_Address), some of it deferred (its
// domain's server is down) and some held by the operator. `cluster drain n2` from n1: n2's
// addresses go to n1/n3, n2 answers 421 4.3.2 to new SMTP sessions, its whole queue moves (held
// mail stays held on the others), no message is lost (duplicates counted and printed), `mailq` on
// n2 reaches Total: 0; it stays drained across a restart; `cluster undrain n2` gives it its
// preferred addresses back.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCommand } from '../helpers/preconditions.js';
import { ClusterLab, waitFor, type LabHost, type LabProcess } from './harness.js';
import { consoleCmd, consoleTry, greeting, owners, restartNode, startNode, waitStarted, type NodeRun } from './vipmta-node.js';

const V201 = '198.51.100.201';
const V202 = '198.51.100.202';
const V203 = '198.51.100.203';
const SINK = { host: '198.51.100.100', port: 2525 };
/** The "down" server of defer.example and held.example: nothing listens there until the end. */
const LATE = { host: '198.51.100.100', port: 2526 };
const NAMES = ['n1', 'n2', 'n3'];
const here = path.dirname(fileURLToPath(import.meta.url));

function body(h: LabHost): string {
  return `Resolver_Servers = ( "127.0.0.1:9" )
Retry_Interval = 1s
Connect_Timeout = 3s
Command_Timeout = 5s
Data_Timeout = 5s
Domain "dest.example" { Routes = ( "${SINK.host}:${SINK.port}" ) }
Domain "lab.example" { Routes = ( "${SINK.host}:${SINK.port}" ) }
Domain "defer.example" { Routes = ( "${LATE.host}:${LATE.port}" ) }
Domain "held.example" { Routes = ( "${LATE.host}:${LATE.port}" ) }
ESMTP_Listener {
  Relay_Hosts = ( "198.51.100.0/24" )
  Listen "${h.address}:25" { Binding = "b201" }
  Listen "${h.address}:587" { }
}
Binding "b201" { Bind_Address = ${V201} Enable_Duravip = true Duravip_Preference = "n2" }
Binding "b202" { Bind_Address = ${V202} Enable_Duravip = true Duravip_Preference = "n2" }
Binding "b203" { Bind_Address = ${V203} Enable_Duravip = true Duravip_Preference = "n1" }
ECCluster_Listener { Listen "${h.address}:4802" { } }
Cluster {
  Cluster_Secret = "lab-secret"
  Mmove_Connections = 2
  View_Mature_Time = 1s
  If_Check_Interval = 2s
  Arp_Count = 3
  Arp_Interval = 100ms
  Topology "198.51.100.0/24" { Interface = "eth1" Cidrmask = 32 }
}
`;
}

let lab: ClusterLab;
const sinks: LabProcess[] = [];
const nodes = new Map<string, NodeRun>();
const node = (name: string): NodeRun => nodes.get(name)!;

interface Tx { remote: string; rcpt: string[] }
function deliveries(): Tx[] {
  return sinks.flatMap((s) => s.lines.flatMap((l) => {
    const o = JSON.parse(l) as { ev: string } & Tx;
    return o.ev === 'tx' ? [o] : [];
  }));
}
const delivered = (tag: string): string[] => deliveries().flatMap((t) => t.rcpt).filter((r) => r.includes(tag));

/** Recipients of the messages a node accepted (its reception records) whose address has `tag`. */
function received(n: NodeRun, tag: string): string[] {
  return n.proc.lines.filter((l) => l.includes('"event":"reception"') && l.includes(tag))
    .flatMap((l) => (JSON.parse(l) as { rcpt: string[] }).rcpt).filter((r) => r.includes(tag));
}

/** smtp-source in the client namespace; true when it exited 0 (a drained node makes it fail). */
async function inject(address: string, port: number, count: number, rcpt: string): Promise<boolean> {
  const r = await lab.execAsync(lab.client, ['smtp-source', '-s', '4', '-m', String(count), '-N', '-l', '1024',
    '-f', 'sender@lab.example', '-t', rcpt, `${address}:${port}`]);
  return r.code === 0;
}

async function ownersOn(name: string): Promise<Record<string, string | null>> {
  const o = await owners(node(name));
  return Object.fromEntries([V201, V202, V203].map((a) => [a, o.get(a)?.owner ?? null]));
}

/** Waits until every listed node shows the same owners and `ok` accepts them. */
async function agreedOwners(names: string[], what: string, ok: (o: Record<string, string | null>) => boolean): Promise<Record<string, string | null>> {
  return waitFor(what, async () => {
    const seen = await Promise.all(names.map(ownersOn));
    const first = JSON.stringify(seen[0]);
    return seen.every((s) => JSON.stringify(s) === first) && ok(seen[0]!) ? seen[0]! : null;
  }, { timeoutMs: 30_000, intervalMs: 200 });
}

/** Parts per state of the mailq rows of one domain on a node: [AQ, DQ, HQ]. */
async function mailqOf(n: NodeRun, domain: string): Promise<[number, number, number]> {
  const q = await consoleCmd(n, 'mailq', '-d', domain);
  const sum: [number, number, number] = [0, 0, 0];
  for (const m of q.matchAll(/^\S+\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)$/gm)) {
    sum[0] += Number(m[1]);
    sum[1] += Number(m[2]);
    sum[2] += Number(m[3]);
  }
  return sum;
}

beforeAll(async () => {
  requireCommand('smtp-source');
  lab = await ClusterLab.create({ nodes: 3, corosync: true });
  const sink = lab.spawn(lab.client, [process.execPath, path.join(here, 'lab-sink.mjs'), SINK.host, String(SINK.port)]);
  sinks.push(sink);
  await sink.waitLine((l) => l.includes('"ev":"listening"'), { timeoutMs: 15_000 });
  for (const h of lab.hosts) nodes.set(h.name, startNode(lab, h, body(h)));
  await Promise.all([...nodes.values()].map(waitStarted));
  await agreedOwners(NAMES, 'the preferred owners', (o) => o[V201] === 'n2' && o[V202] === 'n2' && o[V203] === 'n1');
}, 90_000);

afterAll(async () => {
  await lab?.destroy();
});

describe('cluster drain on three nodes', () => {
  it('drains n2 under load: addresses to n1/n3, 421 4.3.2, its whole queue moved (held stays held), nothing lost; it stays drained across a restart; undrain gives its addresses back', async () => {
    const n1 = node('n1');
    const n2 = node('n2');
    const n2Addr = lab.host('n2').address;
    const n1Addr = lab.host('n1').address;

    // n2's queue before the drain: deferred mail (its server is down) and held mail.
    expect(await inject(n2Addr, 25, 40, 'defer@defer.example')).toBe(true);
    expect(await inject(n2Addr, 587, 30, 'held@held.example')).toBe(true);
    await waitFor('n2 deferred the mail of the down server', async () => {
      const [d, h] = await Promise.all([mailqOf(n2, 'defer.example'), mailqOf(n2, 'held.example')]);
      return d[0] + d[1] === 40 && d[1] > 0 && h[0] + h[1] === 30 && h[1] > 0;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    // `hold` skips parts being tried at this moment: again until all 30 are held.
    await waitFor('30 held on n2', async () => {
      await consoleCmd(n2, 'hold', '-d', 'held.example');
      return (await mailqOf(n2, 'held.example'))[2] === 30;
    }, { timeoutMs: 30_000, intervalMs: 200 });

    // Load on n2 (both listeners: b201 and default) and on n1 (b201, moved to its owner).
    const loads = [
      inject(n2Addr, 25, 1500, 'l25@dest.example'),
      inject(n2Addr, 587, 1500, 'l587@dest.example'),
      inject(n1Addr, 25, 1500, 'l1@dest.example'),
    ];
    await waitFor('load under way on n2', () => received(n2, 'l25').length >= 150 && received(n2, 'l587').length >= 150, { timeoutMs: 60_000, intervalMs: 20 });
    const drainOut = await consoleCmd(n1, 'cluster', 'drain', 'n2');
    expect(drainOut).toMatch(/draining n2/);

    // n2's addresses go to n1/n3 (one each: the least loaded claims them); .203 stays with n1.
    const after = await agreedOwners(NAMES, 'n2 owns nothing', (o) => Object.values(o).every((x) => x !== null && x !== 'n2'));
    expect(after[V203]).toBe('n1');
    expect(new Set([after[V201], after[V202]])).toEqual(new Set(['n1', 'n3']));
    // New sessions on the drained node: 421 4.3.2.
    expect(await greeting(lab, n2Addr)).toMatch(/^421 4\.3\.2 n2\.lab\.example draining, try another server/);
    const results = await Promise.all(loads);
    expect(results[2]).toBe(true); // n1 took all of its share

    // Its whole queue leaves: mailq reaches Total: 0, membership shows the drain done.
    await waitFor('n2\'s queue empty', async () => (await consoleCmd(n2, 'mailq')).includes('Total: 0 message(s)'), { timeoutMs: 90_000, intervalMs: 250 });
    expect(await consoleCmd(n2, 'cluster', 'membership')).toMatch(/this node is DRAINED .*no mail left here/);
    expect(await consoleCmd(n1, 'cluster', 'membership')).toMatch(/\bn2\b.*\bDRAINED\b/);
    // And n1 sees that from n2's queue summary (sent within 2 s of n2's queue changing).
    await waitFor('n1 sees n2\'s queue empty', async () => /^n2 is DRAINED: no mail left there: it may be stopped/m.test(await consoleCmd(n1, 'cluster', 'membership')), { timeoutMs: 10_000, intervalMs: 200 });
    expect(await consoleCmd(n1, 'cluster', 'duravip', 'show')).toMatch(/^drained \(own nothing\): n2$/m);

    // The deferred and held mail left n2 by #mmove: the deferred to .201's new owner (b201), the
    // held (default binding, no Bind_Address) to n1, the first member in name order not drained.
    const moves = n2.proc.lines.filter((l) => l.includes('"event":"mmove"')).map((l) => JSON.parse(l) as { node: string; rcpt: string[] });
    const movedTo = (tag: string): Set<string> => new Set(moves.filter((m) => m.rcpt.some((r) => r.includes(tag))).map((m) => m.node));
    expect(moves.filter((m) => m.rcpt.some((r) => r.includes('defer'))).length).toBe(40);
    expect(moves.filter((m) => m.rcpt.some((r) => r.includes('held'))).length).toBe(30);
    expect(movedTo('defer')).toEqual(new Set([after[V201]]));
    expect(movedTo('held')).toEqual(new Set(['n1']));

    // Held mail is held on the others, all of it.
    const heldElsewhere = await waitFor('30 held on n1 and n3', async () => {
      const [a, b] = await Promise.all([mailqOf(n1, 'held.example'), mailqOf(node('n3'), 'held.example')]);
      return a[2] + b[2] >= 30 ? a[2] + b[2] : null;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    expect(heldElsewhere).toBe(30);

    // Nothing lost: every message accepted anywhere is delivered (the late server comes up for
    // the deferred and the released held mail).
    const late = lab.spawn(lab.client, [process.execPath, path.join(here, 'lab-sink.mjs'), LATE.host, String(LATE.port)]);
    sinks.push(late);
    await late.waitLine((l) => l.includes('"ev":"listening"'), { timeoutMs: 15_000 });
    for (const n of ['n1', 'n3']) await consoleCmd(node(n), 'release', '-d', 'held.example');
    const want = new Set([...NAMES.flatMap((n) => ['l25', 'l587', 'l1', 'defer', 'held'].flatMap((t) => received(node(n), t)))]);
    // Recipients n2 accepted (its own receptions, not moved copies): the messages injected there.
    const acceptedOnN2 = new Set(['l25', 'l587', 'defer', 'held'].flatMap((t) => received(n2, t)));
    await waitFor(`all ${want.size} accepted messages delivered`, () => {
      const got = new Set(deliveries().flatMap((t) => t.rcpt));
      return [...want].every((r) => got.has(r));
    }, { timeoutMs: 120_000, intervalMs: 500 });
    const all = ['l25', 'l587', 'l1', 'defer', 'held'].flatMap((t) => delivered(t));
    const duplicates = all.length - new Set(all).size;
    console.log(`drain under load: n2 accepted ${acceptedOnN2.size} (40 deferred, 30 held), ${want.size} accepted in all; ` +
      `${all.length} deliveries, ${duplicates} duplicate(s); owners after: ${JSON.stringify(after)}`);
    expect(new Set(all).size).toBe(want.size);
    // The b201 mail never left from n2's own address: the sink saw .201 or the default senders.
    const fromN2 = deliveries().filter((t) => t.remote === n2Addr && t.rcpt.some((r) => r.includes('l25')));
    expect(fromN2).toHaveLength(0);

    // A drained node that restarts stays drained (drain.json): owns nothing, answers 421.
    await n2.proc.kill('SIGTERM');
    restartNode(lab, n2);
    await waitStarted(n2);
    await waitFor('n2 back in the view, drained', async () => /\bn2\b.*\bDRAINED\b/.test(await consoleCmd(n1, 'cluster', 'membership')) && (await consoleCmd(n1, 'cluster', 'membership')).includes('3 member(s)'), { timeoutMs: 30_000, intervalMs: 200 });
    expect(await greeting(lab, n2Addr)).toMatch(/^421 4\.3\.2 /);
    expect(Object.values(await ownersOn('n2'))).not.toContain('n2');
    const unknown = await consoleTry(n1, 'cluster', 'drain', 'n9');
    expect(unknown.status).not.toBe(0);
    expect(unknown.stdout + unknown.stderr).toMatch(/n9 is not a member of this view/);

    // Undrain: it takes its preferred addresses back, and mail again.
    expect(await consoleCmd(node('n3'), 'cluster', 'undrain', 'n2')).toMatch(/undraining n2/);
    await agreedOwners(NAMES, 'the preferred owners again', (o) => o[V201] === 'n2' && o[V202] === 'n2' && o[V203] === 'n1');
    expect(await greeting(lab, n2Addr)).toMatch(/^220 n2\.lab\.example/);
    expect(await consoleCmd(n1, 'cluster', 'membership')).not.toMatch(/DRAINED/);
    expect(await inject(n2Addr, 25, 20, 'back@dest.example')).toBe(true);
    await waitFor('20 delivered from n2\'s address again', () => new Set(delivered('back')).size === 20, { timeoutMs: 30_000 });
    expect(new Set(deliveries().filter((t) => t.rcpt.some((r) => r.includes('back'))).map((t) => t.remote))).toEqual(new Set([V201]));
  }, 400_000);
});
