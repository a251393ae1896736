// The config group's messages (config-group.ts, issue 16): PROPOSE a ChangeSet, each member's VOTE,
// the proposer's ABORT, and every member's STATE. Each carries an HMAC-SHA256 keyed from
// Cluster_Secret (its own key, not the console's nor #mmove's), its sender's CPG member key (which
// must be the one corosync delivered it from) and a sequence number that only grows per sender (the
// group refuses a replay). Main thread, pure. Peers are untrusted: decode validates, never throws.

import crypto from 'node:crypto';
import type { ChangeSet, MemberConfigState } from '../config/repo/types.js';
import { ErrorCode, VipError } from '../errors.js';
import { isNodeName } from './state.js';

const KEY_SALT = Buffer.from('vipmta config group', 'utf8');
const KEY_INFO = Buffer.from('vipmta config HMAC-SHA256 v1', 'utf8');
const MAC_BYTES = 32;
/** A PROPOSE's whole encoded size: CPG carries about 1 MiB, and a configuration is text. */
export const MAX_PROPOSE_BYTES = 512 * 1024;
/** Any other message (a vote's errors, a state's drift list). */
export const MAX_MESSAGE_BYTES = 128 * 1024;
const MAX_FILES = 1000;
const MAX_ERRORS = 200;
const MAX_TEXT = 4096;

/** The config group's HMAC key: HKDF-SHA256 over Cluster_Secret. */
export function configKey(secret: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', Buffer.from(secret, 'utf8'), KEY_SALT, KEY_INFO, 32));
}

/** What a member says of itself: MemberConfigState plus what the catch-up and quorum rules read. */
export interface StateBody extends MemberConfigState {
  /** Commits in its repository's history (0: empty). History is linear, so more is newer. */
  readonly height: number;
  /** Its partition is quorate, as corosync told it for the current ring. */
  readonly quorate: boolean;
}

interface Common {
  /** The sender's CPG member key ("nodeid:pid"). */
  readonly from: string;
  readonly node: string;
  /** Grows with every message of one sender (replays are refused). */
  readonly seq: number;
}

export type ConfigMessage =
  | (Common & { readonly type: 'propose'; readonly id: string; readonly cs: ChangeSet })
  | (Common & { readonly type: 'vote'; readonly id: string; readonly ok: boolean; readonly errors: readonly string[] })
  | (Common & { readonly type: 'abort'; readonly id: string; readonly why: string })
  | (Common & { readonly type: 'state'; readonly state: StateBody });

const KEY_RE = /^\d{1,10}:\d{1,10}$/;
const ID_RE = /^\d{1,10}:\d{1,10}#\d{1,15}$/;
const REV_RE = /^([0-9a-f]{40}|[0-9a-f]{64})?$/;
const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isText = (v: unknown, max = MAX_TEXT): v is string => typeof v === 'string' && v.length <= max;
const isTexts = (v: unknown, max: number): v is string[] => Array.isArray(v) && v.length <= max && v.every((x) => isText(x));

function mac(key: Buffer, rest: Uint8Array): Buffer {
  return crypto.createHmac('sha256', key).update(rest).digest();
}

/** Encodes and signs; a PROPOSE over MAX_PROPOSE_BYTES throws CONFIG_REFUSED saying so. */
export function encodeConfigMessage(key: Buffer, m: ConfigMessage): Buffer {
  const base = { from: m.from, node: m.node, seq: m.seq };
  let head: object;
  switch (m.type) {
    case 'propose':
      head = {
        t: 'P', ...base, id: m.id,
        cs: { base: m.cs.base, message: m.cs.message, author: m.cs.author, time: m.cs.time, files: m.cs.files.map((f) => ({ path: f.path, content: f.content === null ? null : f.content.toString('base64') })) },
      };
      break;
    case 'vote':
      head = { t: 'V', ...base, id: m.id, ok: m.ok, errors: m.errors };
      break;
    case 'abort':
      head = { t: 'A', ...base, id: m.id, why: m.why };
      break;
    case 'state':
      head = { t: 'S', ...base, state: m.state };
      break;
  }
  const rest = Buffer.from(JSON.stringify(head), 'utf8');
  const limit = m.type === 'propose' ? MAX_PROPOSE_BYTES : MAX_MESSAGE_BYTES;
  if (rest.length + MAC_BYTES > limit) {
    throw new VipError(ErrorCode.CONFIG_REFUSED, m.type === 'propose'
      ? `the change is ${rest.length + MAC_BYTES} bytes encoded, over the ${MAX_PROPOSE_BYTES / 1024} KiB a cluster commit carries: commit fewer or smaller files at a time`
      : `a config group message of ${rest.length + MAC_BYTES} bytes is over ${MAX_MESSAGE_BYTES} bytes`);
  }
  return Buffer.concat([mac(key, rest), rest]);
}

