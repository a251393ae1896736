// The cluster's shaping restrictions in the queue: a suspended queue hands out nothing until the
// restriction ends (configChanged), a throttle restriction lowers the configured rate, a connection
// reduction lowers Max_Outbound_Connections, and the shaping hook sees every failure the receiver
// answered (never vipmta's own) and can bounce it. Simulated time, no sleeps.
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfigText } from '../../../src/config/index.js';
import type { MessageResult, RecipientResult } from '../../../src/delivery/results.js';
import type { DeliveryBatch } from '../../../src/delivery/batch.js';
import { QueueManager } from '../../../src/queue/manager.js';
import type { QueueRestrictions } from '../../../src/queue/scheduler.js';

const T0 = 1_800_000_000_000;
afterEach(() => { vi.useRealTimers(); });

function setup(opts: { reply?: (rcpt: string) => Partial<RecipientResult>; shaping?: (b: string, d: string, r: RecipientResult) => boolean; busyMs?: number } = {}) {
  vi.useFakeTimers({ now: T0, toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'Date'] });
  const r = loadConfigText('Hostname = "mta.test"\nShaping_Default_Rules = false\nDomain "dest.test" { Max_Outbound_Connections = 4 Retry_Interval = 1h }', 'test.conf');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const restriction: { current: QueueRestrictions | null } = { current: null };
  const handed: number[] = [];
  let running = 0;
  let maxRunning = 0;
  let ids = 0;
  const qm = new QueueManager({
    config: () => r.config,
    spool: { markDone: async () => {}, update: async () => {} },
    logger: pino({ level: 'silent' }),
    now: () => Date.now(),
    bounce: async () => ({ id: 'dsn', size: 1 }),
    assign: () => ({ bindingGroup: 'default', binding: 'default' }),
    restrictions: (binding, domain) => (binding === 'default' && domain === 'dest.test' ? restriction.current : null),
    ...(opts.shaping !== undefined ? { shaping: opts.shaping } : {}),
    deliver: async (batch: DeliveryBatch): Promise<MessageResult[]> => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      for (const _m of batch.messages) handed.push(Date.now());
      await new Promise((res) => setTimeout(res, opts.busyMs ?? 100));
      running--;
      return batch.messages.map((m) => ({
        id: m.id, localAddress: '127.0.0.3',
        results: m.rcpt.map((rc) => ({ rcpt: rc, status: 'delivered' as const, code: 250, enhanced: '2.0.0', reply: '250 ok', origin: 'remote' as const, remoteHost: 'mx.test', remoteAddress: '127.0.0.1', ...opts.reply?.(rc) })),
      }));
    },
  });
  const add = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const id = `m${++ids}`;
      qm.add({ id, size: 100, arrival: T0, from: 's@x.test', rcpt: [`r${ids}@dest.test`], xBinding: null, listener: null, bindingGroup: 'default', binding: 'default' });
    }
  };
  return { qm, restriction, handed, add, maxRunning: () => maxRunning };
}

describe('shaping restrictions in the queue', () => {
  it('holds a suspended queue until the restriction ends, then delivers', async () => {
    const s = setup();
    s.restriction.current = { suspended: true, rate: null, connections: null };
    s.add(10);
    s.qm.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(s.handed).toEqual([]);
    expect(s.qm.size).toBe(10);
    s.restriction.current = null;
    s.qm.configChanged(); // what the shaping node's 'changed' does
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.handed).toHaveLength(10);
  });

  it('lowers the rate to a throttle restriction and the connections to a reduction', async () => {
    const s = setup({ busyMs: 1000 });
    s.restriction.current = { suspended: false, rate: { count: 5, periodMs: 10_000 }, connections: 1 };
    s.add(40);
    s.qm.start();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(s.maxRunning()).toBe(1);
    // 5 per 10 s, each counted until 10 s after its result: at most 5 in the first 11 s.
    expect(s.handed.filter((t) => t < T0 + 11_000)).toHaveLength(5);
    expect(s.handed.length).toBeLessThan(20);
  });

  it('shows the shaping hook every failure the receiver answered, and bounces what it says to', async () => {
    const seen: string[] = [];
    const s = setup({
      reply: (rc) => (rc.startsWith('r1@') ? { status: 'deferred', code: 421, enhanced: '4.7.0', reply: '421 4.7.0 [TSS04] deferred' }
        : rc.startsWith('r2@') ? { status: 'deferred', code: 451, enhanced: '4.4.2', reply: '4.4.2 lost connection', origin: 'local' }
          : {}),
      shaping: (b, d, r) => { seen.push(`${b} ${d} ${r.reply}`); return r.reply.includes('TSS04'); },
    });
    s.add(3);
    s.qm.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(seen).toEqual(['default dest.test 421 4.7.0 [TSS04] deferred']);
    // r1 bounced now (the rule said so), r2 waits for its retry, r3 delivered.
    expect(s.qm.size).toBe(1);
  });
});
