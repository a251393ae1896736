// `console --cluster` over the console group: the wire form and its HMAC (a forged request or reply
// is refused), chunked replies, the summed mailq, and the group itself on an in-memory bus that
// delivers every message to every member in one order as CPG does: every member runs a request
// once, a silent member gets "no answer within" after the (fake) timeout, a member that leaves
// is said at once, --node to a name not in the view names the members.
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConsoleGroup } from '../../../src/cluster/console-group.js';
import { commandScope, formatGathered, sumMailq } from '../../../src/cluster/console-report.js';
import { buildQueueSummary, SUMMARY_PACE_MS } from '../../../src/cluster/queue-summary.js';
import { consoleKey, decodeConsoleMessage, decodeReplyBody, encodeConsoleMessage, replyChunks, type ReplyBody } from '../../../src/cluster/console-wire.js';
import type { CorosyncGroup, CpgConfChange } from '../../../src/native/index.js';

const KEY = consoleKey('the cluster secret');
const silent = pino({ level: 'silent' });

describe('console group messages', () => {
  it('round-trips a request and a reply chunk', () => {
    const q = encodeConsoleMessage(KEY, { type: 'request', from: '1:100', node: 'n1', id: 7, target: null, argv: ['mailq', '-d', 'x.test'] });
    expect(decodeConsoleMessage(KEY, q, '1:100')).toEqual({ ok: true, message: { type: 'request', from: '1:100', node: 'n1', id: 7, target: null, argv: ['mailq', '-d', 'x.test'] } });
    const r = encodeConsoleMessage(KEY, { type: 'reply', from: '2:200', node: 'n2', to: '1:100', id: 7, seq: 0, of: 1, body: Buffer.from('{"ok":true,"output":"x"}') });
    const d = decodeConsoleMessage(KEY, r, '2:200');
    expect(d.ok && d.message.type === 'reply' && d.message.body.toString()).toBe('{"ok":true,"output":"x"}');
  });

  it('refuses a reply or request made without the secret, altered, or sent by another member', () => {
    const other = consoleKey('another secret');
    const forged = encodeConsoleMessage(other, { type: 'reply', from: '2:200', node: 'n2', to: '1:100', id: 7, seq: 0, of: 1, body: Buffer.from('{"ok":true,"output":"all fine"}') });
    expect(decodeConsoleMessage(KEY, forged, '2:200')).toMatchObject({ ok: false, error: expect.stringMatching(/HMAC/) });
    const req = encodeConsoleMessage(other, { type: 'request', from: '3:300', node: 'n3', id: 1, target: null, argv: ['config', 'reload'] });
    expect(decodeConsoleMessage(KEY, req, '3:300')).toMatchObject({ ok: false, error: expect.stringMatching(/HMAC/) });
    const good = encodeConsoleMessage(KEY, { type: 'request', from: '3:300', node: 'n3', id: 1, target: null, argv: ['config', 'reload'] });
    const altered = Buffer.from(good);
    altered[altered.length - 3] = altered[altered.length - 3]! ^ 1;
    expect(decodeConsoleMessage(KEY, altered, '3:300')).toMatchObject({ ok: false, error: expect.stringMatching(/HMAC/) });
    // Replayed by another process (with the secret or not): corosync says who sent it.
    expect(decodeConsoleMessage(KEY, good, '3:301')).toMatchObject({ ok: false, error: expect.stringMatching(/delivered from 3:301/) });
    expect(decodeConsoleMessage(KEY, Buffer.alloc(10), '3:300').ok).toBe(false);
  });

  it('validates what a member sends even when it authenticates', () => {
    const bad = (head: object): Buffer => {
      const rest = Buffer.from(`${JSON.stringify(head)}\n`);
      return Buffer.concat([crypto.createHmac('sha256', KEY).update(rest).digest(), rest]);
    };
    expect(decodeConsoleMessage(KEY, bad({ t: 'Q', from: '1:1', node: 'n1', id: 1, target: null, argv: [] }), '1:1').ok).toBe(false);
    expect(decodeConsoleMessage(KEY, bad({ t: 'Q', from: '1:1', node: 'n1', id: -1, target: null, argv: ['x'] }), '1:1').ok).toBe(false);
    expect(decodeConsoleMessage(KEY, bad({ t: 'R', from: '1:1', node: 'n1', to: '2:2', id: 1, seq: 3, of: 3 }), '1:1').ok).toBe(false);
    expect(decodeConsoleMessage(KEY, bad({ t: 'H', from: '1:1', node: 'bad name!' }), '1:1').ok).toBe(false);
    expect(decodeReplyBody(Buffer.from('{"ok":true,"output":"x","mailq":{"rows":[{"binding":1}],"totals":{}}}'))).toBeNull();
    expect(decodeReplyBody(Buffer.from('[1]'))).toBeNull();
  });

  it('splits a large reply into chunks that reassemble, and cuts one over the limit', () => {
    const body: ReplyBody = { ok: true, output: 'é'.repeat(5000) };
    const chunks = replyChunks(body, 1000);
    expect(chunks.length).toBeGreaterThan(10);
    expect(chunks.every((c) => c.length <= 1000)).toBe(true);
    expect(decodeReplyBody(Buffer.concat(chunks))).toEqual(body);
    const cut = replyChunks({ ok: true, output: 'x'.repeat(50_000) }, 1000, 20_000);
    const back = decodeReplyBody(Buffer.concat(cut));
    expect(Buffer.concat(cut).length).toBeLessThanOrEqual(20_000);
    expect(back?.ok && back.output).toMatch(/\[output cut: over 20000 bytes\]\n$/);
  });
});

