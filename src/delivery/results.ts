// Delivery results: the public result types, how a remote reply becomes a per-recipient status,
// and which rows of the SMTP reply table (src/smtp/replies.ts, codes and RFC 3463 sections) the
// failures we report ourselves (no reply from the peer) are, and the bounce class of every failure
// (src/policy/bounce-class.ts, set here where a result is made). Pure data and functions; any thread.
import { ErrorCode } from '../errors.js';
import { classify, type BounceClass, type Failure } from '../policy/bounce-class.js';
import { REPLIES, replyText, type Reply, type SmtpReply } from '../smtp/replies.js';

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
  /** Momentum's bounce class of a failure (deferred or bounced); absent when delivered. */
  bounceClass?: BounceClass;
}

export interface MessageResult {
  id: string;
  /** One per envelope recipient, in the order of OutboundMessage.rcpt. */
  results: RecipientResult[];
  /** Our end of the last connection used for this message (the binding's address in practice). */
  localAddress: string | null;
  /** Set (true) when the delivery was cut because this node no longer holds the binding's address
   *  (DeliveryEngine.abortFrom: its DuraVIP moved): the recipients it left deferred with
   *  'bindingMoved' were not tried, or their transaction was cut; no attempt is to be counted. */
  cut?: true;
  /** The destination the batch resolved to: its MX (or route) hosts, lower case, sorted, ":port"
   *  when not 25. One array per batch, shared by its results; absent when resolution failed. */
  mx?: readonly string[];
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
  const status = statusOf(r.code);
  const out: RecipientResult = {
    rcpt, status, code: r.code, enhanced: r.enhanced, reply: replyText(r),
    origin: 'remote', remoteHost: where.remoteHost, remoteAddress: where.remoteAddress,
  };
  // Failures only: a delivered recipient pays nothing. The receiver's words decide (the lines as
  // sent, enhanced codes included: the text rules look for words, not codes).
  if (status !== 'delivered') out.bounceClass = classify({ code: r.code, enhanced: r.enhanced, text: r.lines.join(' ') });
  return out;
}

/** Failures without a reply from the peer, by the name delivery uses, as rows of the one table;
 *  `detail` takes the place of the row's words after its enhanced code. */
export const LOCAL_FAILURES = {
  dnsTemporary: REPLIES.dnsTemporary,
  noSuchDomain: REPLIES.noSuchDomain,
  nullMx: REPLIES.nullMx,
  noRoute: REPLIES.noRoute,
  connectFailed: REPLIES.connectFailed,
  lostConnection: REPLIES.lostConnection,
  protocolError: REPLIES.protocolError,
  tlsNotOffered: REPLIES.tlsNotOffered,
  tlsFailed: REPLIES.tlsFailed,
  utf8NotOffered: REPLIES.utf8NotOffered,
  // The body could not be read from our spool.
  spoolRead: REPLIES.localError,
  // The delivery engine is shutting down: try again later.
  shuttingDown: REPLIES.shutdownDeferred,
  // Cut because this node no longer holds the source address (a handover): 4.4.2, like a lost
  // connection, and the queue sends the mail on from the address's new owner.
  bindingMoved: REPLIES.lostConnection,
  // The batch needed a new connection its throttle or limit did not allow (its connection was
  // lost midway): the rest comes back untried, no attempt counted, and waits for its turn.
  throttled: REPLIES.localError,
} as const satisfies Record<string, Reply>;

export type LocalFailureName = keyof typeof LOCAL_FAILURES;

/**
 * What each of our own failures is, as a bounce class cause (classify()'s `local`); null: none of
 * those, classed by the row's codes alone (never by our own words). Explicit, because the rows'
 * enhanced codes would mislead: 4.4.1 and 4.4.2 (no answer, bad connection) are X.4.x "network and
 * routing", which classify() reads as a DNS failure (21).
 */
const LOCAL_CAUSES: Readonly<Record<LocalFailureName, Failure['local'] | null>> = {
  dnsTemporary: 'dns',
  noSuchDomain: 'dns',
  nullMx: 'dns',
  noRoute: 'dns',
  connectFailed: 'connect',
  // A closed connection or a reply not in time (its detail says which): transient (70) both ways.
  lostConnection: 'connect',
  protocolError: null, // 451 4.5.0: transient (70)
  tlsNotOffered: null, // 451 4.7.10: transient (70)
  tlsFailed: null, // 451 4.7.5: transient (70)
  utf8NotOffered: null, // 553 5.6.7: generic bounce (40)
  spoolRead: null, // 451 4.3.0: transient (70)
  // The operator stops the node: an administrative deferral (25).
  shuttingDown: 'admin',
  // The cut of issue 12 (the address moved to another node): transient (70), like a lost connection.
  bindingMoved: 'connect',
  throttled: null, // 451 4.3.0: transient (70)
};

/** The bounce class of each LOCAL_FAILURES row, computed once. */
const LOCAL_CLASSES = Object.fromEntries(
  (Object.keys(LOCAL_FAILURES) as LocalFailureName[]).map((name) => {
    const f = LOCAL_FAILURES[name];
    const local = LOCAL_CAUSES[name];
    return [name, classify({ code: f.code, enhanced: f.enhanced, text: '', ...(local !== null ? { local } : {}) })];
  }),
) as Readonly<Record<LocalFailureName, BounceClass>>;

/** The bounce class of one of our own failures (tests and docs read it too). */
export function localClass(name: LocalFailureName): BounceClass {
  return LOCAL_CLASSES[name];
}

/** A failure of ours for one recipient, e.g. localResult(r, 'connectFailed', 'connect to h:25 failed: ECONNREFUSED', w). */
export function localResult(rcpt: string, name: LocalFailureName, detail: string, where: Where): RecipientResult {
  const f = LOCAL_FAILURES[name];
  return {
    rcpt, status: statusOf(f.code), code: f.code, enhanced: f.enhanced, reply: `${f.enhanced} ${detail}`,
    origin: 'local', remoteHost: where.remoteHost, remoteAddress: where.remoteAddress, bounceClass: LOCAL_CLASSES[name],
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

/** Why a delivery from `address` was cut: this node no longer holds it (a handover, or no quorum). */
export function cutFailure(address: string): DeliveryFailure {
  return new DeliveryFailure('bindingMoved', `delivery cut: this node no longer holds ${address}`, { remoteHost: null, remoteAddress: null });
}

/** The results of a batch from `address` that was cut before it started: nothing tried, every
 *  recipient deferred with 'bindingMoved', every message marked `cut` (no attempt counted). */
export function cutBatch(messages: readonly { id: string; rcpt: readonly string[] }[], address: string): MessageResult[] {
  const f = cutFailure(address);
  return messages.map((m) => ({ id: m.id, localAddress: null, cut: true, results: m.rcpt.map((r) => localResult(r, f.failure, f.detail, f.where)) }));
}
