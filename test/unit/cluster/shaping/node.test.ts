// The shaping group's member: a restriction made on one node is in force on every node at the same
// point of the agreed order, a lift ends it everywhere, restrictions survive a restart (persisted),
// end on their own, a node that joins learns them, and a single node applies them at once; the
// leases of cluster-wide limits go through the same group (allowances.test.ts tests them). Nodes
// share an in-memory bus that delivers every message to every member in one order, as CPG does.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { CorosyncGroup, CpgConfChange } from '../../../../src/native/index.js';
import { ShapingNode } from '../../../../src/cluster/shaping/node.js';
import type { Restriction } from '../../../../src/cluster/shaping/messages.js';
import { FakeClock } from './ordered-group.js';

class Bus {
  readonly members: FakeGroup[] = [];
  deliver(from: FakeGroup, data: Buffer): void {
    const copy = Buffer.from(data);
    setImmediate(() => { for (const m of this.members) if (!m.closed) m.emit('message', from.nodeId, from.pid, copy); });
  }
  join(g: FakeGroup): void {
    this.members.push(g);
    const c: CpgConfChange = { group: 'vipmta-shaping', members: this.members.filter((m) => !m.closed).map((m) => ({ nodeId: m.nodeId, pid: m.pid })), left: [], joined: [{ nodeId: g.nodeId, pid: g.pid, reason: 'join' }] };
    setImmediate(() => { for (const m of this.members) if (!m.closed) m.emit('confchg', c); });
  }
}

class FakeGroup extends EventEmitter {
  closed = false;
  constructor(private readonly bus: Bus, readonly nodeId: number, readonly pid: number) { super(); }
  send(data: Buffer): void { this.bus.deliver(this, data); }
  close(): void { this.closed = true; }
}

const silent = pino({ level: 'silent' });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function settle(): Promise<void> { for (let i = 0; i < 10; i++) await tick(); }

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });
function tmpFile(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'shaping-'));
  dirs.push(d);
  return path.join(d, 'shaping.json');
}

let clock = 1_000_000;
function node(bus: Bus, name: string, id: number, file: string | null = null): ShapingNode {
  const n = new ShapingNode({
    node: name, logger: silent, file, clustered: true, now: () => clock,
    join: async () => { const g = new FakeGroup(bus, id, 100 + id); bus.join(g); return g as unknown as CorosyncGroup; },
  });
  n.start();
  return n;
}

const SUSPEND: Omit<Restriction, 'origin'> = { action: 'suspend', binding: 'b1', destination: 'bulk.test', at: 1_000_000, until: 1_060_000, rate: null, connections: null, rule: 'yahoo-tss04', reason: '421 4.7.0 [TSS04] ...' };

describe('ShapingNode', () => {
  it('puts a restriction made on one node in force on every node, and lifts it everywhere', async () => {
    const bus = new Bus();
    const [a, b, c] = [node(bus, 'n1', 1), node(bus, 'n2', 2), node(bus, 'n3', 3)];
    await settle();
    let changes = 0;
    c.on('changed', () => changes++);
    b.restrict(SUSPEND);
    expect(b.inForce('b1', 'bulk.test').suspended).toBeNull(); // not before it comes back in order
    await settle();
    for (const n of [a, b, c]) expect(n.inForce('b1', 'bulk.test').suspended).toMatchObject({ origin: 'n2', rule: 'yahoo-tss04' });
    expect(changes).toBe(1);
    a.lift(null, 'bulk.test');
    await settle();
    for (const n of [a, b, c]) expect(n.restrictions()).toEqual([]);
    for (const n of [a, b, c]) n.stop();
  });

  it('persists restrictions so a restarted node keeps them, and drops them when they end', async () => {
    const bus = new Bus();
    const file = tmpFile();
    const a = node(bus, 'n1', 1, file);
    await settle();
    a.restrict(SUSPEND);
    await settle();
    a.stop();
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).restrictions).toHaveLength(1);
    const again = node(new Bus(), 'n1', 1, file);
    expect(again.inForce('b1', 'bulk.test').suspended).not.toBeNull();
    clock = SUSPEND.until;
    const restarted = node(new Bus(), 'n1', 1, file);
    expect(restarted.restrictions()).toEqual([]);
    again.stop();
    restarted.stop();
    clock = 1_000_000;
  });

  it('tells a node that joins later what is in force', async () => {
    const bus = new Bus();
    const a = node(bus, 'n1', 1);
    await settle();
    a.restrict(SUSPEND);
    await settle();
    const late = node(bus, 'n4', 4);
    await settle();
    expect(late.inForce('b1', 'bulk.test').suspended).toMatchObject({ origin: 'n1' });
    a.stop();
    late.stop();
  });

  it('applies at once on a single node (no corosync), and ignores a corrupt persisted file with an error', () => {
    const file = tmpFile();
    fs.writeFileSync(file, '{ not json');
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(s); } });
    const n = new ShapingNode({ node: 'n1', logger, file, clustered: false, now: () => clock });
    n.start();
    expect(lines.some((l) => l.includes('persisted restrictions unreadable'))).toBe(true);
    n.restrict(SUSPEND);
    expect(n.inForce('b1', 'bulk.test').suspended).not.toBeNull();
    expect(n.inForce('b2', 'bulk.test').suspended).toBeNull();
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).restrictions).toHaveLength(1);
    n.stop();
  });

  it('carries the leases: claims agreed on every node, the same table everywhere, a single node whole', async () => {
    const bus = new Bus();
    const fake = new FakeClock();
    const K = 'webmail.test#conn';
    const mk = (name: string, id: number): ShapingNode => {
      const n = new ShapingNode({
        node: name, logger: silent, file: null, clustered: true, now: () => fake.now, timers: fake,
        join: async () => { const g = new FakeGroup(bus, id, 100 + id); bus.join(g); return g as unknown as CorosyncGroup; },
      });
      n.start();
      return n;
    };
    const [a, b] = [mk('n1', 1), mk('n2', 2)];
    await settle();
    a.allowances.declare(K, 4, 10);
    b.allowances.declare(K, 4, 10);
    expect(a.allowances.allowance(K)).toBe(0);
    for (let i = 0; i < 30; i++) {
      fake.runOne();
      await settle();
    }
    expect([a, b].map((n) => n.allowances.allowance(K))).toEqual([2, 2]);
    expect(a.leaseEntries()).toEqual(b.leaseEntries());
    expect(a.leaseEntries().entries[0]).toMatchObject({ key: K, cap: 4, sum: 4 });
    for (const n of [a, b]) n.stop();
    const single = new ShapingNode({ node: 'n1', logger: silent, file: null, clustered: false });
    single.allowances.declare(K, 4, 10);
    expect(single.allowances.allowance(K)).toBe(4);
  });
});
