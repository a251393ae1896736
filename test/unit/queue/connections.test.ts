// The connection book (src/queue/connections.ts) as the scheduler uses it, over simulated workers
// that keep connections idle between batches as the delivery engine does, and a fake Allowances
// (the cluster's leases): never more connections open under a destination than the allowance,
// idle connections closed when over the target, an idle connection of another binding closed to
// make room, affinity (a batch goes to the worker holding its queue's idle connection), a dead
// worker's connections dropped, the cluster messages window following a changing allowance, and
// Outbound_Throttle_Connections not holding a batch that has an idle connection. Simulated time only.
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfigText, type Config } from '../../../src/config/index.js';
import type { DeliveryBatch } from '../../../src/delivery/batch.js';
import type { Allowances, AllowanceUse, LimitKey } from '../../../src/queue/allowances.js';
import { QueueManager } from '../../../src/queue/manager.js';
import { maxInWindow } from '../../helpers/windows.js';

const logger = pino({ level: 'silent' });
const T0 = 1_800_000_000_000;
const DEST = 'mx:mx.dest.test';

afterEach(() => {
  vi.useRealTimers();
});

function config(extra: string): Config {
  const r = loadConfigText(`Hostname = "mta.test"
Binding "b1" { Bind_Address = "127.0.0.11" }
Binding "b2" { Bind_Address = "127.0.0.12" }
Binding "b3" { Bind_Address = "127.0.0.13" }
${extra}`, 'test.conf');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

/** A fake lease provider: allowance and target per key set by the test. */
class FakeAllowances implements Allowances {
  allow = new Map<LimitKey, number>();
  tgt = new Map<LimitKey, number>();
  declared = new Map<LimitKey, { cap: number; demand: number }>();
  forgotten: LimitKey[] = [];
  user: AllowanceUse | null = null;
  private fns: (() => void)[] = [];
  declare(key: LimitKey, cap: number, demand: number): void {
    this.declared.set(key, { cap, demand });
  }
  forget(key: LimitKey): void {
    this.forgotten.push(key);
  }
  allowance(key: LimitKey): number {
    return this.allow.get(key) ?? 0;
  }
  target(key: LimitKey): number {
    return this.tgt.get(key) ?? this.allowance(key);
  }
  setUse(use: AllowanceUse): void {
    this.user = use;
  }
  onChange(fn: () => void): void {
    this.fns.push(fn);
  }
  set(key: LimitKey, allowance: number, target = allowance): void {
    this.allow.set(key, allowance);
    this.tgt.set(key, target);
    for (const f of this.fns) f();
  }
}

interface Live {
  worker: number;
  id: number;
  deliveries: number;
  binding: string;
  idle: boolean;
}

interface Sim {
  qm: QueueManager;
  a: FakeAllowances;
  /** Connections open in the simulated workers now. */
  live: Map<string, Live>;
  /** The most open at once, checked at every open. */
  peak: { n: number };
  /** Each deliver call: the worker asked for, the connection named, mayOpen. */
  calls: { worker: number | null; conn: number | null; mayOpen: number; binding: string; n: number; at: number }[];
  closeIdle: { worker: number; ids: number[] }[];
  opens: number[];
  add: (n: number, binding: string, domain?: string) => void;
  run: (ms: number) => Promise<void>;
}

function sim(cfgText: string, o: { workers?: number; duration?: number; allowances?: boolean } = {}): Sim {
  vi.useFakeTimers({ now: T0, toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'Date'] });
  const workers = o.workers ?? 2;
  const duration = o.duration ?? 100;
  const a = new FakeAllowances();
  const live = new Map<string, Live>();
  const peak = { n: 0 };
  const calls: Sim['calls'] = [];
  const closeIdle: Sim['closeIdle'] = [];
  const opens: number[] = [];
  const busy = new Array<number>(workers).fill(0);
  let nextId = 1;
  let ids = 0;
  const cfg = config(cfgText);
  const qm = new QueueManager({
    config: () => cfg,
    spool: { markDone: async () => {}, update: async () => {} },
    logger,
    now: () => Date.now(),
    bounce: async () => ({ id: 'dsn', size: 1 }),
    assign: () => ({ bindingGroup: 'default', binding: 'default' }),
    destinationOf: () => DEST,
    ...(o.allowances === false ? {} : { allowances: a }),
    closeIdle: async (worker, list) => {
      closeIdle.push({ worker, ids: list });
      await new Promise((r) => setTimeout(r, 5));
      const done: number[] = [];
      for (const id of list) {
        const c = live.get(`${worker}/${id}`);
        if (c?.idle === true) {
          live.delete(`${worker}/${id}`);
          done.push(id);
        }
      }
      return done;
    },
    deliver: async (batch: DeliveryBatch, worker: number | null) => {
      const w = worker ?? busy.indexOf(Math.min(...busy));
      busy[w]!++;
      calls.push({ worker, conn: batch.conn, mayOpen: batch.mayOpen, binding: batch.binding.name, n: batch.messages.length, at: Date.now() });
      let c = batch.conn === null ? undefined : live.get(`${w}/${batch.conn}`);
      let opened = 0;
      if (c !== undefined) c.idle = false;
      else if (batch.mayOpen > 0) {
        c = { worker: w, id: nextId++, deliveries: 0, binding: batch.binding.name, idle: false };
        live.set(`${w}/${c.id}`, c);
        opened = 1;
        opens.push(Date.now());
        peak.n = Math.max(peak.n, live.size);
      }
      await new Promise((r) => setTimeout(r, duration));
      busy[w]!--;
      if (c === undefined) {
        return { worker: w, kept: null, opened, results: batch.messages.map((m) => ({ id: m.id, localAddress: null, cut: true as const, results: m.rcpt.map((r) => ({ rcpt: r, status: 'deferred' as const, code: 451, enhanced: '4.3.0', reply: '4.3.0 throttled', origin: 'local' as const, remoteHost: null, remoteAddress: null })) })) };
      }
      c.deliveries += batch.messages.length;
      const keep = c.deliveries < batch.target.maxDeliveriesPerConnection;
      if (keep) c.idle = true;
      else live.delete(`${w}/${c.id}`);
      return {
        worker: w, opened, kept: keep ? { id: c.id, deliveries: c.deliveries } : null,
        results: batch.messages.map((m) => ({ id: m.id, localAddress: null, mx: ['mx.dest.test'], results: m.rcpt.map((r) => ({ rcpt: r, status: 'delivered' as const, code: 250, enhanced: '2.0.0', reply: '250 ok', origin: 'remote' as const, remoteHost: 'mx.dest.test', remoteAddress: '127.0.0.1' })) })),
      };
    },
  });
  return {
    qm, a, live, peak, calls, closeIdle, opens,
    add: (n, binding, domain = 'dest.test') => {
      for (let i = 0; i < n; i++) {
        const id = `m${++ids}`;
        qm.add({ id, size: 100, arrival: T0, from: 's@x.test', rcpt: [`r${ids}@${domain}`], xBinding: null, listener: null, bindingGroup: 'default', binding });
      }
    },
    run: async (ms) => {
      await vi.advanceTimersByTimeAsync(ms);
    },
  };
}

