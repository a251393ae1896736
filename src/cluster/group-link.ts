// One process's membership of one CPG group, kept up: joins without ever blocking (the join's IPC
// runs on the addon's IO thread, so a corosync that is down or stopped delays only the group, never
// start-up or SMTP), says once when corosync takes the connection and does not answer, warns once
// per distinct reason it cannot join and says ERROR once the joins have failed for JOIN_ERROR_MS
// (corosync starting beside us, or too busy to take a connection for a moment, is not an error),
// retries every REJOIN_MS, and joins again after losing the group. The DuraVIP manager and the shaping group each hold one. Main thread.

import type { Logger } from 'pino';
import { CorosyncGroup } from '../native/index.js';

/** Retry period for joining when corosync is not running (yet). */
export const REJOIN_MS = 1000;
/** A join corosync has not answered after this long is said once (stopped? wedged?). */
export const JOIN_SLOW_MS = 5000;
/** Joins failing for this long are an ERROR (before: warnings, one per distinct reason). */
export const JOIN_ERROR_MS = 10_000;

export interface GroupLinkOptions {
  readonly name: string;
  readonly logger: Logger;
  /** What the group's absence costs, for the log: "this node owns no DuraVIP". */
  readonly without: string;
  /** Starts every log line ("cluster: "). */
  readonly prefix: string;
  /** Joined: the caller attaches its listeners (the group's first events come a turn later). */
  readonly joined: (g: CorosyncGroup) => void;
  /** The group was lost (corosync died or closed us); a new join is already scheduled. */
  readonly lost: (err: Error) => void;
  /** Tests inject a fake; default CorosyncGroup.join. */
  readonly join?: (name: string) => Promise<CorosyncGroup>;
}

export class GroupLink {
  private current: CorosyncGroup | null = null;
  private error: string | null = null;
  private rejoinTimer: NodeJS.Timeout | null = null;
  /** While a join waits for corosync's answer: the timer that says so when it takes long. */
  private joining: NodeJS.Timeout | null = null;
  private stopped = false;
  /** When the joins started failing (null while joined or before the first try), and whether the ERROR was said. */
  private failingSince: number | null = null;
  private errorSaid = false;

  constructor(private readonly o: GroupLinkOptions) {}

  /** The group while joined, else null. */
  get group(): CorosyncGroup | null {
    return this.current;
  }

  /** Why the last join failed or the group was lost (null while joined or before the first try). */
  get joinError(): string | null {
    return this.error;
  }

  /** Whether a join is waiting for corosync's answer. */
  get waiting(): boolean {
    return this.joining !== null;
  }

  start(): void {
    this.join();
  }

  /** Leaves the group (if joined) and stops retrying. */
  stop(): void {
    this.stopped = true;
    if (this.rejoinTimer !== null) clearTimeout(this.rejoinTimer);
    if (this.joining !== null) clearTimeout(this.joining);
    this.rejoinTimer = null;
    this.joining = null;
    this.current?.close();
    this.current = null;
  }

  private join(): void {
    if (this.stopped || this.current !== null || this.joining !== null) return;
    const slow = setTimeout(() => {
      if (!this.stopped) this.o.logger.warn(`${this.o.prefix}corosync has not answered the join for ${JOIN_SLOW_MS} ms (stopped?); ${this.o.without} until it does`);
    }, JOIN_SLOW_MS);
    slow.unref();
    this.joining = slow;
    (this.o.join ?? ((n: string) => CorosyncGroup.join(n, { ref: false })))(this.o.name).then((g) => {
      clearTimeout(slow);
      this.joining = null;
      if (this.stopped) {
        g.close(); // stopped while corosync was answering
        return;
      }
      this.current = g;
      if (this.failingSince !== null) {
        this.o.logger.info({ group: this.o.name, failedMs: Date.now() - this.failingSince }, `${this.o.prefix}joined corosync after failed joins (${this.error ?? 'unknown'})`);
      }
      this.error = null;
      this.failingSince = null;
      this.errorSaid = false;
      g.on('error', (err: Error) => this.onLost(err));
      this.o.joined(g);
    }, (err: unknown) => {
      clearTimeout(slow);
      this.joining = null;
      if (this.stopped) return;
      const e = err as Error & { code?: string };
      const text = `${e.code ?? 'error'}: ${e.message}`;
      const now = Date.now();
      this.failingSince ??= now;
      const line = `${this.o.prefix}cannot join corosync (${e.message}); ${this.o.without} until it can, retrying every ${REJOIN_MS} ms`;
      const fields = { code: e.code, group: this.o.name, failingMs: now - this.failingSince };
      if (!this.errorSaid && now - this.failingSince >= JOIN_ERROR_MS) {
        this.errorSaid = true;
        this.o.logger.error(fields, line);
      } else if (text !== this.error) {
        // Once per distinct reason, not every retry.
        this.o.logger.warn(fields, line);
      }
      this.error = text;
      this.scheduleRejoin();
    });
  }

  private onLost(err: Error): void {
    this.current = null;
    this.failingSince = Date.now();
    this.error = `${(err as Error & { code?: string }).code ?? 'error'}: ${err.message}`;
    this.scheduleRejoin();
    this.o.lost(err);
  }

  private scheduleRejoin(): void {
    if (this.stopped || this.rejoinTimer !== null) return;
    this.rejoinTimer = setTimeout(() => {
      this.rejoinTimer = null;
      this.join();
    }, REJOIN_MS);
    this.rejoinTimer.unref();
  }
}
