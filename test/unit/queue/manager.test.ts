// The queue manager over a real spool (temp directory, fdatasync off), with the worker boundary
// scripted: each test decides what the "remote" answers per recipient. Checks splitting per
// domain, connection and batch limits, retry and persisted state, hold/release/rebind, lost
// batches, DSNs for bounces (spooled by the worker-side builder, called in-process here), and the
// retry heap and slot store underneath. Time that must pass (a retry, a peer's pause) is driven
// by an injected clock with fake timers, never slept through.
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfigText, type Config } from '../../../src/config/index.js';
import { spoolBounce, type BounceRequest } from '../../../src/delivery/bounce.js';
import type { MessageResult, RecipientResult } from '../../../src/delivery/results.js';
import { backoff, QueueManager, type QueueInput, type Route } from '../../../src/queue/manager.js';
import { splitByDomain } from '../../../src/message/recipients.js';
import { decodeState as parseState } from '../../../src/message/retry-state.js';
import type { MmoveItem, MmoveResult } from '../../../src/mmove/client.js';
import { DEFERRED, PartStore, RetryHeap } from '../../../src/queue/store.js';
import { Spool } from '../../../src/spool/index.js';
import type { DeliveryBatch } from '../../../src/delivery/batch.js';
import { tempDir } from '../../helpers/tmp.js';

const logger = pino({ level: 'silent' });
const spools: Spool[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const s of spools.splice(0)) await s.close();
});

/** The worker's 'spoolBounce', run in-process on the test's spool. */
function bounceOn(spool: Spool): (req: BounceRequest) => Promise<{ id: string; size: number }> {
  return (req) => spoolBounce(req, { reader: spool, writer: spool.writer() }, logger);
}

// Captured before any test fakes the timers: polling for a condition uses real time.
const realSetTimeout = globalThis.setTimeout;

/** Resolves after the callbacks setImmediate already queued (the manager's pump among them). */
function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** A clock the manager reads (`now` option) that moves only with the fake timers: advance(ms)
 *  moves both, so the retry timer and the #mmove pause fire exactly when the clock says. */
function fakeClock(start = Date.now()): { now: () => number; advance: (ms: number) => void } {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
      vi.advanceTimersByTime(ms);
    },
  };
}

function config(extra = ''): Config {
  const r = loadConfigText(`Hostname = "mta.test"\nBinding "b1" { Bind_Address = "127.0.0.3" }\n${extra}`, 'test.conf');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

function openSpool(dir = tempDir('vipmta-qm-')): Spool {
  const s = Spool.open({ directory: dir, nodeId: 't', sync: 'none' });
  spools.push(s);
  return s;
}

async function commit(spool: Spool, from: string, rcpt: string[], body = 'Subject: hi\r\n\r\nbody\r\n'): Promise<QueueInput> {
  const w = spool.writer().begin();
  w.append(Buffer.from(body));
  const env = { v: 1, from, rcpt, arrival: Date.now(), client: '127.0.0.1', listener: null, headers: {} };
  const { id, size } = await w.commit(Buffer.from(JSON.stringify(env)));
  return { id, size, arrival: env.arrival, from, rcpt, xBinding: null, listener: null, bindingGroup: 'default', binding: 'default' };
}

type Answer = (rcpt: string, batch: DeliveryBatch) => 'delivered' | 'deferred' | 'bounced';

function result(rcpt: string, status: 'delivered' | 'deferred' | 'bounced'): RecipientResult {
  const code = status === 'delivered' ? 250 : status === 'deferred' ? 451 : 550;
  const enhanced = status === 'delivered' ? '2.0.0' : status === 'deferred' ? '4.3.0' : '5.1.1';
  return { rcpt, status, code, enhanced, reply: `${code} ${enhanced} scripted`, origin: 'remote', remoteHost: 'mx.test', remoteAddress: '127.0.0.1' };
}

interface Harness {
  qm: QueueManager;
  spool: Spool;
  batches: DeliveryBatch[];
  running: () => number;
  maxRunning: () => number;
  cfg: { current: Config };
  release: () => void;
}

/** A manager whose batches answer per `answer`; with `gate`, batches wait until release(). */
function harness(spool: Spool, answer: Answer, cfgText = '', gate = false, now?: () => number): Harness {
  const batches: DeliveryBatch[] = [];
  let running = 0;
  let maxRunning = 0;
  let waiters: (() => void)[] = [];
  let open = !gate;
  const cfg = { current: config(cfgText) };
  const qm = new QueueManager({
    config: () => cfg.current,
    spool,
    logger,
    bounce: bounceOn(spool),
    ...(now !== undefined ? { now } : {}),
    assign: (m) => (m.from.endsWith('@b1.test') ? { bindingGroup: 'default', binding: 'b1' } : { bindingGroup: 'default', binding: 'default' }),
    deliver: async (batch): Promise<MessageResult[]> => {
      batches.push(batch);
      running++;
      maxRunning = Math.max(maxRunning, running);
      if (!open) await new Promise<void>((r) => waiters.push(r));
      await new Promise((r) => setImmediate(r));
      running--;
      return batch.messages.map((m) => ({ id: m.id, localAddress: '127.0.0.3', results: m.rcpt.map((r) => result(r, answer(r, batch))) }));
    },
  });
  return {
    qm, spool, batches, cfg,
    running: () => running,
    maxRunning: () => maxRunning,
    release: () => {
      open = true;
      for (const w of waiters.splice(0)) w();
      waiters = [];
    },
  };
}

async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => realSetTimeout(r, 5));
  }
}

