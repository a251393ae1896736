// The aggregated files' layout: the Logfile pattern expanded from the record's own UTC time, its
// log and its node, and the one JSON line written per record.
import { describe, expect, it } from 'vitest';
import { logfileError, logfilePath, recordLine } from '../../../src/aggregate/layout.js';

describe('logfilePath', () => {
  it('lays files out by the UTC date of the record, the log and the node', () => {
    // 2026-12-03T23:59:59.999Z and one ms later: the next day, whatever the local time zone.
    const t = Date.UTC(2026, 11, 3, 23, 59, 59, 999);
    expect(logfilePath('%Y/%m/%d/%{l}/%{n}', { time: t, log: 'events', node: 'n2' })).toBe('2026/12/03/events/n2');
    expect(logfilePath('%Y/%m/%d/%{l}/%{n}', { time: t + 1, log: 'events', node: 'n2' })).toBe('2026/12/04/events/n2');
    expect(logfilePath('%{l}/%Y-%m-%dT%H/%{n}.jsonl', { time: Date.UTC(2027, 0, 5, 7), log: 'events', node: 'mx-1' })).toBe('events/2027-01-05T07/mx-1.jsonl');
    expect(logfilePath('100%%/%{l}/%{n}', { time: 0, log: 'events', node: 'a' })).toBe('100%/events/a');
  });

  it('refuses unknown escapes and paths outside the directory', () => {
    expect(() => logfilePath('%Q/%{l}/%{n}', { time: 0, log: 'events', node: 'a' })).toThrow(/unknown escape %Q/);
    expect(() => logfilePath('/var/log/%{l}/%{n}', { time: 0, log: 'events', node: 'a' })).toThrow(/inside the Directory/);
    expect(() => logfilePath('../%{l}/%{n}', { time: 0, log: 'events', node: 'a' })).toThrow(/inside the Directory/);
    expect(logfileError('%Y/%{l}')).toMatch(/must contain %\{n\}/);
    expect(logfileError('%Y/%{n}')).toMatch(/must contain %\{l\}/);
    expect(logfileError('%Y/%m/%d/%{l}/%{n}')).toBeNull();
  });
});

describe('recordLine', () => {
  it('writes node, seq, time, id and the record as one JSON line', () => {
    const data = Buffer.from('{\n  "type": "reception",\n  "queueId": "abc"\n}');
    const line = recordLine('n2', { seq: 7, time: 1_796_000_000_000, id: 'ev-7', data });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({ node: 'n2', seq: 7, time: 1_796_000_000_000, id: 'ev-7', record: { type: 'reception', queueId: 'abc' } });
  });

  it('keeps bytes that are not JSON as text instead of dropping them', () => {
    const line = recordLine('n2', { seq: 8, time: 1, data: Buffer.from('not json\nat all') });
    expect(JSON.parse(line)).toEqual({ node: 'n2', seq: 8, time: 1, record_text: 'not json\nat all' });
  });
});
