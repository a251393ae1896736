// The shaping group's messages: every kind round-trips, and whatever a peer sends that is not a
// valid message is an error, never an exception or a half-read state.
import { describe, expect, it } from 'vitest';
import { decodeShapingMessage, encodeShapingMessage, type Restriction, type ShapingMessage } from '../../../../src/cluster/shaping/messages.js';

const R: Restriction = {
  action: 'throttle', binding: 'b1', destination: 'mx:mx1.bulk.test', at: 1_000, until: 901_000,
  rate: { count: 60, periodMs: 60_000 }, connections: null, origin: 'n1', rule: 'yahoo-tss04', reason: '421 4.7.0 [TSS04] ...',
};

describe('shaping messages', () => {
  it('round-trip every kind', () => {
    const msgs: ShapingMessage[] = [
      { type: 'claims', node: 'n1', now: 5, claims: [{ key: 'webmail.test#conn', cap: 5, lease: 2, demand: 9, use: 1 }] },
      { type: 'restrict', node: 'n2', now: 6, restriction: R },
      { type: 'restrict', node: 'n2', now: 6, restriction: { ...R, action: 'suspend', binding: null, rate: null } },
      { type: 'lift', node: 'n3', now: 7, binding: null, destination: 'bulk.test' },
      { type: 'sync', node: 'n1', now: 8, claims: [], restrictions: [R], view: ['1:4242', '2:4243'], epoch: 3, departed: [{ id: 'n3@2', claims: [{ key: 'k#conn', cap: 5, lease: 2, demand: 0, use: 2 }] }] },
      { type: 'release', node: 'n2', now: 9, released: [{ id: 'n3@2', key: 'k#conn' }, { id: 'n3@2', key: 'k#msg/60000' }] },
    ];
    for (const m of msgs) expect(decodeShapingMessage(encodeShapingMessage(m))).toEqual({ ok: true, message: m });
  });

  it('refuses what is not a valid message', () => {
    const bad = (v: unknown): string => {
      const d = decodeShapingMessage(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)));
      expect(d.ok).toBe(false);
      return d.ok ? '' : d.error;
    };
    expect(bad('{')).toBe('not JSON');
    expect(bad([])).toBe('not an object');
    expect(bad({ type: 'claims', now: 1, claims: [] })).toBe('no valid "node" and "now"');
    expect(bad({ type: 'claims', node: 'n1', now: 1, claims: [{ key: 'k', cap: -1, lease: 0, demand: 0, use: 0 }] })).toBe('invalid claims');
    expect(bad({ type: 'claims', node: 'n1', now: 1, claims: [{ key: 'k', cap: 1, lease: 0, demand: 0 }] })).toBe('invalid claims');
    expect(bad({ type: 'claims', node: 'n1', now: 1, claims: [{ key: 'k', cap: 1, lease: 0.5, demand: 0, use: 0 }] })).toBe('invalid claims');
    // A name with "@" would pass for a departed member's leases.
    expect(bad({ type: 'claims', node: 'n1@3', now: 1, claims: [] })).toBe('no valid "node" and "now"');
    expect(bad({ type: 'sync', node: 'n1', now: 1, claims: [], restrictions: [], view: ['1:2', 'x'] })).toBe('invalid sync');
    expect(bad({ type: 'sync', node: 'n1', now: 1, claims: [], restrictions: [], view: [], epoch: -1 })).toBe('invalid sync');
    expect(bad({ type: 'sync', node: 'n1', now: 1, claims: [], restrictions: [], view: [], departed: [{ id: 'n3', claims: [] }] })).toBe('invalid sync');
    expect(bad({ type: 'release', node: 'n1', now: 1, released: [] })).toBe('invalid release');
    expect(bad({ type: 'release', node: 'n1', now: 1, released: [{ id: 'n2', key: 'k' }] })).toBe('invalid release');
    expect(bad({ type: 'release', node: 'n1', now: 1, released: [{ id: 'n2@1', key: '' }] })).toBe('invalid release');
    expect(bad({ type: 'restrict', node: 'n1', now: 1, restriction: { ...R, rate: null } })).toBe('invalid restriction');
    expect(bad({ type: 'restrict', node: 'n1', now: 1, restriction: { ...R, action: 'reduce_connections' } })).toBe('invalid restriction');
    expect(bad({ type: 'lift', node: 'n1', now: 1, binding: 3, destination: 'd' })).toBe('lift needs a destination');
    expect(bad({ type: 'sync', node: 'n1', now: 1, claims: [], restrictions: [{}] })).toBe('invalid sync');
    expect(bad({ type: 'elect', node: 'n1', now: 1 })).toBe('unknown message type "elect"');
    expect(decodeShapingMessage(Buffer.alloc(1024 * 1024 + 1, 0x20))).toMatchObject({ ok: false, error: expect.stringMatching(/too large/) });
  });

  it('reads a sync from a member that predates leases as one holding nothing', () => {
    const d = decodeShapingMessage(Buffer.from(JSON.stringify({ type: 'sync', node: 'n1', now: 8, claims: [], restrictions: [R] })));
    expect(d).toEqual({ ok: true, message: { type: 'sync', node: 'n1', now: 8, claims: [], restrictions: [R], view: null, epoch: 0, departed: [] } });
  });
});