describe('queue manager', () => {
  it('splits a message per recipient domain and marks it done when every part is delivered', async () => {
    const spool = openSpool();
    const h = harness(spool, () => 'delivered');
    const m = await commit(spool, 's@x.test', ['a@one.test', 'b@two.test', 'c@one.test']);
    h.qm.add(m);
    expect(h.qm.mailq().map((r) => [r.domain, r.active])).toEqual([['one.test', 1], ['two.test', 1]]);
    h.qm.start();
    await until('done', () => h.qm.size === 0);
    expect(h.batches.map((b) => [b.target.domain, b.messages[0]!.rcpt])).toEqual([
      ['one.test', ['a@one.test', 'c@one.test']],
      ['two.test', ['b@two.test']],
    ]);
    await h.qm.stop(1000);
    expect(spool.live()).toHaveLength(0);
  });

  it('runs at most Max_Outbound_Connections batches per queue, each at most Max_Deliveries_Per_Connection', async () => {
    const spool = openSpool();
    const h = harness(spool, () => 'delivered', 'Max_Outbound_Connections = 3\nMax_Deliveries_Per_Connection = 4', true);
    for (let i = 0; i < 40; i++) h.qm.add(await commit(spool, 's@x.test', [`r${i}@dest.test`]));
    h.qm.start();
    await until('3 batches', () => h.running() === 3);
    // The pump filled the queue's connections in one go; maxRunning below says no 4th ever ran.
    expect(h.qm.stats().batches).toBe(3);
    h.release();
    await until('done', () => h.qm.size === 0);
    expect(h.maxRunning()).toBe(3);
    expect(Math.max(...h.batches.map((b) => b.messages.length))).toBeLessThanOrEqual(4);
    expect(h.batches.reduce((n, b) => n + b.messages.length, 0)).toBe(40);
    expect(h.batches[0]!.target.maxDeliveriesPerConnection).toBe(4);
    await h.qm.stop(1000);
  });

  it('defers with backoff, persists the state, and a new manager on the reopened spool resumes from it', async () => {
    const dir = tempDir('vipmta-qm-');
    const spool = openSpool(dir);
    const h = harness(spool, (r) => (r.startsWith('ok') ? 'delivered' : 'deferred'), 'Retry_Interval = 1h');
    const m = await commit(spool, 's@x.test', ['ok@dest.test', 'later@dest.test', 'x@other.test']);
    h.qm.add(m);
    h.qm.start();
    await until('two parts deferred', () => h.qm.counts().deferred === 2);
    const shown = h.qm.show(m.id)!;
    expect(shown.parts.map((p) => [p.domain, p.state, p.attempts, p.rcpt])).toEqual([
      ['dest.test', 'deferred', 1, ['later@dest.test']],
      ['other.test', 'deferred', 1, ['x@other.test']],
    ]);
    // The reason is kept for `message show` (in memory only: a restart forgets it).
    expect(shown.parts.map((p) => p.lastReply)).toEqual(['451 4.3.0 scripted', '451 4.3.0 scripted']);
    const next = shown.parts[0]!.nextAttempt!;
    expect(next).toBeGreaterThanOrEqual(Date.now() + 3_500_000);
    await h.qm.stop(1000);
    await spool.close();
    spools.length = 0;

    const again = openSpool(dir);
    const [rec] = again.recover();
    const state = parseState(rec!.state);
    expect(state?.p.map((p) => [p.r, p.a, p.n])).toEqual([[['later@dest.test'], 1, next], [['x@other.test'], 1, shown.parts[1]!.nextAttempt]]);
    const clock = fakeClock();
    const h2 = harness(again, () => 'delivered', 'Retry_Interval = 1h', false, clock.now);
    h2.qm.add({ ...m }, state);
    expect(h2.qm.show(m.id)!.parts).toEqual(shown.parts.map((p) => ({ ...p, lastReply: null })));
    h2.qm.start();
    // Not due for an hour: a millisecond before the first next attempt nothing has gone.
    const due = Math.min(next, shown.parts[1]!.nextAttempt!);
    clock.advance(due - clock.now() - 1);
    await turn();
    expect(h2.batches).toHaveLength(0);
    expect(h2.qm.counts().deferred).toBe(2);
    expect(h2.qm.release({ id: m.id })).toBe(0); // nothing held
    expect(h2.qm.hold({ domain: 'dest.test' })).toBe(1);
    expect(h2.qm.release({ domain: 'dest.test' })).toBe(1);
    await until('dest.test delivered', () => h2.qm.show(m.id)?.parts.length === 1);
    expect(h2.batches.map((b) => b.messages[0]!.rcpt)).toEqual([['later@dest.test']]);
    await h2.qm.stop(1000);
  });

  it('bounces with a DSN to the sender, none for the null sender, and keeps the DSN queued', async () => {
    const spool = openSpool();
    const h = harness(spool, (r) => (r.startsWith('bad') ? 'bounced' : 'delivered'), 'Suspend_Delivery = false\nDomain "s.test" { Suspend_Delivery = true }');
    const m = await commit(spool, 'sender@s.test', ['bad@dest.test', 'good@dest.test']);
    const n = await commit(spool, '', ['bad2@dest.test']);
    h.qm.add(m);
    h.qm.add(n);
    h.qm.start();
    await until('originals done, DSN queued', () => !h.qm.has(m.id) && !h.qm.has(n.id) && h.qm.size === 1);
    expect(h.qm.mailq()).toEqual([{ bindingGroup: 'default', binding: 'default', domain: 's.test', active: 1, deferred: 0, hold: 0 }]);
    await h.qm.stop(1000);
    const live = spool.live();
    expect(live).toHaveLength(1);
    const env = JSON.parse(live[0]!.envelope.toString()) as { from: string; rcpt: string[]; dsnFor: string };
    expect(env).toMatchObject({ from: '', rcpt: ['sender@s.test'], dsnFor: m.id });
    const body = spool.read(live[0]!.id).toString();
    expect(body).toContain('Final-Recipient: rfc822; bad@dest.test');
    expect(body).not.toContain('Final-Recipient: rfc822; good@dest.test');
    expect(body).toContain('Subject: hi');
    expect(h.qm.stats()).toMatchObject({ delivered: 1, bounced: 2, dsn: 1 });
  });

  it('a DSN that cannot be spooled puts its recipients back, and they bounce again a minute later', async () => {
    const spool = openSpool();
    const clock = fakeClock();
    const batches: DeliveryBatch[] = [];
    let refuse = true;
    const qm = new QueueManager({
      config: () => config('Suspend_Delivery = false\nDomain "s.test" { Suspend_Delivery = true }'),
      spool, logger, now: clock.now,
      assign: () => ({ bindingGroup: 'default', binding: 'default' }),
      deliver: async (b) => {
        batches.push(b);
        return b.messages.map((m) => ({ id: m.id, localAddress: null, results: m.rcpt.map((r) => result(r, 'bounced')) }));
      },
      bounce: (req) => (refuse ? Promise.reject(Object.assign(new Error('disk full'), { code: 'ERR_SPOOL_FULL' })) : bounceOn(spool)(req)),
    });
    const m = await commit(spool, 'sender@s.test', ['bad@dest.test']);
    qm.add(m);
    qm.start();
    await until('the recipient is back, deferred', () => qm.counts().deferred === 1);
    expect(qm.show(m.id)!.parts).toEqual([expect.objectContaining({ rcpt: ['bad@dest.test'], state: 'deferred', attempts: 1, nextAttempt: clock.now() + 60_000 })]);
    expect(qm.stats()).toMatchObject({ dsn: 0, dsnFailed: 1 });
    refuse = false;
    clock.advance(59_999);
    await turn();
    expect(batches).toHaveLength(1);
    clock.advance(1);
    await until('bounced again with a DSN, original done', () => !qm.has(m.id) && qm.size === 1);
    expect(batches).toHaveLength(2);
    expect(qm.stats()).toMatchObject({ bounced: 2, dsn: 1, dsnFailed: 1 });
    await qm.stop(1000);
    const live = spool.live();
    expect(live.map((r) => JSON.parse(r.envelope.toString()).dsnFor)).toEqual([m.id]);
  });

  it('retries the messages of a batch whose worker died', async () => {
    const spool = openSpool();
    let calls = 0;
    const qm = new QueueManager({
      config: () => config(),
      spool, logger, bounce: bounceOn(spool),
      assign: () => ({ bindingGroup: 'default', binding: 'default' }),
      deliver: async (b) => {
        if (calls++ === 0) throw Object.assign(new Error('worker 0 died'), { code: 'ERR_WORKER_DIED' });
        return b.messages.map((m) => ({ id: m.id, localAddress: null, results: m.rcpt.map((r) => result(r, 'delivered')) }));
      },
    });
    const m = await commit(spool, 's@x.test', ['a@dest.test']);
    qm.add(m);
    qm.start();
    await until('deferred after the lost batch', () => qm.counts().deferred === 1);
    expect(qm.show(m.id)!.parts[0]!.attempts).toBe(0);
    expect(qm.release({ id: m.id })).toBe(0);
    qm.hold({ id: m.id });
    qm.release({ id: m.id });
    await until('delivered', () => qm.size === 0);
    expect(calls).toBe(2);
    await qm.stop(1000);
  });

  it('rebind moves queued parts to what the policy now says and leaves others alone', async () => {
    const spool = openSpool();
    const h = harness(spool, () => 'delivered', 'Suspend_Delivery = true');
    const a = await commit(spool, 'x@b1.test', ['r@dest.test']);
    const b = await commit(spool, 'x@other.test', ['r@dest.test']);
    h.qm.add(a);
    h.qm.add(b);
    h.qm.start();
    expect(h.qm.rebind('b1')).toBe(0);
    expect(h.qm.rebind('default', 'nowhere.test')).toBe(0);
    expect(h.qm.rebind('all')).toBe(1);
    expect(h.qm.mailq().map((r) => [r.binding, r.active])).toEqual([['b1', 1], ['default', 1]]);
    expect(h.batches).toHaveLength(0); // suspended
    h.cfg.current = config();
    h.qm.configChanged();
    await until('delivered after the suspension ends', () => h.qm.size === 0);
    const b1 = h.batches.find((x) => x.binding.name === 'b1')!;
    expect(b1.binding.bindAddress).toBe('127.0.0.3');
    await h.qm.stop(1000);
  });
});

