// The config group's decision (src/cluster/config-round.ts) and its wire (config-wire.ts): quorum,
// a stale base, one proposal at a time, rejections with each node's errors, a voter leaving before
// its vote, a member joining mid-round, the proposer's abort, and who is behind; the HMAC, the
// sender check and the 512 KiB cap of a PROPOSE.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ChangeSet } from '../../src/config/repo/types.js';
import { catchUp, ConfigRound, proposalId } from '../../src/cluster/config-round.js';
import { configKey, decodeConfigMessage, encodeConfigMessage, MAX_PROPOSE_BYTES, type StateBody } from '../../src/cluster/config-wire.js';

const R1 = 'a'.repeat(40);
const R2 = 'b'.repeat(40);
const K1 = '1:100';
const K2 = '2:200';
const K3 = '3:300';
const st = (node: string, head: string, height: number, quorate = true): StateBody => ({ node, head, running: head, autoApply: true, drift: [], height, quorate });
const cs = (base: string, files = [{ path: 'global/vipmta.conf', content: Buffer.from('Nodename = x\n') }]): ChangeSet => ({ base, message: 'm', author: 'A <a@b.test>', time: 1_700_000_000, files });

/** Three members at R1, quorate. */
function three(): ConfigRound {
  const r = new ConfigRound();
  expect(r.view([K1, K2, K3], [K1, K2, K3], [])).toBeNull();
  r.state(K1, st('n1', R1, 1));
  r.state(K2, st('n2', R1, 1));
  r.state(K3, st('n3', R1, 1));
  return r;
}

describe('config round', () => {
  it('commits when every member votes yes, with the same voters and height everywhere', () => {
    const r = three();
    const id = proposalId(K1, 5);
    expect(r.propose(K1, id, cs(R1))).toEqual({ open: true, voters: [K1, K2, K3] });
    expect(r.vote(K1, id, true, [])).toBeNull();
    expect(r.vote(K2, id, true, [])).toBeNull();
    expect(r.vote(K2, id, true, [])).toBeNull(); // a second vote counts once
    const end = r.vote(K3, id, true, []);
    expect(end).toMatchObject({ ok: true, id, proposer: K1, voters: [K1, K2, K3], height: 2 });
    // Until each voter has said its new state, the next proposal waits.
    expect(r.propose(K2, proposalId(K2, 1), cs(R2))).toMatchObject({ open: false, end: { message: expect.stringMatching(/another change is being decided/) } });
    r.state(K1, st('n1', R2, 2));
    r.state(K2, st('n2', R2, 2));
    r.state(K3, st('n3', R2, 2));
    expect(r.busy).toBe(false);
    expect(r.agreed()).toEqual({ complete: true, quorate: true, head: R2, height: 2 });
  });

  it('refuses without quorum, naming it, on every member', () => {
    const r = new ConfigRound();
    r.view([K3], [], [{ key: K1, why: 'left the group (nodedown)' }]);
    r.state(K3, st('n3', R1, 1, false));
    const out = r.propose(K3, proposalId(K3, 1), cs(R1));
    expect(out).toMatchObject({ open: false, end: { ok: false, message: expect.stringMatching(/this partition has no quorum/) } });
    expect(r.busy).toBe(false);
  });

  it('refuses while the view is forming and a stale base', () => {
    const r = new ConfigRound();
    r.view([K1, K2], [K1, K2], []);
    r.state(K1, st('n1', R1, 1));
    expect(r.propose(K1, proposalId(K1, 1), cs(R1))).toMatchObject({ open: false, end: { message: expect.stringMatching(/still forming/) } });
    r.state(K2, st('n2', R1, 1));
    expect(r.propose(K1, proposalId(K1, 2), cs(''))).toMatchObject({ open: false, end: { message: expect.stringMatching(/stale.*empty repository.*aaaaaaaaaaaa/) } });
    expect(r.propose(K1, proposalId(K1, 3), cs(R1))).toMatchObject({ open: true });
  });

  it('one proposal at a time: a second one delivered while one is open is refused', () => {
    const r = three();
    expect(r.propose(K1, proposalId(K1, 1), cs(R1)).open).toBe(true);
    expect(r.propose(K2, proposalId(K2, 1), cs(R1))).toMatchObject({ open: false, end: { proposer: K2, message: expect.stringMatching(/another change is being decided/) } });
  });

  it('a rejection lists each rejecting node with its errors, and nobody commits', () => {
    const r = three();
    const id = proposalId(K1, 1);
    r.propose(K1, id, cs(R1));
    r.vote(K3, id, false, ['n3/vipmta.conf:4:7: Interface eth9 does not exist on n3']);
    r.vote(K1, id, true, []);
    const end = r.vote(K2, id, false, ['global/vipmta.conf:1:1: bad']);
    expect(end).toEqual({
      id, proposer: K1, ok: false, message: 'refused by n2, n3; nothing was committed',
      rejected: [{ node: 'n2', errors: ['global/vipmta.conf:1:1: bad'] }, { node: 'n3', errors: ['n3/vipmta.conf:4:7: Interface eth9 does not exist on n3'] }],
    });
    expect(r.busy).toBe(false);
  });

  it('a voter leaving before it voted refuses the proposal naming it', () => {
    const r = three();
    const id = proposalId(K1, 1);
    r.propose(K1, id, cs(R1));
    r.vote(K3, id, true, []);
    r.vote(K1, id, true, []);
    const end = r.view([K1, K3], [], [{ key: K2, why: 'left the group (procdown)' }]);
    expect(end).toMatchObject({ ok: false, message: 'refused: n2 left the group (procdown) before it voted; nothing was committed' });
    expect(r.busy).toBe(false);
  });

  it('a voter that voted may leave; a member joining ends the open proposal (it never saw it)', () => {
    const r = three();
    const id = proposalId(K1, 1);
    r.propose(K1, id, cs(R1));
    r.vote(K2, id, true, []);
    expect(r.view([K1, K3], [], [{ key: K2, why: 'left the group (procdown)' }])).toBeNull();
    expect(r.vote(K1, id, true, [])).toBeNull();
    expect(r.vote(K3, id, true, [])).toMatchObject({ ok: true });
    const r2 = three();
    r2.propose(K1, id, cs(R1));
    expect(r2.view([K1, K2, K3, '4:400'], ['4:400'], [])).toMatchObject({ ok: false, message: expect.stringMatching(/membership changed.*joined/) });
  });

  it('the proposer\'s abort ends it; another member\'s does not', () => {
    const r = three();
    const id = proposalId(K1, 1);
    r.propose(K1, id, cs(R1));
    r.vote(K1, id, true, []);
    expect(r.abort(K2, id, 'x')).toBeNull();
    expect(r.abort(K1, id, 'no decision within 30 s')).toMatchObject({ ok: false, message: 'refused: no decision within 30 s (no vote from n2, n3); nothing was committed' });
    expect(r.busy).toBe(false);
  });

  it('members behind do not vote, and know they are behind and whom to fetch from', () => {
    const r = new ConfigRound();
    r.view([K1, K2, K3], [], []);
    r.state(K1, st('n1', R2, 2));
    r.state(K2, st('n2', R2, 2));
    r.state(K3, st('n3', R1, 1));
    expect(catchUp(r, K3)).toEqual({ head: R2, height: 2, sources: [K1, K2] });
    expect(catchUp(r, K1)).toBeNull();
    expect(r.propose(K1, proposalId(K1, 1), cs(R2))).toEqual({ open: true, voters: [K1, K2] });
    const r2 = new ConfigRound();
    r2.view([K1, K2, K3], [], []);
    r2.state(K3, st('n3', R1, 1));
    r2.state(K1, st('n1', R2, 2));
    r2.state(K2, st('n2', R2, 2));
    expect(r2.propose(K3, proposalId(K3, 1), cs(R1))).toMatchObject({ open: false, end: { message: expect.stringMatching(/stale/) } });
    // A minority's longer history does not count (it cannot have one; its states say not quorate).
    const r3 = new ConfigRound();
    r3.view([K3], [], []);
    r3.state(K3, st('n3', R1, 1, false));
    expect(catchUp(r3, K3)).toBeNull();
  });
});