describe('the summed mailq', () => {
  const row = (binding: string, domain: string, active: number, deferred: number, hold: number) => ({ bindingGroup: 'default', binding, domain, active, deferred, hold });
  it('has a row per binding/domain, a column per node, and totals', () => {
    const text = sumMailq([
      { node: 'n2', mailq: { rows: [row('b1', 'a.test', 0, 2, 1)], totals: { messages: 3, active: 0, deferred: 2, hold: 1 } } },
      { node: 'n1', mailq: { rows: [row('b1', 'a.test', 1, 0, 0), row('b2', 'b.test', 0, 4, 0)], totals: { messages: 5, active: 1, deferred: 4, hold: 0 } } },
    ]);
    const lines = text.trimEnd().split('\n').map((l) => l.split(/\s{2,}/));
    expect(lines[0]).toEqual(['Group/Binding', 'Domain', 'n1', 'n2', 'Total', 'AQ', 'DQ', 'HQ']);
    expect(lines[1]).toEqual(['default/b1', 'a.test', '1', '3', '4', '1', '2', '1']);
    expect(lines[2]).toEqual(['default/b2', 'b.test', '4', '0', '4', '0', '4', '0']);
    expect(text).toMatch(/^Total: 8 message\(s\) on 2 node\(s\); per domain: 1 active, 6 deferred, 1 on hold$/m);
  });

  it('formats each node under its name in name order, a silent one, and exits 1', () => {
    const a = formatGathered('version', {
      answers: [
        { node: 'n1', answer: { ok: true, output: 'vipmta 1' } },
        { node: 'n2', answer: { ok: false, code: 'ERR_X', error: 'broken' } },
        { node: 'n3', answer: null, why: 'no answer within 10 s' },
      ],
      missing: [{ node: 'n4', why: 'a configured Node not in this view' }],
    });
    expect(a.output).toBe('=== n1 ===\nvipmta 1\n=== n2 ===\nerror: broken (ERR_X)\nn3: no answer within 10 s\ncannot see 1 member(s) from here: n4 (a configured Node not in this view)\n');
    expect(a.status).toBe(1);
    // message show: only the node that has it answers; the others' "not found" is no failure.
    const show = formatGathered('message show', { answers: [{ node: 'n1', answer: { ok: true, output: 'Q1 ...' } }, { node: 'n2', answer: { ok: false, code: 'ERR_CONTROL_NOT_FOUND', error: 'no queued message Q1' } }], missing: [] });
    expect(show.status).toBe(0);
  });

  it('runs per-node commands everywhere, cluster-wide ones once, and refuses the rest', () => {
    expect(commandScope('config reload', ['config', 'reload'])).toEqual({ kind: 'per-node' });
    expect(commandScope('shaping suspend', ['shaping', 'suspend'])).toMatchObject({ kind: 'cluster-wide', note: expect.stringMatching(/run once here/) });
    expect(commandScope('shutdown', ['shutdown'])).toMatchObject({ kind: 'refused', why: expect.stringMatching(/runs on one node only/) });
  });
});

