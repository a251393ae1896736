// Pure helpers of bench/failover.ts: the probe's record format, "time to the first answer from the new
// owner" after a fault, the address moves in a run, and the summary statistics. No I/O, no clock except
// nowMs(); unit-tested in test/unit/failover-analysis.test.ts.

/** One connect attempt of the probe (bench/lib/failover-probe.ts), one JSON line each. */
export interface ProbeRecord {
  /** Attempt number, from 0. */
  i: number;
  /** Connect started (CLOCK_MONOTONIC, ms). */
  t0: number;
  /** TCP handshake completed (the SYN-ACK arrived), or null. */
  tc: number | null;
  /** Attempt ended (greeting read, error, or timeout). */
  te: number;
  /** 'ok' (greeting read), an errno code ('ECONNREFUSED', 'EHOSTUNREACH'), 'timeout', ... */
  r: string;
  /** Node named in the greeting when r is 'ok'. */
  n: string | null;
}

/** CLOCK_MONOTONIC in ms: the same clock in every process of the machine (process.hrtime). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function parseProbeLine(line: string): ProbeRecord | null {
  try {
    const v = JSON.parse(line) as Partial<ProbeRecord>;
    if (typeof v.i !== 'number' || typeof v.t0 !== 'number' || typeof v.te !== 'number' || typeof v.r !== 'string') return null;
    return { i: v.i, t0: v.t0, tc: typeof v.tc === 'number' ? v.tc : null, te: v.te, r: v.r, n: typeof v.n === 'string' ? v.n : null };
  } catch {
    return null;
  }
}

export interface FailoverResult {
  /** Node that answered first after the fault, other than the old owner. */
  newOwner: string;
  /** Fault to the completed handshake of the first connection the new owner answered, ms. */
  failoverMs: number;
  /** When that connection's attempt started, relative to the fault (<= failoverMs; SYN retransmits make it earlier). */
  attemptStartMs: number;
  /** Attempts started after the fault and before that answer that got no answer at all (timeout, unreachable). */
  unanswered: number;
  /** Attempts started after the fault that the old owner still answered (greeting). */
  oldOwnerAnswers: number;
  /** Attempts refused (RST) after the fault: a host that had the address but no listener. */
  refused: number;
}

/**
 * The first connection after `faultMs` that a node other than `oldOwner` answered (by completed
 * handshake time; the greeting says who it was), or null if there is none yet.
 */
export function firstAnswerFromNewOwner(records: readonly ProbeRecord[], faultMs: number, oldOwner: string): FailoverResult | null {
  let best: ProbeRecord | null = null;
  for (const r of records) {
    if (r.r !== 'ok' || r.n === null || r.n === oldOwner || r.tc === null || r.tc < faultMs) continue;
    if (best === null || r.tc < best.tc!) best = r;
  }
  if (best === null) return null;
  const until = best.tc!;
  let unanswered = 0;
  let oldOwnerAnswers = 0;
  let refused = 0;
  for (const r of records) {
    if (r.t0 < faultMs) continue;
    if (r.t0 < until && r.tc === null && r.r !== 'ECONNREFUSED') unanswered++;
    if (r.r === 'ECONNREFUSED') refused++;
    if (r.r === 'ok' && r.n === oldOwner) oldOwnerAnswers++;
  }
  return {
    newOwner: best.n!,
    failoverMs: until - faultMs,
    attemptStartMs: best.t0 - faultMs,
    unanswered,
    oldOwnerAnswers,
    refused,
  };
}

/** Changes of the answering node in a sequence of answered attempts (ordered by handshake time). */
export interface Move {
  atMs: number;
  from: string;
  to: string;
}

export function answerMoves(records: readonly ProbeRecord[]): Move[] {
  const answered = records.filter((r) => r.r === 'ok' && r.n !== null && r.tc !== null).sort((a, b) => a.tc! - b.tc!);
  const moves: Move[] = [];
  for (let k = 1; k < answered.length; k++) {
    const a = answered[k - 1]!;
    const b = answered[k]!;
    if (a.n !== b.n) moves.push({ atMs: b.tc!, from: a.n!, to: b.n! });
  }
  return moves;
}

export interface Summary {
  n: number;
  median: number;
  p90: number;
  max: number;
  min: number;
}

/** Nearest-rank percentiles (no interpolation: every figure is one measured value). */
export function summarize(values: readonly number[]): Summary | null {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const rank = (p: number): number => v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))]!;
  return { n: v.length, median: rank(50), p90: rank(90), max: v[v.length - 1]!, min: v[0]! };
}

/** A run of consecutive attempts (by start time) with the same outcome: the node that answered, or the error. */
export interface TimelineRun {
  what: string;
  count: number;
  /** Start of the run's first and last attempt, relative to `originMs`. */
  fromMs: number;
  toMs: number;
}

/** The attempts started in [fromMs, toMs] as runs of one outcome, times relative to `originMs`. */
export function timeline(records: readonly ProbeRecord[], originMs: number, fromMs: number, toMs: number): TimelineRun[] {
  const recs = records.filter((r) => r.t0 >= fromMs && r.t0 <= toMs).sort((a, b) => a.t0 - b.t0);
  const out: TimelineRun[] = [];
  for (const r of recs) {
    const what = r.r === 'ok' ? r.n ?? '?' : r.r;
    const t = Math.round(r.t0 - originMs);
    const last = out[out.length - 1];
    if (last !== undefined && last.what === what) {
      last.count++;
      last.toMs = t;
    } else {
      out.push({ what, count: 1, fromMs: t, toMs: t });
    }
  }
  return out;
}
