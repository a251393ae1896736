// Intake (src/node/intake.ts): mail accepted by a worker and mail recovered from the spool take one
// path into a real queue manager. Checks that both paths place alike, that moved mail keeps its
// sender's binding and retry state, and how unreadable envelopes and retry states are handled.
import { describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/index.js';
import type { AcceptedMessage } from '../../../src/message/accepted.js';
import { encodeEnvelope, type MoveMeta } from '../../../src/message/envelope.js';
import { encodeState } from '../../../src/message/retry-state.js';
import { DedupTable, moveKey } from '../../../src/mmove/dedup.js';
import { Intake } from '../../../src/node/intake.js';
import { BindingPolicy } from '../../../src/policy/binding.js';
import type { QueueInput, QueueManager } from '../../../src/queue/manager.js';
import { chunkOf, type RecoveredMessage } from '../../../src/spool/index.js';
import { config, idleQueue, recordingLogger } from './helpers.js';

const NOW = Date.UTC(2026, 0, 1);
const LISTENER = '127.0.0.1:2525';

const CONF = `
ESMTP_Listener {
  Listen "${LISTENER}" { Binding = "b1" Trusted_Injectors = ( "127.0.0.0/8" ) }
}
Binding "b1" { Bind_Address = 127.0.0.3 }
Binding "b2" { Bind_Address = 127.0.0.4 }
`;

interface Rig {
  intake: Intake;
  qm: QueueManager;
  /** What intake handed to queue.add, in order. */
  added: { input: QueueInput; state: unknown }[];
  dedup: DedupTable;
  log: ReturnType<typeof recordingLogger>;
}

function rig(cfg: Config = config(CONF)): Rig {
  const log = recordingLogger();
  const qm = idleQueue(cfg, log.logger, NOW);
  const added: Rig['added'] = [];
  const queue = {
    has: (id: string) => qm.has(id),
    add: (input: QueueInput, state: Parameters<QueueManager['add']>[1] = null) => {
      added.push({ input, state });
      return qm.add(input, state);
    },
  };
  const policy = new BindingPolicy(cfg);
  const dedup = new DedupTable({ entries: 64, windowMs: 3_600_000 });
  const intake = new Intake({ queue, config: () => cfg, policy: () => policy, dedup, logger: log.logger });
  return { intake, qm, added, dedup, log };
}

function accepted(id: string, o: Partial<AcceptedMessage> = {}): AcceptedMessage {
  return { id, size: 100, arrival: NOW - 1000, from: 'alice@sender.test', rcpt: ['bob@a.test', 'carol@b.test'], headers: {}, listener: LISTENER, client: '127.0.0.1', ...o };
}

/** The spool record the listener (or #mmove receiver) would have committed for `m`. */
function record(m: AcceptedMessage, o: { state?: Buffer | null; envelope?: Buffer; mmovePeer?: string } = {}): RecoveredMessage {
  const envelope = o.envelope ?? encodeEnvelope({
    v: 1, from: m.from, rcpt: m.rcpt, arrival: m.arrival, client: m.client, helo: 'client.test', user: null, tls: false,
    listener: m.listener, headers: m.headers,
    ...(m.moved !== undefined ? { moved: m.moved } : {}),
    ...(o.mmovePeer !== undefined ? { mmovePeer: o.mmovePeer } : {}),
  });
  // The commit time differs from the listener's arrival: the envelope's wins.
  return { id: m.id, envelope, state: o.state ?? null, size: m.size, arrival: m.arrival + 5 };
}

function move(o: Partial<MoveMeta> = {}): MoveMeta {
  return { binding: 'b2', bindingGroup: 'default', originalId: 'orig-1', originNode: 'n2', arrival: NOW - 600_000, attempts: 3, nextAttempt: NOW + 60_000, hops: 2, ...o };
}

describe('intake', () => {
  it('places accepted and recovered mail alike', () => {
    const msgs = [
      accepted('x-trusted', { headers: { 'x-binding': 'b2' } }),
      accepted('x-untrusted', { headers: { 'x-binding': 'b2' }, client: '10.9.9.9' }),
      accepted('by-listener'),
      accepted('made-here', { listener: null, client: '', from: '' }),
    ];
    const a = rig();
    a.intake.accepted(msgs);
    const r = rig();
    expect(r.intake.recovered([chunkOf(msgs.map((m) => record(m)))])).toEqual({ added: 4, unreadable: 0, done: [] });
    expect(r.added).toEqual(a.added);
    expect(a.added.map((x) => [x.input.id, `${x.input.bindingGroup}/${x.input.binding}`, x.input.xBinding])).toEqual([
      ['x-trusted', 'default/b2', 'b2'],
      ['x-untrusted', 'default/b1', null],
      ['by-listener', 'default/b1', null],
      ['made-here', 'default/default', null],
    ]);
    // One part per recipient domain, ready at once.
    expect(a.qm.show('by-listener')!.parts.map((p) => [p.domain, p.state, p.attempts])).toEqual([['a.test', 'active', 0], ['b.test', 'active', 0]]);
  });

  it('logs a reception record for accepted mail only', () => {
    const a = rig();
    a.intake.accepted([accepted('m1')]);
    a.intake.recovered([chunkOf([record(accepted('m2'))])]);
    const receptions = a.log.records.filter((x) => x.event === 'reception');
    expect(receptions).toHaveLength(1);
    expect(receptions[0]).toMatchObject({ id: 'm1', binding: 'default/b1', listener: LISTENER, client: '127.0.0.1', size: 100 });
  });

  it('keeps a moved message on the binding and retry state its sender gave it, by either path', () => {
    for (const path of ['accepted', 'recovered'] as const) {
      const x = rig();
      const m = accepted('moved', { moved: move(), headers: {} });
      if (path === 'accepted') x.intake.accepted([m]);
      else x.intake.recovered([chunkOf([record(m)])]);
      // The listener would say b1: the move's binding wins.
      expect(x.added[0]!.input).toMatchObject({ bindingGroup: 'default', binding: 'b2', xBinding: null, hops: 2, origin: 'n2' });
      expect(x.qm.show('moved')!.parts.map((p) => [p.binding, p.domain, p.state, p.attempts, p.nextAttempt])).toEqual([
        ['b2', 'a.test', 'deferred', 3, NOW + 60_000],
        ['b2', 'b.test', 'deferred', 3, NOW + 60_000],
      ]);
      expect(x.log.warnings()).toEqual([]);
    }
  });

  it('starts a moved message that had no attempt as new mail on its binding', () => {
    const x = rig();
    x.intake.accepted([accepted('fresh', { moved: move({ attempts: 0, nextAttempt: 0 }) })]);
    expect(x.added[0]!.state).toBeNull();
    expect(x.qm.show('fresh')!.parts.map((p) => [p.binding, p.state, p.attempts])).toEqual([['b2', 'active', 0], ['b2', 'active', 0]]);
  });

  it('falls back to the policy, with a warning, when a moved message names a binding unknown here', () => {
    const x = rig();
    x.intake.accepted([accepted('lost', { moved: move({ binding: 'gone', attempts: 1 }) })]);
    expect(x.added[0]!.input).toMatchObject({ bindingGroup: 'default', binding: 'default' });
    // Its attempts still come along, now on the fallback binding.
    expect(x.qm.show('lost')!.parts.map((p) => [p.binding, p.attempts])).toEqual([['default', 1], ['default', 1]]);
    const w = x.log.warnings();
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ id: 'lost', binding: 'gone', from: 'n2' });
    expect(w[0]!.msg).toContain('unknown here; using default/default');
  });

  it('re-learns the #mmove duplicate key of a recovered moved message', () => {
    const x = rig();
    const m = accepted('moved', { moved: move() });
    const key = moveKey('orig-1', m.rcpt);
    expect(x.dedup.seen('peer-n2', key)).toBe(false);
    x.intake.recovered([chunkOf([record(m, { mmovePeer: 'peer-n2' })])]);
    expect(x.dedup.seen('peer-n2', key)).toBe(true);
  });

  it('counts an unreadable envelope and leaves it out of the queue', () => {
    const x = rig();
    const good = accepted('good');
    const bad = record(accepted('bad'), { envelope: Buffer.from('{"from": "a@b.test", "rcpt": [') });
    const notAnObject = record(accepted('array'), { envelope: Buffer.from('[1,2]') });
    expect(x.intake.recovered([chunkOf([bad, record(good), notAnObject])])).toEqual({ added: 1, unreadable: 2, done: [] });
    expect(x.qm.has('bad')).toBe(false);
    expect(x.qm.has('array')).toBe(false);
    expect(x.qm.has('good')).toBe(true);
    expect(x.log.records.filter((r) => r.level === 50).map((r) => r.id)).toEqual(['bad', 'array']);
  });

  it('starts a message over when its retry state does not decode', () => {
    const x = rig();
    const m = accepted('corrupt');
    expect(x.intake.recovered([chunkOf([record(m, { state: Buffer.from('{"v":1,"p":[{"g":1}]}') })])])).toEqual({ added: 1, unreadable: 0, done: [] });
    expect(x.qm.show('corrupt')!.parts.map((p) => [p.binding, p.state, p.attempts])).toEqual([['b1', 'active', 0], ['b1', 'active', 0]]);
    expect(x.log.warnings().map((w) => [w.id, w.msg])).toEqual([['corrupt', 'spool: unreadable retry state ignored; the message starts over']]);
  });

  it('resumes a recovered message from the retry state this node saved, over the move\'s', () => {
    const x = rig();
    const state = encodeState({ v: 1, p: [{ g: 'default', b: 'b1', r: ['bob@a.test'], a: 5, n: NOW + 1000, h: 1 }] });
    x.intake.recovered([chunkOf([record(accepted('saved', { moved: move() }), { state })])]);
    // Only the recipient left, held, with its attempts: carol was delivered before the restart.
    expect(x.qm.show('saved')!.parts.map((p) => [p.binding, p.state, p.attempts, p.rcpt])).toEqual([['b1', 'hold', 5, ['bob@a.test']]]);
  });

  it('skips recovered records the queue already holds', () => {
    const x = rig();
    const m = accepted('once');
    x.intake.accepted([m]);
    expect(x.intake.recovered([chunkOf([record(m)])])).toEqual({ added: 0, unreadable: 0, done: [] });
    expect(x.added).toHaveLength(1);
  });
});

