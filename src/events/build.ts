// Builders of the records made where a message or a session is, not where the emitter is: the
// reception payload a listener writes with its commit, the reception intake logs today, the
// rejection a listener worker sends the main thread. One small object each, nothing else (the
// listener's DATA path calls receptionPayload once per message). Pure; any thread.
import type { AcceptedMessage } from '../message/accepted.js';
import type { MoveMeta, SpoolEnvelope } from '../message/envelope.js';
import { EVENT_VERSION, type MmoveReceivedPayload, type NewEvent, type ReceptionPayload, type RejectionEvent } from './records.js';

/**
 * The reception payload of a message a listener is committing: its envelope and the bytes it wrote
 * (Received header and body, what the spool reports as its size). No queue id, no time, no node:
 * the journal's frame carries the id the commit assigns and the commit's time; decodeEvent(data,
 * { id, seq, time, node }) makes the whole record. The binding is chosen later, on the main thread.
 */
export function receptionPayload(env: SpoolEnvelope, size: number): ReceptionPayload {
  const p: ReceptionPayload = {
    v: EVENT_VERSION, type: 'reception', from: env.from, rcpt: env.rcpt, size, listener: env.listener, client: env.client, helo: env.helo, tls: env.tls,
  };
  const msgid = env.headers['message-id'];
  if (msgid !== undefined) p.msgid = msgid;
  if (env.user !== null) p.user = env.user;
  return p;
}

/**
 * The mmove_received payload of a moved message the #mmove receiver is committing (no id, time or
 * node, as receptionPayload): its binding is the one the sending node chose (intake may fall back
 * to its own policy when that binding is unknown here, and says so in the log).
 */
export function mmoveReceivedPayload(env: SpoolEnvelope, moved: MoveMeta, size: number): MmoveReceivedPayload {
  const p: MmoveReceivedPayload = {
    v: EVENT_VERSION, type: 'mmove_received', from: env.from, rcpt: env.rcpt, size, client: env.client, origin: moved.originNode,
    original: moved.originalId, hops: moved.hops, binding: `${moved.bindingGroup}/${moved.binding}`,
  };
  if (env.listener !== null) p.listener = env.listener;
  return p;
}

/** The reception record of an accepted message, as intake knows it (with the binding it chose). */
export function receptionOf(m: AcceptedMessage, binding: string): NewEvent {
  const e: NewEvent = { type: 'reception', id: m.id, from: m.from, rcpt: m.rcpt, size: m.size, listener: m.listener, client: m.client, binding };
  const msgid = m.headers['message-id'];
  if (msgid !== undefined) e.msgid = msgid;
  return e;
}

/** A moved message's record on the node that received it. */
export function mmoveReceivedOf(m: AcceptedMessage, moved: MoveMeta, binding: string): NewEvent {
  const e: NewEvent = {
    type: 'mmove_received', id: m.id, from: m.from, rcpt: m.rcpt, size: m.size, client: m.client, origin: moved.originNode,
    original: moved.originalId, hops: moved.hops, binding,
  };
  if (m.listener !== null) e.listener = m.listener;
  return e;
}

const ENHANCED = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/;

/** What a session knew when it refused something (smtp-connection.ts hands this over). */
export interface RefusedSession {
  listener: string;
  client: string;
  local: string;
  /** The command line refused (null before the first: a refusal at connect). */
  command: Buffer | null;
  from: string | null;
  rcpt: readonly { address: string }[];
}

/**
 * The rejection record of one 4xx/5xx reply: the command's verb as its stage, the sender and the
 * recipient it named (RCPT), or every recipient (the end of DATA). Built only when a reply is a
 * refusal, never for a 2xx/3xx.
 */
export function rejectionOf(s: RefusedSession, code: number, text: string, time = Date.now()): NewEvent & { type: 'rejection' } {
  const m = ENHANCED.exec(text);
  const enhanced = m === null ? null : m[1]!;
  const e: Omit<RejectionEvent, 'v' | 'node' | 'seq'> = {
    type: 'rejection', time, listener: s.listener, client: s.client, local: s.local, stage: 'CONNECT', code, enhanced, reply: `${code} ${text}`,
  };
  if (s.command !== null) {
    const line = s.command.toString('latin1', 0, Math.min(s.command.length, 1024));
    const sp = line.search(/[ :]/);
    e.stage = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    if (e.stage === 'RCPT') {
      const a = /<([^>]*)>/.exec(line);
      if (a !== null) e.rcpt = [a[1]!];
    } else if (e.stage === 'MAIL') {
      const a = /<([^>]*)>/.exec(line);
      if (a !== null) e.from = a[1]!;
    } else if (e.stage === 'DATA' || e.stage === 'BDAT') {
      e.rcpt = s.rcpt.map((r) => r.address);
    }
  }
  if (e.from === undefined && s.from !== null) e.from = s.from;
  return e;
}

/** A recipient's result as delivery reports it (src/delivery/results.ts RecipientResult). */
export interface ResultLike {
  rcpt: string;
  code: number;
  enhanced: string | null;
  reply: string;
  origin: 'remote' | 'local';
  remoteHost: string | null;
  remoteAddress: string | null;
}

/** What a delivery record shares across a message's recipients (one object per message, not per recipient). */
export interface AttemptBase {
  time: number;
  id: string;
  from: string;
  binding: string;
  source: string | null;
  size: number;
  attempt: number;
}

/** The delivery, transient or permanent failure record of one recipient's result (the queue's
 *  result path: one object per recipient, nothing else). A failure's bounce class and its "N Name". */
export function attemptOf(type: 'delivery' | 'transient_failure' | 'permanent_failure', a: AttemptBase, r: ResultLike, cls?: number, className?: string): NewEvent {
  const e = {
    type, time: a.time, id: a.id, from: a.from, rcpt: r.rcpt, binding: a.binding, source: a.source, mx: r.remoteHost, ip: r.remoteAddress,
    reply: r.reply, code: r.code, enhanced: r.enhanced, origin: r.origin, attempt: a.attempt, size: a.size,
  } as NewEvent & { class?: number; bounce_class?: string };
  if (cls !== undefined) {
    e.class = cls;
    if (className !== undefined) e.bounce_class = className;
  }
  return e;
}
