// Header fields vipmta writes into messages: the RFC 5321 4.4 trace field (Received:) a receiving
// MTA prepends. Pure string building, once per accepted message; any thread.
import { rfc5322Date } from './date.js';

/** RFC 5321 4.4 trace field for a message received by this node, with a CRLF at the end. */
export function receivedHeader(o: {
  helo: string;
  remoteAddress: string;
  hostname: string;
  secure: boolean;
  authenticated: boolean;
  recipient: string | null;
  date: Date;
}): string {
  // RFC 3848 protocol types: ESMTP, ESMTPS (TLS), ESMTPA (AUTH), ESMTPSA (both).
  const proto = `ESMTP${o.secure ? 'S' : ''}${o.authenticated ? 'A' : ''}`;
  const helo = o.helo.replace(/[^\x21-\x7e]/g, '?') || 'unknown';
  // RFC 5321 4.1.3 address literal: "IPv6:" before an IPv6 address; an IPv4-mapped peer is IPv4.
  const lit = o.remoteAddress.includes(':') && !o.remoteAddress.startsWith('::ffff:') ? `IPv6:${o.remoteAddress}` : o.remoteAddress.replace(/^::ffff:/, '');
  const forPart = o.recipient === null ? '' : `\r\n\tfor <${o.recipient.replace(/[\r\n<>]/g, '')}>`;
  return `Received: from ${helo} ([${lit}])\r\n\tby ${o.hostname} (vipmta) with ${proto}${forPart};\r\n\t${rfc5322Date(o.date)}\r\n`;
}
