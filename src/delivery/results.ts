// Delivery results: the public result types, how a remote reply becomes a per-recipient status,
// and one table of the failures we report ourselves (no reply from the peer) with RFC 3463 enhanced
// codes, citing the section per row. Pure data and functions; any thread.
import { ErrorCode } from '../errors.js';

export type RecipientStatus = 'delivered' | 'deferred' | 'bounced';

export interface RecipientResult {
  rcpt: string;
  status: RecipientStatus;
  /** The remote reply code, or the code of the LOCAL_FAILURES row when `origin` is 'local'. */
  code: number;
  /** RFC 3463 enhanced status code ("5.1.1"), or null when the peer sent none. */
  enhanced: string | null;
  /** 'remote': "550 5.1.1 text" as the peer sent it (lines joined with a space).
   *  'local': our diagnosis, starting with the enhanced code ("4.4.1 connect to ... failed: ..."). */
  reply: string;
  /** Who said it: the peer ('remote', a DSN's "Diagnostic-Code: smtp; ...") or we ('local'). */
  origin: 'remote' | 'local';
  /** MX or route host name the reply came from (null when no host was reached or chosen). */
  remoteHost: string | null;
  remoteAddress: string | null;
}

export interface MessageResult {
  id: string;
  /** One per envelope recipient, in the order of OutboundMessage.rcpt. */
  results: RecipientResult[];
  /** Our end of the last connection used for this message (the binding's address in practice). */
  localAddress: string | null;
}

/** A parsed SMTP reply (RFC 5321 4.2). */
export interface SmtpReply {
  code: number;
  /** The text of each line without the code and separator. */
  lines: string[];
  enhanced: string | null;
}

// RFC 3463 2: class.subject.detail, class matching the reply code's first digit.
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/;

/** The enhanced status code at the start of `text` when its class agrees with `code`. */
export function enhancedOf(code: number, text: string): string | null {
  const m = ENHANCED.exec(text);
  if (m === null || Number(m[1]) !== Math.floor(code / 100)) return null;
  return `${m[1]}.${m[2]}.${m[3]}`;
}

/** "550 5.1.1 first line second line": what the peer said, on one line for logs and DSNs. */
export function replyText(r: SmtpReply): string {
  return `${r.code} ${r.lines.join(' ')}`.trimEnd();
}

/** RFC 5321 4.2.1: 2yz done, 4yz transient, 5yz permanent. Anything else is a protocol error: retry. */
export function statusOf(code: number): RecipientStatus {
  if (code >= 200 && code < 300) return 'delivered';
  if (code >= 500 && code < 600) return 'bounced';
  return 'deferred';
}

export interface Where {
  remoteHost: string | null;
  remoteAddress: string | null;
}

export function remoteResult(rcpt: string, r: SmtpReply, where: Where): RecipientResult {
  return {
    rcpt, status: statusOf(r.code), code: r.code, enhanced: r.enhanced, reply: replyText(r),
    origin: 'remote', remoteHost: where.remoteHost, remoteAddress: where.remoteAddress,
  };
}

interface LocalFailure {
  code: number;
  enhanced: string;
}

/** Failures without a reply from the peer; `detail` is appended to the row's enhanced code. */
export const LOCAL_FAILURES = {
  // RFC 3463 3.5 X.4.3: directory server failure (DNS answered SERVFAIL, timed out, refused).
  dnsTemporary: { code: 451, enhanced: '4.4.3' },
  // RFC 3463 3.2 X.1.2: bad destination system address (the domain does not exist).
  noSuchDomain: { code: 550, enhanced: '5.1.2' },
  // RFC 7505 4.2 (556) / RFC 7505 3.2 X.1.10: the domain publishes a null MX, it takes no mail.
  nullMx: { code: 556, enhanced: '5.1.10' },
  // RFC 3463 3.5 X.4.4: unable to route (MX hosts without addresses of the family we send from).
  noRoute: { code: 451, enhanced: '4.4.4' },
  // RFC 3463 3.5 X.4.1: no answer from host (connect refused, unreachable, timed out).
  connectFailed: { code: 451, enhanced: '4.4.1' },
  // RFC 3463 3.5 X.4.2: bad connection (lost or timed out in the middle of the dialogue).
  lostConnection: { code: 451, enhanced: '4.4.2' },
  // RFC 3463 3.6 X.5.0: other protocol status (a reply we cannot parse or did not expect).
  protocolError: { code: 451, enhanced: '4.5.0' },
  // RFC 5248 registry X.7.10: encryption needed (TLS required, the peer offers no STARTTLS).
  tlsNotOffered: { code: 451, enhanced: '4.7.10' },
  // RFC 3463 3.8 X.7.5: cryptographic failure (TLS handshake or certificate verification failed).
  tlsFailed: { code: 451, enhanced: '4.7.5' },
  // RFC 6531 3.7.4.1 / X.6.7: non-ASCII addresses need SMTPUTF8, which the peer does not offer.
  utf8NotOffered: { code: 553, enhanced: '5.6.7' },
  // RFC 3463 3.4 X.3.0: other mail system status (the body could not be read from our spool).
  spoolRead: { code: 451, enhanced: '4.3.0' },
  // RFC 3463 3.4 X.3.2: we are shutting down; try again later.
  shuttingDown: { code: 451, enhanced: '4.3.2' },
} as const satisfies Record<string, LocalFailure>;

export type LocalFailureName = keyof typeof LOCAL_FAILURES;

/** A failure of ours for one recipient, e.g. localResult(r, 'connectFailed', 'connect to h:25 failed: ECONNREFUSED', w). */
export function localResult(rcpt: string, name: LocalFailureName, detail: string, where: Where): RecipientResult {
  const f = LOCAL_FAILURES[name];
  return {
    rcpt, status: statusOf(f.code), code: f.code, enhanced: f.enhanced, reply: `${f.enhanced} ${detail}`,
    origin: 'local', remoteHost: where.remoteHost, remoteAddress: where.remoteAddress,
  };
}

/** A failure that applies to a whole attempt (every recipient of the messages it covers). */
export class DeliveryFailure extends Error {
  readonly code = ErrorCode.DELIVERY;
  constructor(readonly failure: LocalFailureName, readonly detail: string, readonly where: Where) {
    super(`${LOCAL_FAILURES[failure].enhanced} ${detail}`);
    this.name = 'DeliveryFailure';
  }
}
