// The spool envelope: what is stored beside each message body (who sent it to whom, from where,
// and for a moved message its #mmove metadata). This module is its only definition, encoder and
// decoder: the listener, the #mmove receiver and the bounce writer encode with it, recovery
// decodes with it. Adding a field touches this file. Pure; any thread.

/** #mmove metadata of a message moved here from another node (ECmmove2 MAIL parameters). */
export interface MoveMeta {
  /** The binding the sender's policy assigned; the receiver queues the message on it. */
  binding: string;
  bindingGroup: string;
  /** The queue id on the sending node: the key of duplicate suppression on the receiver. */
  originalId: string;
  /** The node that first accepted the message (kept over several moves). */
  originNode: string;
  /** Milliseconds since the epoch of the first acceptance (expiry counts from it). */
  arrival: number;
  /** Delivery attempts made so far. */
  attempts: number;
  /** Milliseconds since the epoch of the next attempt; 0: as soon as possible. */
  nextAttempt: number;
  /** Moves the message made, including the one that brought it here. */
  hops: number;
  /** Held by the operator on the sending node (a drained node's held mail): held here too. */
  held?: boolean;
}

/** Version 1 of the envelope record (JSON in the spool's envelope field). */
export interface SpoolEnvelope {
  v: 1;
  /** MAIL FROM; '' for the null sender. */
  from: string;
  rcpt: string[];
  /** Milliseconds since the epoch when the listener took the message (the first node's, if moved). */
  arrival: number;
  /** The client's address ('' for mail vipmta made itself, such as a DSN). */
  client: string;
  helo: string;
  /** The authenticated user, or null. */
  user: string | null;
  tls: boolean;
  /** The listener's name ("ip:port"), or null for mail vipmta made itself. */
  listener: string | null;
  /** Header fields captured for policy, lower-case names (x-binding, message-id). */
  headers: Record<string, string>;
  /** Set when the message came over #mmove. */
  moved?: MoveMeta;
  /** The #mmove peer it came from: with moved.originalId, the duplicate key a restart re-learns. */
  mmovePeer?: string;
  /** The queue id of the message this DSN reports on. */
  dsnFor?: string;
}

export function encodeEnvelope(e: SpoolEnvelope): Buffer {
  return Buffer.from(JSON.stringify(e), 'utf8');
}

/**
 * Decodes an envelope record (buf[start, end): recovery hands many envelopes in one buffer; what
 * it returns holds strings, never a view of buf); null when it is not JSON or not an object (the
 * message is then kept in the spool, not queued). Fields of the wrong type take their empty value,
 * as version 1 has always been read; a `moved` that is not complete metadata is dropped.
 */
export function decodeEnvelope(buf: Buffer, start = 0, end = buf.length): SpoolEnvelope | null {
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString('utf8', start, end));
  } catch {
    return null;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const e = raw as Record<string, unknown>;
  const env: SpoolEnvelope = {
    v: 1,
    from: str(e.from),
    rcpt: Array.isArray(e.rcpt) ? e.rcpt.filter((x): x is string => typeof x === 'string') : [],
    arrival: typeof e.arrival === 'number' ? e.arrival : 0,
    client: str(e.client),
    helo: str(e.helo),
    user: typeof e.user === 'string' ? e.user : null,
    tls: e.tls === true,
    listener: typeof e.listener === 'string' ? e.listener : null,
    headers: typeof e.headers === 'object' && e.headers !== null && !Array.isArray(e.headers) ? stringRecord(e.headers as Record<string, unknown>) : {},
  };
  if (isMoveMeta(e.moved)) env.moved = e.moved;
  if (typeof e.mmovePeer === 'string') env.mmovePeer = e.mmovePeer;
  if (typeof e.dsnFor === 'string') env.dsnFor = e.dsnFor;
  return env;
}

// Module-level, and for-in rather than Object.entries: recovery decodes a million envelopes in a
// row, and a closure plus an array per header field were a tenth of decodeEnvelope's time.
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function stringRecord(r: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in r) {
    const v = r[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

export function isMoveMeta(v: unknown): v is MoveMeta {
  if (v === null || typeof v !== 'object') return false;
  const m = v as Record<string, unknown>;
  return typeof m.binding === 'string' && typeof m.bindingGroup === 'string' && typeof m.originalId === 'string'
    && typeof m.originNode === 'string' && typeof m.arrival === 'number' && typeof m.attempts === 'number'
    && typeof m.nextAttempt === 'number' && typeof m.hops === 'number';
}
