// The spool-full watch (src/node/spool-full.ts) over counters and a clock the test moves: one line
// when refusals start, one summary per interval with the count, one when a commit succeeds again.
import { describe, expect, it } from 'vitest';
import { SpoolFullWatch } from '../../../src/node/spool-full.js';
import { recordingLogger } from './helpers.js';

describe('spool full watch', () => {
  it('logs the start, a summary per interval with the count, and the end; never one line per refusal', () => {
    const { logger, records } = recordingLogger();
    let now = 1_000_000;
    const w = new SpoolFullWatch(logger, () => now, 60_000);
    let fullErrors = 0;
    let commits = 10;
    const tick = (refused: number, committed: number, ms = 1000): void => {
      now += ms;
      fullErrors += refused;
      commits += committed;
      w.observe({ fullErrors, commits });
    };
    tick(0, 0); // baseline
    tick(0, 5);
    expect(w.state()).toEqual({ full: false, since: null, refused: 0 });
    expect(records).toEqual([]);

    tick(3, 0);
    expect(w.state()).toEqual({ full: true, since: now, refused: 3 });
    for (let i = 0; i < 60; i++) tick(100, 0);
    // 61 s of refusals (6,003 of them): the start line and one summary.
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      [50, 'spool full: refusing messages with 452 4.3.1'],
      [40, 'spool still full: refusing messages with 452 4.3.1'],
    ]);
    expect(records[0]).toMatchObject({ refused: 3 });
    expect(records[1]).toMatchObject({ refused: 6003, total: 6003, ms: 60_000 });
    tick(0, 0); // nobody writes: still full
    expect(w.state().full).toBe(true);
    tick(7, 0, 60_000);
    expect(records[2]).toMatchObject({ msg: 'spool still full: refusing messages with 452 4.3.1', refused: 7, total: 6010 });

    tick(0, 1);
    expect(w.state()).toEqual({ full: false, since: null, refused: 0 });
    expect(records[3]).toMatchObject({ level: 30, msg: 'spool accepts messages again', refused: 6010 });
    tick(0, 1, 120_000);
    expect(records).toHaveLength(4);
  });

  it('stays full while refusals go on even when some commits succeed (small messages still fit)', () => {
    const { logger, records } = recordingLogger();
    const w = new SpoolFullWatch(logger, () => 0);
    w.observe({ fullErrors: 0, commits: 0 });
    w.observe({ fullErrors: 2, commits: 1 });
    w.observe({ fullErrors: 4, commits: 3 });
    expect(w.state()).toMatchObject({ full: true, refused: 4 });
    expect(records).toHaveLength(1);
  });
  it('decides a window with refusals and commits both by the file system, so the state cannot stick at full', () => {
    const { logger, records } = recordingLogger();
    let now = 1_000_000;
    let room = false;
    const w = new SpoolFullWatch(logger, () => now, 60_000, () => room);
    let fullErrors = 0;
    let commits = 0;
    const tick = (refused: number, committed: number): void => {
      now += 1000;
      fullErrors += refused;
      commits += committed;
      w.observe({ fullErrors, commits });
    };
    tick(0, 0);
    tick(5, 0);
    expect(w.state().full).toBe(true);
    tick(2, 1); // a small message fitted, bigger ones did not; no room for a segment: still full
    expect(w.state().full).toBe(true);
    room = true;
    tick(2, 1); // space returned within the window: the last message went in
    expect(w.state()).toEqual({ full: false, since: null, refused: 0 });
    expect(records.map((r) => r.msg)).toEqual(['spool full: refusing messages with 452 4.3.1', 'spool accepts messages again']);
    expect(records[1]).toMatchObject({ refused: 9 });
  });
});
