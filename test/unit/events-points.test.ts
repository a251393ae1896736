// The emission points of the main thread fire their records: the queue manager's outcomes
// (delivery, transient failure with its bounce class and next attempt, permanent failure, expiry),
// the operator's hold, release and rebind (one record per part), shaping's suspensions, and
// intake's reception and mmove_received. The manager runs over a stub spool and scripted delivery results.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/index.js';
import type { MessageResult, RecipientResult } from '../../src/delivery/results.js';
import type { EventEmit } from '../../src/events/emitter.js';
import type { NewEvent } from '../../src/events/records.js';
import { Intake } from '../../src/node/intake.js';
import { NodeShaping } from '../../src/node/shaping.js';
import { BindingPolicy } from '../../src/policy/binding.js';
import { QueueManager } from '../../src/queue/manager.js';
import { tempDir } from '../helpers/tmp.js';

const logger = pino({ level: 'silent' });
const cfg = (() => {
  const r = loadConfigText('Hostname = "mta.test"\nBinding "b1" { Bind_Address = "127.0.0.3" }\nBinding "b2" { Bind_Address = "127.0.0.4" }\n', 'test.conf');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
})();

function recorder(): EventEmit & { events: NewEvent[] } {
  const events: NewEvent[] = [];
  return { events, emit: (e) => void events.push(e), journaled: (e) => void events.push(e) };
}

async function until(what: string, pred: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !pred(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!pred()) throw new Error(`timed out: ${what}`);
}

const NOW = Date.UTC(2026, 11, 3, 16, 0, 0);

function reply(rcpt: string, code: number): RecipientResult {
  const status = code < 300 ? 'delivered' : code < 500 ? 'deferred' : 'bounced';
  const enhanced = code < 300 ? '2.0.0' : code < 500 ? '4.7.1' : '5.1.1';
  const r: RecipientResult = { rcpt, status, code, enhanced, reply: `${code} ${enhanced} scripted`, origin: 'remote', remoteHost: 'mx.y.test', remoteAddress: '203.0.113.5' };
  if (status !== 'delivered') r.bounceClass = code < 500 ? 51 : 10;
  return r;
}

function manager(answer: (rcpt: string) => number, now = () => NOW, binding = 'b1'): { qm: QueueManager; ev: ReturnType<typeof recorder> } {
  const ev = recorder();
  const qm = new QueueManager({
    config: () => cfg,
    spool: { markDone: () => Promise.resolve(), update: () => Promise.resolve() },
    logger,
    events: ev,
    now,
    bounce: () => Promise.resolve({ id: 'DSN1', size: 900 }),
    assign: () => ({ bindingGroup: 'default', binding }),
    deliver: (batch): Promise<MessageResult[]> =>
      Promise.resolve(batch.messages.map((m) => ({ id: m.id, localAddress: '127.0.0.3', results: m.rcpt.map((r) => reply(r, answer(r))) }))),
  });
  return { qm, ev };
}

const msg = (id: string, rcpt: string[], arrival = NOW) => ({ id, size: 321, arrival, from: 's@x.test', rcpt, xBinding: null, listener: null, bindingGroup: 'default', binding: 'b1' });

describe('event emission points', () => {
  it('records a delivery, a transient failure with its bounce class and next attempt, and a permanent failure', async () => {
    const { qm, ev } = manager((r) => (r.startsWith('ok') ? 250 : r.startsWith('later') ? 451 : 550));
    qm.add(msg('Q1', ['ok@y.test', 'later@y.test', 'no@y.test']));
    qm.start();
    await until('three records', () => ev.events.filter((e) => e.type !== 'dsn').length >= 3);
    const byType = Object.fromEntries(ev.events.map((e) => [e.type, e]));
    expect(byType.delivery).toEqual({
      type: 'delivery', time: NOW, id: 'Q1', from: 's@x.test', rcpt: 'ok@y.test', binding: 'default/b1', source: '127.0.0.3', mx: 'mx.y.test', ip: '203.0.113.5',
      reply: '250 2.0.0 scripted', code: 250, enhanced: '2.0.0', origin: 'remote', attempt: 1, size: 321,
    });
    expect(byType.transient_failure).toMatchObject({ rcpt: 'later@y.test', code: 451, class: 51, bounce_class: '51 Spam Block', attempt: 1 });
    expect((byType.transient_failure as { next: number }).next).toBeGreaterThan(NOW);
    expect(byType.permanent_failure).toMatchObject({ rcpt: 'no@y.test', code: 550, enhanced: '5.1.1', class: 10, bounce_class: '10 Invalid Recipient' });
    await until('the DSN record', () => ev.events.some((e) => e.type === 'dsn'));
    expect(ev.events.find((e) => e.type === 'dsn')).toEqual({ type: 'dsn', id: 'DSN1', for: 'Q1', to: 's@x.test', rcpt: ['no@y.test'], size: 900 });
  });

  it('records an expiry for a recipient past Message_Expiration', async () => {
    const { qm, ev } = manager(() => 451);
    qm.add(msg('Q2', ['late@y.test'], NOW - 30 * 86_400_000));
    qm.start();
    await until('expiry', () => ev.events.some((e) => e.type === 'expiry'));
    expect(ev.events.find((e) => e.type === 'expiry')).toMatchObject({
      type: 'expiry', id: 'Q2', rcpt: 'late@y.test', binding: 'default/b1', reply: '451 4.7.1 scripted', class: 24, bounce_class: '24 Timeout',
    });
  });

  it('records hold, release and rebind per part, with its recipients', () => {
    const { qm, ev } = manager(() => 250, () => NOW, 'b2');
    qm.add(msg('Q3', ['a@one.test', 'b@two.test']));
    expect(qm.hold({ id: 'Q3' })).toBe(2);
    expect(qm.release({ id: 'Q3' })).toBe(2);
    expect(qm.rebind('b1')).toBe(2);
    expect(ev.events.map((e) => [e.type, (e as { rcpt: string[] }).rcpt.join()])).toEqual([
      ['hold', 'a@one.test'], ['hold', 'b@two.test'], ['release', 'a@one.test'], ['release', 'b@two.test'], ['rebind', 'a@one.test'], ['rebind', 'b@two.test'],
    ]);
    expect(ev.events[0]).toEqual({ type: 'hold', id: 'Q3', binding: 'default/b1', rcpt: ['a@one.test'] });
    expect(ev.events[4]).toEqual({ type: 'rebind', id: 'Q3', binding: 'default/b2', previous: 'default/b1', rcpt: ['a@one.test'] });
  });
});

