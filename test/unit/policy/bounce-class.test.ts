// Bounce classification: real replies from the big providers and common MTAs, and vipmta's own
// failures, each with the class an operator of Momentum would expect.
import { describe, expect, it } from 'vitest';
import { BOUNCE_CLASSES, classify, describeClass, type Failure } from '../../../src/policy/bounce-class.js';

function reply(line: string): Failure {
  const m = /^(\d{3})[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?(.*)$/.exec(line)!;
  return { code: Number(m[1]), enhanced: m[2] ?? null, text: m[3]! };
}

describe('bounce classification', () => {
  const cases: Array<[string, number]> = [
    // Gmail
    ["550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos", 10],
    ['452 4.2.2 The email account that you tried to reach is over quota. Please direct the recipient to https://support.example.net/mail/?p=OverQuotaTemp', 22],
    ['421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.', 70],
    ['550 5.7.1 Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.', 52],
    ['550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.', 50],
    // Yahoo
    ['421 4.7.0 [TSS04] Messages from 198.51.100.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.example.net/error-codes', 70],
    ['554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.example.net/error-codes', 50],
    ['553 5.7.2 [TSS09] All messages from 198.51.100.7 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.example.net/error-codes', 50],
    // Microsoft
    ["550 5.7.1 Unfortunately, messages from [198.51.100.7] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).", 51],
    ['451 4.7.650 The mail server [198.51.100.7] has been temporarily rate limited due to IP reputation.', 70],
    ['550 5.5.0 Requested action not taken: mailbox unavailable (S2017)', 10],
    // Orange
    ['421 mwinf5c10 ME Trop de connexions, veuillez verifier votre configuration. Too many connections, slow down. OFR005_104 [104]', 70],
    // Postfix and other MTAs
    ['550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in local recipient table', 10],
    ['450 4.2.0 <bob@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html', 70],
    ['554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org', 51],
    ['554 5.7.1 <bob@example.com>: Relay access denied', 54],
    ['552 5.3.4 Message size exceeds fixed limit', 23],
    ['552 5.2.2 <bob@example.com>: mailbox full', 22],
    ['550 5.7.1 Attachment type not allowed: .exe', 53],
    ['554 5.4.7 Delivery time expired', 24],
    ['550 5.4.4 Unable to route', 21],
    ['550 Requested action not taken', 40],
    ['451 Requested action aborted: local error in processing', 70],
    ['554 5.0.0 Transaction failed', 40],
  ];
  for (const [line, cls] of cases) {
    it(`${line.slice(0, 60)}… is ${cls}`, () => expect(classify(reply(line))).toBe(cls));
  }

  it('classifies what vipmta decided without a reply by its cause', () => {
    expect(classify({ code: null, text: 'no MX or address for example.test', local: 'dns' })).toBe(21);
    expect(classify({ code: null, text: 'queue lifetime exceeded', local: 'expired' })).toBe(24);
    expect(classify({ code: null, text: 'connect ECONNREFUSED', local: 'connect' })).toBe(70);
    expect(classify({ code: null, text: 'no greeting within 300 s', local: 'timeout' })).toBe(70);
    expect(classify({ code: null, text: 'failed by the operator', local: 'admin' })).toBe(25);
    expect(classify({ code: null, text: 'something else' })).toBe(1);
  });

  it('names every class', () => {
    expect(describeClass(10)).toBe('10 Invalid Recipient');
    for (const k of Object.keys(BOUNCE_CLASSES)) expect(describeClass(Number(k) as keyof typeof BOUNCE_CLASSES)).toMatch(/^\d+ \S/);
  });
});
