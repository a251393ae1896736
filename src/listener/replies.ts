// What an SMTP client sees when something goes wrong: one table from internal conditions to
// standard replies with RFC 3463 enhanced codes. Nothing internal (paths, stack traces, errno
// names) ever goes on the wire; the log gets the detail. Pure data; any thread.

export interface Reply {
  code: number;
  /** Text starting with the enhanced status code, e.g. "5.7.1 Relaying denied". */
  text: string;
}

export const REPLIES = {
  // RFC 5321 4.2.3 (550) / RFC 3463 3.8 X.7.1: delivery not authorized, message refused.
  relayDenied: { code: 550, text: '5.7.1 Relaying denied: authenticate or use a permitted network' },
  // RFC 4954 6 (535) / RFC 3463 X.7.8: authentication credentials invalid.
  authFailed: { code: 535, text: '5.7.8 Authentication credentials invalid' },
  // RFC 5321 4.5.3.1.8 and 4.5.3.1.10 (452) / RFC 3463 X.5.3: too many recipients.
  tooManyRecipients: { code: 452, text: '4.5.3 Too many recipients' },
  // RFC 1870 6.2 (552) / RFC 3463 X.3.4: message too big for system.
  messageTooBig: { code: 552, text: '5.3.4 Message size exceeds fixed maximum message size' },
  // RFC 5322 2.1.1: lines are limited to 998 characters; RFC 3463 X.6.0: other media error.
  lineTooLong: { code: 550, text: '5.6.0 Message contains a line longer than 998 characters' },
  // RFC 5321 4.2.3 (452) / RFC 3463 X.3.1: mail system full.
  spoolFull: { code: 452, text: '4.3.1 Insufficient system storage' },
  // RFC 5321 4.2.3 (451) / RFC 3463 X.3.0: other or undefined mail system status.
  localError: { code: 451, text: '4.3.0 Local error in processing, try again later' },
  // RFC 5321 3.8 (421) / RFC 3463 X.3.2: system not accepting network messages.
  shuttingDown: { code: 421, text: '4.3.2 Service shutting down, closing transmission channel' },
  // RFC 3463 X.5.3 style check on the loop: a message that has passed through too many hops.
  tooManyHops: { code: 554, text: '5.4.6 Too many hops (routing loop detected)' },

  // ---- ECmmove2 (src/mmove/receiver.ts): the cluster link speaks SMTP, so it answers like SMTP ----
  // RFC 4954 6 (530) / RFC 3463 X.7.0: the XMMOVE announce must come before a transaction.
  authRequired: { code: 530, text: '5.7.0 Authentication required' },
  // RFC 4954 6 (454) / RFC 3463 X.7.0: this node cannot check proofs (no Cluster_Secret); retry later.
  authUnavailable: { code: 454, text: '4.7.0 Temporary authentication failure' },
  // RFC 4954 6 (504) / RFC 3463 X.5.4: a proof mechanism we do not know.
  authMechanism: { code: 504, text: '5.5.4 Unrecognized authentication type' },
  // RFC 5321 4.2.4 (500) / RFC 3463 X.5.1: invalid command.
  commandUnrecognized: { code: 500, text: '5.5.1 Command unrecognized' },
  // RFC 5321 4.2.4 (500) / RFC 3463 X.5.2: syntax error (a line over the limit cannot be resynced).
  lineTooLongCommand: { code: 500, text: '5.5.2 Line too long' },
  // RFC 5321 4.2.4 (501) / RFC 3463 X.5.4: invalid command arguments.
  syntaxError: { code: 501, text: '5.5.4 Syntax error in parameters or arguments' },
  // RFC 5321 4.2.4 (555) / RFC 3463 X.5.4: MAIL FROM/RCPT TO parameters not recognized.
  parameterUnknown: { code: 555, text: '5.5.4 MAIL FROM/RCPT TO parameters not recognized or not implemented' },
  // RFC 5321 4.2.4 (503) / RFC 3463 X.5.1: bad sequence of commands.
  badSequence: { code: 503, text: '5.5.1 Bad sequence of commands' },
  // RFC 5321 3.3 and RFC 2920 3.1 (554) / RFC 3463 X.5.1: DATA or BDAT without a valid recipient;
  // an mmove moves whole messages, so one refused recipient refuses the transaction.
  noValidRecipients: { code: 554, text: '5.5.1 No valid recipients' },
  // RFC 5321 4.5.3.2 (421) / RFC 3463 X.4.2: bad connection (idle past the timeout).
  idleTimeout: { code: 421, text: '4.4.2 Idle timeout, closing transmission channel' },
} as const satisfies Record<string, Reply>;

export type ReplyName = keyof typeof REPLIES;

/** An Error smtp-server turns into `code text` on the wire. */
export function replyError(name: ReplyName): Error & { responseCode: number } {
  const r = REPLIES[name];
  const err = new Error(r.text) as Error & { responseCode: number };
  err.responseCode = r.code;
  return err;
}
