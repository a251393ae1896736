// ECmmove2 on the wire: the greeting's challenge, the XMMOVE announce and its HMAC proof, and the
// MAIL FROM parameters that carry a moved message's metadata (docs/mmove.md is the reference).
// Pure functions shared by the sender (client.ts) and the receiver (receiver.ts); any thread.
// Nothing here blocks; the HMAC is one short crypto call per connection, never per message.
import crypto from 'node:crypto';
import type { MoveMeta } from '../message/envelope.js';

/** EHLO keyword a receiver offers (RFC 5321 4.1.1.1: keywords starting with X are private). */
export const EHLO_KEYWORD = 'XMMOVE2';
/** The only proof mechanism so far; named on the wire so another can be added without a new verb. */
export const PROOF_MECHANISM = 'HMAC-SHA256';
/** Random bytes in a challenge (hex on the wire). 128 bits: never repeated in practice. */
export const CHALLENGE_BYTES = 16;
/** RFC 5321 4.5.3.1.4: a command line is at most 512 octets; our MAIL FROM with its parameters
 *  can be longer (RFC 5321 4.5.3.1.4 allows extensions to raise it), so the receiver takes 4096. */
export const MAX_COMMAND_LINE = 4096;

/** A fresh greeting challenge: 32 lower-case hex digits. */
export function newChallenge(): string {
  return crypto.randomBytes(CHALLENGE_BYTES).toString('hex');
}

/** `220` text: `<host> ESMTP vipmta ECmmove2 challenge=<hex>` (RFC 5321 4.2: free text after the domain). */
export function greetingText(hostname: string, challenge: string): string {
  return `${hostname} ESMTP vipmta ECmmove2 challenge=${challenge}`;
}

/** The challenge in a greeting, or null when the server does not speak ECmmove2. */
export function parseChallenge(greeting: string): string | null {
  const m = /\bECmmove2 challenge=([0-9a-f]{16,128})\b/.exec(greeting);
  return m === null ? null : m[1]!;
}

/**
 * The proof that the sender knows the Cluster_Secret: HMAC-SHA256 over the challenge and the node
 * name it announces, so a proof seen on the wire neither replays (fresh challenge per connection)
 * nor lends itself to another identity.
 */
export function proof(secret: string, challenge: string, node: string): string {
  return crypto.createHmac('sha256', secret).update(`ECmmove2\n${challenge}\n${node}`).digest('hex');
}

/** Constant-time check of a proof received in XMMOVE. */
export function verifyProof(secret: string, challenge: string, node: string, given: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(given)) return false;
  const want = Buffer.from(proof(secret, challenge, node), 'hex');
  return crypto.timingSafeEqual(want, Buffer.from(given, 'hex'));
}

/** RFC 5321 4.1.2 Atom-ish node names: what the config's Nodename pattern allows. */
const NODE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** `XMMOVE <node> HMAC-SHA256 <proof>`. */
export function announceCommand(node: string, secret: string, challenge: string): string {
  if (!NODE.test(node)) throw new TypeError(`mmove: node name ${JSON.stringify(node)} is not a valid Nodename`);
  return `XMMOVE ${node} ${PROOF_MECHANISM} ${proof(secret, challenge, node)}`;
}

/** Parses the arguments of XMMOVE; null when malformed (the caller answers 501 5.5.4). */
export function parseAnnounce(args: string): { node: string; mechanism: string; proof: string } | null {
  const parts = args.trim().split(/ +/);
  if (parts.length !== 3 || !NODE.test(parts[0]!)) return null;
  return { node: parts[0]!, mechanism: parts[1]!.toUpperCase(), proof: parts[2]!.toLowerCase() };
}

// ---- xtext (RFC 3461 4): the encoding of ESMTP parameter values ----

/** RFC 3461 4: "+" followed by two upper-case hex digits for "+", "=" and octets outside 33..126. */
export function xtextEncode(s: string): string {
  let out = '';
  const bytes = Buffer.from(s, 'utf8');
  for (const b of bytes) {
    if (b < 33 || b > 126 || b === 0x2b || b === 0x3d) out += '+' + b.toString(16).toUpperCase().padStart(2, '0');
    else out += String.fromCharCode(b);
  }
  return out;
}

/** Inverse of xtextEncode; null for malformed xtext. */
export function xtextDecode(s: string): string | null {
  if (!s.includes('+')) return /^[\x21-\x7e]*$/.test(s) && !s.includes('=') ? s : null;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) {
      const h = s.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(h)) return null;
      bytes.push(parseInt(h, 16));
      i += 2;
    } else if (c < 33 || c > 126 || c === 0x3d) {
      return null;
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

// ---- MAIL FROM parameters ----

/** Parameter names, RFC 5321 4.1.2 esmtp-keyword; X- because they are private to vipmta. */
const P = {
  id: 'XMM-ID',
  origin: 'XMM-ORIGIN',
  binding: 'XMM-BINDING',
  group: 'XMM-GROUP',
  arrival: 'XMM-ARRIVAL',
  attempts: 'XMM-ATTEMPTS',
  next: 'XMM-NEXT',
  hops: 'XMM-HOPS',
} as const;
const REQUIRED = Object.values(P);
/** Optional: XMM-HOLD=1, the message is held by the operator (a drained node's held mail). A
 *  receiver that does not know it refuses the MAIL (555 5.5.4), so the sender keeps the message. */
const HOLD_PARAM = 'XMM-HOLD';

/** RFC 5321 4.1.2 Mailbox in angle brackets; the null sender is `<>`. */
export function mailCommand(from: string, size: number, meta: MoveMeta): string {
  return (
    `MAIL FROM:<${from}> SIZE=${size} ${P.id}=${xtextEncode(meta.originalId)} ${P.origin}=${xtextEncode(meta.originNode)}` +
    ` ${P.binding}=${xtextEncode(meta.binding)} ${P.group}=${xtextEncode(meta.bindingGroup)}` +
    ` ${P.arrival}=${int(meta.arrival)} ${P.attempts}=${int(meta.attempts)} ${P.next}=${int(meta.nextAttempt)} ${P.hops}=${int(meta.hops)}` +
    (meta.held === true ? ` ${HOLD_PARAM}=1` : '')
  );
}

function int(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`mmove: metadata value ${n} is not a non-negative integer`);
  return String(n);
}