export type DecodedConfigMessage = { readonly ok: true; readonly message: ConfigMessage } | { readonly ok: false; readonly error: string };

function decodeChangeSet(v: unknown): ChangeSet | null {
  if (typeof v !== 'object' || v === null) return null;
  const c = v as Record<string, unknown>;
  if (typeof c.base !== 'string' || !REV_RE.test(c.base) || !isText(c.message, 64 * 1024) || !isText(c.author, 1024) || !isSeq(c.time)) return null;
  if (!Array.isArray(c.files) || c.files.length > MAX_FILES) return null;
  const files: { path: string; content: Buffer | null }[] = [];
  for (const f of c.files as unknown[]) {
    if (typeof f !== 'object' || f === null) return null;
    const r = f as Record<string, unknown>;
    if (!isText(r.path, 1024) || r.path === '' || r.path.startsWith('/') || r.path.split('/').some((p) => p === '..' || p === '.' || p === '')) return null;
    if (r.content !== null && (typeof r.content !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(r.content))) return null;
    files.push({ path: r.path, content: r.content === null ? null : Buffer.from(r.content as string, 'base64') });
  }
  return { base: c.base, message: c.message, author: c.author, time: c.time, files };
}

function decodeState(v: unknown, node: string): StateBody | null {
  if (typeof v !== 'object' || v === null) return null;
  const s = v as Record<string, unknown>;
  if (s.node !== node || typeof s.head !== 'string' || !REV_RE.test(s.head) || typeof s.running !== 'string' || !REV_RE.test(s.running)) return null;
  if (typeof s.autoApply !== 'boolean' || typeof s.quorate !== 'boolean' || !isSeq(s.height) || !isTexts(s.drift, MAX_FILES)) return null;
  return { node, head: s.head, running: s.running, autoApply: s.autoApply, drift: s.drift, height: s.height, quorate: s.quorate };
}

/** Checks the size, the HMAC, that the message names the member corosync delivered it from, and its fields. */
export function decodeConfigMessage(key: Buffer, buf: Uint8Array, sender: string): DecodedConfigMessage {
  if (buf.length < MAC_BYTES + 2) return { ok: false, error: 'message too short' };
  if (buf.length > MAX_PROPOSE_BYTES) return { ok: false, error: `message of ${buf.length} bytes is too large` };
  const rest = buf.subarray(MAC_BYTES);
  if (!crypto.timingSafeEqual(Buffer.from(buf.buffer, buf.byteOffset, MAC_BYTES), mac(key, rest))) {
    return { ok: false, error: 'HMAC does not match (another Cluster_Secret, or forged)' };
  }
  let h: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(rest.buffer, rest.byteOffset, rest.length).toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, error: 'message is not an object' };
    h = parsed as Record<string, unknown>;
  } catch {
    return { ok: false, error: 'message is not JSON' };
  }
  if (typeof h.from !== 'string' || !KEY_RE.test(h.from) || h.from !== sender) return { ok: false, error: `message names sender ${String(h.from).slice(0, 24)}, delivered from ${sender}` };
  if (!isNodeName(h.node)) return { ok: false, error: 'message has no valid node name' };
  if (!isSeq(h.seq)) return { ok: false, error: 'message has no sequence number' };
  if (h.t !== 'P' && buf.length > MAX_MESSAGE_BYTES) return { ok: false, error: `message of ${buf.length} bytes is too large` };
  const base = { from: h.from, node: h.node, seq: h.seq };
  const idOk = typeof h.id === 'string' && ID_RE.test(h.id);
  switch (h.t) {
    case 'P': {
      const cs = decodeChangeSet(h.cs);
      if (!idOk || cs === null) return { ok: false, error: 'propose needs an id and a well-formed change' };
      return { ok: true, message: { type: 'propose', ...base, id: h.id as string, cs } };
    }
    case 'V':
      if (!idOk || typeof h.ok !== 'boolean' || !isTexts(h.errors, MAX_ERRORS)) return { ok: false, error: 'vote needs an id, ok and errors' };
      return { ok: true, message: { type: 'vote', ...base, id: h.id as string, ok: h.ok, errors: h.errors } };
    case 'A':
      if (!idOk || !isText(h.why)) return { ok: false, error: 'abort needs an id and why' };
      return { ok: true, message: { type: 'abort', ...base, id: h.id as string, why: h.why } };
    case 'S': {
      const state = decodeState(h.state, h.node);
      if (state === null) return { ok: false, error: 'state is malformed or names another node' };
      return { ok: true, message: { type: 'state', ...base, state } };
    }
    default:
      return { ok: false, error: `unknown message type ${JSON.stringify(h.t)?.slice(0, 20)}` };
  }
}