/**
 * A manager in a cluster: `routes` says where each binding's mail goes (the cluster's owner of its
 * address); moves are scripted per item by `moveAnswer` and, with `gate`, wait until opened.
 */
function clusterHarness(spool: Spool, cfgText = '', now?: () => number) {
  const routes = new Map<string, Route>();
  const moves: { node: string; items: MmoveItem[] }[] = [];
  const deliveries: DeliveryBatch[] = [];
  const ctl = {
    moveAnswer: (_node: string, _it: MmoveItem): Pick<MmoveResult, 'ok' | 'code' | 'text'> => ({ ok: true, code: 250, text: '2.0.0 Ok: queued as R' }),
    gate: null as Promise<void> | null,
    deliverGate: null as Promise<void> | null,
    /** Deliveries fail on our side (connection cut), not with a reply. */
    deliverCut: false,
  };
  const qm = new QueueManager({
    config: () => config(cfgText),
    spool, logger, bounce: bounceOn(spool),
    ...(now !== undefined ? { now } : {}),
    assign: (m) => (m.from.endsWith('@b1.test') ? { bindingGroup: 'default', binding: 'b1' } : { bindingGroup: 'default', binding: 'default' }),
    deliver: async (batch) => {
      deliveries.push(batch);
      if (ctl.deliverGate !== null) await ctl.deliverGate;
      const cut = (rcpt: string): RecipientResult => ({
        rcpt, status: 'deferred', code: 421, enhanced: '4.4.2', reply: '4.4.2 lost connection with mx.test', origin: 'local', remoteHost: 'mx.test', remoteAddress: null,
      });
      return batch.messages.map((m) => ({ id: m.id, localAddress: '127.0.0.3', results: m.rcpt.map((r) => (ctl.deliverCut ? cut(r) : result(r, 'delivered'))) }));
    },
    route: (_g, b) => routes.get(b) ?? { to: 'local' },
    move: async (node, items) => {
      moves.push({ node, items: items.map((it) => ({ ...it, rcpt: [...it.rcpt] })) });
      if (ctl.gate !== null) await ctl.gate;
      return items.map((it) => ({ id: it.id, duplicate: false, ...ctl.moveAnswer(node, it) }));
    },
  });
  return { qm, routes, moves, deliveries, ctl };
}

