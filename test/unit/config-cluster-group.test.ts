// The config group (src/cluster/config-group.ts) on an in-memory bus that delivers every message to
// every member of a partition in one order, as CPG does, with fake repositories whose revision ids
// depend only on the ChangeSet and its base (as git's do): a commit runs everywhere with the same id;
// one member's errors refuse it everywhere; a cut-off member refuses commits, takes no address while
// behind after the heal, fetches what it missed and runs the latest; the proposer's abort.
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigGroup } from '../../src/cluster/config-group.js';
import { configKey } from '../../src/cluster/config-wire.js';
import type { ChangeSet, ConfigNodeHost, ConfigRepository, ProposeResult } from '../../src/config/repo/types.js';
import type { CorosyncGroup, CpgConfChange } from '../../src/native/index.js';

const KEY = configKey('secret');
const silent = pino({ level: 'silent' });

class Bus {
  readonly members: FakeGroup[] = [];
  live(part: number): FakeGroup[] {
    return this.members.filter((m) => !m.closed && m.part === part);
  }
  deliver(from: FakeGroup, data: Buffer): void {
    const to = this.live(from.part);
    setImmediate(() => { for (const m of to) if (!m.closed && m.part === from.part) m.emit('message', from.nodeId, from.pid, Buffer.from(data)); });
  }
  change(part: number, joined: FakeGroup[], left: FakeGroup[]): void {
    const members = this.live(part);
    const c: CpgConfChange = {
      group: 'vipmta-config', members: members.map((m) => ({ nodeId: m.nodeId, pid: m.pid })),
      left: left.map((m) => ({ nodeId: m.nodeId, pid: m.pid, reason: 'nodedown' })),
      joined: joined.map((m) => ({ nodeId: m.nodeId, pid: m.pid, reason: 'join' })),
    };
    const quorate = members.length * 2 > this.members.filter((m) => !m.closed).length;
    setImmediate(() => {
      for (const m of members) {
        m.quorum = { quorate, ringSeq: 0, members: members.map((x) => x.nodeId) };
        m.emit('confchg', c);
        m.emit('quorum', m.quorum);
      }
    });
  }
  /** Cuts `m` off the others (both sides see a view change and their quorum). */
  cut(m: FakeGroup): void {
    const others = this.members.filter((x) => x !== m);
    m.part = 1;
    this.change(0, [], [m]);
    this.change(1, [], others);
  }
  heal(m: FakeGroup): void {
    m.part = 0;
    this.change(0, [m], []);
  }
}

class FakeGroup extends EventEmitter {
  closed = false;
  part = 0;
  quorumType = 0;
  quorum = { quorate: false, ringSeq: 0, members: [] as number[] };
  readonly localNodeId: number;
  constructor(private readonly bus: Bus, readonly nodeId: number, readonly pid: number) { super(); this.localNodeId = nodeId; }
  send(data: Buffer): void { if (!this.closed) this.bus.deliver(this, data); }
  close(): void { this.closed = true; }
}

/** A repository whose revision ids, like git's, depend only on the change and its parent. */
class FakeRepo implements Pick<ConfigRepository, 'dir' | 'head' | 'has' | 'commit' | 'bundle' | 'takeBundle'> {
  readonly dir = '/nonexistent';
  history: { rev: string; cs: ChangeSet }[] = [];
  async head(): Promise<string> { return this.history.at(-1)?.rev ?? ''; }
  async has(rev: string): Promise<boolean> { return this.history.some((h) => h.rev === rev); }
  async commit(cs: ChangeSet): Promise<string> {
    if (cs.base !== (await this.head())) throw new Error('stale');
    const rev = crypto.createHash('sha1').update(JSON.stringify([cs.base, cs.message, cs.author, cs.time, cs.files.map((f) => [f.path, f.content?.toString('base64') ?? null])])).digest('hex');
    this.history.push({ rev, cs });
    return rev;
  }
  async bundle(since: string): Promise<Buffer> {
    const at = since === '' ? 0 : this.history.findIndex((h) => h.rev === since) + 1;
    return Buffer.from(JSON.stringify(this.history.slice(at).map((h) => ({ rev: h.rev, cs: { ...h.cs, files: [] } }))));
  }
  async takeBundle(b: Buffer, expectHead: string): Promise<void> {
    const revs = JSON.parse(b.toString()) as { rev: string; cs: ChangeSet }[];
    if (revs.at(-1)?.rev !== expectHead) throw new Error('bundle does not end at the head');
    this.history.push(...revs);
  }
}

