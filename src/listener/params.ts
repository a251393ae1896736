// The parameters of MAIL and RCPT: which ones this listener offers, and the refusal a command
// gets for one it did not offer (RFC 5321 4.1.1.11: 555) or for a non-ASCII address without
// SMTPUTF8 (RFC 6531 3.4: 553). smtp-server checks the values of the ones it knows. Pure; any thread.
import type { SMTPServerAddress } from 'smtp-server';
import type { ReplyName } from '../smtp/replies.js';

/** RFC 6531 3.4: an address with any byte outside US-ASCII needs SMTPUTF8 on the MAIL command. */
const NON_ASCII = /[^\x00-\x7f]/;
/** RFC 3461 4: the RCPT parameters of DSN, the one extension we offer that has any. */
const RCPT_PARAMS: ReadonlySet<string> = new Set(['NOTIFY', 'ORCPT']);

/** The MAIL parameters of the extensions a listener offers. */
export function mailParams(o: { Enable_8bitmime: boolean; Smtputf8: boolean }): ReadonlySet<string> {
  const p = new Set(['SIZE', 'RET', 'ENVID', 'REQUIRETLS']);
  if (o.Enable_8bitmime) p.add('BODY');
  if (o.Smtputf8) p.add('SMTPUTF8');
  return p;
}

/** Why a MAIL command is refused, or null. `smtpUtf8`: the command asked for SMTPUTF8. */
export function mailRefusal(address: SMTPServerAddress, smtpUtf8: boolean, offered: ReadonlySet<string>): ReplyName | null {
  if (!knownParams(address, offered)) return 'parameterUnknown';
  if (!smtpUtf8 && NON_ASCII.test(address.address)) return 'utf8Sender';
  return null;
}

/** Why a RCPT command is refused for its parameters or address, or null. */
export function rcptRefusal(rcpt: SMTPServerAddress, smtpUtf8: boolean): ReplyName | null {
  if (!knownParams(rcpt, RCPT_PARAMS)) return 'parameterUnknown';
  if (!smtpUtf8 && NON_ASCII.test(rcpt.address)) return 'utf8Recipient';
  return null;
}

/** Whether every parameter of a MAIL or RCPT command is one we offered. */
function knownParams(address: SMTPServerAddress, known: ReadonlySet<string>): boolean {
  const args = address.args;
  if (args === false || args === undefined) return true;
  for (const k of Object.keys(args)) if (!known.has(k)) return false;
  return true;
}
