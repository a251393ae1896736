// What a delivery result means for one part: which recipients are done, which bounce (a 5xx, or
// the message expired: 4.4.7), and when the rest is tried again (backoff), or at once without an
// attempt counted when the binding left this node while the batch ran ('away'). A pure function
// of the part, its results, the queue's settings and a clock value: the manager applies it.
// Pure; any thread, never blocks.
import type { MessageResult, RecipientResult } from '../delivery/results.js';
import { classify, type BounceClass } from '../policy/bounce-class.js';
import { REPLIES } from '../smtp/replies.js';

/** Every expired recipient's bounce class: Momentum's 24 (Timeout), whatever the last reply was. */
const EXPIRED_CLASS: BounceClass = classify({ code: null, text: '', local: 'expired' });

/** Backoff stops doubling here (or at Retry_Interval if that is longer). */
const MAX_BACKOFF_MS = 4 * 3_600_000;

/** The part a result is about, as it was when its batch went out. */
export interface PartSnapshot {
  /** Its recipients, in order. */
  rcpts: readonly string[];
  /** Attempts made before this one. */
  attempts: number;
  /** Milliseconds since the epoch of the message's first acceptance (expiry counts from it). */
  arrival: number;
}

export interface OutcomeSettings {
  /** Retry_Interval and Message_Expiration of the part's queue, ms. */
  retryMs: number;
  expireMs: number;
  /** The part's binding still sends from this node (its route is 'local'). */
  local: boolean;
}

export interface Outcome {
  /** The results of the recipients that had one, in the part's order (for the log; `status`
   *  says what each means). */
  replies: RecipientResult[];
  /** Recipients delivered now. */
  delivered: number;
  /** Recipients bounced by a 5xx reply (first in `bounced`). */
  refused: number;
  /** Recipients that bounce now, with what their DSN reports: the 5xx ones, then the expired ones
   *  (enhanced 4.4.7, with the recipient's own reply or else the part's last one). */
  bounced: RecipientResult[];
  /** The recipients that expired (Message_Expiration), with the reply they had (null: none) and
   *  their bounce class (24, Timeout). */
  expired: { rcpt: string; reply: string | null; bounceClass: BounceClass }[];
  /** The attempt this was (attempts made before + 1), for the log. */
  attempt: number;
  /** What is left to deliver, and when; null when every recipient is done. `away`: the binding
   *  left this node and only our side failed, so no attempt is counted and it goes at once. */
  retry: { rcpts: string[]; attempts: number; next: number; away: boolean } | null;
}

/**
 * Decides what `result` (one message's results; undefined or a missing recipient: no result,
 * deferred) means for `part` at time `now`. `random` is the backoff's jitter source.
 */
export function outcomeOf(part: PartSnapshot, result: MessageResult | undefined, q: OutcomeSettings, now: number, random: () => number = Math.random): Outcome {
  const byRcpt = new Map<string, RecipientResult>();
  for (const r of result?.results ?? []) byRcpt.set(r.rcpt, r);
  const replies: RecipientResult[] = [];
  const deferred: string[] = [];
  const bounced: RecipientResult[] = [];
  let lastReply: RecipientResult | null = null;
  for (const rcpt of part.rcpts) {
    const r = byRcpt.get(rcpt);
    if (r === undefined) {
      deferred.push(rcpt);
      continue;
    }
    lastReply = r;
    replies.push(r);
    if (r.status === 'bounced') bounced.push(r);
    else if (r.status !== 'delivered') deferred.push(rcpt);
  }
  const refused = bounced.length;
  const delivered = part.rcpts.length - deferred.length - refused;
  const attempts = part.attempts + 1;
  const out: Outcome = { replies, delivered, refused, bounced, expired: [], attempt: attempts, retry: null };
  if (deferred.length === 0) return out;

  if (now - part.arrival >= q.expireMs) {
    // Expired (Message_Expiration): what is left bounces with 4.4.7 and the last reply.
    for (const rcpt of deferred) {
      const r = byRcpt.get(rcpt) ?? lastReply;
      bounced.push({
        rcpt, status: 'bounced', code: r?.code ?? 0, enhanced: REPLIES.messageExpired.enhanced, reply: r?.reply ?? '', origin: r?.origin ?? 'local',
        remoteHost: r?.remoteHost ?? null, remoteAddress: r?.remoteAddress ?? null, bounceClass: EXPIRED_CLASS,
      });
      out.expired.push({ rcpt, reply: r?.reply ?? null, bounceClass: EXPIRED_CLASS });
    }
    return out;
  }
  // The binding left this node while the batch ran (its address moved; the deliveries from it
  // were cut). Our own failures then say nothing about the destination: no attempt is counted
  // and the part goes at once to where the binding is now. A result the engine marked `cut` says
  // so itself: it can come back before the route of the binding has been looked up again.
  const away = (!q.local || result?.cut === true) && deferred.every((r) => (byRcpt.get(r)?.origin ?? 'local') === 'local');
  out.retry = away
    ? { rcpts: deferred, attempts: part.attempts, next: 0, away }
    : { rcpts: deferred, attempts: Math.min(attempts, 0xffff), next: now + backoff(q.retryMs, attempts, random), away };
  return out;
}

/** Retry_Interval doubled per attempt (1x, 2x, 4x, ...), capped at 4 h (or the interval if longer),
 *  plus up to 10% jitter so a queue deferred at once does not come back all at once. */
export function backoff(retryMs: number, attempts: number, random: () => number = Math.random): number {
  const base = Math.max(1, retryMs);
  const exp = base * 2 ** Math.min(30, Math.max(0, attempts - 1));
  const capped = Math.min(exp, Math.max(base, MAX_BACKOFF_MS));
  return Math.round(capped * (1 + 0.1 * random()));
}
