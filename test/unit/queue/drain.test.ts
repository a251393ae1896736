// A drained node's queue (`cluster drain`): every binding's mail moves to the node its route now
// names, held mail included with its hold (MmoveItem.held), deferred mail with its retry state; a
// move that fails keeps the hold; undrained, held mail waits held here again. Real spool (temp
// directory), scripted moves; no timing: each step waits on a condition.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigText, type Config } from '../../../src/config/index.js';
import { spoolBounce } from '../../../src/delivery/bounce.js';
import { decodeState } from '../../../src/message/retry-state.js';
import type { MmoveItem, MmoveResult } from '../../../src/mmove/client.js';
import { QueueManager, type QueueInput, type Route } from '../../../src/queue/manager.js';
import { Spool } from '../../../src/spool/index.js';
import { tempDir } from '../../helpers/tmp.js';

const logger = pino({ level: 'silent' });
const spools: Spool[] = [];
afterEach(async () => {
  for (const s of spools.splice(0)) await s.close();
});

function config(): Config {
  // Suspend_Delivery: nothing is delivered here, so what leaves the queue left by #mmove.
  const r = loadConfigText('Hostname = "mta.test"\nSuspend_Delivery = true\nBinding "b1" { Bind_Address = "127.0.0.3" }\n', 'test.conf');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function commit(spool: Spool, rcpt: string[], binding: string): Promise<QueueInput> {
  const w = spool.writer().begin();
  w.append(Buffer.from('Subject: hi\r\n\r\nbody\r\n'));
  const env = { v: 1, from: 's@x.test', rcpt, arrival: Date.now(), client: '127.0.0.1', listener: null, headers: {} };
  const { id, size } = await w.commit(Buffer.from(JSON.stringify(env)));
  return { id, size, arrival: env.arrival, from: env.from, rcpt, xBinding: null, listener: null, bindingGroup: 'default', binding };
}

function drainHarness() {
  const spool = Spool.open({ directory: tempDir('vipmta-drain-q-'), nodeId: 't', sync: 'none' });
  spools.push(spool);
  const routes = new Map<string, Route>([['b1', { to: 'node', node: 'n2' }]]);
  const state = { drained: false, fail: false };
  const moves: { node: string; items: MmoveItem[] }[] = [];
  const qm = new QueueManager({
    config, spool, logger,
    bounce: (req) => spoolBounce(req, { reader: spool, writer: spool.writer() }, logger),
    assign: () => ({ bindingGroup: 'default', binding: 'default' }),
    deliver: () => Promise.reject(new Error('no delivery in this test')),
    route: (_g, b) => routes.get(b) ?? { to: 'local' },
    drained: () => state.drained,
    move: async (node, items): Promise<MmoveResult[]> => {
      moves.push({ node, items: items.map((it) => ({ ...it, rcpt: [...it.rcpt] })) });
      return items.map((it) => (state.fail ? { id: it.id, ok: false, code: 451, text: '4.3.2 n3 draining', duplicate: false } : { id: it.id, ok: true, code: 250, text: '2.0.0 Ok', duplicate: false }));
    },
  });
  return { spool, qm, routes, state, moves };
}

describe('queue of a drained node', () => {
  it('moves everything, held and deferred mail too, each to the node its binding now routes to', async () => {
    const h = drainHarness();
    const heldB1 = await commit(h.spool, ['a@one.test'], 'b1');
    const heldLocal = await commit(h.spool, ['b@two.test'], 'default');
    const deferred = await commit(h.spool, ['c@three.test'], 'default');
    const ready = await commit(h.spool, ['d@four.test'], 'default');
    const later = Date.now() + 3_600_000;
    h.qm.add(heldB1);
    h.qm.add(heldLocal);
    h.qm.add(deferred, { v: 1, p: [{ g: 'default', b: 'default', r: ['c@three.test'], a: 2, n: later }] });
    h.qm.add(ready);
    expect(h.qm.hold({ id: heldB1.id })).toBe(1);
    expect(h.qm.hold({ id: heldLocal.id })).toBe(1);
    h.qm.start();
    await new Promise((r) => setImmediate(r));
    // Before the drain: held mail of b1 (owned by n2) waits held; nothing else moves.
    expect(h.moves).toHaveLength(0);
    expect(h.qm.mailq().find((r) => r.binding === '#mmove')).toMatchObject({ domain: 'n2', hold: 1 });

    // The drain: the cluster now routes this node's own bindings to n3.
    h.state.drained = true;
    h.routes.set('default', { to: 'node', node: 'n3' });
    h.qm.drainChanged();
    await until('queue empty', () => h.qm.size === 0);
    const sent = h.moves.flatMap((m) => m.items.map((it) => ({ node: m.node, id: it.id, held: it.held === true, attempts: it.attempts, next: it.nextAttempt })));
    expect(sent.sort((x, y) => x.id.localeCompare(y.id))).toEqual([
      { node: 'n2', id: heldB1.id, held: true, attempts: 0, next: 0 },
      { node: 'n3', id: heldLocal.id, held: true, attempts: 0, next: 0 },
      { node: 'n3', id: deferred.id, held: false, attempts: 2, next: later },
      { node: 'n3', id: ready.id, held: false, attempts: 0, next: 0 },
    ].sort((x, y) => x.id.localeCompare(y.id)));
    expect(h.qm.parts).toBe(0);
    await h.qm.stop(1000);
    expect(h.spool.live()).toHaveLength(0);
  });

  it('a held message whose move fails keeps its hold (saved too); undrained, it waits held here', async () => {
    const h = drainHarness();
    const m = await commit(h.spool, ['a@one.test'], 'default');
    h.qm.add(m);
    expect(h.qm.hold({ id: m.id })).toBe(1);
    h.qm.start();
    h.state.drained = true;
    h.state.fail = true;
    h.routes.set('default', { to: 'node', node: 'n3' });
    h.qm.drainChanged();
    await until('a move refused', () => h.qm.stats().moveFailed >= 1);
    expect(h.moves[0]!.items[0]).toMatchObject({ id: m.id, held: true });
    // Still held for the operator: hold does not count it again, the saved state says held.
    expect(h.qm.hold({ id: m.id })).toBe(0);
    await until('state saved', () => decodeState(h.spool.live()[0]?.state ?? null) !== null);
    expect(decodeState(h.spool.live()[0]!.state)!.p.map((p) => p.h)).toEqual([1]);
    // Undrained: its route is local again and it waits held, not moved, not delivered.
    h.state.drained = false;
    h.routes.set('default', { to: 'local' });
    h.qm.drainChanged();
    expect(h.qm.mailq()).toEqual([{ bindingGroup: 'default', binding: 'default', domain: 'one.test', active: 0, deferred: 0, hold: 1 }]);
    await h.qm.stop(1000);
  });
});
