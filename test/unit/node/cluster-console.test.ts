// The node's host of `console --cluster` / `--node`: two nodes on an in-memory CPG bus run mailq
// through their own command tables and the caller sums it; a node without a Cluster stanza runs the
// command itself and says it is a single node; cluster-wide commands run once, and commands that
// must stay on one node are refused.
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CommandTable } from '../../../src/control/commands.js';
import type { MailqReport } from '../../../src/control/http.js';
import type { CorosyncGroup, CpgConfChange } from '../../../src/native/index.js';
import { ClusterConsole } from '../../../src/node/cluster-console.js';
import { config } from './helpers.js';

class Bus {
  readonly members: FakeGroup[] = [];
  send(from: FakeGroup, data: Buffer): void {
    setImmediate(() => { for (const m of this.members) m.emit('message', from.localNodeId, from.pid, Buffer.from(data)); });
  }
  join(g: FakeGroup): void {
    this.members.push(g);
    const c: CpgConfChange = { group: 'vipmta-console', members: this.members.map((m) => ({ nodeId: m.localNodeId, pid: m.pid })), left: [], joined: [] };
    setImmediate(() => { for (const m of this.members) m.emit('confchg', c); });
  }
}

class FakeGroup extends EventEmitter {
  constructor(private readonly bus: Bus, readonly localNodeId: number, readonly pid: number) { super(); }
  send(data: Buffer): void { this.bus.send(this, data); }
  close(): void {}
}

const settle = async (): Promise<void> => { for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r)); };

function host(name: string, cluster: boolean, queued: number, bus?: Bus, id = 1): { console: ClusterConsole; ran: string[] } {
  const ran: string[] = [];
  const cfg = config(`Nodename = "${name}"\n${cluster ? 'Cluster { Cluster_Secret = "s3cret" }' : ''}\n`);
  const t = new CommandTable();
  const report = (): MailqReport => ({ rows: [{ bindingGroup: 'default', binding: 'default', domain: 'x.test', active: 0, deferred: queued, hold: 0 }], totals: { messages: queued, active: 0, deferred: queued, hold: 0 } });
  t.add('mailq [-d DOMAIN] [-b BINDING]', 'mailq', () => { ran.push('mailq'); return `Total: ${queued} message(s)\n`; });
  t.add('shaping suspend DOMAIN [--binding NAME] DURATION [REASON]', 'suspend', () => { ran.push('suspend'); return 'suspending\n'; });
  t.add('shutdown', 'stop', () => { ran.push('shutdown'); return 'bye\n'; });
  // The process pid is the same for both hosts here: the fake's member key tells them apart by nodeid.
  const c = new ClusterConsole({
    config: () => cfg, logger: pino({ level: 'silent' }), commands: t, mailq: report,
    ...(bus ? { join: async () => { const g = new FakeGroup(bus, id, process.pid); bus.join(g); return g as unknown as CorosyncGroup; } } : {}),
  });
  c.start();
  return { console: c, ran };
}

describe('the cluster console host', () => {
  it('sums mailq over the members, each having run it through its own table', async () => {
    const bus = new Bus();
    const a = host('n1', true, 2, bus, 1);
    const b = host('n2', true, 5, bus, 2);
    await settle();
    const r = await a.console.handle({ argv: ['mailq'], cluster: true, timeoutMs: 5000 });
    expect(r.status).toBe(0);
    expect(r.output).toMatch(/^=== n1 ===\nTotal: 2 message\(s\)\n=== n2 ===\nTotal: 5 message\(s\)\n=== cluster: 2 of 2 node\(s\) ===\n/);
    expect(r.output).toMatch(/^default\/default\s+x\.test\s+2\s+5\s+7\s+0\s+7\s+0$/m);
    expect([a.ran, b.ran]).toEqual([['mailq'], ['mailq']]);
    // Cluster-wide already: once, here, and said so.
    const s = await b.console.handle({ argv: ['shaping', 'suspend', 'x.test', '1h'], cluster: true, timeoutMs: 5000 });
    expect(s.output).toBe('=== n2 (cluster-wide: run once here; the shaping group applies it on every node) ===\nsuspending\n');
    expect([a.ran, b.ran]).toEqual([['mailq'], ['mailq', 'suspend']]);
    await expect(a.console.handle({ argv: ['shaping', 'suspend', 'x.test', '1h'], node: 'n2', timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST', message: expect.stringMatching(/acts on every node already: run it without --node/) });
    await expect(a.console.handle({ argv: ['shutdown'], cluster: true, timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST', message: expect.stringMatching(/^shutdown runs on one node only/) });
    await expect(a.console.handle({ argv: ['frob'], cluster: true, timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_CONTROL_UNKNOWN_COMMAND' });
    expect(a.ran).toEqual(['mailq']);
    a.console.stop();
    b.console.stop();
  });

  it('runs here and says it is a single node without a Cluster stanza', async () => {
    const solo = host('solo', false, 3);
    const r = await solo.console.handle({ argv: ['mailq'], cluster: true, timeoutMs: 5000 });
    expect(r.output).toMatch(/^=== solo \(single node: no Cluster stanza\) ===\nTotal: 3 message\(s\)\n=== cluster: 1 of 1 node\(s\) ===\n/);
    expect(r.status).toBe(0);
    expect((await solo.console.handle({ argv: ['mailq'], node: 'solo', timeoutMs: 5000 })).status).toBe(0);
    await expect(solo.console.handle({ argv: ['mailq'], node: 'n2', timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_CLUSTER_DISABLED', message: 'this node (solo) runs without a Cluster stanza: there is no node n2' });
  });
});

describe('queue summaries', () => {
  function summarising(name: string, bus: Bus, id: number, sizes: () => { bindingGroup: string; binding: string; active: number; deferred: number; hold: number }[], drained: () => boolean): ClusterConsole {
    const cfg = config(`Nodename = "${name}"\nCluster { Cluster_Secret = "s3cret" }\n`);
    const c = new ClusterConsole({
      config: () => cfg, logger: pino({ level: 'silent' }), commands: new CommandTable(), mailq: () => ({ rows: [], totals: { messages: 0, active: 0, deferred: 0, hold: 0 } }),
      queueSizes: sizes, drained, now: () => 1000, every: () => () => undefined,
      join: async () => { const g = new FakeGroup(bus, id, process.pid); bus.join(g); return g as unknown as CorosyncGroup; },
    });
    c.start();
    return c;
  }

  it('has this node\'s live queue and each member\'s last summary, drained flag included', async () => {
    const bus = new Bus();
    let n1Held = 1;
    const a = summarising('n1', bus, 1, () => [{ bindingGroup: 'default', binding: 'b', active: 0, deferred: 0, hold: n1Held }], () => false);
    const b = summarising('n2', bus, 2, () => [{ bindingGroup: 'default', binding: 'b', active: 2, deferred: 3, hold: 0 }, { bindingGroup: 'default', binding: 'idle', active: 0, deferred: 0, hold: 0 }], () => true);
    await settle();
    expect(a.queues().map((q) => [q.node, q.drained, q.active, q.deferred, q.hold, q.bindings.length])).toEqual([['n1', false, 0, 0, 1, 1], ['n2', true, 2, 3, 0, 1]]);
    expect(b.queueSummaries().map((q) => [q.node, q.hold])).toEqual([['n1', 1]]);
    // This node's own entry is live, not its last summary.
    n1Held = 7;
    expect(a.queues()[0]!.hold).toBe(7);
    a.stop();
    b.stop();
  });
});
