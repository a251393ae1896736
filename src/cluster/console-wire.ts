// The console group's messages (console-group.ts): hello, request, reply chunks, queue summaries. Each carries an
// HMAC-SHA256 keyed from Cluster_Secret and its sender's CPG member key, which must be the one
// corosync delivered it from: without the secret no process makes others run commands or forges an
// answer. Main thread, pure (one HMAC per message). Peers are untrusted: decode validates, never throws.

import crypto from 'node:crypto';
import { decodeQueueSummary, type QueueSummary } from './queue-summary.js';
import { isNodeName } from './state.js';

/** HKDF inputs: the console's key is not #mmove's (src/mmove/tls.ts), though both come from the secret. */
const KEY_SALT = Buffer.from('vipmta console group', 'utf8');
const KEY_INFO = Buffer.from('vipmta console HMAC-SHA256 v1', 'utf8');
const MAC_BYTES = 32;
const MAX_HEADER = 64 * 1024;
/** A console command line (the control socket takes 64 KiB per request). */
export const MAX_ARGV = 64;
export const MAX_ARG_BYTES = 4096;
/** One reply chunk's body: CPG carries up to ~1 MiB per message, a quarter keeps the ring fair. */
export const CHUNK_BYTES = 256 * 1024;
/** A whole reply; a longer output is cut (and says so). */
export const MAX_REPLY_BYTES = 8 * 1024 * 1024;
export const MAX_CHUNKS = Math.ceil(MAX_REPLY_BYTES / CHUNK_BYTES);
/** A queue summary's body (SUMMARY_ROWS rows of short names: some 10 KiB in practice). */
export const MAX_SUMMARY_BYTES = 128 * 1024;
/** Rows of a structured mailq answer (its text is cut to the reply size anyway). */
export const MAX_MAILQ_ROWS = 100_000;

/** The console's HMAC key: HKDF-SHA256 over Cluster_Secret. */
export function consoleKey(secret: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', Buffer.from(secret, 'utf8'), KEY_SALT, KEY_INFO, 32));
}

/** A mailq row as a node answers it (src/queue/views.ts MailqRow, without the throttle note). */
export interface MailqData {
  readonly rows: readonly { bindingGroup: string; binding: string; domain: string; active: number; deferred: number; hold: number }[];
  readonly totals: { messages: number; active: number; deferred: number; hold: number };
}

/** What one member answers. */
export type ReplyBody =
  | { readonly ok: true; readonly output: string; readonly mailq?: MailqData }
  | { readonly ok: false; readonly code: string; readonly error: string };

export type ConsoleMessage =
  /** After every view change: the sender's node name, so a requester can name members that do not answer. */
  | { readonly type: 'hello'; readonly from: string; readonly node: string }
  /** A console command, for every member (target null) or one named member. */
  | { readonly type: 'request'; readonly from: string; readonly node: string; readonly id: number; readonly target: string | null; readonly argv: readonly string[] }
  /** Chunk `seq` of `of` of the reply to request `id` of member `to`. */
  | { readonly type: 'reply'; readonly from: string; readonly node: string; readonly to: string; readonly id: number; readonly seq: number; readonly of: number; readonly body: Buffer }
  /** The sender's queue summary (queue-summary.ts): when it changed, and after every view change. */
  | { readonly type: 'queues'; readonly from: string; readonly node: string; readonly summary: QueueSummary };

const KEY_RE = /^\d{1,10}:\d{1,10}$/;
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function mac(key: Buffer, rest: Uint8Array): Buffer {
  return crypto.createHmac('sha256', key).update(rest).digest();
}

export function encodeConsoleMessage(key: Buffer, m: ConsoleMessage): Buffer {
  let head: object;
  let body: Buffer | null = null;
  switch (m.type) {
    case 'hello':
      head = { t: 'H', from: m.from, node: m.node };
      break;
    case 'request':
      head = { t: 'Q', from: m.from, node: m.node, id: m.id, target: m.target, argv: m.argv };
      break;
    case 'reply':
      head = { t: 'R', from: m.from, node: m.node, to: m.to, id: m.id, seq: m.seq, of: m.of };
      body = m.body;
      break;
    case 'queues':
      head = { t: 'S', from: m.from, node: m.node };
      body = Buffer.from(JSON.stringify(m.summary), 'utf8');
      break;
  }
  const rest = Buffer.concat([Buffer.from(`${JSON.stringify(head)}\n`, 'utf8'), body ?? Buffer.alloc(0)]);
  return Buffer.concat([mac(key, rest), rest]);
}

export type DecodedConsoleMessage = { readonly ok: true; readonly message: ConsoleMessage } | { readonly ok: false; readonly error: string };

