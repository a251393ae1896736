// Done-marks the spool refuses (a full disk) are kept and retried, not dropped: a dropped mark holds
// its segment until a restart and makes the restart deliver the message again. The spool here is
// a script of answers; test/integration/full-start.test.ts has the real full disk.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ErrorCode, VipError } from '../../../src/errors.js';
import { DONE_RETRY_MIN_MS, DoneMarks } from '../../../src/queue/done-marks.js';
import { waitFor } from '../../helpers/wait.js';

interface Line { level: number; msg: string; messages?: number; retryMs?: number | null }

function harness(): { marks: DoneMarks; calls: string[][]; written: Set<string>; lines: Line[]; order: string[]; full: { on: boolean } } {
  const calls: string[][] = [];
  const written = new Set<string>();
  const lines: Line[] = [];
  const order: string[] = [];
  const full = { on: false };
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  const marks = new DoneMarks({
    markDone: async (ids) => {
      order.push('mark');
      calls.push([...ids]);
      if (full.on) throw new VipError(ErrorCode.SPOOL_FULL, 'pwrite: No space left on device (ENOSPC)');
      for (const id of ids) written.add(id);
    },
    flushEvents: async () => void order.push('events'),
    logger,
  });
  return { marks, calls, written, lines, order, full };
}

const errors = (lines: Line[]): Line[] => lines.filter((l) => l.level >= 50);

describe('done-marks', () => {
  it('writes the ids of one turn as one batch, after the delivery records', async () => {
    const h = harness();
    for (const id of ['a', 'b', 'c']) h.marks.add(id);
    await waitFor('the batch written', () => h.written.size === 3);
    expect(h.calls).toEqual([['a', 'b', 'c']]);
    expect(h.order).toEqual(['events', 'mark']);
    expect(h.lines).toEqual([]);
  });

  it('keeps refused marks and retries them, with the ones added meanwhile, until the spool takes them', async () => {
    const h = harness();
    h.full.on = true;
    h.marks.add('a');
    h.marks.add('b');
    await waitFor('the first refusal', () => h.calls.length === 1);
    await waitFor('the refusal logged', () => errors(h.lines).length === 1);
    // Added while a retry waits: no write of their own against a spool that refuses everything.
    h.marks.add('c');
    await new Promise((r) => setTimeout(r, 20));
    expect(h.calls.length).toBe(1);
    expect(h.marks.pending).toBe(2);
    await waitFor('a second refusal', () => h.calls.length >= 2, { timeoutMs: 5_000 });
    h.full.on = false;
    await waitFor('every mark written', () => h.written.size === 3, { timeoutMs: 10_000 });
    expect(h.marks.pending).toBe(0);
    expect(new Set(h.calls.at(-1))).toEqual(new Set(['a', 'b', 'c']));
    // One ERROR line for the whole failing stretch, and one line when it ends.
    const errs = errors(h.lines);
    expect(errs.length).toBe(1);
    expect(errs[0]!.msg).toMatch(/retrying until the spool takes them/);
    expect(errs[0]!.retryMs).toBe(DONE_RETRY_MIN_MS);
    await waitFor('the recovery logged', () => h.lines.some((l) => /written again/.test(l.msg)));
    const again = h.lines.find((l) => /written again/.test(l.msg))!;
    expect(again.level).toBe(30);
    expect(again.messages).toBe(3);
  });

  it('at stop, tries once more and says what a refusal then means, leaving no timer', async () => {
    const h = harness();
    h.full.on = true;
    h.marks.add('a');
    await waitFor('the first refusal', () => h.calls.length === 1);
    h.marks.add('b');
    await h.marks.stop();
    expect(h.calls.at(-1)).toEqual(['a', 'b']);
    const errs = errors(h.lines);
    expect(errs.length).toBe(2);
    expect(errs[1]!.msg).toMatch(/delivered again after a restart/);
    expect(errs[1]!.retryMs).toBe(null);
    const calls = h.calls.length;
    await new Promise((r) => setTimeout(r, DONE_RETRY_MIN_MS * 3));
    expect(h.calls.length).toBe(calls);
  });
});
