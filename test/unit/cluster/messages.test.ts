// The cluster's CPG messages (src/cluster/messages.ts): round trips, and refusal of malformed peer
// input without throwing. Pure.
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, type ClusterMessage } from '../../../src/cluster/messages.js';
import { createMemberState, encodeMemberState } from '../../../src/cluster/state.js';

const state = createMemberState({
  node: 'n1', nodeid: 1, seq: 3, quorate: true, memberSince: 10, configSince: 5,
  addresses: [{ address: '198.51.100.201', services: ['binding'], binding: 'b1', preference: 'n1', follow: null }],
  holds: ['198.51.100.201'],
});

describe('cluster messages', () => {
  it('round-trips announces (with shared neighbours), moves and ticks', () => {
    const msgs: ClusterMessage[] = [
      { type: 'announce', now: 1234, state, neighbours: [['198.51.100.100', '02:00:00:00:00:01']] },
      { type: 'move', now: 5, address: '198.51.100.201', node: 'n2' },
      { type: 'tick', now: 99 },
      { type: 'reload', now: 7, node: 'n2' },
      { type: 'reloaded', now: 8, node: 'n3' },
    ];
    for (const m of msgs) expect(decodeMessage(encodeMessage(m))).toEqual({ ok: true, message: m });
  });

  it('refuses a reload round message without a valid node name', () => {
    for (const t of ['R', 'r']) {
      expect(decodeMessage(Buffer.from(`{"t":"${t}","now":1}\n`))).toEqual({ ok: false, error: 'reload needs a node name' });
      expect(decodeMessage(Buffer.from(`{"t":"${t}","now":1,"node":"a b"}\n`)).ok).toBe(false);
    }
  });

  it('drops malformed shared neighbours but keeps the announce', () => {
    const buf = Buffer.concat([Buffer.from('{"t":"A","now":1,"neighbours":[["x","y"],["198.51.100.7","02:00:00:00:00:07"],["2001:db8::1","02:00:00:00:00:08"]]}\n'), encodeMemberState(state)]);
    const d = decodeMessage(buf);
    expect(d.ok && d.message.type === 'announce' && d.message.neighbours).toEqual([['198.51.100.7', '02:00:00:00:00:07']]);
  });

  it('refuses garbage with a reason instead of throwing', () => {
    for (const [input, why] of [
      ['no newline', /no header line/],
      ['[1]\n', /not an object/],
      ['{"t":"T"}\n', /"now"/],
      ['{"t":"Z","now":1}\n', /unknown message type/],
      ['{"t":"M","now":1,"address":"not-ip","node":"n1"}\n', /address and a node name/],
      ['{"t":"A","now":1}\n{"v":99}', /version/],
    ] as const) {
      const d = decodeMessage(Buffer.from(input));
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.error).toMatch(why);
    }
  });
});
