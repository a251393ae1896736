// The DATA intake scanner: header capture, hop counting and line lengths, whatever the chunking.
import { describe, expect, it } from 'vitest';
import { IntakeScanner, receivedHeader, rfc5322Date } from '../../../src/listener/intake.js';

function scanIn(text: string, cuts: number[]): IntakeScanner {
  const buf = Buffer.from(text, 'latin1');
  const s = new IntakeScanner();
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
});

describe('Received header', () => {
  it('follows RFC 5321 4.4 with the RFC 3848 protocol and an RFC 5322 date', () => {
    const h = receivedHeader({
      helo: 'client.example', remoteAddress: '::ffff:127.0.0.1', hostname: 'mx.example', secure: true,
      authenticated: true, recipient: 'a@b.example', date: new Date(Date.UTC(2026, 10, 22, 6, 5, 9)),
    });
    expect(h).toBe('Received: from client.example ([127.0.0.1])\r\n\tby mx.example (vipmta) with ESMTPSA\r\n\tfor <a@b.example>;\r\n\tSun, 22 Nov 2026 06:05:09 +0000\r\n');
    expect(rfc5322Date(new Date(Date.UTC(2026, 0, 5, 23, 59, 1)))).toBe('Mon, 5 Jan 2026 23:59:01 +0000');
  });

  it('marks IPv6 literals and neutralises a hostile HELO', () => {
    const h = receivedHeader({ helo: 'x\r\nBcc: y', remoteAddress: '2001:db8::1', hostname: 'h', secure: false, authenticated: false, recipient: null, date: new Date(0) });
    expect(h).toContain('from x??Bcc:?y ([IPv6:2001:db8::1])');
    expect(h.split('\r\n')).toHaveLength(4);
  });
});