interface Node {
  name: string; repo: FakeRepo; group: ConfigGroup; fake: FakeGroup | null;
  running: string; auto: boolean; errors: string[]; gate: boolean[]; switched: string[];
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function until(what: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !what(); i++) await tick();
  expect(what()).toBe(true);
}

function cluster(count: number): { bus: Bus; nodes: Node[]; aborts: (() => void)[] } {
  const bus = new Bus();
  const nodes: Node[] = [];
  const aborts: (() => void)[] = [];
  for (let i = 1; i <= count; i++) {
    const repo = new FakeRepo();
    const n: Node = { name: `n${i}`, repo, fake: null, running: '', auto: true, errors: [], gate: [], switched: [], group: null as unknown as ConfigGroup };
    const host: ConfigNodeHost = {
      repo: repo as unknown as ConfigRepository, node: n.name,
      check: async () => n.errors,
      switchTo: async (rev) => { n.running = rev; n.switched.push(rev); return { ok: true, message: 'ok' }; },
      running: () => n.running, autoApply: () => n.auto, drift: async () => [],
    };
    n.group = new ConfigGroup({
      host, logger: silent, key: () => KEY, pid: 100 + i,
      height: async () => repo.history.length,
      fetch: async (node, since) => {
        const from = nodes.find((x) => x.name === node)!;
        return { head: await from.repo.head(), bundle: await from.repo.bundle(since) };
      },
      gate: (open) => n.gate.push(open),
      setTimer: (fn) => { aborts.push(fn); return () => undefined; },
      join: async () => {
        const g = new FakeGroup(bus, i, 100 + i);
        n.fake = g;
        bus.members.push(g);
        bus.change(0, [g], []);
        return g as unknown as CorosyncGroup;
      },
    });
    nodes.push(n);
  }
  return { bus, nodes, aborts };
}

async function started(count: number): Promise<{ bus: Bus; nodes: Node[]; aborts: (() => void)[] }> {
  const c = cluster(count);
  for (const n of c.nodes) {
    n.group.start();
    await until(() => n.fake !== null);
  }
  await until(() => c.nodes.every((n) => n.gate.at(-1) === true));
  return c;
}

const change = (base: string, text: string): ChangeSet => ({ base, message: `set ${text}`, author: 'Op <op@x.test>', time: 1_700_000_000, files: [{ path: 'global/vipmta.conf', content: Buffer.from(text) }] });

