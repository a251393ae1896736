// Delivery status notifications: the RFC 3464 multipart/report a sender gets back when a message
// permanently fails or expires (and, optionally, a "delayed" warning). Pure: builds the text;
// bounce.ts spools it with the null sender (RFC 5321 4.5.5), and the queue never asks for one
// about a message whose own sender is null. Any thread (a worker in practice); cheap.
import crypto from 'node:crypto';
import { describeClass, type BounceClass } from '../policy/bounce-class.js';
import { rfc5322Date } from '../smtp/date.js';
import { REPLIES } from '../smtp/replies.js';

export interface DsnRecipient {
  rcpt: string;
  /** RFC 3464 2.3.3: failed (bounce, expiry) or delayed (warning). */
  action: 'failed' | 'delayed';
  /** RFC 3463 status code, e.g. "5.1.1"; "4.4.7" for an expired message. */
  status: string;
  /** The remote server's reply, e.g. "550 5.1.1 <x@y>: user unknown"; null when none was reached. */
  remoteReply: string | null;
  remoteMta: string | null;
  lastAttempt: Date | null;
  /** Momentum's bounce class of the failure; absent: no X-Vipmta-Bounce-Class field. */
  bounceClass?: BounceClass;
}

export interface DsnInput {
  /** This node's host name (Reporting-MTA, the From address's domain). */
  reportingMta: string;
  queueId: string;
  /** The original envelope sender: the DSN goes there. Must not be empty. */
  to: string;
  arrival: Date;
  recipients: DsnRecipient[];
  /** The original message's header section (RFC 5322), CRLF line ends, without the blank line. */
  originalHeaders: string;
  now: Date;
}

export interface Dsn {
  /** Envelope sender of the DSN: always the null sender (RFC 5321 4.5.5), so DSNs never loop. */
  from: '';
  to: string;
  /** RFC 5322 message, CRLF line ends, not dot-stuffed (the spool stuffs it). */
  message: string;
}

/** Extracts the header section from a wire-form body (dot-stuffed, CRLF), unstuffed, at most 64 KiB. */
export function headerSection(wire: Buffer): string {
  const end = wire.indexOf('\r\n\r\n');
  const head = wire.subarray(0, end < 0 ? Math.min(wire.length, 65536) : Math.min(end, 65536)).toString('latin1');
  return head.replace(/(^|\r\n)\.\./g, '$1.');
}

export function buildDsn(d: DsnInput): Dsn {
  if (d.to === '') throw new Error('no DSN for the null sender (RFC 5321 4.5.5)');
  const failed = d.recipients.some((r) => r.action === 'failed');
  const boundary = `vipmta-${crypto.randomBytes(12).toString('hex')}`;
  const host = d.reportingMta;
  const human: string[] = failed
    ? ['This is the mail system at host ' + host + '.', '', 'Your message could not be delivered to one or more recipients.', 'It is attached below.', '']
    : ['This is the mail system at host ' + host + '.', '', 'Your message has not been delivered yet to one or more recipients.', 'The mail system will keep trying; you do not need to resend it.', ''];
  for (const r of d.recipients) {
    human.push(`<${r.rcpt}>: ${r.remoteReply ?? describe(r.status)}`);
  }
  const perMessage = [
    `Reporting-MTA: dns; ${host}`,
    `X-Vipmta-Queue-ID: ${d.queueId}`,
    `Arrival-Date: ${rfc5322Date(d.arrival)}`,
  ];
  const perRecipient = d.recipients.map((r) => {
    const f = [`Final-Recipient: rfc822; ${r.rcpt}`, `Action: ${r.action}`, `Status: ${r.status}`];
    if (r.remoteMta !== null) f.push(`Remote-MTA: dns; ${r.remoteMta}`);
    if (r.remoteReply !== null) f.push(`Diagnostic-Code: smtp; ${oneLine(r.remoteReply)}`);
    if (r.lastAttempt !== null) f.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttempt)}`);
    // RFC 3464 2.4 allows extension fields ("X-"): the class, in the words senders already process.
    if (r.bounceClass !== undefined) f.push(`X-Vipmta-Bounce-Class: ${bounceClassField(r.bounceClass)}`);
    return f.join('\r\n');
  });
  const lines = [
    `From: Mail Delivery System <MAILER-DAEMON@${host}>`,
    `To: <${d.to}>`,
    `Subject: ${failed ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)'}`,
    `Date: ${rfc5322Date(d.now)}`,
    `Message-ID: <${d.queueId}.${d.now.getTime()}.dsn@${host}>`,
    // RFC 3834 5: an automatic response; autoresponders must not answer it.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated delivery status notification (RFC 3464).',
    '',
    `--${boundary}`,
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    ...human,
    '',
    `--${boundary}`,
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    perMessage.join('\r\n'),
    '',
    perRecipient.join('\r\n\r\n'),
    '',
    `--${boundary}`,
    'Content-Description: Undelivered message headers',
    'Content-Type: text/rfc822-headers',
    '',
    d.originalHeaders,
    '',
    `--${boundary}--`,
    '',
  ];
  return { from: '', to: d.to, message: lines.join('\r\n') };
}

/** "10 (Invalid Recipient)": the class, then its name as a comment. */
export function bounceClassField(c: BounceClass): string {
  const d = describeClass(c);
  const sp = d.indexOf(' ');
  return `${d.slice(0, sp)} (${d.slice(sp + 1)})`;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
}

function describe(status: string): string {
  if (status === REPLIES.messageExpired.enhanced) return 'delivery time expired (Message_Expiration) before the message could be delivered';
  return `delivery failed (status ${status})`;
}
