// Bounce classification: every delivery failure gets one of Momentum's bounce classification codes
// (10 invalid recipient, 21 DNS failure, 22 mailbox full, 50 mail block, 51 spam block, 70
// transient, ...), so that log records, metrics, DSNs and shaping rules can say why mail failed in
// a vocabulary senders already process. Pure: a few regular expressions per failure, any thread.
//
// Order of evidence: what vipmta itself knows (a DNS failure, an expiry) first; then the receiver's
// words, because providers put policy blocks and full mailboxes behind generic codes (550 5.7.1,
// 452 4.2.2, 550 5.0.0); then the RFC 3463 enhanced status code; then the reply code alone.

/** Momentum's bounce classification codes. */
export const BOUNCE_CLASSES = {
  1: 'Undetermined',
  10: 'Invalid Recipient',
  20: 'Soft Bounce',
  21: 'DNS Failure',
  22: 'Mailbox Full',
  23: 'Too Large',
  24: 'Timeout',
  25: 'Admin Failure',
  30: 'Generic Bounce: No RCPT',
  40: 'Generic Bounce',
  50: 'Mail Block',
  51: 'Spam Block',
  52: 'Spam Content',
  53: 'Prohibited Attachment',
  54: 'Relaying Denied',
  60: 'Auto-Reply',
  70: 'Transient Failure',
  80: 'Subscribe',
  90: 'Unsubscribe',
  100: 'Challenge-Response',
} as const;

export type BounceClass = keyof typeof BOUNCE_CLASSES;

/**
 * A failure as delivery reports it: the receiver's reply (code, enhanced code, text), or, when
 * there was no reply to read, what vipmta knows of the cause.
 */
export interface Failure {
  /** The reply code (421, 550, ...); null when there was no reply. */
  readonly code: number | null;
  /** The RFC 3463 enhanced status code ("5.1.1"), when the reply had one. */
  readonly enhanced?: string | null;
  /** The reply text after the codes, or vipmta's own description. */
  readonly text: string;
  /**
   * Set when vipmta decided without a reply from the receiver: 'dns' (the destination did not
   * resolve), 'expired' (the message outlived its queue lifetime), 'timeout' (no answer in time),
   * 'connect' (no connection), 'admin' (an operator or a policy of ours failed it).
   */
  readonly local?: 'dns' | 'expired' | 'timeout' | 'connect' | 'admin';
}

/** What the receiver's words say, tried in order; the first match decides. */
const TEXT_RULES: ReadonlyArray<readonly [RegExp, BounceClass]> = [
  [/\b(over ?quota|quota exceeded|mailbox (is )?full|mailbox.{0,20}(exceeded|over).{0,20}(storage|size|limit)|insufficient (storage|space)|user.{0,20}over.{0,10}quota)\b/i, 22],
  [/\b(message|mail|email) (size )?(is )?(too (large|big)|exceeds?\b.{0,30}(size|limit))|size limit|message size exceeds\b/i, 23],
  [/\b(relay(ing)? (access )?(denied|not permitted|prohibited)|not permitted to relay|unable to relay|relay not (permitted|allowed))\b/i, 54],
  [/\b(attachment|file type|extension)\b.{0,40}\b(not allowed|prohibited|blocked|rejected|forbidden)\b|\bprohibited (attachment|file)/i, 53],
  [/\b(virus|malware)\b/i, 52],
  [/\b(spamhaus|spamcop|barracuda|sorbs|dnsbl|rbl|block ?list(ed)?|black ?list(ed)?|poor reputation|reputation|listed (on|in|at))\b/i, 51],
  [/\b(spam|unsolicited|bulk mail|junk)\b/i, 52],
  [/\b(no such (user|mailbox|recipient|address)|(user|recipient|mailbox|address|account)\b.{0,30}\b(unknown|not found|does not exist|doesn'?t exist|invalid|disabled|inactive|unavailable|no longer)|unknown (user|recipient|mailbox)|invalid (recipient|mailbox|address))\b/i, 10],
  [/\b(too many (connections|messages|recipients|sessions)|rate[- ]limit|throttl|temporarily (deferred|rate limited)|try (again )?later)\b/i, 70],
  [/\b(blocked|denied|refused|rejected|not authorized|policy|prohibited)\b/i, 50],
];

/** RFC 3463 enhanced status codes by subject.detail ("1.1"), with their class. */
const ENHANCED: ReadonlyMap<string, BounceClass> = new Map<string, BounceClass>([
  ['1.1', 10], ['1.2', 21], ['1.3', 10], ['1.4', 10], ['1.6', 10], ['1.10', 10],
  ['2.1', 10], ['2.2', 22], ['2.3', 23],
  ['3.4', 23],
  ['4.1', 70], ['4.2', 70], ['4.3', 21], ['4.4', 21], ['4.7', 24],
  ['7.1', 50], ['7.2', 50], ['7.7', 52],
  ['7.23', 50], ['7.24', 50], ['7.25', 50], ['7.26', 50], ['7.27', 50],
]);

const ENHANCED_RE = /^([245])\.(\d{1,3})\.(\d{1,3})$/;

/** The class of one failure. */
export function classify(f: Failure): BounceClass {
  switch (f.local) {
    case 'dns': return 21;
    case 'expired': return 24;
    case 'admin': return 25;
    case 'timeout':
    case 'connect': return 70;
    default: break;
  }
  const transient = f.code !== null ? f.code >= 400 && f.code < 500 : f.enhanced?.startsWith('4.') === true;
  for (const [re, cls] of TEXT_RULES) {
    if (!re.test(f.text)) continue;
    // A deferral that names a block (greylisting "try later", a "policy" 4xx) is transient;
    // only the classes that describe the mailbox or the message keep their meaning on a 4xx.
    if (transient && (cls === 50 || cls === 51 || cls === 52 || cls === 10 || cls === 54)) return 70;
    return cls;
  }
  const m = f.enhanced ? ENHANCED_RE.exec(f.enhanced) : null;
  if (m) {
    const cls = ENHANCED.get(`${m[2]}.${m[3]}`);
    if (cls !== undefined) {
      if (m[1] === '4' && cls !== 22 && cls !== 21) return 70;
      return cls;
    }
    if (m[2] === '7' && m[1] === '5') return 50;
  }
  if (f.code === null) return 1;
  if (f.code >= 400 && f.code < 500) return 70;
  if (f.code >= 500 && f.code < 600) return 40;
  return 1;
}

/** "10 Invalid Recipient", for logs and the console. */
export function describeClass(c: BounceClass): string {
  return `${c} ${BOUNCE_CLASSES[c]}`;
}