export type MailParse =
  | { ok: true; from: string; size: number | null; meta: MoveMeta }
  | { ok: false; reason: 'syntax' | 'unknown-parameter' | 'missing-parameter'; detail: string };

/** Parses `MAIL FROM:<addr> params...` (the text after the verb). */
export function parseMail(args: string): MailParse {
  const m = /^FROM:\s*<([^<>\s]*)>(.*)$/i.exec(args.trim());
  if (m === null) return { ok: false, reason: 'syntax', detail: 'expected FROM:<address>' };
  const values = new Map<string, string>();
  for (const word of m[2]!.trim().split(/ +/)) {
    if (word === '') continue;
    const eq = word.indexOf('=');
    const key = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? '' : word.slice(eq + 1);
    if (values.has(key)) return { ok: false, reason: 'syntax', detail: `${key} given twice` };
    values.set(key, value);
  }
  for (const k of values.keys()) {
    if (k !== 'SIZE' && k !== 'BODY' && k !== HOLD_PARAM && !(REQUIRED as string[]).includes(k)) return { ok: false, reason: 'unknown-parameter', detail: k };
  }
  for (const k of REQUIRED) if (!values.has(k)) return { ok: false, reason: 'missing-parameter', detail: k };
  const num = (k: string): number | null => {
    const v = values.get(k)!;
    return /^\d{1,15}$/.test(v) ? Number(v) : null;
  };
  const txt = (k: string): string | null => {
    const v = xtextDecode(values.get(k)!);
    return v === null || v === '' ? null : v;
  };
  const originalId = txt(P.id), originNode = txt(P.origin), binding = txt(P.binding), bindingGroup = txt(P.group);
  const arrival = num(P.arrival), attempts = num(P.attempts), nextAttempt = num(P.next), hops = num(P.hops);
  if (originalId === null || originNode === null || binding === null || bindingGroup === null) {
    return { ok: false, reason: 'syntax', detail: 'empty or malformed xtext value' };
  }
  if (arrival === null || attempts === null || nextAttempt === null || hops === null) {
    return { ok: false, reason: 'syntax', detail: 'malformed number' };
  }
  let size: number | null = null;
  if (values.has('SIZE')) {
    size = num('SIZE');
    if (size === null) return { ok: false, reason: 'syntax', detail: 'malformed SIZE' };
  }
  const hold = values.get(HOLD_PARAM);
  if (hold !== undefined && hold !== '1') return { ok: false, reason: 'syntax', detail: `${HOLD_PARAM} must be 1` };
  const meta: MoveMeta = { originalId, originNode, binding, bindingGroup, arrival, attempts, nextAttempt, hops, ...(hold === '1' ? { held: true } : {}) };
  return { ok: true, from: m[1]!, size, meta };
}

/** Parses `TO:<addr>` (no parameters are defined for mmove). */
export function parseRcpt(args: string): string | null {
  const m = /^TO:\s*<([^<>\s]+)>\s*$/i.exec(args.trim());
  return m === null ? null : m[1]!;
}

// ---- body: wire form (dot-stuffed, as the spool stores it) to BDAT content ----

const CRLF_DOT = Buffer.from('\r\n.');

/**
 * The pieces of a wire-form body with the stuffed dots taken out (RFC 5321 4.5.2 undone), as
 * subarrays of `wire` (no copy), and their total length: BDAT (RFC 3030) carries the message
 * unstuffed. Hot path, once per message: Buffer.indexOf finds line-leading dots natively; a body
 * without any (the common case) is returned as the one piece it is.
 */
export function unstuff(wire: Buffer): { pieces: Buffer[]; length: number } {
  const pieces: Buffer[] = [];
  let start = 0;
  let removed = 0;
  // A line-leading dot in wire form is always doubled; drop the first of the pair.
  if (wire.length >= 2 && wire[0] === 0x2e && wire[1] === 0x2e) {
    start = 1;
    removed++;
  }
  for (let p = wire.indexOf(CRLF_DOT, start); p >= 0; p = wire.indexOf(CRLF_DOT, p + 3)) {
    const dot = p + 2;
    if (wire[dot + 1] !== 0x2e) continue; // not stuffed (cannot happen in valid wire form)
    pieces.push(wire.subarray(start, dot));
    start = dot + 1;
    removed++;
  }
  pieces.push(start === 0 ? wire : wire.subarray(start));
  return { pieces, length: wire.length - removed };
}