async function commitOn(spool: Spool, from: string, rcpt: string[], binding: string): Promise<QueueInput> {
  return { ...(await commit(spool, from, rcpt)), binding };
}

describe('queue manager: #mmove', () => {
  it('queues mail of a binding owned elsewhere as default/#mmove per node, moves it with its binding, and finishes it on the 250', async () => {
    const spool = openSpool();
    const h = clusterHarness(spool);
    h.routes.set('b1', { to: 'node', node: 'n2' });
    let open!: () => void;
    h.ctl.gate = new Promise((r) => (open = r));
    const m = await commitOn(spool, 's@b1.test', ['a@one.test', 'b@two.test'], 'b1');
    const local = await commit(spool, 's@x.test', ['c@one.test']);
    h.qm.add(m);
    h.qm.add({ ...local, binding: 'default' });
    // Pending: both parts of m wait in one #mmove row (the node in the domain column).
    expect(h.qm.mailq().map((r) => [`${r.bindingGroup}/${r.binding}`, r.domain, r.active])).toEqual([
      ['default/#mmove', 'n2', 2],
      ['default/default', 'one.test', 1],
    ]);
    expect(h.qm.show(m.id)!.parts.map((p) => [p.binding, p.domain, p.via])).toEqual([['b1', 'one.test', 'n2'], ['b1', 'two.test', 'n2']]);
    h.qm.start();
    await until('move under way', () => h.moves.length === 1);
    expect(h.qm.mailq({ binding: '#mmove' })).toEqual([{ bindingGroup: 'default', binding: '#mmove', domain: 'n2', active: 2, deferred: 0, hold: 0 }]);
    // One message with all its recipients, its own binding and retry state.
    expect(h.moves[0]!.items).toEqual([expect.objectContaining({ id: m.id, rcpt: ['a@one.test', 'b@two.test'], binding: 'b1', bindingGroup: 'default', attempts: 0, hops: 0 })]);
    open();
    await until('moved and delivered', () => h.qm.size === 0);
    expect(h.deliveries.map((b) => b.binding.name)).toEqual(['default']);
    expect(h.qm.stats()).toMatchObject({ moved: 1, delivered: 1 });
    await h.qm.stop(1000);
    expect(spool.live()).toHaveLength(0);
  });

  it('re-places only the bindings whose owner changed, with their retry state', async () => {
    const spool = openSpool();
    const h = clusterHarness(spool, 'Suspend_Delivery = true');
    const m = await commitOn(spool, 's@b1.test', ['a@one.test'], 'b1');
    const other = await commit(spool, 's@x.test', ['c@one.test']);
    h.qm.add(m, { v: 1, p: [{ g: 'default', b: 'b1', r: ['a@one.test'], a: 3, n: Date.now() + 3_600_000 }] });
    h.qm.add(other);
    h.ctl.gate = new Promise(() => undefined); // moves never finish in this test
    h.qm.start();
    expect(h.qm.reroute()).toBe(0); // nothing changed
    expect(h.qm.show(m.id)!.parts[0]).toMatchObject({ state: 'deferred', via: null });
    h.routes.set('b1', { to: 'node', node: 'n2' });
    expect(h.qm.reroute()).toBe(1);
    await until('moving', () => h.moves.length === 1);
    // Suspend_Delivery does not hold moves; attempts and next attempt travel with the message.
    expect(h.moves[0]!.items[0]).toMatchObject({ id: m.id, attempts: 3, binding: 'b1' });
    expect(h.moves[0]!.items[0]!.nextAttempt).toBeGreaterThan(Date.now() + 3_000_000);
    expect(h.qm.show(other.id)!.parts[0]).toMatchObject({ binding: 'default', state: 'active', via: null });
    expect(h.deliveries).toHaveLength(0);
    await h.qm.stop(100);
  });

  it('a move that fails goes back and waits; when the owner changes it goes to the new one; a local owner delivers', async () => {
    const spool = openSpool();
    const clock = fakeClock();
    const h = clusterHarness(spool, '', clock.now);
    h.routes.set('b1', { to: 'node', node: 'n2' });
    h.ctl.moveAnswer = (node) => (node === 'n2' ? { ok: false, code: 0, text: 'connection closed by the peer' } : { ok: true, code: 250, text: '2.0.0 Ok' });
    const m = await commitOn(spool, 's@b1.test', ['a@one.test'], 'b1');
    h.qm.add(m);
    h.qm.start();
    await until('first move failed', () => h.qm.stats().moveFailed === 1);
    expect(h.qm.mailq()).toEqual([{ bindingGroup: 'default', binding: '#mmove', domain: 'n2', active: 1, deferred: 0, hold: 0 }]);
    // n2's queue waits 5 s instead of spinning, then tries again.
    clock.advance(4_999);
    await turn();
    expect(h.moves).toHaveLength(1);
    clock.advance(1);
    await until('second move failed', () => h.qm.stats().moveFailed === 2);
    expect(h.moves).toHaveLength(2);
    // n2 died; its addresses went to this node: the message is delivered here, from b1.
    h.routes.set('b1', { to: 'local' });
    expect(h.qm.reroute()).toBe(1);
    await until('delivered locally', () => h.qm.size === 0);
    expect(h.deliveries.map((b) => [b.binding.name, b.binding.bindAddress])).toEqual([['b1', '127.0.0.3']]);
    await h.qm.stop(1000);
  });

  it('moves on a message that came over #mmove for a binding this node does not own either, counting its hops', async () => {
    const spool = openSpool();
    const h = clusterHarness(spool);
    h.routes.set('b1', { to: 'node', node: 'n3' });
    const m = await commitOn(spool, 's@b1.test', ['a@one.test'], 'b1');
    h.qm.add({ ...m, hops: 2, origin: 'n1' }, { v: 1, p: [{ g: 'default', b: 'b1', r: ['a@one.test'], a: 1, n: 0 }] });
    h.qm.start();
    await until('moved on', () => h.qm.size === 0);
    expect(h.moves[0]).toMatchObject({ node: 'n3', items: [{ id: m.id, hops: 2, originNode: 'n1', attempts: 1, binding: 'b1' }] });
    await h.qm.stop(1000);
  });

  it('delivers mail that waited for an owner as soon as this node becomes it', async () => {
    const spool = openSpool();
    const h = clusterHarness(spool);
    h.routes.set('b1', { to: 'wait' });
    const m = await commitOn(spool, 's@b1.test', ['a@one.test'], 'b1');
    h.qm.add(m);
    h.qm.start();
    await turn(); // the pump ran and put the queue aside
    expect(h.deliveries).toHaveLength(0);
    expect(h.qm.stats().batches).toBe(0);
    h.routes.set('b1', { to: 'local' });
    expect(h.qm.reroute()).toBe(0); // it stays in its queue, which runs again
    await until('delivered', () => h.qm.size === 0);
    expect(h.deliveries.map((b) => b.binding.name)).toEqual(['b1']);
    await h.qm.stop(1000);
  });

  it('waits without attempts while nobody owns the address, and persists the home binding, never #mmove', async () => {
    const spool = openSpool();
    const h = clusterHarness(spool);
    h.routes.set('b1', { to: 'wait' });
    const m = await commitOn(spool, 's@b1.test', ['a@one.test', 'b@two.test'], 'b1');
    h.qm.add(m);
    h.qm.start();
    await turn(); // the pump ran and put the queue aside
    expect(h.deliveries).toHaveLength(0);
    expect(h.qm.hold({ id: m.id })).toBe(2);
    h.routes.set('b1', { to: 'node', node: 'n3' });
    expect(h.qm.reroute()).toBe(2);
    expect(h.qm.mailq()).toEqual([{ bindingGroup: 'default', binding: '#mmove', domain: 'n3', active: 0, deferred: 0, hold: 2 }]);
    await until('state saved', () => parseState(spool.live()[0]?.state ?? null) !== null);
    expect(parseState(spool.live()[0]!.state)!.p.map((p) => [p.g, p.b, p.h])).toEqual([['default', 'b1', 1], ['default', 'b1', 1]]);
    expect(h.qm.release({ binding: 'b1' })).toBe(2);
    await until('moved to n3', () => h.qm.size === 0);
    expect(h.moves.map((x) => [x.node, x.items.length])).toEqual([['n3', 1]]);
    await h.qm.stop(1000);
  });

  it('a delivery cut because its binding moved away counts no attempt and follows the binding', async () => {
    const spool = openSpool();
    const h = clusterHarness(spool, 'Retry_Interval = 1h');
    let open!: () => void;
    h.ctl.deliverGate = new Promise((r) => (open = r));
    h.ctl.deliverCut = true;
    const m = await commitOn(spool, 's@b1.test', ['a@one.test'], 'b1');
    h.qm.add(m);
    h.qm.start();
    await until('delivery under way', () => h.deliveries.length === 1);
    h.routes.set('b1', { to: 'node', node: 'n3' });
    expect(h.qm.reroute()).toBe(0); // in flight: placed when its result comes back
    open();
    await until('moved to n3', () => h.qm.size === 0);
    expect(h.moves[0]!.items[0]).toMatchObject({ id: m.id, attempts: 0, nextAttempt: 0, binding: 'b1' });
    await h.qm.stop(1000);
  });

  it('a delivery that fails on our side while the binding stays here is an attempt, with backoff', async () => {
    const spool = openSpool();
    const h = clusterHarness(spool, 'Retry_Interval = 1h');
    h.ctl.deliverCut = true;
    const m = await commitOn(spool, 's@b1.test', ['a@one.test'], 'b1');
    h.qm.add(m);
    h.qm.start();
    await until('deferred', () => h.qm.counts().deferred === 1);
    expect(h.qm.show(m.id)!.parts[0]).toMatchObject({ attempts: 1, via: null });
    expect(h.qm.show(m.id)!.parts[0]!.nextAttempt).toBeGreaterThan(Date.now() + 3_000_000);
    await h.qm.stop(1000);
  });

  it('bounces a message the owner refuses with a 5xx (hop limit), with a DSN to the sender', async () => {
    const spool = openSpool();
    const h = clusterHarness(spool, 'Suspend_Delivery = true'); // the DSN stays queued
    h.routes.set('b1', { to: 'node', node: 'n2' });
    h.ctl.moveAnswer = () => ({ ok: false, code: 554, text: '5.4.6 too many #mmove hops' });
    const m = await commitOn(spool, 'sender@s.test', ['a@one.test'], 'b1');
    h.qm.add(m);
    h.qm.start();
    await until('bounced, DSN queued', () => !h.qm.has(m.id) && h.qm.size === 1);
    await h.qm.stop(1000);
    const dsn = spool.live().find((r) => r.id !== m.id)!;
    const body = spool.read(dsn.id).toString();
    expect(body).toContain('Status: 5.4.6');
    expect(body).toContain('Final-Recipient: rfc822; a@one.test');
    expect(h.qm.stats()).toMatchObject({ bounced: 1, dsn: 1, moved: 0 });
  });
});

