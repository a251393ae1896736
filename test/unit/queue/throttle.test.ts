// Outbound_Throttle_Messages in the scheduler: a queue (binding, domain) hands out at most N
// messages per sliding PERIOD, counted as the receiver sees them (a message counts from the moment
// its batch is handed out until PERIOD after its result came back), so no window of arrivals at
// the receiver exceeds N however long deliveries take; the budget is used; deferred messages
// count; one timer serves every throttled queue; a reload re-reads the rate; #mmove queues and
// queues without a throttle are not held back. Simulated time only (every timer, setImmediate and
// Date are fake), never slept through.
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfigText, type Config } from '../../../src/config/index.js';
import type { MessageResult } from '../../../src/delivery/results.js';
import type { DeliveryBatch } from '../../../src/delivery/batch.js';
import type { MmoveItem, MmoveResult } from '../../../src/mmove/client.js';
import { QueueManager, type Route } from '../../../src/queue/manager.js';
import { formatMessage } from '../../../src/node/console.js';
import { formatMailq } from '../../../src/queue/views.js';
import { maxInWindow } from '../../helpers/windows.js';

const logger = pino({ level: 'silent' });
const T0 = 1_800_000_000_000;

afterEach(() => {
  vi.useRealTimers();
});

function config(extra: string): Config {
  const r = loadConfigText(`Hostname = "mta.test"\nBinding "b1" { Bind_Address = "127.0.0.3" }\n${extra}`, 'test.conf');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

const within = (times: number[], from: number, to: number): number => times.filter((t) => t >= from && t < to).length;

interface Sim {
  qm: QueueManager;
  cfg: { current: Config };
  /** When each batch's messages were handed out (one entry per message), per domain. */
  handed: Map<string, number[]>;
  /** When the receiver saw each message: a random moment while its batch ran. */
  arrived: number[];
  moves: MmoveItem[][];
  add: (n: number, domain: string, from?: string) => void;
  run: (ms: number) => Promise<void>;
}

/**
 * A manager on simulated time. Each batch takes `duration()` ms; every message in it reaches the
 * receiver at a random moment of that time (before its result comes back); `answer` decides.
 */
function sim(cfgText: string, opts: { duration?: () => number; answer?: (rcpt: string, attempt: number) => 'delivered' | 'deferred'; route?: (g: string, b: string) => Route } = {}): Sim {
  vi.useFakeTimers({ now: T0, toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'Date'] });
  let seed = 11;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const duration = opts.duration ?? ((): number => rand(400));
  const handed = new Map<string, number[]>();
  const arrived: number[] = [];
  const moves: MmoveItem[][] = [];
  const tries = new Map<string, number>();
  const cfg = { current: config(cfgText) };
  let ids = 0;
  const qm = new QueueManager({
    config: () => cfg.current,
    spool: { markDone: async () => {}, update: async () => {} },
    logger,
    now: () => Date.now(),
    bounce: async () => ({ id: 'dsn', size: 1 }),
    assign: (m) => (m.from.endsWith('@b1.test') ? { bindingGroup: 'default', binding: 'b1' } : { bindingGroup: 'default', binding: 'default' }),
    ...(opts.route !== undefined ? { route: opts.route } : {}),
    move: async (_node, items): Promise<MmoveResult[]> => {
      moves.push(items);
      return items.map((i) => ({ id: i.id, ok: true, code: 250, text: '250 ok', duplicate: false }) as MmoveResult);
    },
    deliver: async (batch: DeliveryBatch): Promise<MessageResult[]> => {
      const start = Date.now();
      const d = duration();
      let list = handed.get(batch.target.domain);
      if (list === undefined) handed.set(batch.target.domain, (list = []));
      for (let i = 0; i < batch.messages.length; i++) {
        list.push(start);
        arrived.push(start + (d === 0 ? 0 : rand(d)));
      }
      if (d > 0) await new Promise((r) => setTimeout(r, d));
      return batch.messages.map((m) => ({
        id: m.id, localAddress: '127.0.0.3',
        results: m.rcpt.map((r) => {
          const n = (tries.get(r) ?? 0) + 1;
          tries.set(r, n);
          const status = opts.answer?.(r, n) ?? 'delivered';
          const code = status === 'delivered' ? 250 : 451;
          return { rcpt: r, status, code, enhanced: `${code === 250 ? 2 : 4}.0.0`, reply: `${code} scripted`, origin: 'remote' as const, remoteHost: 'mx.test', remoteAddress: '127.0.0.1' };
        }),
      }));
    },
  });
  return {
    qm, cfg, handed, arrived, moves,
    add: (n, domain, from = 's@x.test') => {
      const binding = from.endsWith('@b1.test') ? 'b1' : 'default';
      for (let i = 0; i < n; i++) {
        const id = `m${++ids}`;
        qm.add({ id, size: 100, arrival: T0, from, rcpt: [`r${ids}@${domain}`], xBinding: null, listener: null, bindingGroup: 'default', binding });
      }
    },
    run: async (ms) => {
      await vi.advanceTimersByTimeAsync(ms);
    },
  };
}

