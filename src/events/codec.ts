// Event records to bytes and back: compact JSON, one record per buffer (what a journal frame holds),
// and the decoder that checks every field against the schema's table (records.ts). A journal frame
// carries seq, time and an optional queue id beside the payload; the decoder takes them, so a
// reception payload built before its commit (no id yet) decodes to a whole record. Pure; any thread.
import { ErrorCode, VipError } from '../errors.js';
import { EVENT_ENUMS, EVENT_FIELDS, EVENT_VERSION, isEventType, type EventPayload, type EventRecord, type FieldKind } from './records.js';

/** What a journal frame knows of its payload. */
export interface FrameContext {
  /** The queue id the frame carries (the spool assigns a reception's at commit). */
  id?: string;
  seq?: number;
  /** The frame's time, ms since the epoch: used when the payload has none. */
  time?: number;
  /** The node whose journal it is: used when the payload has none. */
  node?: string;
}

/** One record as one buffer: JSON, no spaces, fields in the order the record has them. */
export function encodeEvent(r: EventRecord | EventPayload): Buffer {
  return Buffer.from(JSON.stringify(r), 'utf8');
}

/** What the emitter hands a sink: the payload, and the queue id beside it for the journal's frame. */
export function eventFrame(r: EventRecord | EventPayload): { id?: string; data: Buffer } {
  const id = (r as { id?: unknown }).id;
  return typeof id === 'string' ? { id, data: encodeEvent(r) } : { data: encodeEvent(r) };
}

function invalid(why: string): VipError {
  return new VipError(ErrorCode.EVENT_INVALID, `event record: ${why}`);
}

/**
 * Decodes and validates one record. Throws VipError ERR_EVENT_UNKNOWN for a type this version does
 * not know or a newer `v` (a reader may pass those on as raw bytes), ERR_EVENT_INVALID for anything
 * else wrong (not JSON, a missing field, a field of the wrong kind, an id that differs from the
 * frame's). Fields the schema does not list are kept: a newer writer may add optional ones.
 */
export function decodeEvent(data: Buffer | string, ctx: FrameContext = {}): EventRecord {
  let o: unknown;
  try {
    o = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    throw invalid('not JSON');
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw invalid('not an object');
  const r = o as Record<string, unknown>;
  if (typeof r.v !== 'number' || !Number.isInteger(r.v) || r.v < 1) throw invalid('v must be a positive integer');
  if (r.v > EVENT_VERSION) throw new VipError(ErrorCode.EVENT_UNKNOWN, `event record: version ${r.v} is newer than ${EVENT_VERSION}`);
  if (!isEventType(r.type)) {
    if (typeof r.type === 'string') throw new VipError(ErrorCode.EVENT_UNKNOWN, `event record: unknown type "${r.type}"`);
    throw invalid('type must be a string');
  }
  if (ctx.id !== undefined) {
    if (r.id === undefined) r.id = ctx.id;
    else if (r.id !== ctx.id) throw invalid(`id "${String(r.id)}" differs from the frame's "${ctx.id}"`);
  }
  if (r.time === undefined && ctx.time !== undefined) r.time = ctx.time;
  if (r.node === undefined && ctx.node !== undefined) r.node = ctx.node;
  if (ctx.seq !== undefined) r.seq = ctx.seq;
  check(r, 'time', 'n');
  check(r, 'node', 's');
  check(r, 'seq', 'i?');
  const fields = EVENT_FIELDS[r.type];
  for (const name in fields) check(r, name, fields[name]!);
  const enums = EVENT_ENUMS[r.type];
  if (enums !== undefined) {
    for (const name in enums) {
      const v = r[name];
      if (v !== undefined && !enums[name]!.includes(v as string)) throw invalid(`${r.type}.${name} must be one of ${enums[name]!.join(', ')}`);
    }
  }
  return r as unknown as EventRecord;
}

/** Checks one field against its kind; throws ERR_EVENT_INVALID naming it. */
function check(r: Record<string, unknown>, name: string, kind: FieldKind): void {
  const v = r[name];
  const optional = kind.endsWith('?');
  if (v === undefined) {
    if (optional) return;
    throw invalid(`${String(r.type)}: ${name} is missing`);
  }
  const k = optional ? kind.slice(0, -1) : kind;
  if (k === 's|null' ? v === null || typeof v === 'string' : ok(k, v)) return;
  throw invalid(`${String(r.type)}: ${name} must be ${DESCRIBE[k]}`);
}

function ok(k: string, v: unknown): boolean {
  switch (k) {
    case 's':
      return typeof v === 'string';
    case 'n':
      return typeof v === 'number' && Number.isFinite(v);
    case 'i':
      return typeof v === 'number' && Number.isInteger(v) && v >= 0;
    case 'b':
      return typeof v === 'boolean';
    case 'ss':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    default:
      return false;
  }
}

const DESCRIBE: Record<string, string> = {
  s: 'a string', n: 'a number', i: 'an integer >= 0', b: 'true or false', ss: 'an array of strings', 's|null': 'a string or null',
};