/** Checks the HMAC, that the message names the member corosync delivered it from, and its fields. */
export function decodeConsoleMessage(key: Buffer, buf: Uint8Array, sender: string): DecodedConsoleMessage {
  if (buf.length < MAC_BYTES + 2) return { ok: false, error: 'message too short' };
  if (buf.length > MAC_BYTES + MAX_HEADER + CHUNK_BYTES) return { ok: false, error: `message of ${buf.length} bytes is too large` };
  const rest = buf.subarray(MAC_BYTES);
  if (!crypto.timingSafeEqual(Buffer.from(buf.buffer, buf.byteOffset, MAC_BYTES), mac(key, rest))) {
    return { ok: false, error: 'HMAC does not match (another Cluster_Secret, or forged)' };
  }
  const nl = rest.indexOf(0x0a);
  if (nl < 0 || nl > MAX_HEADER) return { ok: false, error: 'message has no header line' };
  let h: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(rest.buffer, rest.byteOffset, nl).toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, error: 'header is not an object' };
    h = parsed as Record<string, unknown>;
  } catch {
    return { ok: false, error: 'header is not JSON' };
  }
  // A member replaying another's message (with the secret) would still be caught here.
  if (typeof h.from !== 'string' || !KEY_RE.test(h.from) || h.from !== sender) return { ok: false, error: `header names sender ${String(h.from).slice(0, 24)}, delivered from ${sender}` };
  if (!isNodeName(h.node)) return { ok: false, error: 'header has no valid node name' };
  const body = rest.subarray(nl + 1);
  switch (h.t) {
    case 'H':
      return body.length === 0 ? { ok: true, message: { type: 'hello', from: h.from, node: h.node } } : { ok: false, error: 'hello has a body' };
    case 'Q': {
      const argv = h.argv;
      if (!Array.isArray(argv) || argv.length === 0 || argv.length > MAX_ARGV || !argv.every((a) => typeof a === 'string' && Buffer.byteLength(a) <= MAX_ARG_BYTES)) {
        return { ok: false, error: 'request needs an argv of strings' };
      }
      if (!isId(h.id) || (h.target !== null && !isNodeName(h.target)) || body.length !== 0) return { ok: false, error: 'request needs an id and a target (null or a node name)' };
      return { ok: true, message: { type: 'request', from: h.from, node: h.node, id: h.id, target: h.target as string | null, argv: argv as string[] } };
    }
    case 'R': {
      if (typeof h.to !== 'string' || !KEY_RE.test(h.to) || !isId(h.id) || !isId(h.seq) || !isId(h.of)) return { ok: false, error: 'reply needs to, id, seq and of' };
      if (h.of < 1 || h.of > MAX_CHUNKS || h.seq >= h.of) return { ok: false, error: `reply chunk ${h.seq} of ${h.of} is out of range` };
      if (body.length > CHUNK_BYTES) return { ok: false, error: 'reply chunk too large' };
      return { ok: true, message: { type: 'reply', from: h.from, node: h.node, to: h.to, id: h.id, seq: h.seq, of: h.of, body: Buffer.from(body) } };
    }
    case 'S': {
      if (body.length > MAX_SUMMARY_BYTES) return { ok: false, error: 'queue summary too large' };
      let v: unknown;
      try {
        v = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.length).toString('utf8'));
      } catch {
        return { ok: false, error: 'queue summary is not JSON' };
      }
      const summary = decodeQueueSummary(v);
      if (summary === null) return { ok: false, error: 'queue summary is malformed' };
      if (summary.node !== h.node) return { ok: false, error: 'queue summary names another node than its sender' };
      return { ok: true, message: { type: 'queues', from: h.from, node: h.node, summary } };
    }
    default:
      return { ok: false, error: `unknown message type ${JSON.stringify(h.t)?.slice(0, 20)}` };
  }
}

/** A reply's body in chunks of at most `chunk` bytes; an output too long for MAX_REPLY_BYTES is cut, and says so. */
export function replyChunks(body: ReplyBody, chunk = CHUNK_BYTES, max = MAX_REPLY_BYTES): Buffer[] {
  let bytes = Buffer.from(JSON.stringify(body), 'utf8');
  if (bytes.length > max && body.ok) {
    // Cut the text (never the JSON): keep what fits, beside a note, without the structured part.
    const note = `\n[output cut: over ${max} bytes]\n`;
    let keep = Math.max(0, max - 1024 - Buffer.byteLength(note));
    for (;;) {
      const output = Buffer.from(body.output, 'utf8').subarray(0, keep).toString('utf8').replace(/\uFFFD$/, '') + note;
      bytes = Buffer.from(JSON.stringify({ ok: true, output }), 'utf8');
      if (bytes.length <= max || keep === 0) break;
      keep = Math.max(0, keep - (bytes.length - max) - 16);
    }
  }
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length || out.length === 0; i += chunk) out.push(bytes.subarray(i, i + chunk));
  return out;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isShort = (v: unknown): v is string => typeof v === 'string' && v.length <= 1024;

/** Parses a reassembled reply body; null when it is not one. */
export function decodeReplyBody(buf: Buffer): ReplyBody | null {
  if (buf.length > MAX_REPLY_BYTES) return null;
  let v: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(buf.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
    v = parsed as Record<string, unknown>;
  } catch {
    return null;
  }
  if (v.ok === false) return isShort(v.code) && typeof v.error === 'string' ? { ok: false, code: v.code, error: v.error } : null;
  if (v.ok !== true || typeof v.output !== 'string') return null;
  if (v.mailq === undefined) return { ok: true, output: v.output };
  const mailq = mailqData(v.mailq);
  return mailq === null ? null : { ok: true, output: v.output, mailq };
}

function mailqData(v: unknown): MailqData | null {
  if (typeof v !== 'object' || v === null) return null;
  const { rows, totals } = v as { rows?: unknown; totals?: Record<string, unknown> };
  if (!Array.isArray(rows) || rows.length > MAX_MAILQ_ROWS || typeof totals !== 'object' || totals === null) return null;
  if (!isCount(totals.messages) || !isCount(totals.active) || !isCount(totals.deferred) || !isCount(totals.hold)) return null;
  const out: MailqData['rows'][number][] = [];
  for (const r of rows as Record<string, unknown>[]) {
    if (typeof r !== 'object' || r === null) return null;
    if (!isShort(r.bindingGroup) || !isShort(r.binding) || !isShort(r.domain) || !isCount(r.active) || !isCount(r.deferred) || !isCount(r.hold)) return null;
    out.push({ bindingGroup: r.bindingGroup, binding: r.binding, domain: r.domain, active: r.active, deferred: r.deferred, hold: r.hold });
  }
  return { rows: out, totals: { messages: totals.messages, active: totals.active, deferred: totals.deferred, hold: totals.hold } };
}
