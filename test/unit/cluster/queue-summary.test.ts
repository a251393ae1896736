// The cluster-wide queue summary (src/cluster/queue-summary.ts): the cap to the largest bindings
// with the rest in "other bindings", validation of what a peer sends, the per-member store (a
// departed member is dropped), and the pacer (only a changed summary, at most every 2 s, and once
// after every view change) on an injected clock and timer. Pure.
import { describe, expect, it } from 'vitest';
import {
  buildQueueSummary, decodeQueueSummary, QueueSummaryStore, sameSummary, SUMMARY_PACE_MS, SUMMARY_ROWS, SummaryPacer, type QueueSummary,
} from '../../../src/cluster/queue-summary.js';

const row = (binding: string, active: number, deferred = 0, hold = 0) => ({ bindingGroup: 'default', binding, active, deferred, hold });

describe('building a summary', () => {
  it('sums the bindings with mail and leaves the idle ones out', () => {
    const s = buildQueueSummary('n1', 5, false, [row('b', 1, 2, 3), row('idle', 0), row('a', 0, 0, 1)]);
    expect(s).toEqual({
      node: 'n1', at: 5, drained: false, active: 1, deferred: 2, hold: 4,
      bindings: [row('a', 0, 0, 1), row('b', 1, 2, 3)], other: { bindings: 0, active: 0, deferred: 0, hold: 0 },
    });
  });

  it('names the largest bindings up to the cap and sums the rest in "other"', () => {
    // 10,000 bindings, b<i> has i parts (deferred): the 100 largest are b9900..b9999.
    const sizes = Array.from({ length: 10_000 }, (_, i) => row(`b${i}`, 0, i));
    const s = buildQueueSummary('n1', 0, true, sizes);
    expect(s.bindings).toHaveLength(SUMMARY_ROWS);
    expect(new Set(s.bindings.map((b) => b.binding))).toEqual(new Set(Array.from({ length: 100 }, (_, i) => `b${9900 + i}`)));
    expect(s.deferred).toBe((9999 * 10_000) / 2);
    expect(s.other.bindings).toBe(9899); // b0 is idle
    expect(s.other.deferred).toBe((9899 * 9900) / 2);
    expect(s.bindings.reduce((n, b) => n + b.deferred, 0) + s.other.deferred).toBe(s.deferred);
    // Bounded on the wire whatever the number of bindings.
    expect(JSON.stringify(s).length).toBeLessThan(12_000);
    // Ties are broken by name: the same sizes always give the same summary.
    const tied = Array.from({ length: 150 }, (_, i) => row(`t${String(i).padStart(3, '0')}`, 1));
    const x = buildQueueSummary('n1', 0, false, tied, 100);
    expect(x.bindings.at(-1)!.binding).toBe('t099');
    expect(sameSummary(x, buildQueueSummary('n1', 9, false, [...tied].reverse(), 100))).toBe(true);
  });

  it('compares everything but the time', () => {
    const a = buildQueueSummary('n1', 1, false, [row('a', 1)]);
    expect(sameSummary(a, buildQueueSummary('n1', 2, false, [row('a', 1)]))).toBe(true);
    expect(sameSummary(a, buildQueueSummary('n1', 1, true, [row('a', 1)]))).toBe(false);
    expect(sameSummary(a, buildQueueSummary('n1', 1, false, [row('a', 0, 1)]))).toBe(false);
    expect(sameSummary(a, buildQueueSummary('n1', 1, false, [row('b', 1)]))).toBe(false);
  });
});

describe('decoding a peer\'s summary', () => {
  const good = buildQueueSummary('n2', 10, false, [...Array.from({ length: 120 }, (_, i) => row(`b${i}`, i + 1)), row('x', 0, 3, 4)]);
  const json = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

  it('takes a well-formed one', () => {
    expect(decodeQueueSummary(json(good))).toEqual(good);
  });

  it('rejects a malformed one', () => {
    const bad: [string, (s: QueueSummary & Record<string, unknown>) => void][] = [
      ['no node', (s) => { delete (s as Partial<QueueSummary>).node; }],
      ['a bad node name', (s) => { s.node = 'n 2'; }],
      ['a negative count', (s) => { s.active = -1; }],
      ['a fraction', (s) => { s.bindings[0]!.hold = 0.5; }],
      ['a string count', (s) => { (s.bindings[0] as unknown as Record<string, unknown>).active = '1'; }],
      ['totals that are not the sum', (s) => { s.deferred += 1; }],
      ['more rows than the cap', (s) => { s.bindings.push(row('more', 1)); s.active += 1; }],
      ['a binding twice', (s) => { s.bindings[1] = { ...s.bindings[0]! }; s.active += s.bindings[0]!.active - good.bindings[1]!.active; }],
      ['an idle row', (s) => { s.active -= s.bindings[0]!.active; s.bindings[0]!.active = 0; }],
      ['an empty binding name', (s) => { s.bindings[0]!.binding = ''; }],
      ['other without bindings but with mail', (s) => { s.other.bindings = 0; }],
      ['drained not a boolean', (s) => { (s as Record<string, unknown>).drained = 'no'; }],
      ['no other', (s) => { delete (s as Partial<QueueSummary>).other; }],
    ];
    for (const [why, change] of bad) {
      const s = json(good) as QueueSummary & Record<string, unknown>;
      change(s);
      expect(decodeQueueSummary(s), why).toBeNull();
    }
    for (const v of [null, 1, 'x', [], { ...good, bindings: {} }]) expect(decodeQueueSummary(v)).toBeNull();
  });
});