describe('queue helpers', () => {
  it('backoff doubles from Retry_Interval, caps at 4 h, and adds at most 10% jitter', () => {
    const none = () => 0;
    expect([1, 2, 3, 4].map((a) => backoff(60_000, a, none))).toEqual([60_000, 120_000, 240_000, 480_000]);
    expect(backoff(60_000, 40, none)).toBe(4 * 3_600_000);
    expect(backoff(6 * 3_600_000, 5, none)).toBe(6 * 3_600_000);
    expect(backoff(1000, 1, () => 0.999)).toBeLessThanOrEqual(1100);
  });

  it('splits recipients by domain, case-insensitively, in first-seen order', () => {
    expect(splitByDomain(['a@X.test', 'b@y.test', 'c@x.TEST'])).toEqual([['a@X.test', 'c@x.TEST'], ['b@y.test']]);
  });

  it('refuses malformed persisted state', () => {
    expect(parseState(Buffer.from('{"v":2,"p":[]}'))).toBeNull();
    expect(parseState(Buffer.from('nope'))).toBeNull();
    expect(parseState(Buffer.from('{"v":1,"p":[{"g":"a","b":"b","r":[1],"a":0,"n":0}]}'))).toBeNull();
    expect(parseState(Buffer.from('{"v":1,"p":[{"g":"a","b":"b","r":["x@y"],"a":2,"n":5,"h":1}]}'))).toEqual({ v: 1, p: [{ g: 'a', b: 'b', r: ['x@y'], a: 2, n: 5, h: 1 }] });
  });

  it('keeps the latest deferral reply of a part and drops it when the part is freed', () => {
    const st = new PartStore();
    const a = st.alloc();
    const b = st.alloc();
    st.setReply(a, '451 4.3.0 first');
    st.setReply(a, '421 4.7.0 second');
    st.setReply(b, Buffer.from('421 4.7.0 second').toString());
    expect([st.lastReply.get(a), st.lastReply.get(b)]).toEqual(['421 4.7.0 second', '421 4.7.0 second']);
    st.free(a);
    expect(st.lastReply.has(a)).toBe(false);
    const reused = st.alloc();
    expect(reused).toBe(a);
    expect(st.lastReply.has(reused)).toBe(false); // a new part in the old slot has no reason yet
    for (let i = 0; i < 5000; i++) st.setReply(b, `451 4.3.0 distinct ${i}`); // the text cache stays bounded
    expect(st.lastReply.get(b)).toBe('451 4.3.0 distinct 4999');
  });

  it('the retry heap pops in next-attempt order through removals and slot reuse', () => {
    const st = new PartStore();
    const heap = new RetryHeap(st);
    const slots: number[] = [];
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 3000; i++) {
      const s = st.alloc();
      st.state[s] = DEFERRED;
      st.next[s] = Math.floor(rnd() * 1e6);
      heap.push(s);
      slots.push(s);
    }
    for (let i = 0; i < 3000; i += 3) heap.remove(slots[i]!);
    const out: number[] = [];
    for (let s = heap.pop(); s !== -1; s = heap.pop()) out.push(st.next[s]!);
    expect(out).toHaveLength(2000);
    expect(out).toEqual([...out].sort((a, b) => a - b));
    for (const s of slots) st.free(s);
    expect(st.count).toBe(0);
    const again = st.alloc();
    expect(slots).toContain(again); // reuses a freed slot rather than growing
  });
});