const conn = `${DEST}#conn`;

describe('connection book', () => {
  it('never holds more connections under a destination than the allowance, all bindings together', async () => {
    const s = sim('Cluster_Max_Outbound_Connections = 10\nMax_Deliveries_Per_Connection = 3', { workers: 3 });
    s.a.set(conn, 2);
    for (const b of ['b1', 'b2', 'b3']) s.add(20, b);
    s.qm.start();
    await s.run(30_000);
    expect(s.qm.size).toBe(0);
    expect(s.peak.n).toBeLessThanOrEqual(2);
    expect(s.peak.n).toBe(2);
    // Declared: the cap and a demand; the book reports its use (idle ones included).
    expect(s.a.declared.get(conn)?.cap).toBe(10);
    expect(s.a.user!.use(conn)).toBe(s.live.size);
  });

  it('takes the strictest limit any domain under the destination sets (one with none does not lift it)', async () => {
    // dest.test sets 3; other.test (the same MX set: DEST) sets nothing, and is looked up last.
    const s = sim('Domain "dest.test" { Cluster_Max_Outbound_Connections = 3 }', { workers: 3 });
    s.a.set(conn, 3);
    s.add(10, 'b1', 'dest.test');
    s.add(10, 'b2', 'other.test');
    s.add(10, 'b3', 'other.test');
    s.qm.start();
    await s.run(30_000);
    expect(s.qm.size).toBe(0);
    expect(s.a.declared.get(conn)?.cap).toBe(3);
    expect(s.peak.n).toBeLessThanOrEqual(3);
    expect(s.qm.queueUse('default', 'b3', 'other.test')?.cluster.map((c) => c.key)).toEqual([conn]);
  });

  it('declares a rate\'s demand per period: every connection and message the waiting mail needs, not those open at once', async () => {
    const s = sim('Cluster_Outbound_Throttle_Connections = "1000/60s"\nCluster_Outbound_Throttle_Messages = "5000/60s"\nMax_Outbound_Connections = 2\nMax_Deliveries_Per_Connection = 1');
    s.add(50, 'b1');
    s.qm.start();
    await s.run(10);
    // 50 messages at one per connection: 50 opens and 50 messages this period (2 at once would
    // have given it 2 opens a minute).
    expect(s.a.declared.get(`${DEST}#open/60000`)?.demand).toBe(50);
    expect(s.a.declared.get(`${DEST}#msg/60000`)?.demand).toBe(50);
  });

  it('holds everything before a lease is given (allowance 0), and goes once it is', async () => {
    const s = sim('Cluster_Max_Outbound_Connections = 4');
    s.add(5, 'b1');
    s.qm.start();
    await s.run(1000);
    expect(s.calls).toHaveLength(0);
    expect(s.a.declared.get(conn)!.demand).toBeGreaterThan(0);
    s.a.set(conn, 1);
    await s.run(5000);
    expect(s.qm.size).toBe(0);
    expect(s.peak.n).toBe(1);
  });

  it('closes idle connections when it holds more than its target', async () => {
    const s = sim('Cluster_Max_Outbound_Connections = 10\nMax_Outbound_Connections = 1', { workers: 3 });
    s.a.set(conn, 3);
    for (const b of ['b1', 'b2', 'b3']) s.add(1, b);
    s.qm.start();
    await s.run(1000);
    expect(s.qm.size).toBe(0);
    // Each binding kept its connection idle: three open, within the allowance.
    expect(s.live.size).toBe(3);
    expect(s.a.user!.use(conn)).toBe(3);
    expect(s.closeIdle).toHaveLength(0);
    // The fair share drops to 1: two idle connections are given back.
    s.a.set(conn, 3, 1);
    await s.run(100);
    expect(s.closeIdle.flatMap((c) => c.ids)).toHaveLength(2);
    expect(s.live.size).toBe(1);
    expect(s.a.user!.use(conn)).toBe(1);
    expect(s.qm.connectionStats).toMatchObject({ open: 1, idle: 1 });
  });

  it('closes an idle connection of another binding to make room, then delivers', async () => {
    const s = sim('Cluster_Max_Outbound_Connections = 5');
    s.a.set(conn, 1);
    s.add(1, 'b1');
    s.qm.start();
    await s.run(1000);
    expect(s.live.size).toBe(1);
    const [idle] = [...s.live.values()];
    expect(idle!.binding).toBe('b1');
    s.add(2, 'b2');
    await s.run(2000);
    expect(s.qm.size).toBe(0);
    expect(s.closeIdle).toEqual([{ worker: idle!.worker, ids: [idle!.id] }]);
    expect(s.peak.n).toBe(1);
    expect(s.calls.at(-1)!.binding).toBe('b2');
  });

  it('takes turns under a full cluster limit: a busy binding gives its connection up to a waiting one', async () => {
    const s = sim('Cluster_Max_Outbound_Connections = 5\nMax_Deliveries_Per_Connection = 1000', { duration: 50 });
    s.a.set(conn, 1);
    s.add(150, 'b1');
    s.qm.start();
    await s.run(10);
    s.add(150, 'b2');
    await s.run(20_000);
    expect(s.qm.size).toBe(0);
    expect(s.peak.n).toBe(1);
    const order = s.calls.map((c) => c.binding);
    // b2 got its first batch before b1 had sent all of its mail.
    expect(order.indexOf('b2')).toBeLessThan(order.lastIndexOf('b1'));
    // And they went on taking turns.
    expect(order.filter((b, i) => i > 0 && b !== order[i - 1]).length).toBeGreaterThanOrEqual(3);
  });

  it('gives a queue\'s next batch its idle connection, on the worker that holds it', async () => {
    const s = sim('Max_Outbound_Connections = 1', { workers: 4, allowances: false });
    s.add(1, 'b1');
    s.qm.start();
    await s.run(1000);
    const [c] = [...s.live.values()];
    s.add(1, 'b1');
    await s.run(1000);
    expect(s.calls[1]).toMatchObject({ worker: c!.worker, conn: c!.id });
    // One connection all along, with two deliveries on it.
    expect(s.opens).toHaveLength(1);
    expect(s.qm.queueUse('default', 'b1', 'dest.test')).toMatchObject({ open: 1, idle: 1, connections: 0, destination: DEST });
  });

  it('counts a queue\'s idle connection against Max_Outbound_Connections: no second connection while it is idle', async () => {
    const s = sim('Max_Outbound_Connections = 1', { workers: 2, allowances: false });
    s.add(1, 'b1');
    s.qm.start();
    await s.run(1000);
    s.add(5, 'b1');
    await s.run(5000);
    expect(s.qm.size).toBe(0);
    expect(s.peak.n).toBe(1);
    expect(s.opens).toHaveLength(1);
  });

  it('drops the connections of a worker that died: the queue opens a new one', async () => {
    const s = sim('Max_Outbound_Connections = 1', { allowances: false });
    s.add(1, 'b1');
    s.qm.start();
    await s.run(1000);
    const [c] = [...s.live.values()];
    expect(s.qm.queueUse('default', 'b1', 'dest.test')!.open).toBe(1);
    s.live.clear();
    s.qm.workerGone(c!.worker);
    expect(s.qm.queueUse('default', 'b1', 'dest.test')!.open).toBe(0);
    s.add(1, 'b1');
    await s.run(1000);
    expect(s.calls[1]).toMatchObject({ worker: null, conn: null, mayOpen: 1 });
  });

  it('forgets an idle connection the worker reports closed (idle timeout)', async () => {
    const s = sim('Max_Outbound_Connections = 1', { allowances: false });
    s.add(1, 'b1');
    s.qm.start();
    await s.run(1000);
    const [c] = [...s.live.values()];
    s.live.clear();
    s.qm.connectionsClosed(c!.worker, [c!.id]);
    expect(s.qm.connectionStats).toMatchObject({ open: 0, idle: 0 });
  });

  it('sends within the cluster messages window, whose limit follows the allowance', async () => {
    const s = sim('Cluster_Outbound_Throttle_Messages = "100/1s"\nMax_Outbound_Connections = 4', { duration: 10 });
    const key = `${DEST}#msg/1000`;
    s.a.set(key, 5);
    s.add(200, 'b1');
    s.qm.start();
    await s.run(3000);
    const handed = s.calls.flatMap((c) => Array<number>(c.n).fill(c.at));
    expect(maxInWindow(handed, 1000)).toBeLessThanOrEqual(5);
    expect(handed.length).toBeGreaterThanOrEqual(10);
    expect(s.a.declared.get(key)).toEqual({ cap: 100, demand: 100 });
    const before = handed.length;
    s.a.set(key, 20);
    await s.run(3000);
    const later = s.calls.flatMap((c) => Array<number>(c.n).fill(c.at)).slice(before);
    expect(maxInWindow(later, 1000)).toBeLessThanOrEqual(20);
    expect(later.length).toBeGreaterThan(20);
    // Lowered again: no window from then on holds more than the new allowance.
    const mark = s.calls.length;
    const at = Date.now();
    s.a.set(key, 2);
    await s.run(3000);
    const low = s.calls.slice(mark).flatMap((c) => Array<number>(c.n).fill(c.at));
    // Counted from the change on, with the window still holding what was sent before it.
    expect(maxInWindow(low.filter((t) => t >= at + 1000), 1000)).toBeLessThanOrEqual(2);
  });

  it('a queue its cluster window holds at allowance 0 goes as soon as the allowance rises', async () => {
    const s = sim('Cluster_Outbound_Throttle_Messages = "100/1m"', { duration: 10 });
    const key = `${DEST}#msg/60000`;
    s.add(3, 'b1');
    s.qm.start();
    await s.run(1000);
    expect(s.calls).toHaveLength(0);
    s.a.set(key, 10);
    await s.run(10);
    expect(s.qm.size).toBe(0);
  });

  it('Outbound_Throttle_Connections holds new connections, not batches with an idle one', async () => {
    const s = sim('Outbound_Throttle_Connections = "1/10s"\nMax_Outbound_Connections = 3\nMax_Deliveries_Per_Connection = 100', { duration: 10, allowances: false });
    s.add(1, 'b1');
    s.qm.start();
    await s.run(500);
    expect(s.opens).toHaveLength(1);
    // More mail: the idle connection serves it at once; no second connection within the period.
    s.add(40, 'b1');
    await s.run(2000);
    expect(s.qm.size).toBe(0);
    expect(s.opens).toHaveLength(1);
    expect(s.calls.slice(1).every((c) => c.conn !== null && c.mayOpen === 0)).toBe(true);
  });
});
