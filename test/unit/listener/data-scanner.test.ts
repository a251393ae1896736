// The DATA intake scanner: header capture, hop counting and line lengths, whatever the chunking.
import { describe, expect, it } from 'vitest';
import { DataScanner } from '../../../src/listener/data-scanner.js';

function scanIn(text: string, cuts: number[]): DataScanner {
  const buf = Buffer.from(text, 'latin1');
  const s = new DataScanner();
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    s.scan(buf.subarray(prev, c));
    prev = c;
  }
  s.finish();
  return s;
}

const MSG =
  'Received: from a\r\n\tby b; Sun, 1 Nov 2026 00:00:00 +0000\r\n' +
  'Received: from c by d; Sun, 1 Nov 2026 00:00:00 +0000\r\n' +
  'X-Binding: news-a\r\nMessage-ID: <1@x>\r\nSubject: hi\r\n\r\n' +
  'X-Binding: not-a-header\r\nbody\r\n';

describe('intake scanner', () => {
  it('captures policy headers and counts hops at every possible chunk boundary', () => {
    for (let cut = 0; cut <= MSG.length; cut++) {
      const s = scanIn(MSG, [cut]);
      expect(s.headers, `cut at ${cut}`).toEqual({ 'x-binding': 'news-a', 'message-id': '<1@x>' });
      expect(s.hops, `cut at ${cut}`).toBe(2);
    }
  });

  it('treats bare LF line ends like CRLF', () => {
    const s = scanIn('X-Binding: b1\nSubject: x\n\nX-Binding: body\n', [5]);
    expect(s.headers['x-binding']).toBe('b1');
  });

  it('unfolds folded header fields', () => {
    const s = scanIn('X-Binding:\r\n  folded\r\n\r\nbody\r\n', []);
    expect(s.headers['x-binding']).toBe('folded');
  });

  it('finds nothing in a message without a header section', () => {
    const s = scanIn('\r\nX-Binding: body\r\n', []);
    expect(s.headers).toEqual({});
  });

  it('measures the longest line without its line end, across chunks', () => {
    const line = 'a'.repeat(998);
    for (const cut of [1, 500, 998, 999, 1000]) {
      expect(scanIn(`S: x\r\n\r\n${line}\r\nshort\r\n`.replace('S: x\r\n\r\n', ''), [cut]).longestLine).toBe(998);
    }
    expect(scanIn(`${line}a\r\n`, [999]).longestLine).toBe(999);
    expect(scanIn(`${line}\n`, [998]).longestLine).toBe(998);
  });

  it('counts every Received: hop even past 64 KB of header fields, at every chunk boundary', () => {
    // Issue 12 section 4: 64 KB of padding used to hide the Received fields behind it.
    const pad = `X-Pad: ${'p'.repeat(900)}\r\n`.repeat(80);
    const hops = 'Received: from a by b; Sun, 1 Nov 2026 00:00:00 +0000\r\n'.repeat(3) + 'RECEIVED: from c by d\r\n';
    const msg = pad + hops + 'X-Received: not a hop\r\nSubject: x\r\n\r\nReceived: in the body\r\n';
    expect(pad.length).toBeGreaterThan(64 * 1024);
    for (let cut = pad.length - 2; cut <= pad.length + hops.length; cut++) {
      expect(scanIn(msg, [1000, cut]).hops, `cut at ${cut}`).toBe(4);
    }
    expect(scanIn('Received: x\nReceived: y\n\nReceived: body\n', []).hops).toBe(2);
  });
});