describe('config group wire', () => {
  const KEY = configKey('the cluster secret');
  it('round-trips a proposal with binary content and a deletion', () => {
    const c = cs(R1, [{ path: 'n1/a.conf', content: Buffer.from([0, 1, 2, 255]) }, { path: 'global/old.conf', content: null }] as never);
    const m = { type: 'propose' as const, from: K1, node: 'n1', seq: 3, id: proposalId(K1, 3), cs: c };
    expect(decodeConfigMessage(KEY, encodeConfigMessage(KEY, m), K1)).toEqual({ ok: true, message: m });
    const s = { type: 'state' as const, from: K2, node: 'n2', seq: 1, state: st('n2', R1, 1) };
    expect(decodeConfigMessage(KEY, encodeConfigMessage(KEY, s), K2)).toEqual({ ok: true, message: s });
  });

  it('refuses another secret, an alteration, another sender and a state naming another node', () => {
    const v = { type: 'vote' as const, from: K2, node: 'n2', seq: 1, id: proposalId(K1, 1), ok: true, errors: [] };
    expect(decodeConfigMessage(KEY, encodeConfigMessage(configKey('other'), v), K2)).toMatchObject({ ok: false, error: expect.stringMatching(/HMAC/) });
    const good = encodeConfigMessage(KEY, v);
    const altered = Buffer.from(good);
    altered[altered.length - 3] = altered[altered.length - 3]! ^ 1;
    expect(decodeConfigMessage(KEY, altered, K2)).toMatchObject({ ok: false, error: expect.stringMatching(/HMAC/) });
    expect(decodeConfigMessage(KEY, good, '2:201')).toMatchObject({ ok: false, error: expect.stringMatching(/delivered from 2:201/) });
    const forged = { type: 'state' as const, from: K2, node: 'n2', seq: 1, state: st('n1', R1, 1) };
    expect(decodeConfigMessage(KEY, encodeConfigMessage(KEY, forged), K2).ok).toBe(false);
    const signed = (o: object): Buffer => {
      const rest = Buffer.from(JSON.stringify(o));
      return Buffer.concat([crypto.createHmac('sha256', KEY).update(rest).digest(), rest]);
    };
    expect(decodeConfigMessage(KEY, signed({ t: 'P', from: K1, node: 'n1', seq: 1, id: proposalId(K1, 1), cs: { ...cs(R1), files: [{ path: '../etc/passwd', content: '' }] } }), K1)).toMatchObject({ ok: false });
  });

  it('refuses to encode a proposal over 512 KiB, saying so, and decodes none', () => {
    const big = cs(R1, [{ path: 'global/big.conf', content: Buffer.alloc(400 * 1024, 0x61) }]);
    expect(() => encodeConfigMessage(KEY, { type: 'propose', from: K1, node: 'n1', seq: 1, id: proposalId(K1, 1), cs: big })).toThrow(/over the 512 KiB a cluster commit carries/);
    expect(decodeConfigMessage(KEY, Buffer.alloc(MAX_PROPOSE_BYTES + 1), K1)).toMatchObject({ ok: false, error: expect.stringMatching(/too large/) });
  });
});
