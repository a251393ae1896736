// Unit tests of the announced member state: entries merged and sorted, encode/decode round trip, and that a
// malformed or hostile announce yields an error result instead of a throw.
// Pure: no I/O.

import { describe, expect, it } from 'vitest';
import {
  MAX_ANNOUNCE_BYTES, createMemberState, decodeMemberState, encodeMemberState,
  type DuravipEntry, type MemberState,
} from '../../../src/cluster/state.js';

function sample(): MemberState {
  return createMemberState({
    node: 'node1', nodeid: 1, seq: 7, quorate: true, memberSince: 1000, configSince: 500,
    addresses: [
      { address: '2001:DB8:0:0::10', services: ['esmtp_listener'], binding: null, preference: 'node2', follow: 'b1' },
      { address: '198.51.100.11', services: ['esmtp_listener'], binding: 'b1', preference: null, follow: null },
      { address: '198.51.100.11', services: ['binding'], binding: 'b1', preference: null, follow: null },
    ],
    holds: ['198.51.100.11', '2001:db8::10'],
  });
}

const wire = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
const good = (): Record<string, unknown> => JSON.parse(encodeMemberState(sample()).toString()) as Record<string, unknown>;

describe('member state', () => {
  it('merges entries that differ only in services and sorts them', () => {
    const s = sample();
    expect(s.addresses).toEqual<DuravipEntry[]>([
      { address: '198.51.100.11', services: ['binding', 'esmtp_listener'], binding: 'b1', preference: null, follow: null },
      { address: '2001:db8::10', services: ['esmtp_listener'], binding: null, preference: 'node2', follow: 'b1' },
    ]);
    expect(s.load).toBe(2);
    expect(s.leaving).toBe(false);
  });

  it('round-trips through encode and decode', () => {
    const s = sample();
    const r = decodeMemberState(encodeMemberState(s));
    expect(r).toEqual({ ok: true, state: s });
  });

  it('carries the #mmove address, accepts an announce without one, and refuses a malformed one', () => {
    const s = createMemberState({ ...sample(), mmove: { host: '198.51.100.11', port: 4802 } });
    expect(decodeMemberState(encodeMemberState(s))).toEqual({ ok: true, state: s });
    const { mmove: _m, ...older } = good();
    expect(decodeMemberState(wire(older))).toMatchObject({ ok: true, state: { mmove: null } });
    for (const bad of [{ host: 'x', port: 1 }, { host: '198.51.100.11', port: 0 }, { host: '198.51.100.11', port: 1, extra: 1 }, '198.51.100.11:4802']) {
      expect(decodeMemberState(wire({ ...good(), mmove: bad })), JSON.stringify(bad)).toMatchObject({ ok: false });
    }
  });

  it('rejects malformed announces with an error result, never a throw', () => {
    const cases: Array<[string, Uint8Array]> = [
      ['not json', Buffer.from('{"v":1,')],
      ['not utf-8', Buffer.from([0x7b, 0xff, 0x7d])],
      ['array', wire([1, 2])],
      ['null', wire(null)],
      ['wrong version', wire({ ...good(), v: 2 })],
      ['unknown field', wire({ ...good(), extra: 1 })],
      ['missing field', wire((({ holds: _h, ...rest }) => rest)(good()))],
      ['bad node name', wire({ ...good(), node: 'no de' })],
      ['nodeid too big', wire({ ...good(), nodeid: 2 ** 32 })],
      ['negative seq', wire({ ...good(), seq: -1 })],
      ['fractional seq', wire({ ...good(), seq: 1.5 })],
      ['quorate string', wire({ ...good(), quorate: 'yes' })],
      ['bad address', wire({ ...good(), addresses: [{ address: '300.1.1.1', services: ['binding'], binding: null, preference: null, follow: null }] })],
      ['non-canonical address', wire({ ...good(), addresses: [{ address: '2001:DB8::1', services: ['binding'], binding: null, preference: null, follow: null }] })],
      ['unknown service', wire({ ...good(), addresses: [{ address: '192.0.2.1', services: ['http'], binding: null, preference: null, follow: null }] })],
      ['no services', wire({ ...good(), addresses: [{ address: '192.0.2.1', services: [], binding: null, preference: null, follow: null }] })],
      ['binding with space', wire({ ...good(), addresses: [{ address: '192.0.2.1', services: ['binding'], binding: 'a b', preference: null, follow: null }] })],
      ['entry extra key', wire({ ...good(), addresses: [{ address: '192.0.2.1', services: ['binding'], binding: null, preference: null, follow: null, x: 1 }] })],
      ['entry is a string', wire({ ...good(), addresses: ['192.0.2.1'] })],
      ['duplicate holds', wire({ ...good(), holds: ['192.0.2.1', '192.0.2.1'], load: 2 })],
      ['load mismatch', wire({ ...good(), load: 5 })],
      ['proto pollution', Buffer.from(encodeMemberState(sample()).toString().replace('"v":1', '"v":1,"__proto__":{"x":1}'))],
      ['oversized', Buffer.alloc(MAX_ANNOUNCE_BYTES + 1, 0x20)],
    ];
    for (const [name, buf] of cases) {
      const r = decodeMemberState(buf);
      expect(r.ok, name).toBe(false);
      if (!r.ok) expect(r.error.length, name).toBeGreaterThan(0);
    }
  });

  it('refuses to build or encode an invalid local state', () => {
    expect(() => createMemberState({ node: 'n', nodeid: 1, seq: 0, quorate: true, memberSince: 0, configSince: 0, addresses: [{ address: 'x', services: ['binding'], binding: null, preference: null, follow: null }], holds: [] })).toThrow(/not an IP/);
    expect(() => encodeMemberState({ ...sample(), load: 9 })).toThrow(/load/);
  });
});
