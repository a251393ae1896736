// Waiting on a condition instead of sleeping: the one poll loop tests (and the cluster harness and
// the benches that use it) share. Returns as soon as the condition holds; fails naming what it
// waited for. Test main thread; blocks on nothing but the condition itself.

export interface WaitOptions {
  timeoutMs?: number;
  /** Poll period; a condition wait, not a sleep: we return as soon as the condition holds. */
  intervalMs?: number;
}

/** What a condition returns once it holds: anything but undefined, null and false. */
export type Held<T> = Exclude<T, undefined | null | false>;

/** Resolves to the condition's first value other than undefined, null or false; rejects with `what` after the timeout. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, opts: WaitOptions = {}): Promise<Held<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v as Held<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? `: last error ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
