// DSNs: RFC 3464 structure, null envelope sender, no DSN to the null sender.
import { describe, expect, it } from 'vitest';
import { buildDsn, headerSection } from '../../../src/delivery/dsn.js';

const base = {
  reportingMta: 'mx1.example', queueId: 'n1-00000001-000001', to: 'sender@client.test',
  arrival: new Date(Date.UTC(2026, 10, 22, 6, 0, 0)), now: new Date(Date.UTC(2026, 10, 22, 7, 0, 0)),
  originalHeaders: 'From: <sender@client.test>\r\nSubject: hi',
};

function parts(msg: string): { head: string; sections: string[] } {
  const [head, body] = msg.split('\r\n\r\n', 2) as [string, string];
  const boundary = /boundary="([^"]+)"/.exec(head)![1]!;
  const rest = msg.slice(head.length + 4);
  const sections = rest.split(`--${boundary}`).slice(1, -1).map((s) => s.replace(/^\r\n/, ''));
  expect(rest.trimEnd().endsWith(`--${boundary}--`)).toBe(true);
  void body;
  return { head, sections };
}

describe('DSN', () => {
  it('is an RFC 3464 multipart/report from the null sender with one group per recipient', () => {
    const d = buildDsn({
      ...base,
      recipients: [
        { rcpt: 'a@dest.test', action: 'failed', status: '5.1.1', remoteReply: '550 5.1.1 <a@dest.test>: user unknown', remoteMta: 'mx.dest.test', lastAttempt: base.now },
        { rcpt: 'b@dest.test', action: 'failed', status: '4.4.7', remoteReply: null, remoteMta: null, lastAttempt: null },
      ],
    });
    expect(d.from).toBe('');
    expect(d.to).toBe('sender@client.test');
    const { head, sections } = parts(d.message);
    expect(head).toMatch(/^Content-Type: multipart\/report; report-type=delivery-status; boundary="vipmta-[0-9a-f]{24}"$/m);
    expect(head).toMatch(/^Auto-Submitted: auto-replied$/m);
    expect(head).toMatch(/^Subject: Undelivered Mail Returned to Sender$/m);
    expect(sections).toHaveLength(3);
    expect(sections[0]).toMatch(/^Content-Description: Notification\r\nContent-Type: text\/plain/);
    expect(sections[0]).toContain('<a@dest.test>: 550 5.1.1 <a@dest.test>: user unknown');
    expect(sections[0]).toContain('<b@dest.test>: delivery time expired');
    const status = sections[1]!.split('\r\n\r\n');
    expect(status[0]).toBe('Content-Description: Delivery report\r\nContent-Type: message/delivery-status');
    expect(status[1]).toBe('Reporting-MTA: dns; mx1.example\r\nX-Vipmta-Queue-ID: n1-00000001-000001\r\nArrival-Date: Sun, 22 Nov 2026 06:00:00 +0000');
    expect(status[2]).toBe('Final-Recipient: rfc822; a@dest.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.dest.test\r\nDiagnostic-Code: smtp; 550 5.1.1 <a@dest.test>: user unknown\r\nLast-Attempt-Date: Sun, 22 Nov 2026 07:00:00 +0000');
    expect(status[3]).toBe('Final-Recipient: rfc822; b@dest.test\r\nAction: failed\r\nStatus: 4.4.7');
    expect(sections[2]).toBe('Content-Description: Undelivered message headers\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: <sender@client.test>\r\nSubject: hi\r\n\r\n');
    expect(d.message.split('\r\n').every((l) => !l.includes('\n') && !l.includes('\r'))).toBe(true);
  });

  it('says each recipient\'s bounce class in an X-Vipmta-Bounce-Class field (RFC 3464 extension field)', () => {
    const d = buildDsn({
      ...base,
      recipients: [
        { rcpt: 'a@dest.test', action: 'failed', status: '5.1.1', remoteReply: '550 5.1.1 no such user', remoteMta: 'mx.dest.test', lastAttempt: null, bounceClass: 10 },
        { rcpt: 'b@dest.test', action: 'failed', status: '4.4.7', remoteReply: null, remoteMta: null, lastAttempt: null, bounceClass: 24 },
        { rcpt: 'c@dest.test', action: 'failed', status: '5.0.0', remoteReply: null, remoteMta: null, lastAttempt: null },
      ],
    });
    const status = parts(d.message).sections[1]!.split('\r\n\r\n');
    expect(status[2]).toBe('Final-Recipient: rfc822; a@dest.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.dest.test\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\nX-Vipmta-Bounce-Class: 10 (Invalid Recipient)');
    expect(status[3]).toBe('Final-Recipient: rfc822; b@dest.test\r\nAction: failed\r\nStatus: 4.4.7\r\nX-Vipmta-Bounce-Class: 24 (Timeout)');
    expect(status[4]).toBe('Final-Recipient: rfc822; c@dest.test\r\nAction: failed\r\nStatus: 5.0.0');
  });

  it('says "delayed" for a warning', () => {
    const d = buildDsn({ ...base, recipients: [{ rcpt: 'a@dest.test', action: 'delayed', status: '4.4.1', remoteReply: '421 4.4.1 try later', remoteMta: null, lastAttempt: null }] });
    expect(d.message).toMatch(/^Subject: Delayed Mail \(still being retried\)$/m);
    expect(d.message).toMatch(/^Action: delayed$/m);
  });

  it('never goes to the null sender', () => {
    expect(() => buildDsn({ ...base, to: '', recipients: [] })).toThrow(/null sender/);
  });

  it('keeps a remote reply on one line and takes the original headers out of the wire form', () => {
    const d = buildDsn({ ...base, recipients: [{ rcpt: 'a@d.test', action: 'failed', status: '5.0.0', remoteReply: '550-first\r\n550 second', remoteMta: null, lastAttempt: null }] });
    expect(d.message).toContain('Diagnostic-Code: smtp; 550-first 550 second\r\n');
    expect(headerSection(Buffer.from('Received: x\r\n..odd: y\r\nSubject: z\r\n\r\nbody\r\n'))).toBe('Received: x\r\n.odd: y\r\nSubject: z');
  });
});
