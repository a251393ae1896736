// The one SMTP reply table: every condition vipmta answers a client with (the listener, the #mmove
// receiver) or reports for a recipient itself (delivery failures without a reply from the peer), as
// a reply code and an RFC 3463 enhanced status code, citing the section per row. Nothing internal
// (paths, stack traces, errno names) goes on the wire; the log gets the detail. Also how a reply
// from a peer is read (RFC 5321 4.2, RFC 3463 2). Pure data and functions; any thread.

/** One row: a reply code, its enhanced status code, and the text after the code on the wire. */
export interface Reply {
  code: number;
  /** RFC 3463 class.subject.detail, e.g. "5.7.1". */
  enhanced: string;
  /** Text starting with the enhanced status code, e.g. "5.7.1 Relaying denied". */
  text: string;
}

function row(code: number, enhanced: string, words: string): Reply {
  return { code, enhanced, text: `${enhanced} ${words}` };
}

export const REPLIES = {
  // ---- what the listener answers (src/listener/esmtp.ts) ----
  // RFC 5321 4.2.3 (550) / RFC 3463 3.8 X.7.1: delivery not authorized, message refused.
  relayDenied: row(550, '5.7.1', 'Relaying denied: authenticate or use a permitted network'),
  // RFC 4954 6 (535) / X.7.8 (defined there): authentication credentials invalid.
  authFailed: row(535, '5.7.8', 'Authentication credentials invalid'),
  // RFC 5321 4.5.3.1.8 and 4.5.3.1.10 (452) / RFC 3463 3.6 X.5.3: too many recipients.
  tooManyRecipients: row(452, '4.5.3', 'Too many recipients'),
  // RFC 1870 6.2 (552) / RFC 3463 3.4 X.3.4: message too big for system.
  messageTooBig: row(552, '5.3.4', 'Message size exceeds fixed maximum message size'),
  // RFC 5322 2.1.1: lines are limited to 998 characters / RFC 3463 3.7 X.6.0: other media error.
  lineTooLong: row(550, '5.6.0', 'Message contains a line longer than 998 characters'),
  // RFC 5321 4.2.3 (452) / RFC 3463 3.4 X.3.1: mail system full.
  spoolFull: row(452, '4.3.1', 'Insufficient system storage'),
  // RFC 5321 4.2.3 (451) / RFC 3463 3.4 X.3.0: other or undefined mail system status.
  // Also a delivery result when the body cannot be read from our spool.
  localError: row(451, '4.3.0', 'Local error in processing, try again later'),
  // RFC 5321 3.8 (421) / RFC 3463 3.8 X.7.0: other security status (a session held with junk commands).
  tooManyJunkCommands: row(421, '4.7.0', 'Too many commands without a message, closing connection'),
  // RFC 5321 3.8 (421) / RFC 3463 3.4 X.3.2: system not accepting network messages (at Concurrency).
  tooManyClients: row(421, '4.3.2', 'Too many connected clients, try again in a moment'),
  // RFC 5321 3.8 (421) / RFC 3463 3.4 X.3.2: system not accepting network messages.
  shuttingDown: row(421, '4.3.2', 'Service shutting down, closing transmission channel'),
  // RFC 5321 6.3 (loop detection) / RFC 3463 3.5 X.4.6: routing loop detected.
  tooManyHops: row(554, '5.4.6', 'Too many hops (routing loop detected)'),
  // RFC 5321 3.8 (421: the server closes the channel) / RFC 3463 3.8 X.7.0: other security status.
  // Too many failed AUTH attempts on the connection or from the client address; RFC 4954 4 lets
  // the server end the dialogue after a failure, RFC 4954 14 asks servers to slow guessing down.
  authTooManyFailures: row(421, '4.7.0', 'Too many failed authentication attempts, closing transmission channel'),
  // RFC 5321 3.8 and 4.5.3.2 (421) / RFC 3463 3.8 X.7.0: too many connections from the client address.
  tooManyFromClient: row(421, '4.7.0', 'Too many connections from your address, try again later'),
  // RFC 6531 3.4 (a non-ASCII address needs the SMTPUTF8 parameter on MAIL) and 3.7.4.1 (553 with
  // RFC 5248 X.6.7): non-ASCII addresses not permitted for that sender / recipient.
  utf8Sender: row(553, '5.6.7', 'Non-ASCII addresses not permitted for that sender (SMTPUTF8 required)'),
  utf8Recipient: row(553, '5.6.7', 'Non-ASCII addresses not permitted for that recipient (SMTPUTF8 required)'),

  // ---- ECmmove2 (src/mmove/receiver.ts): the cluster link speaks SMTP, so it answers like SMTP ----
  // RFC 4954 6 (530) / RFC 3463 3.8 X.7.0: the XMMOVE announce must come before a transaction.
  authRequired: row(530, '5.7.0', 'Authentication required'),
  // RFC 4954 6 (454) / RFC 3463 3.8 X.7.0: this node cannot check proofs (no Cluster_Secret); retry later.
  authUnavailable: row(454, '4.7.0', 'Temporary authentication failure'),
  // RFC 4954 6 (504) / RFC 3463 3.6 X.5.4: a proof mechanism we do not know.
  authMechanism: row(504, '5.5.4', 'Unrecognized authentication type'),
  // RFC 5321 4.2.4 (500) / RFC 3463 3.6 X.5.1: invalid command.
  commandUnrecognized: row(500, '5.5.1', 'Command unrecognized'),
  // RFC 5321 4.2.4 (500) / RFC 3463 3.6 X.5.2: syntax error (a line over the limit cannot be resynced).
  lineTooLongCommand: row(500, '5.5.2', 'Line too long'),
  // RFC 5321 4.2.4 (501) / RFC 3463 3.6 X.5.4: invalid command arguments.
  syntaxError: row(501, '5.5.4', 'Syntax error in parameters or arguments'),
  // RFC 5321 4.1.1.11 and 4.2.4 (555) / RFC 3463 3.6 X.5.4: MAIL FROM/RCPT TO parameters not
  // recognized (also answered by the listener for a parameter of an extension it did not offer).
  parameterUnknown: row(555, '5.5.4', 'MAIL FROM/RCPT TO parameters not recognized or not implemented'),
  // RFC 5321 4.2.4 (503) / RFC 3463 3.6 X.5.1: bad sequence of commands.
  badSequence: row(503, '5.5.1', 'Bad sequence of commands'),
  // RFC 5321 3.3 and RFC 2920 3.1 (554) / RFC 3463 3.6 X.5.1: DATA or BDAT without a valid recipient;
  // an mmove moves whole messages, so one refused recipient refuses the transaction.
  noValidRecipients: row(554, '5.5.1', 'No valid recipients'),
  // RFC 5321 4.5.3.2 (421) / RFC 3463 3.5 X.4.2: bad connection (idle past the timeout).
  idleTimeout: row(421, '4.4.2', 'Idle timeout, closing transmission channel'),
  // RFC 5321 4.5.3.2 (421) / RFC 3463 3.5 X.4.2: bad connection. A command line or a message's data
  // not complete within its deadline (Command_Deadline, Data_Deadline), however steadily it trickles
  // in; Postfix's words. The listener puts its host name after the enhanced code.
  deadlineExceeded: row(421, '4.4.2', 'Error: timeout exceeded'),
  // RFC 5321 3.8 (421) / RFC 3463 3.4 X.3.2: system not accepting network messages. A message's data
  // waited longer than Timeout for memory (Max_Body_Memory) while other bodies were in flight.
  bodyMemoryBusy: row(421, '4.3.2', 'Too many messages in flight, try again later'),

  // ---- what delivery reports itself, without a reply from the peer (src/delivery/results.ts) ----
  // The words are the row's meaning; a delivery result puts its own detail after the enhanced code.
  // RFC 3463 3.5 X.4.3: directory server failure (DNS answered SERVFAIL, timed out, refused).
  dnsTemporary: row(451, '4.4.3', 'Directory server failure'),
  // RFC 3463 3.2 X.1.2: bad destination system address (the domain does not exist).
  noSuchDomain: row(550, '5.1.2', 'Bad destination system address'),
  // RFC 7505 4.2 (556) / RFC 7505 3.2 X.1.10: the domain publishes a null MX, it takes no mail.
  nullMx: row(556, '5.1.10', 'Recipient address has null MX'),
  // RFC 3463 3.5 X.4.4: unable to route (MX hosts without addresses of the family we send from).
  noRoute: row(451, '4.4.4', 'Unable to route'),
  // RFC 3463 3.5 X.4.1: no answer from host (connect refused, unreachable, timed out).
  connectFailed: row(451, '4.4.1', 'No answer from host'),
  // RFC 3463 3.5 X.4.2: bad connection (lost or timed out in the middle of the dialogue).
  lostConnection: row(451, '4.4.2', 'Bad connection'),
  // RFC 3463 3.6 X.5.0: other protocol status (a reply we cannot parse or did not expect).
  protocolError: row(451, '4.5.0', 'Other or undefined protocol status'),
  // RFC 5248 registry X.7.10: encryption needed (TLS required, the peer offers no STARTTLS).
  tlsNotOffered: row(451, '4.7.10', 'Encryption needed'),
  // RFC 3463 3.8 X.7.5: cryptographic failure (TLS handshake or certificate verification failed).
  tlsFailed: row(451, '4.7.5', 'Cryptographic failure'),
  // RFC 6531 3.7.4.1 / X.6.7: non-ASCII addresses need SMTPUTF8, which the peer does not offer.
  utf8NotOffered: row(553, '5.6.7', 'Non-ASCII addresses not permitted for that recipient'),
  // RFC 3463 3.4 X.3.2: system not accepting network messages; as a recipient's result (we are
  // shutting down) a 451, so the message is tried again later, not bounced.
  shutdownDeferred: row(451, '4.3.2', 'System not accepting network messages, try again later'),

  // ---- what the queue reports in DSNs ----
  // RFC 3463 3.5 X.4.7: delivery time expired (Message_Expiration). The DSN Status of what expiry
  // bounces; the recipient keeps its last reply code, so only `enhanced` is read.
  messageExpired: row(451, '4.4.7', 'Delivery time expired'),
} as const satisfies Record<string, Reply>;

export type ReplyName = keyof typeof REPLIES;

/** An Error smtp-server turns into `code text` on the wire. */
export function replyError(name: ReplyName): Error & { responseCode: number } {
  const r = REPLIES[name];
  const err = new Error(r.text) as Error & { responseCode: number };
  err.responseCode = r.code;
  return err;
}

// ---- replies read from a peer ----

/** A reply as parsed from a peer (RFC 5321 4.2). */
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