describe('Outbound_Throttle_Messages', () => {
  it('600/60s with 2,000 ready: exactly 600 in the first window, never more than 600 in any sliding 60 s at the receiver, and the rate is used', async () => {
    // The first batches are slow (new connections, a slow greeting: 3 s), later ones fast (up to
    // 200 ms): counting a message when it is handed out would let the first period's late
    // arrivals share a window with the next period's quick ones.
    let batches = 0;
    let seed = 5;
    const s = sim('Domain "dest.test" { Outbound_Throttle_Messages = "600/60s" }', {
      duration: () => (++batches <= 20 ? 3000 : (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 200),
    });
    s.add(2000, 'dest.test');
    s.qm.start();
    await s.run(300_000);
    const handed = s.handed.get('dest.test')!;
    expect(handed).toHaveLength(2000);
    expect(s.qm.size).toBe(0);
    expect(within(handed, T0, T0 + 60_000)).toBe(600);
    expect(maxInWindow(handed, 60_000)).toBeLessThanOrEqual(600);
    // What the receiver saw: still no window holds more.
    expect(maxInWindow(s.arrived, 60_000)).toBeLessThanOrEqual(600);
    // Every whole minute after the first while mail still waited used the budget.
    const last = Math.max(...handed);
    let minutes = 0;
    for (let k = 1; T0 + (k + 1) * 60_000 <= last; k++, minutes++) expect(within(handed, T0 + k * 60_000, T0 + (k + 1) * 60_000)).toBeGreaterThanOrEqual(570);
    expect(minutes).toBeGreaterThanOrEqual(2);
  });

  it('leaves a queue without a throttle unchanged, next to a throttled one', async () => {
    const s = sim('Domain "slow.test" { Outbound_Throttle_Messages = "1/60s" }', { duration: () => 0 });
    s.add(500, 'fast.test');
    s.add(3, 'slow.test');
    s.qm.start();
    await s.run(1);
    // Nothing holds the unthrottled queue back: all of it went before any time passed.
    expect(s.handed.get('fast.test')!.every((t) => t === T0)).toBe(true);
    expect(s.handed.get('fast.test')).toHaveLength(500);
    expect(s.handed.get('slow.test')).toEqual([T0]);
    await s.run(59_000);
    expect(s.handed.get('slow.test')).toHaveLength(1);
    await s.run(3 * 61_000);
    expect(s.handed.get('slow.test')).toHaveLength(3);
    expect(maxInWindow(s.handed.get('slow.test')!, 60_000)).toBe(1);
  });

  it('counts messages that were sent and deferred: their retry waits for the window', async () => {
    const s = sim('Retry_Interval = 1s\nDomain "dest.test" { Outbound_Throttle_Messages = "3/60s" }', {
      duration: () => 0,
      answer: (_r, attempt) => (attempt === 1 ? 'deferred' : 'delivered'),
    });
    s.add(6, 'dest.test');
    s.qm.start();
    await s.run(59_000);
    // Three sent and deferred, back in the queue after about 1 s, and not sent again in the window.
    expect(s.handed.get('dest.test')).toHaveLength(3);
    expect(s.qm.counts().active).toBe(6);
    // Six first attempts and six retries, three a window.
    await s.run(200_000);
    expect(s.handed.get('dest.test')).toHaveLength(12);
    expect(maxInWindow(s.handed.get('dest.test')!, 60_000)).toBe(3);
    expect(s.qm.size).toBe(0);
  });

  it('re-reads the rate on a config reload: a higher limit goes at once, what was sent stays counted; none lets all go', async () => {
    const s = sim('Domain "dest.test" { Outbound_Throttle_Messages = "2/60s" }', { duration: () => 0 });
    s.add(10, 'dest.test');
    s.qm.start();
    await s.run(1000);
    expect(s.handed.get('dest.test')).toHaveLength(2);
    s.cfg.current = config('Domain "dest.test" { Outbound_Throttle_Messages = "5/60s" }');
    s.qm.configChanged();
    await s.run(1000);
    expect(s.handed.get('dest.test')).toHaveLength(5);
    // A new period: what was sent in the last minute still counts against it.
    s.cfg.current = config('Domain "dest.test" { Outbound_Throttle_Messages = "6/2m" }');
    s.qm.configChanged();
    await s.run(1000);
    expect(s.handed.get('dest.test')).toHaveLength(6);
    s.cfg.current = config('');
    s.qm.configChanged();
    await s.run(1000);
    expect(s.handed.get('dest.test')).toHaveLength(10);
  });

  it('a rate of 0 sends nothing and arms no timer, says so in mailq, and a reload to a rate lets mail go', async () => {
    const s = sim('Domain "dest.test" { Outbound_Throttle_Messages = "0/1m" }', { duration: () => 0 });
    s.add(3, 'dest.test');
    s.qm.start();
    await s.run(600_000);
    expect(s.handed.get('dest.test')).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    const row = s.qm.mailq()[0]!;
    expect(row.throttledUntil).toBeNull();
    expect(formatMailq([row], { messages: 3, active: 3, deferred: 0, hold: 0 })).toContain('default/default  dest.test   3   0   0  throttled (its budget is in batches in flight, or its rate is 0)');
    s.cfg.current = config('Domain "dest.test" { Outbound_Throttle_Messages = "1/1m" }');
    s.qm.configChanged();
    await s.run(1000);
    expect(s.handed.get('dest.test')).toEqual([T0 + 600_000]);
  });

  it('arms one timer for every held-back queue, and wakes each when its window allows', async () => {
    const s = sim('Outbound_Throttle_Messages = "1/60s"', { duration: () => 0 });
    for (let d = 0; d < 50; d++) s.add(2, `d${d}.test`);
    s.qm.start();
    await s.run(1000);
    expect([...s.handed.values()].map((l) => l.length)).toEqual(new Array(50).fill(1));
    expect(vi.getTimerCount()).toBe(1);
    const row = s.qm.mailq({ domain: 'd7.test' })[0]!;
    expect(row.throttledUntil).toBeGreaterThan(T0 + 60_000);
    expect(formatMailq([row], { messages: 1, active: 1, deferred: 0, hold: 0 })).toContain(`throttled until ${new Date(row.throttledUntil!).toISOString()}`);
    const id = s.qm.list({ domain: 'd7.test' }).rows[0]!.id;
    const part = s.qm.show(id)!.parts[0]!;
    expect(part).toMatchObject({ state: 'active', throttledUntil: row.throttledUntil });
    expect(formatMessage(s.qm, id)).toContain(`d7.test  active  throttled until ${new Date(row.throttledUntil!).toISOString()}  attempts 0`);
    await s.run(61_000);
    expect([...s.handed.values()].map((l) => l.length)).toEqual(new Array(50).fill(2));
    expect(s.qm.size).toBe(0);
    expect(s.qm.mailq()).toEqual([]);
  });

  it('does not throttle #mmove queues: mail of a binding another node owns moves at once (the owner throttles it)', async () => {
    const s = sim('Outbound_Throttle_Messages = "1/60s"', {
      duration: () => 0,
      route: (_g, b) => (b === 'b1' ? { to: 'node', node: 'n2' } : { to: 'local' }),
    });
    s.add(40, 'dest.test', 's@b1.test');
    s.qm.start();
    await s.run(1000);
    expect(s.moves.flat()).toHaveLength(40);
    expect(s.qm.size).toBe(0);
  });
});
