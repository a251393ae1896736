// The journal watch: says once when the event journal passes its alarm size and when it comes back,
// says ERROR once per episode of refusals at the cap (and info when it has room again), and lists
// both for /health. The journal's figures are given (its reading is tested in test/native).
import { describe, expect, it } from 'vitest';
import { JournalWatch } from '../../../src/node/journal-watch.js';
import type { EventJournal, EventJournalStats } from '../../../src/spool/index.js';

function figures(over: Partial<EventJournalStats> & { refused?: number }): EventJournalStats {
  const { refused = 0, ...rest } = over;
  return {
    segments: 1, bytes: 100, firstSeq: 1, lastSeq: 10, cap: 1000, alarmBytes: 800, alarm: false, atCap: 'refuse',
    subscribers: [{ name: 'hook', checkpoint: 2, lagRecords: 8, lagBytes: 80 }],
    native: { refused } as EventJournalStats['native'], drops: [], damagedSkipped: 0,
    ...rest,
  };
}

function watch(): { w: JournalWatch; set: (s: EventJournalStats) => void; said: Array<[string, string]> } {
  let current = figures({});
  const said: Array<[string, string]> = [];
  const at = (level: string) => (_o: unknown, m?: string): void => { said.push([level, m ?? String(_o)]); };
  const logger = { warn: at('warn'), error: at('error'), info: at('info') } as never;
  const journal = { stats: () => current, logNewDrops: () => [] } as unknown as EventJournal;
  return { w: new JournalWatch(journal, logger), set: (s) => { current = s; }, said };
}

describe('JournalWatch', () => {
  it('says when the journal passes its alarm size and when it is back under it', () => {
    const { w, set, said } = watch();
    w.tick();
    expect(w.problems()).toEqual([]);
    set(figures({ bytes: 850, alarm: true }));
    w.tick();
    w.tick();
    expect(said).toEqual([['warn', 'event journal above its alarm size: hook 8 records behind']]);
    expect(w.problems()).toEqual(['event journal above its alarm size: hook 8 records behind']);
    set(figures({ bytes: 300 }));
    w.tick();
    expect(said.at(-1)).toEqual(['info', 'event journal back under its alarm size']);
    expect(w.problems()).toEqual([]);
  });

  it('says ERROR once while refusals at the cap go on, and info when they stop', () => {
    const { w, set, said } = watch();
    w.tick();
    set(figures({ bytes: 1000, alarm: true, refused: 3 }));
    w.tick();
    set(figures({ bytes: 1000, alarm: true, refused: 9 }));
    w.tick();
    expect(said.filter(([l]) => l === 'error')).toHaveLength(1);
    expect(said.find(([l]) => l === 'error')![1]).toMatch(/^event journal at its cap: refusing messages with 452 4\.3\.1/);
    expect(w.problems()[0]).toMatch(/^event journal at its cap/);
    set(figures({ bytes: 500, refused: 9 }));
    w.tick();
    expect(said.at(-1)).toEqual(['info', 'event journal has room again: accepting messages']);
    expect(w.problems()).toEqual([]);
  });
});
