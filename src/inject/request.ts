// The HTTP injection request, KumoMTA's shape (POST /api/inject/v1): parsed from the body's JSON
// and checked field by field, so a bad request is refused whole with the field it names (400)
// before anything is built or spooled. Pure; runs on a worker thread, O(size of the request).
import Mustache from 'mustache';

export interface InjectAttachment {
  data: Buffer;
  contentType: string;
  fileName: string | null;
  contentId: string | null;
}

/** `content` as parts, built into MIME per recipient (compose.ts). */
export interface InjectParts {
  from: { email: string; name: string | null };
  subject: string;
  text: string | null;
  html: string | null;
  /** Header fields to add, in the order given; templates like the rest. */
  headers: [string, string][];
  replyTo: string | null;
  attachments: InjectAttachment[];
}

export interface InjectRecipient {
  email: string;
  name: string | null;
  substitutions: Record<string, unknown>;
}

export interface InjectRequest {
  envelopeSender: string;
  /** A whole RFC 5322 message (a template), or parts. */
  content: string | InjectParts;
  recipients: InjectRecipient[];
  substitutions: Record<string, unknown>;
  /** A binding or binding group (vipmta's addition; the token must allow it). */
  binding: string | null;
}

/** Why a request is refused whole: the HTTP status and the field it names. */
export class RequestError extends Error {
  constructor(readonly status: 400 | 413, readonly field: string, message: string) {
    super(message);
  }
}

const bad = (field: string, what: string): RequestError => new RequestError(400, field, `${field}: ${what}`);
/** RFC 5322 field-name: printable US-ASCII but ":". */
const FIELD_NAME = /^[!-9;-~]+$/;
const CRLF = /[\r\n]/;
/** Headers the builder sets itself from the request's other fields. */
const OWN_HEADERS = new Set(['from', 'to', 'subject', 'reply-to', 'mime-version', 'content-type', 'content-transfer-encoding']);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function str(v: unknown, field: string, optional: true): string | null;
function str(v: unknown, field: string, optional?: false): string;
function str(v: unknown, field: string, optional = false): string | null {
  if (v === undefined || v === null) {
    if (optional) return null;
    throw bad(field, 'is required');
  }
  if (typeof v !== 'string') throw bad(field, 'must be a string');
  return v;
}

function data(v: unknown, field: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw bad(field, 'must be an object');
  return v;
}

/** A template that mustache cannot parse is the request's fault: refused before any recipient. */
function template(t: string, field: string): string {
  try {
    Mustache.parse(t);
  } catch (err) {
    throw bad(field, `is not a valid template (${(err as Error).message})`);
  }
  return t;
}

function address(v: unknown, field: string, allowEmpty: boolean): string {
  const a = str(v, field);
  if (a === '' && allowEmpty) return a;
  if (CRLF.test(a) || /[\s<>]/.test(a) || !/^[^@]+@[^@]+$/.test(a)) throw bad(field, `"${a.slice(0, 80)}" is not an address (local@domain)`);
  return a;
}