describe('the store', () => {
  it('keeps the latest per member and drops the members that left the view', () => {
    const st = new QueueSummaryStore();
    st.set('2:200', buildQueueSummary('n2', 1, false, [row('a', 1)]));
    st.set('3:300', buildQueueSummary('n3', 1, true, []));
    st.set('2:200', buildQueueSummary('n2', 2, false, [row('a', 5)]));
    expect(st.list().map((s) => [s.node, s.active])).toEqual([['n2', 5], ['n3', 0]]);
    st.retain(new Set(['2:200', '4:400']));
    expect(st.list().map((s) => s.node)).toEqual(['n2']);
    // Two processes announcing one name: the newer summary is shown.
    st.set('5:500', buildQueueSummary('n2', 9, false, []));
    expect(st.list()).toEqual([expect.objectContaining({ node: 'n2', at: 9 })]);
  });
});

describe('the pacer', () => {
  function pacer(sizes: () => ReturnType<typeof row>[]) {
    let t = 0;
    let fire: (() => void) | null = null;
    let every = 0;
    const sent: QueueSummary[] = [];
    let up = true;
    let built = 0;
    const p = new SummaryPacer({
      build: () => { built++; return buildQueueSummary('n1', t, false, sizes()); },
      ready: () => up,
      send: (s) => { if (up) sent.push(s); return up; },
      now: () => t,
      every: (fn, ms) => { fire = fn; every = ms; return () => { fire = null; }; },
    });
    p.start();
    return {
      p, sent, every: () => every, built: () => built,
      /** Time passes by `ms` and the repeating timer fires. */
      advance: (ms: number) => { t += ms; fire?.(); },
      setUp: (v: boolean) => { up = v; },
      get stopped() { return fire === null; },
    };
  }

  it('sends after a view change, then only changes, at most every 2 s, and nothing while the queue is quiet', () => {
    let sizes = [row('a', 1)];
    const x = pacer(() => sizes);
    expect(x.every()).toBe(SUMMARY_PACE_MS);
    x.p.viewChanged();
    expect(x.sent.map((s) => s.active)).toEqual([1]);
    // Quiet: many turns, nothing sent.
    for (let i = 0; i < 10; i++) x.advance(SUMMARY_PACE_MS);
    expect(x.sent).toHaveLength(1);
    // A change goes at the next turn.
    sizes = [row('a', 2)];
    x.advance(SUMMARY_PACE_MS);
    expect(x.sent.map((s) => s.active)).toEqual([1, 2]);
    // Changes within 2 s of the last send wait: a turn that comes early (1 s) sends nothing.
    sizes = [row('a', 3)];
    x.advance(1000);
    expect(x.sent).toHaveLength(2);
    sizes = [row('a', 4)];
    x.advance(1000);
    expect(x.sent.map((s) => s.active)).toEqual([1, 2, 4]);
    // A view change sends at once, even unchanged and within 2 s.
    x.p.viewChanged();
    expect(x.sent.map((s) => s.active)).toEqual([1, 2, 4, 4]);
    x.advance(1000);
    expect(x.sent).toHaveLength(4);
    x.p.stop();
    expect(x.stopped).toBe(true);
  });

  it('tries again at the next turn when it could not send', () => {
    let sizes = [row('a', 1)];
    const x = pacer(() => sizes);
    x.setUp(false);
    x.p.viewChanged();
    sizes = [row('a', 2)];
    x.advance(SUMMARY_PACE_MS);
    expect(x.sent).toHaveLength(0);
    // Not even built while it cannot be sent (no group, no secret).
    expect(x.built()).toBe(0);
    x.setUp(true);
    x.advance(SUMMARY_PACE_MS);
    expect(x.sent.map((s) => s.active)).toEqual([2]);
  });
});
