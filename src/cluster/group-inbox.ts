// What the config group (config-group.ts) and the console group (console-group.ts) each do with a
// message corosync delivers to them: name its sender by member key, take it only when it
// authenticates and decodes (a refusal logged once per sender and reason, not per message), take a
// numbered one only once per sender, and say why a member left. Main thread; nothing blocks.

import type { Logger } from 'pino';
import type { CorosyncGroup, CpgConfChange } from '../native/index.js';
import { memberKey } from './view.js';

/** Distinct (sender, reason) refusals logged; past this many, new ones are not logged. */
const MAX_REFUSALS = 1024;

/** A one-shot timer that does not hold the process open; the result cancels it. */
export const unrefTimer = (fn: () => void, ms: number): (() => void) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

/** Attaches a group's view changes and its messages, each message with its sender's member key. */
export function listen(g: CorosyncGroup, confchg: (c: CpgConfChange) => void, message: (from: string, data: Buffer) => void): void {
  g.on('confchg', confchg);
  g.on('message', (nodeId: number, pid: number, data: Buffer) => message(memberKey(nodeId, pid), data));
}

/** Why a member left, as the logs and answers say it. */
export function leftWhy(reason: string): string {
  return reason === 'leave' ? 'left the group (stopped)' : `left the group (${reason})`;
}

/** Messages that did not authenticate or decode: logged once per sender and reason. */
export class Refusals {
  private readonly said = new Set<string>();

  /** `text`: the log line ("config group: ignored a message that does not authenticate or decode"). */
  constructor(private readonly logger: Logger, private readonly text: string) {}

  /** The message when it decoded, else null (and the refusal logged the first time). */
  take<M>(d: { readonly ok: true; readonly message: M } | { readonly ok: false; readonly error: string }, from: string): M | null {
    if (d.ok) return d.message;
    const once = `${from} ${d.error}`;
    if (!this.said.has(once) && this.said.size < MAX_REFUSALS) {
      this.said.add(once);
      this.logger.warn({ from, error: d.error }, this.text);
    }
    return null;
  }
}

/**
 * The highest number taken from each sender: a message is taken once, its number must grow. With
 * `max`, only the senders heard from last are remembered (a member key holds a pid, so restarts
 * add senders).
 */
export class ReplayGuard {
  private readonly last = new Map<string, number>();

  constructor(private readonly max = Infinity) {}

  /** True, and `n` remembered, when `n` is above the last number taken from `from`. */
  take(from: string, n: number): boolean {
    if (n <= (this.last.get(from) ?? 0)) return false;
    this.last.delete(from);
    this.last.set(from, n);
    if (this.last.size > this.max) this.last.delete(this.last.keys().next().value!);
    return true;
  }
}
