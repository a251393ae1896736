// bench/failover.ts's arithmetic on probe records: which answer counts as the new owner's first, what is
// counted around it, address moves, and the nearest-rank summary. Pure functions; no timing asserted.
import { describe, expect, it } from 'vitest';
import {
  answerMoves,
  firstAnswerFromNewOwner,
  parseProbeLine,
  summarize,
  timeline,
  type ProbeRecord,
} from '../../../bench/lib/failover-analysis.js';

const ok = (i: number, t0: number, tc: number, n: string): ProbeRecord => ({ i, t0, tc, te: tc + 1, r: 'ok', n });
const fail = (i: number, t0: number, r: string): ProbeRecord => ({ i, t0, tc: null, te: t0 + 3000, r, n: null });

describe('failover analysis', () => {
  it('parses probe lines and rejects anything else', () => {
    expect(parseProbeLine('{"i":1,"t0":5,"tc":6,"te":7,"r":"ok","n":"n2"}')).toEqual(ok(1, 5, 6, 'n2'));
    expect(parseProbeLine('{"i":1,"t0":5,"tc":null,"te":7,"r":"timeout","n":null}')?.tc).toBeNull();
    expect(parseProbeLine('listening 25')).toBeNull();
    expect(parseProbeLine('{"i":"x"}')).toBeNull();
  });

  it('takes the earliest handshake another node answered after the fault, even of an earlier attempt', () => {
    const recs = [
      ok(0, 900, 901, 'n1'),
      fail(1, 1010, 'timeout'),
      ok(2, 1020, 2030, 'n2'), // SYN retransmitted, answered by the new owner at 2030
      fail(3, 1030, 'ECONNREFUSED'),
      ok(4, 1500, 1501, 'n1'), // the old owner still answering
      ok(5, 1990, 1991, 'n2'),
      ok(6, 2000, 2001, 'n2'),
    ];
    const r = firstAnswerFromNewOwner(recs, 1000, 'n1');
    expect(r).toEqual({ newOwner: 'n2', failoverMs: 991, attemptStartMs: 990, unanswered: 1, oldOwnerAnswers: 1, refused: 1 });
  });

  it('ignores answers before the fault and has no result while only the old owner answers', () => {
    expect(firstAnswerFromNewOwner([ok(0, 10, 11, 'n2'), ok(1, 1001, 1002, 'n1')], 1000, 'n1')).toBeNull();
  });

  it('lists changes of the answering node in handshake order', () => {
    const recs = [ok(0, 0, 1, 'n1'), fail(1, 10, 'timeout'), ok(3, 30, 31, 'n2'), ok(2, 20, 40, 'n1'), ok(4, 50, 51, 'n1')];
    expect(answerMoves(recs)).toEqual([
      { atMs: 31, from: 'n1', to: 'n2' },
      { atMs: 40, from: 'n2', to: 'n1' },
    ]);
  });

  it('summarises with nearest-rank percentiles', () => {
    expect(summarize([])).toBeNull();
    expect(summarize([5, 1, 4, 2, 3, 10, 9, 8, 7, 6])).toEqual({ n: 10, median: 5, p90: 9, max: 10, min: 1 });
    expect(summarize([7])).toEqual({ n: 1, median: 7, p90: 7, max: 7, min: 7 });
  });

  it('compresses the attempts around a fault into runs of one outcome, by start time', () => {
    const recs = [ok(0, 990, 991, 'n1'), ok(2, 1010, 1011, 'n2'), ok(1, 1000, 1001, 'n1'), ok(3, 1020, 1021, 'n1'), fail(4, 1030, 'ECONNREFUSED'), ok(5, 2000, 2001, 'n2')];
    expect(timeline(recs, 1000, 995, 1500)).toEqual([
      { what: 'n1', count: 1, fromMs: 0, toMs: 0 },
      { what: 'n2', count: 1, fromMs: 10, toMs: 10 },
      { what: 'n1', count: 1, fromMs: 20, toMs: 20 },
      { what: 'ECONNREFUSED', count: 1, fromMs: 30, toMs: 30 },
    ]);
  });
});