function parts(c: Record<string, unknown>): InjectParts {
  let from: InjectParts['from'];
  if (typeof c.from === 'string') from = { email: address(c.from, 'content.from', false), name: null };
  else if (isObject(c.from)) from = { email: address(c.from.email, 'content.from.email', false), name: str(c.from.name, 'content.from.name', true) };
  else throw bad('content.from', 'is required (an address, or { email, name })');
  const subject = template(str(c.subject, 'content.subject'), 'content.subject');
  const text = str(c.text_body, 'content.text_body', true);
  const html = str(c.html_body, 'content.html_body', true);
  if (text === null && html === null) throw bad('content.text_body', 'text_body or html_body is required');
  if (text !== null) template(text, 'content.text_body');
  if (html !== null) template(html, 'content.html_body');
  const headers: [string, string][] = [];
  for (const [k, v] of Object.entries(data(c.headers, 'content.headers'))) {
    const field = `content.headers.${k}`;
    if (!FIELD_NAME.test(k)) throw bad(field, 'is not a header field name');
    if (OWN_HEADERS.has(k.toLowerCase())) throw bad(field, 'is set from the request\'s other fields');
    const value = str(v, field);
    if (CRLF.test(value)) throw bad(field, 'must be one line (the builder folds long values)');
    headers.push([k, template(value, field)]);
  }
  const replyTo = c.reply_to === undefined || c.reply_to === null ? null
    : typeof c.reply_to === 'string' ? address(c.reply_to, 'content.reply_to', false)
    : isObject(c.reply_to) ? address(c.reply_to.email, 'content.reply_to.email', false)
    : (() => { throw bad('content.reply_to', 'must be an address or { email, name }'); })();
  const attachments: InjectAttachment[] = [];
  if (c.attachments !== undefined && c.attachments !== null) {
    if (!Array.isArray(c.attachments)) throw bad('content.attachments', 'must be an array');
    c.attachments.forEach((a: unknown, i) => {
      const f = `content.attachments[${i}]`;
      if (!isObject(a)) throw bad(f, 'must be an object');
      const raw = str(a.data, `${f}.data`);
      // Only the bytes given: never a path or a URL (MailComposer would read files or fetch).
      const base64 = a.base64 === true;
      if (base64 && !/^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/.test(raw)) throw bad(`${f}.data`, 'is not base64');
      const type = str(a.content_type, `${f}.content_type`, true) ?? 'application/octet-stream';
      if (CRLF.test(type) || !/^[\w.+-]+\/[\w.+-]+/.test(type)) throw bad(`${f}.content_type`, 'is not a media type');
      attachments.push({
        data: Buffer.from(raw, base64 ? 'base64' : 'utf8'), contentType: type,
        fileName: str(a.file_name, `${f}.file_name`, true), contentId: str(a.content_id, `${f}.content_id`, true),
      });
    });
  }
  return { from, subject, text, html, headers, replyTo, attachments };
}

/**
 * The request in `body`, or a RequestError: 400 naming the field (the JSON itself is `body`), 413
 * for more recipients than `maxRecipients`. Recipients' addresses are checked per recipient later
 * (a bad one fails alone, in failed_recipients), not here.
 */
export function parseRequest(body: Buffer, maxRecipients: number): InjectRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw bad('body', `is not JSON (${(err as Error).message})`);
  }
  if (!isObject(raw)) throw bad('body', 'must be a JSON object');
  const envelopeSender = address(raw.envelope_sender, 'envelope_sender', true);
  const c = raw.content;
  const content = typeof c === 'string' ? template(c, 'content') : isObject(c) ? parts(c) : (() => { throw bad('content', 'is required: a message (string) or { from, subject, text_body, html_body, headers, attachments }'); })();
  if (!Array.isArray(raw.recipients) || raw.recipients.length === 0) throw bad('recipients', 'must be a non-empty array of { email, name, substitutions }');
  if (raw.recipients.length > maxRecipients) throw new RequestError(413, 'recipients', `recipients: ${raw.recipients.length} is more than this server takes in one request (${maxRecipients}); split the request`);
  const recipients = raw.recipients.map((r: unknown, i): InjectRecipient => {
    const f = `recipients[${i}]`;
    if (!isObject(r)) throw bad(f, 'must be an object { email, name, substitutions }');
    return { email: str(r.email, `${f}.email`), name: str(r.name, `${f}.name`, true), substitutions: data(r.substitutions, `${f}.substitutions`) };
  });
  const binding = str(raw.binding, 'binding', true);
  if (binding !== null && !/^[^\s]+$/.test(binding)) throw bad('binding', 'is not a binding name');
  return { envelopeSender, content, recipients, substitutions: data(raw.substitutions, 'substitutions'), binding };
}

/** Whether a recipient's address can be taken as is: ASCII (no SMTPUTF8 over HTTP), one @, no spaces. */
export function recipientProblem(email: string): string | null {
  if (/[^\x21-\x7e]/.test(email)) return 'not an ASCII address without spaces';
  if (!/^[^@<>]+@[^@<>]+$/.test(email)) return 'not an address (local@domain)';
  return null;
}