describe('the config group', () => {
  it('a commit on n1 is committed with the same id and run on every member, and status says so', async () => {
    const { nodes } = await started(3);
    const r = await nodes[0]!.group.propose(change('', 'one'));
    expect(r).toMatchObject({ ok: true, message: expect.stringMatching(/^committed [0-9a-f]{40} on n1, n2, n3; running it here/) });
    const rev = (r as { rev: string }).rev;
    await until(() => nodes.every((n) => n.running === rev));
    for (const n of nodes) expect(n.repo.history.map((h) => h.rev)).toEqual([rev]);
    await until(() => nodes.every((n) => n.group['round'].allStates().every((s) => s.running === rev)));
    const status = await nodes[1]!.group.status();
    expect(status.map((s) => [s.node, s.head, s.running])).toEqual([['n1', rev, rev], ['n2', rev, rev], ['n3', rev, rev]]);
  });

  it('one member\'s errors refuse the change everywhere and nobody commits', async () => {
    const { nodes } = await started(3);
    nodes[2]!.errors = ['n3/vipmta.conf:4:7: Interface eth9: no such interface on n3'];
    const r = await nodes[0]!.group.propose(change('', 'bad'));
    expect(r).toEqual({ ok: false, message: 'refused by n3; nothing was committed', rejected: [{ node: 'n3', errors: ['n3/vipmta.conf:4:7: Interface eth9: no such interface on n3'] }] });
    for (const n of nodes) expect(n.repo.history).toEqual([]);
  });

  it('a cut-off member refuses commits, the majority commits twice, and the member catches up before it takes an address', async () => {
    const { bus, nodes } = await started(3);
    const [n1, , n3] = nodes as [Node, Node, Node];
    const first = await n1.group.propose(change('', 'one')) as Extract<ProposeResult, { ok: true }>;
    await until(() => nodes.every((n) => n.running === first.rev));
    bus.cut(n3.fake!);
    await until(() => !n3.group['round'].agreed().quorate && n1.group['round'].agreed().quorate && !n1.group['round'].busy);
    expect(await n3.group.propose(change(first.rev, 'minority'))).toMatchObject({ ok: false, message: expect.stringMatching(/this partition has no quorum/) });
    const second = await n1.group.propose(change(first.rev, 'two')) as Extract<ProposeResult, { ok: true }>;
    expect(second.message).toMatch(/on n1, n2;/);
    await until(() => !n1.group['round'].busy);
    const third = await n1.group.propose(change(second.rev, 'three')) as Extract<ProposeResult, { ok: true }>;
    expect(third.ok).toBe(true);
    expect(n3.repo.history.length).toBe(1);
    const gates = n3.gate.length;
    bus.heal(n3.fake!);
    await until(() => n3.running === third.rev && n3.gate.at(-1) === true);
    expect(n3.gate.slice(gates)).toEqual([false, true]);
    expect(n3.repo.history.map((h) => h.rev)).toEqual(n1.repo.history.map((h) => h.rev));
    expect(n3.switched.at(-1)).toBe(third.rev);
  });

  it('the proposer\'s abort ends a proposal a member never votes on', async () => {
    const { nodes, aborts } = await started(3);
    let hold: () => void = () => undefined;
    const stuck = new Promise<string[]>((r) => (hold = () => r([])));
    const n2 = nodes[1]!;
    n2.errors = [];
    (n2.group as unknown as { o: { host: ConfigNodeHost } }).o.host.check = () => stuck;
    const p = nodes[0]!.group.propose(change('', 'slow'));
    await until(() => aborts.length > 0 && nodes[0]!.group['round']['open']?.votes.size === 2);
    aborts.at(-1)!();
    expect(await p).toMatchObject({ ok: false, message: expect.stringMatching(/^refused: no decision within 30 s \(no vote from n2\)/) });
    hold();
    for (const n of nodes) expect(n.repo.history).toEqual([]);
  });

  it('a node restarted between the commit and its switch runs the agreed head once it sees the cluster', async () => {
    const c = cluster(3);
    const rev = await c.nodes[0]!.repo.commit(change('', 'one'));
    for (const n of c.nodes.slice(1)) await n.repo.commit(change('', 'one'));
    for (const n of c.nodes) n.running = n.name === 'n2' ? '' : rev;
    for (const n of c.nodes) {
      n.group.start();
      await until(() => n.fake !== null);
    }
    await until(() => c.nodes[1]!.running === rev);
    expect(c.nodes[1]!.switched).toEqual([rev]);
    expect(c.nodes[0]!.switched).toEqual([]);
  });

  it('a replayed proposal is ignored: a refused change cannot be committed by sending its message again', async () => {
    const { bus, nodes } = await started(3);
    const sent: Buffer[] = [];
    const n1 = nodes[0]!.fake!;
    const send = n1.send.bind(n1);
    n1.send = (d: Buffer) => { sent.push(Buffer.from(d)); send(d); };
    nodes[2]!.errors = ['n3/vipmta.conf:1:1: no'];
    expect(await nodes[0]!.group.propose(change('', 'x'))).toMatchObject({ ok: false, rejected: [{ node: 'n3' }] });
    nodes[2]!.errors = [];
    const propose = sent.find((b) => b.subarray(32).toString().startsWith('{"t":"P"'))!;
    bus.deliver(n1, propose);
    for (let i = 0; i < 50; i++) await tick();
    for (const n of nodes) expect(n.repo.history).toEqual([]);
    for (const n of nodes) expect(n.group['round'].busy).toBe(false);
  });

  it('refuses a change over 512 KiB before sending it', async () => {
    const { nodes } = await started(1);
    const big = { ...change('', 'x'), files: [{ path: 'global/big', content: Buffer.alloc(600 * 1024) }] };
    expect(await nodes[0]!.group.propose(big)).toMatchObject({ ok: false, message: expect.stringMatching(/512 KiB/) });
  });
});