describe('intake: mail to <postmaster> (RFC 5321 4.5.1)', () => {
  const WITH = `${CONF}\nPostmaster_Address = "hostmaster@example.test"\n`;

  it('rewrites a bare postmaster recipient, any case, to Postmaster_Address; other recipients stay', () => {
    const x = rig(config(WITH));
    x.intake.accepted([accepted('pm', { rcpt: ['PostMaster', 'bob@a.test', 'postmaster@a.test'] })]);
    expect(x.added[0]!.input.rcpt).toEqual(['hostmaster@example.test', 'bob@a.test', 'postmaster@a.test']);
  });

  it('recovery rewrites too, while the spool envelope keeps what the client sent', () => {
    const x = rig(config(WITH));
    const m = accepted('pm-rec', { rcpt: ['postmaster'] });
    const r = record(m);
    x.intake.recovered([chunkOf([r])]);
    expect(x.added[0]!.input.rcpt).toEqual(['hostmaster@example.test']);
    expect(r.envelope.toString('latin1')).toContain('postmaster');
    expect(r.envelope.toString('latin1')).not.toContain('hostmaster@example.test');
  });

  it('mail without postmaster is handed on as the same array (no copy on the hot path)', () => {
    const x = rig(config(WITH));
    const m = accepted('plain');
    x.intake.accepted([m]);
    expect(x.added[0]!.input.rcpt).toBe(m.rcpt);
  });

  it('without Postmaster_Address the recipient stays and each such message is logged at WARN', () => {
    const x = rig();
    x.intake.accepted([accepted('pm-none', { rcpt: ['postmaster'] })]);
    expect(x.added[0]!.input.rcpt).toEqual(['postmaster']);
    expect(x.log.records.some((r) => r.level === 40 && /no Postmaster_Address/.test(String(r.msg)))).toBe(true);
  });
});
