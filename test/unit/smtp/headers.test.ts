// Header fields vipmta writes (src/smtp/headers.ts) and the RFC 5322 date (src/smtp/date.ts).
import { describe, expect, it } from 'vitest';
import { rfc5322Date } from '../../../src/smtp/date.js';
import { receivedHeader } from '../../../src/smtp/headers.js';

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
