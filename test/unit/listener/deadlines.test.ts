// The whole-command and whole-DATA deadlines as functions of the parser's marks and a clock, and
// the marks the parser keeps as bytes arrive (FastSmtpStream with an injected clock).
import { describe, expect, it } from 'vitest';
import { checkInterval, deadlinePassed, type DeadlineMarks } from '../../../src/listener/deadlines.js';
import { FastSmtpStream } from '../../../src/listener/smtp-stream.js';

const LIMITS = { commandMs: 1_000, dataMs: 10_000, minDataRate: 1_000 };

function marks(m: Partial<DeadlineMarks>): DeadlineMarks {
  return { commandSince: 0, dataSince: 0, dataBytes: 0, heldSince: 0, heldMs: 0, ...m };
}

describe('deadlines', () => {
  it('passes the command deadline only for a line begun more than Command_Deadline ago', () => {
    expect(deadlinePassed(marks({}), 1e9, LIMITS)).toBeNull();
    expect(deadlinePassed(marks({ commandSince: 5_000 }), 6_000, LIMITS)).toBeNull();
    expect(deadlinePassed(marks({ commandSince: 5_000 }), 6_001, LIMITS)).toBe('command');
  });

  it('gives the data one second more per Min_Data_Rate bytes received', () => {
    expect(deadlinePassed(marks({ dataSince: 1 }), 10_001, LIMITS)).toBeNull();
    expect(deadlinePassed(marks({ dataSince: 1 }), 10_002, LIMITS)).toBe('data');
    expect(deadlinePassed(marks({ dataSince: 1, dataBytes: 5_000 }), 15_001, LIMITS)).toBeNull();
    expect(deadlinePassed(marks({ dataSince: 1, dataBytes: 5_000 }), 15_002, LIMITS)).toBe('data');
    expect(deadlinePassed(marks({ dataSince: 1, dataBytes: 5_000 }), 1e9, { ...LIMITS, minDataRate: 0 })).toBe('data');
  });

  it('does not count time the listener held the data back', () => {
    expect(deadlinePassed(marks({ dataSince: 1, heldSince: 2 }), 1e9, LIMITS)).toBeNull();
    expect(deadlinePassed(marks({ dataSince: 1, heldMs: 50_000 }), 60_001, LIMITS)).toBeNull();
    expect(deadlinePassed(marks({ dataSince: 1, heldMs: 50_000 }), 60_002, LIMITS)).toBe('data');
  });

  it('looks a quarter of the shorter deadline apart, within 50 ms and 1 s', () => {
    expect(checkInterval(LIMITS)).toBe(250);
    expect(checkInterval({ ...LIMITS, commandMs: 60_000, dataMs: 300_000 })).toBe(1_000);
    expect(checkInterval({ ...LIMITS, commandMs: 10 })).toBe(50);
  });

  it('marks the first byte of a command line and clears it at the line end, whatever the chunking', () => {
    let now = 100;
    const p = new FastSmtpStream({}, () => now);
    p.oncommand = (_line, cb) => cb?.();
    const feed = (s: string): Promise<void> => new Promise((r) => p.write(Buffer.from(s), () => r()));
    return (async () => {
      await feed('NO');
      expect(p.commandSince).toBe(100);
      now = 200;
      await feed('O');
      expect(p.commandSince).toBe(100);
      now = 300;
      await feed('P\r\nNO');
      expect(p.commandSince).toBe(300);
      now = 400;
      await feed('OP\r\n');
      expect(p.commandSince).toBe(0);
      expect(deadlinePassed(p, 1e9, LIMITS)).toBeNull();
    })();
  });

  it('marks the 354 and clears it at the final dot', async () => {
    let now = 1_000;
    const p = new FastSmtpStream({}, () => now);
    p.oncommand = (_line, cb) => cb?.();
    const data = p.startDataMode();
    data.resume();
    expect(p.dataSince).toBe(1_000);
    now = 2_000;
    await new Promise<void>((r) => p.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'), () => r()));
    expect(p.dataSince).toBe(1_000);
    p.hold();
    now = 5_000;
    p.release();
    expect(p.heldMs).toBe(3_000);
    // The parser waits for the listener's continue() after the final dot; the mark is cleared at the dot.
    p.write(Buffer.from('.\r\n'));
    expect(p.dataSince).toBe(0);
    p.continue();
  });
});