describe('#mmove records', () => {
  it('records mmove_sent for a move its peer took, and a permanent_failure per recipient for one it refused', async () => {
    const ev = recorder();
    const qm = new QueueManager({
      config: () => cfg,
      spool: { markDone: () => Promise.resolve(), update: () => Promise.resolve() },
      logger, events: ev, now: () => NOW,
      bounce: () => Promise.resolve({ id: 'DSN1', size: 900 }),
      assign: () => ({ bindingGroup: 'default', binding: 'b1' }),
      deliver: () => Promise.reject(new Error('nothing is delivered here')),
      route: () => ({ to: 'node', node: 'n2' }),
      move: (_node, items) => Promise.resolve(items.map((it) => (it.id === 'M1'
        ? { id: it.id, ok: true, code: 250, text: '2.0.0 Ok', duplicate: false }
        : { id: it.id, ok: false, code: 554, text: '5.4.6 too many hops', duplicate: false }))),
    });
    qm.add(msg('M1', ['a@y.test']));
    qm.add(msg('M2', ['b@y.test', 'c@y.test']));
    qm.start();
    await until('the move records', () => ev.events.filter((e) => e.type !== 'dsn').length >= 3);
    expect(ev.events.find((e) => e.type === 'mmove_sent')).toEqual({
      type: 'mmove_sent', time: NOW, id: 'M1', from: 's@x.test', rcpt: ['a@y.test'], binding: 'default/b1', peer: 'n2', reply: '250 2.0.0 Ok', duplicate: false,
    });
    expect(ev.events.filter((e) => e.type === 'permanent_failure').map((e) => [(e as { rcpt: string }).rcpt, (e as { peer: string }).peer, (e as { code: number }).code])).toEqual([
      ['b@y.test', 'n2', 554], ['c@y.test', 'n2', 554],
    ]);
    await qm.stop(1000);
  });
});

describe('shaping suspension records', () => {
  it('records a restriction coming into force and its end', async () => {
    const r = loadConfigText(`Hostname = "mta.test"\nSpool { Directory = "${tempDir('vipmta-ev-shaping-')}" }\n`, 'test.conf');
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const config = r.config;
    const ev = recorder();
    let changed = 0;
    const shaping = new NodeShaping({ config: () => config, logger, events: ev, changed: () => changed++, now: () => NOW });
    shaping.start();
    try {
      shaping.node.restrict({ action: 'suspend', binding: null, destination: 'y.test', at: NOW, until: NOW + 3_600_000, rate: null, connections: null, rule: 'console', reason: 'blocked' });
      await until('the start record', () => ev.events.length === 1);
      expect(ev.events[0]).toEqual({
        type: 'suspension', state: 'start', action: 'suspend', binding: null, destination: 'y.test', until: NOW + 3_600_000, rule: 'console', reason: 'blocked', origin: config.global.Nodename,
      });
      shaping.node.lift(null, 'y.test');
      await until('the end record', () => ev.events.length === 2);
      expect(ev.events[1]).toMatchObject({ type: 'suspension', state: 'end', action: 'suspend', destination: 'y.test' });
      expect(changed).toBe(2);
    } finally {
      shaping.stop();
    }
  });
});

describe('intake records', () => {
  it('records a reception for mail a listener took, and an mmove_received for mail moved here', () => {
    const ev = recorder();
    const policy = new BindingPolicy(cfg);
    const intake = new Intake({ queue: { add: () => true, has: () => false }, config: () => cfg, policy: () => policy, dedup: { add: () => {} }, logger, events: ev });
    const m = { id: 'Q1', size: 10, arrival: NOW, from: 'a@x.test', rcpt: ['b@y.test'], headers: { 'message-id': '<i@x.test>' }, listener: 'mx', client: '198.51.100.7' };
    const moved = { binding: 'b2', bindingGroup: 'default', originalId: 'P9', originNode: 'n2', arrival: NOW, attempts: 0, nextAttempt: 0, hops: 1 };
    intake.accepted([m, { ...m, id: 'Q2', headers: {}, listener: 'cluster', client: '10.0.0.2', moved }]);
    expect(ev.events).toEqual([
      { type: 'reception', id: 'Q1', from: 'a@x.test', rcpt: ['b@y.test'], size: 10, listener: 'mx', client: '198.51.100.7', binding: 'default/default', msgid: '<i@x.test>' },
      { type: 'mmove_received', id: 'Q2', from: 'a@x.test', rcpt: ['b@y.test'], size: 10, client: '10.0.0.2', origin: 'n2', original: 'P9', hops: 1, binding: 'default/b2', listener: 'cluster' },
    ]);
  });
});
