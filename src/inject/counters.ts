// HTTP injection's counts across the worker threads, for /metrics: requests answered per status,
// recipients accepted (durable) and refused. One BigInt64 slot each in a SharedArrayBuffer the main
// thread makes once and hands every worker in its settings, as the request count (limits.ts) is.
// Any thread; Atomics only, never blocks.

/** The statuses the server answers; anything else counts as "other". */
export const INJECT_STATUSES = [200, 400, 401, 403, 404, 405, 408, 413, 429, 503, 507] as const;
const OTHER = INJECT_STATUSES.length;
const ACCEPTED = OTHER + 1;
const FAILED = OTHER + 2;
const SLOTS = OTHER + 3;

export function newInjectCounters(): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOTS * BigInt64Array.BYTES_PER_ELEMENT);
}

export interface InjectCounts {
  /** Requests answered, by status ("200", ..., "other"). */
  readonly requests: Readonly<Record<string, number>>;
  /** Recipients whose message is on disk. */
  readonly accepted: number;
  /** Recipients refused (invalid, a full spool, a local error). */
  readonly failed: number;
}

export class InjectCounters {
  private readonly a: BigInt64Array;
  constructor(buf: SharedArrayBuffer) {
    this.a = new BigInt64Array(buf);
  }

  /** One request answered with `status` ("413 Payload Too Large" or 413). */
  answered(status: string | number): void {
    const code = typeof status === 'number' ? status : Number.parseInt(status, 10);
    const i = (INJECT_STATUSES as readonly number[]).indexOf(code);
    Atomics.add(this.a, i < 0 ? OTHER : i, 1n);
  }

  recipients(accepted: number, failed: number): void {
    if (accepted > 0) Atomics.add(this.a, ACCEPTED, BigInt(accepted));
    if (failed > 0) Atomics.add(this.a, FAILED, BigInt(failed));
  }
}

/** What every worker counted since the process started. */
export function readInjectCounters(buf: SharedArrayBuffer): InjectCounts {
  const a = new BigInt64Array(buf);
  const requests: Record<string, number> = {};
  INJECT_STATUSES.forEach((s, i) => (requests[String(s)] = Number(Atomics.load(a, i))));
  requests.other = Number(Atomics.load(a, OTHER));
  return { requests, accepted: Number(Atomics.load(a, ACCEPTED)), failed: Number(Atomics.load(a, FAILED)) };
}
