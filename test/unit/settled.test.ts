// Recovery after a crash between a delivery record and its done-mark (src/node/settled.ts, intake.ts):
// the recipients the journal's tail records as delivered or moved are not queued again; a message
// with none left is reported done. A real spool and journal in a temp dir.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/index.js';
import { encodeEnvelope } from '../../src/message/envelope.js';
import { encodeState } from '../../src/message/retry-state.js';
import { Intake } from '../../src/node/intake.js';
import { settledInJournal } from '../../src/node/settled.js';
import { BindingPolicy } from '../../src/policy/binding.js';
import type { QueueInput } from '../../src/queue/manager.js';
import { chunkOf, EventJournal, Spool } from '../../src/spool/index.js';
import { tempDir } from '../helpers/tmp.js';

const T = Date.UTC(2026, 11, 3, 12);
const logger = pino({ level: 'silent' });
const spools: Spool[] = [];
afterEach(async () => {
  for (const s of spools.splice(0)) await s.close();
});

function attempt(type: string, id: string, rcpt: string, time: number): Buffer {
  return Buffer.from(JSON.stringify({
    v: 1, type, time, node: 'n1', id, rcpt, binding: 'default/default', source: null, mx: 'mx.example.net', ip: '203.0.113.5',
    reply: type === 'delivery' ? '250 2.0.0 ok' : '451 4.3.0 later', code: type === 'delivery' ? 250 : 451, enhanced: null, origin: 'remote', attempt: 1,
  }));
}

async function journalWith(records: Buffer[]): Promise<EventJournal> {
  const dir = tempDir('vipmta-settled-');
  const spool = Spool.open({ directory: dir, nodeId: 'n1', preallocate: 'none' });
  spools.push(spool);
  await spool.appendEvents(records.map((data) => ({ data })));
  return new EventJournal({ directory: dir });
}

describe('settledInJournal', () => {
  it('collects delivered and moved recipients per queue id from the tail, within the window of the last record', async () => {
    const j = await journalWith([
      attempt('delivery', 'OLD', 'o@example.net', T - 20 * 60_000),
      attempt('delivery', 'A', 'x@example.net', T - 1000),
      attempt('transient_failure', 'A', 'y@example.net', T - 900),
      Buffer.from(JSON.stringify({ v: 1, type: 'mmove_sent', time: T - 500, node: 'n1', id: 'B', rcpt: ['p@example.net', 'q@example.net'], binding: 'default/b2', peer: 'n2', reply: '250 ok', duplicate: false })),
      attempt('delivery', 'A', 'z@example.net', T),
    ]);
    const s = settledInJournal(j);
    expect([...s.keys()].sort()).toEqual(['A', 'B']);
    expect([...s.get('A')!].sort()).toEqual(['x@example.net', 'z@example.net']);
    expect([...s.get('B')!].sort()).toEqual(['p@example.net', 'q@example.net']);
  });

  it('reads only the last `max` records', async () => {
    const j = await journalWith([attempt('delivery', 'A', 'x@example.net', T), attempt('delivery', 'B', 'y@example.net', T)]);
    expect([...settledInJournal(j, 1).keys()]).toEqual(['B']);
  });

  it('is empty for an empty journal', async () => {
    expect(settledInJournal(await journalWith([])).size).toBe(0);
  });
});

describe('recovery with settled recipients', () => {
  const cfg = (() => {
    const r = loadConfigText('Hostname = "mta.test"\n', 'test.conf');
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.config;
  })();
  const env = (rcpt: string[]): Buffer => encodeEnvelope({ v: 1, from: 's@client.test', rcpt, arrival: T, client: '198.51.100.7', helo: 'c', user: null, tls: false, listener: 'mx', headers: {} } as never);

  it('queues only the recipients not delivered, and reports messages with none left', () => {
    const added: { input: QueueInput; state: unknown }[] = [];
    const policy = new BindingPolicy(cfg);
    const intake = new Intake({ queue: { add: (input, state) => (added.push({ input, state }), true), has: () => false }, config: () => cfg, policy: () => policy, dedup: { add: () => {} }, logger });
    const state = encodeState({ v: 1, p: [{ g: 'default', b: 'default', r: ['m1@example.net'], a: 1, n: 0 }, { g: 'default', b: 'default', r: ['m2@example.net'], a: 1, n: 0 }] });
    const r = intake.recovered(
      [chunkOf([
        { id: 'A', envelope: env(['x@example.net', 'y@example.net']), state: null, size: 10, arrival: T },
        { id: 'B', envelope: env(['p@example.net', 'q@example.net']), state: null, size: 10, arrival: T },
        { id: 'D', envelope: env(['m1@example.net', 'm2@example.net']), state, size: 10, arrival: T },
        { id: 'E', envelope: env(['e@example.net']), state: null, size: 10, arrival: T },
      ])],
      new Map([
        ['A', new Set(['x@example.net'])],
        ['B', new Set(['p@example.net', 'q@example.net'])],
        ['D', new Set(['m1@example.net'])],
      ]),
    );
    expect(r).toEqual({ added: 3, unreadable: 0, done: ['B'] });
    expect(added.map((a) => [a.input.id, a.input.rcpt])).toEqual([['A', ['y@example.net']], ['D', ['m2@example.net']], ['E', ['e@example.net']]]);
    expect((added[1]!.state as { p: { r: string[] }[] }).p.map((p) => p.r)).toEqual([['m2@example.net']]);
  });
});