// --- the group on an in-memory bus ---------------------------------------------------------------

class Bus {
  readonly members: FakeGroup[] = [];
  /** Held messages (a silent member's corosync still delivers; its process does not answer). */
  deliver(from: FakeGroup, data: Buffer): void {
    const copy = Buffer.from(data);
    setImmediate(() => { for (const m of this.members) if (!m.closed) m.emit('message', from.nodeId, from.pid, copy); });
  }
  change(joined: FakeGroup | null, left: FakeGroup | null): void {
    const c: CpgConfChange = {
      group: 'vipmta-console', members: this.members.filter((m) => !m.closed).map((m) => ({ nodeId: m.nodeId, pid: m.pid })),
      left: left === null ? [] : [{ nodeId: left.nodeId, pid: left.pid, reason: 'procdown' }],
      joined: joined === null ? [] : [{ nodeId: joined.nodeId, pid: joined.pid, reason: 'join' }],
    };
    setImmediate(() => { for (const m of this.members) if (!m.closed) m.emit('confchg', c); });
  }
}

class FakeGroup extends EventEmitter {
  closed = false;
  readonly localNodeId: number;
  constructor(private readonly bus: Bus, readonly nodeId: number, readonly pid: number) { super(); this.localNodeId = nodeId; }
  send(data: Buffer): void { if (!this.closed) this.bus.deliver(this, data); }
  close(): void { this.closed = true; }
}

