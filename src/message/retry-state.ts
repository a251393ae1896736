// The persisted retry state: the queue manager's per-message record in the spool (its "state"
// field), so that a restart resumes each part with its binding, recipients left, attempts, next
// attempt and hold. This module is its only definition, encoder and decoder. Pure; any thread.
import type { MoveMeta } from './envelope.js';
import { splitByDomain } from './recipients.js';

/** One part of the persisted retry state. */
export interface PersistedPart {
  /** Binding group and binding. */
  g: string;
  b: string;
  /** Recipients still to deliver. */
  r: string[];
  /** Attempts made, next attempt (ms since the epoch; 0: at once). */
  a: number;
  n: number;
  /** 1: held by the operator. */
  h?: 1;
}

export interface PersistedState {
  v: 1;
  p: PersistedPart[];
}

export function encodeState(s: PersistedState): Buffer {
  return Buffer.from(JSON.stringify(s), 'utf8');
}

/** Parses a spool state record; null when it is absent, not ours or malformed (the caller starts afresh). */
export function decodeState(buf: Buffer | null): PersistedState | null {
  if (buf === null) return null;
  try {
    const s = JSON.parse(buf.toString('utf8')) as Partial<PersistedState>;
    if (s.v !== 1 || !Array.isArray(s.p)) return null;
    const parts: PersistedPart[] = [];
    for (const p of s.p as unknown[]) {
      const q = p as Partial<PersistedPart>;
      if (typeof q.g !== 'string' || typeof q.b !== 'string' || !Array.isArray(q.r) || !q.r.every((x) => typeof x === 'string')) return null;
      if (typeof q.a !== 'number' || typeof q.n !== 'number') return null;
      parts.push({ g: q.g, b: q.b, r: q.r, a: q.a, n: q.n, ...(q.h === 1 ? { h: 1 as const } : {}) });
    }
    return { v: 1, p: parts };
  } catch {
    return null;
  }
}

/**
 * The retry state a moved message starts with on its new node: its recipients on the binding it
 * was assigned, with the attempts and next attempt it had. Null when it had made no attempt (it
 * then starts as new mail does).
 */
export function stateOfMove(meta: Pick<MoveMeta, 'attempts' | 'nextAttempt' | 'held'>, rcpt: string[], binding: { bindingGroup: string; binding: string }): PersistedState | null {
  const held = meta.held === true;
  if (meta.attempts <= 0 && meta.nextAttempt <= 0 && !held) return null;
  return { v: 1, p: splitByDomain(rcpt).map((r) => ({ g: binding.bindingGroup, b: binding.binding, r, a: meta.attempts, n: meta.nextAttempt, ...(held ? { h: 1 as const } : {}) })) };
}