/** Timers the test runs by hand: "no answer within" without waiting for it. */
class Timers {
  readonly due: { fn: () => void; ms: number; live: boolean }[] = [];
  set = (fn: () => void, ms: number): (() => void) => {
    const t = { fn, ms, live: true };
    this.due.push(t);
    return () => { t.live = false; };
  };
  fire(): void { for (const t of this.due.splice(0)) if (t.live) t.fn(); }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function settle(): Promise<void> { for (let i = 0; i < 20; i++) await tick(); }

interface TestNode {
  name: string; group: ConsoleGroup; fake: FakeGroup | null; ran: string[][]; silent: boolean;
  /** Its queue sizes (its summary), and its summary pacer's timer turn. */
  sizes: { bindingGroup: string; binding: string; active: number; deferred: number; hold: number }[];
  turn: () => void;
}

function makeNode(bus: Bus, timers: Timers, name: string, id: number, key = KEY): TestNode {
  let clock = 0;
  const n: TestNode = { name, fake: null, ran: [], silent: false, group: null as unknown as ConsoleGroup, sizes: [], turn: () => undefined };
  n.group = new ConsoleGroup({
    summary: () => buildQueueSummary(name, clock, false, n.sizes),
    now: () => clock,
    every: (fn) => { n.turn = () => { clock += SUMMARY_PACE_MS; fn(); }; return () => { n.turn = () => undefined; }; },
    node: name, logger: silent, key: () => key, pid: 100 + id, setTimer: timers.set, configured: () => ['n1', 'n2', 'n3', 'n4'],
    run: (argv) => {
      n.ran.push(argv);
      if (n.silent) return new Promise<ReplyBody>(() => undefined);
      return Promise.resolve({ ok: true, output: `${argv.join(' ')} on ${name}\n${'x'.repeat(argv[0] === 'big' ? 600_000 : 0)}` });
    },
    join: async () => {
      const g = new FakeGroup(bus, id, 100 + id);
      n.fake = g;
      bus.members.push(g);
      bus.change(g, null);
      return g as unknown as CorosyncGroup;
    },
  });
  n.group.start();
  return n;
}

async function cluster(count: number): Promise<{ bus: Bus; timers: Timers; nodes: TestNode[] }> {
  const bus = new Bus();
  const timers = new Timers();
  const nodes: TestNode[] = [];
  for (let i = 1; i <= count; i++) {
    nodes.push(makeNode(bus, timers, `n${i}`, i));
    await settle();
  }
  return { bus, timers, nodes };
}

describe('the console group', () => {
  it('runs a request once on every member and gathers the answers in name order (large ones in chunks)', async () => {
    const { nodes } = await cluster(3);
    const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
    expect(n1.group.memberNames()).toEqual(['n1', 'n2', 'n3']);
    const g = await n2.group.request(['config', 'reload'], null, 10_000);
    expect(g.answers.map((a) => [a.node, a.answer])).toEqual([
      ['n1', { ok: true, output: 'config reload on n1\n' }], ['n2', { ok: true, output: 'config reload on n2\n' }], ['n3', { ok: true, output: 'config reload on n3\n' }],
    ]);
    for (const n of [n1, n2, n3]) expect(n.ran).toEqual([['config', 'reload']]);
    expect(g.missing).toEqual([{ node: 'n4', why: 'a configured Node not in this view' }]);
    const big = await n1.group.request(['big'], 'n3', 10_000);
    expect(big.answers).toHaveLength(1);
    expect(big.answers[0]!.answer?.ok && big.answers[0]!.answer.output.length).toBe('big on n3\n'.length + 600_000);
  });

  it('says "no answer within" for a silent member after the timeout, and a member that leaves at once', async () => {
    const { bus, timers, nodes } = await cluster(3);
    const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
    n3.silent = true;
    const p = n1.group.request(['mailq'], null, 2500);
    let done = false;
    void p.then(() => (done = true));
    await settle();
    expect(n3.ran).toEqual([['mailq']]);
    expect(done).toBe(false); // n1 and n2 answered, n3 has not
    timers.fire();
    const g = await p;
    expect(g.answers.map((a) => [a.node, a.answer === null ? a.why : 'answered'])).toEqual([['n1', 'answered'], ['n2', 'answered'], ['n3', 'no answer within 2.5 s']]);
    expect(formatGathered('mailq', g).status).toBe(1);

    n2.silent = true;
    const q = n1.group.request(['version'], 'n2', 10_000);
    await settle();
    n2.fake!.close();
    bus.change(null, n2.fake);
    const h = await q;
    expect(h.answers).toEqual([{ node: 'n2', answer: null, why: 'left the group before answering (procdown)' }]);
    expect(h.missing.map((m) => m.node)).toEqual(['n2', 'n4']);
    await expect(async () => n1.group.request(['version'], 'n2', 10_000)).rejects.toMatchObject({
      code: 'ERR_CLUSTER_REFUSED', message: 'n2 is not a member of the view; members: n1, n3 (n2: left the group (procdown))',
    });
  });

  it('runs a request once even when it is delivered again', async () => {
    const { nodes } = await cluster(2);
    const [n1, n2] = nodes as [TestNode, TestNode];
    const again = encodeConsoleMessage(KEY, { type: 'request', from: '1:101', node: 'n1', id: 50, target: null, argv: ['version'] });
    n1.fake!.send(again);
    n1.fake!.send(again);
    n1.fake!.send(encodeConsoleMessage(KEY, { type: 'request', from: '1:101', node: 'n1', id: 49, target: null, argv: ['status'] }));
    await settle();
    expect(n2.ran).toEqual([['version']]);
    expect(n1.ran).toEqual([['version']]);
  });

  it('ignores requests and answers of a member without the secret', async () => {
    const { bus, timers, nodes } = await cluster(2);
    const [n1, n2] = nodes as [TestNode, TestNode];
    const intruder = makeNode(bus, timers, 'n9', 9, consoleKey('a guess'));
    await settle();
    const asked = intruder.group.request(['config', 'reload'], null, 1000);
    await settle();
    timers.fire();
    expect((await asked).answers.filter((a) => a.answer !== null).map((a) => a.node)).toEqual(['n9']);
    expect(n1.ran).toEqual([]);
    expect(n2.ran).toEqual([]);
    // And n1's request to everyone gets no (forged or real) answer from it: it is named by its nodeid.
    const p = n1.group.request(['version'], null, 1000);
    await settle();
    timers.fire();
    const g = await p;
    expect(g.answers.map((a) => [a.node, a.answer === null])).toEqual([['n1', false], ['n2', false], ['nodeid 9', true]]);
  });

  it('refuses to ask without a secret or a group', async () => {
    const bus = new Bus();
    const timers = new Timers();
    const n = new ConsoleGroup({ node: 'n1', logger: silent, key: () => null, run: async () => ({ ok: true, output: '' }), setTimer: timers.set, join: () => new Promise(() => undefined) });
    n.start();
    expect(() => n.request(['version'], null, 1000)).toThrow(/not in the console group/);
    void bus;
    n.stop();
  });
});

describe('queue summaries on the console group', () => {
  const q = (binding: string, hold: number) => ({ bindingGroup: 'default', binding, active: 0, deferred: 0, hold });

  it('round-trips on the wire and refuses a summary that is malformed or names another node', () => {
    const summary = buildQueueSummary('n2', 5, true, [q('b1', 3)]);
    const m = encodeConsoleMessage(KEY, { type: 'queues', from: '2:200', node: 'n2', summary });
    expect(decodeConsoleMessage(KEY, m, '2:200')).toEqual({ ok: true, message: { type: 'queues', from: '2:200', node: 'n2', summary } });
    const other = encodeConsoleMessage(KEY, { type: 'queues', from: '2:200', node: 'n2', summary: { ...summary, node: 'n3' } });
    expect(decodeConsoleMessage(KEY, other, '2:200')).toMatchObject({ ok: false, error: expect.stringMatching(/another node/) });
    const lying = encodeConsoleMessage(KEY, { type: 'queues', from: '2:200', node: 'n2', summary: { ...summary, hold: 1 } });
    expect(decodeConsoleMessage(KEY, lying, '2:200')).toMatchObject({ ok: false, error: 'queue summary is malformed' });
    // Not JSON: made by hand, with a valid HMAC.
    const rest = Buffer.from('{"t":"S","from":"2:200","node":"n2"}\n{not json', 'utf8');
    const raw = Buffer.concat([crypto.createHmac('sha256', KEY).update(rest).digest(), rest]);
    expect(decodeConsoleMessage(KEY, raw, '2:200')).toMatchObject({ ok: false, error: 'queue summary is not JSON' });
    expect(decodeConsoleMessage(consoleKey('a guess'), m, '2:200')).toMatchObject({ ok: false, error: expect.stringMatching(/HMAC/) });
  });

  it('gives every member the others\' queues: at each view change (a joiner learns them), on a change, and drops a member that left', async () => {
    const { bus, timers, nodes } = await cluster(2);
    const [n1, n2] = nodes as [TestNode, TestNode];
    n2.sizes = [q('b2', 5)];
    n2.turn();
    await settle();
    expect(n1.group.queueSummaries().map((s) => [s.node, s.hold])).toEqual([['n2', 5]]);
    // A member never keeps its own (the host shows its live queue).
    expect(n2.group.queueSummaries().map((s) => s.node)).toEqual(['n1']);
    // A joiner learns both at once, without any change of their queues.
    const n3 = makeNode(bus, timers, 'n3', 3);
    await settle();
    expect(n3.group.queueSummaries().map((s) => [s.node, s.hold])).toEqual([['n1', 0], ['n2', 5]]);
    expect(n1.group.queueSummaries().map((s) => s.node)).toEqual(['n2', 'n3']);
    // n2 leaves: every member forgets its queue.
    n2.fake!.close();
    bus.change(null, n2.fake);
    await settle();
    expect(n1.group.queueSummaries().map((s) => s.node)).toEqual(['n3']);
    expect(n3.group.queueSummaries().map((s) => s.node)).toEqual(['n1']);
  });

  it('keeps nothing a member without the secret sends', async () => {
    const { bus, timers, nodes } = await cluster(1);
    const [n1] = nodes as [TestNode];
    const intruder = makeNode(bus, timers, 'n9', 9, consoleKey('a guess'));
    intruder.sizes = [q('b', 1)];
    intruder.turn();
    await settle();
    expect(n1.group.queueSummaries()).toEqual([]);
  });
});
