// The #mmove queue (cluster): a part's home is its (group, binding, domain) queue; when another
// node owns the binding's Bind_Address, the part waits in the #mmove queue of that node instead
// (shown as default/#mmove, the node in the domain column) and is moved there with its home and
// retry state. reroute() re-places the parts of the bindings whose owner changed. Main thread;
// never blocks (moves are worker calls, options.move).
import type { Logger } from 'pino';
import type { RecipientResult } from '../delivery/results.js';
import { enhancedOf } from '../smtp/replies.js';
import type { MmoveItem, MmoveResult } from '../mmove/client.js';
import type { EventEmit } from '../events/emitter.js';
import type { RouteTable } from './routes.js';
import { MAX_MOVE_BATCH, type DestQueue, type Scheduler } from './scheduler.js';
import { DEFERRED, HOLD, READY } from './store.js';

/** A peer that did not take a move (gone, 4xx, no address known): its #mmove queue waits this
 *  long. An owner change re-places the mail sooner (reroute). */
const MOVE_RETRY_MS = 5_000;
/** A peer that refused our cluster credentials (5.7.x): a config problem, retried less often. */
const MOVE_AUTH_RETRY_MS = 60_000;

export interface MmoveQueueOptions {
  sched: Scheduler;
  routes: RouteTable;
  logger: Logger;
  /** Where the mmove_sent and refusal (permanent_failure) records go. */
  events: EventEmit;
  now: () => number;
  /** Moves messages to a node (#mmove); one result per item, in order; ok only after its 250. */
  move?: (node: string, items: MmoveItem[]) => Promise<MmoveResult[]>;
  /** The counters this queue adds to (shared with the manager's stats()). */
  counters: { moved: number; moveFailed: number; bounced: number };
  onOutcome?: (status: 'bounced' | 'moved', count: number) => void;
  /** Bounces recipients of part `s` (a DSN), and takes a finished part out (manager.ts). */
  bounce: (s: number, rcpts: RecipientResult[], now: number) => void;
  finish: (s: number) => void;
}

export class MmoveQueue {
  constructor(private readonly o: MmoveQueueOptions) {}

  /**
   * The cluster's owners changed (an election, a manual move): looks up every binding's route
   * again and re-places the queued parts of the bindings whose route changed; parts of other
   * bindings and parts being sent are not touched (those are placed when their result comes
   * back). Returns how many parts moved between queues.
   */
  reroute(): number {
    const sched = this.o.sched;
    const changed = this.o.routes.changed();
    if (changed.size === 0) return 0;
    const homes = sched.queues.map((q) => q.moveTo === null && changed.has(`${q.bindingGroup}\0${q.binding}`));
    const st = sched.store;
    let moved = 0;
    for (const s of st.slots()) {
      const state = st.state[s]!;
      if (homes[st.home[s]!] !== true || (state !== READY && state !== DEFERRED && state !== HOLD)) continue;
      const target = sched.place(sched.queues[st.home[s]!]!);
      if (target.idx === st.queue[s]) continue;
      const held = sched.isHeld(s);
      sched.leave(s);
      sched.settle(s, held);
      moved++;
    }
    // Parts that stayed (wait -> local) are ready in a queue the pump had put aside; parts that
    // moved entered their new queue's run list already.
    for (const q of sched.queues) if (homes[q.idx] === true && q.ready > 0) sched.runnable.add(q);
    sched.schedulePump();
    this.o.logger.info({ routes: this.o.routes.describe(changed), parts: moved }, 'queue: bindings changed owner; their queued mail re-placed');
    return moved;
  }

  /**
   * Held parts are placed again: on a drained node those bound for another node become ready to
   * move with their hold (scheduler.settle); undrained, they wait held again. Parts in flight are
   * placed when their result comes back. Returns how many changed state.
   */
  resettleHeld(): number {
    const sched = this.o.sched;
    const st = sched.store;
    let n = 0;
    for (const s of st.slots()) {
      const state = st.state[s]!;
      if (state !== HOLD && !(state === READY && sched.movingHeld.has(s))) continue;
      sched.leave(s);
      sched.settle(s, true);
      if (st.state[s] !== state) n++;
    }
    if (n > 0) {
      sched.schedulePump();
      this.o.logger.info({ parts: n }, 'queue: held mail re-placed (drain changed)');
    }
    return n;
  }

  /** One #mmove batch to the queue's node. Parts of one message with the same binding and retry
   *  state go as one message with all their recipients (the receiver splits it again). */
  dispatch(q: DestQueue): void {
    const sched = this.o.sched;
    const st = sched.store;
    const slots = sched.takeReady(q, MAX_MOVE_BATCH);
    const groups: number[][] = [];
    const items: MmoveItem[] = [];
    const byKey = new Map<string, number>();
    for (const s of slots) {
      const home = sched.queues[st.home[s]!]!;
      const held = sched.movingHeld.size > 0 && sched.movingHeld.has(s);
      const id = st.idOf(s);
      const key = `${id}\0${home.bindingGroup}\0${home.binding}\0${st.attempts[s]!}\0${st.next[s]!}\0${held ? 1 : 0}`;
      const i = byKey.get(key);
      if (i !== undefined) {
        groups[i]!.push(s);
        items[i]!.rcpt.push(...st.rcptsOf(s));
        continue;
      }
      byKey.set(key, items.length);
      groups.push([s]);
      const origin = sched.names.name(st.origin[s]!);
      items.push({
        id, from: st.fromOf(s), rcpt: st.rcptsOf(s), binding: home.binding, bindingGroup: home.bindingGroup,
        arrival: st.arrival[s]!, attempts: st.attempts[s]!, nextAttempt: st.next[s]!, hops: st.hops[s]!,
        ...(origin !== null ? { originNode: origin } : {}),
        ...(held ? { held: true } : {}),
      });
    }
    sched.beginBatch(q);
    const node = q.moveTo!;
    const lost = (err: unknown): MmoveResult[] =>
      items.map((it) => ({ id: it.id, ok: false, code: 0, text: `mmove to ${node} failed: ${(err as Error)?.message ?? String(err)}`, duplicate: false }));
    const move = this.o.move ?? (() => Promise.reject(new Error('this node cannot move mail (no cluster)')));
    move(node, items)
      .then((results) => results, lost)
      .then((results) => this.onResults(q, groups, items, results))
      .catch((err: unknown) => this.o.logger.error({ err }, 'queue manager: handling move results failed'))
      .finally(() => sched.endBatch(q));
  }

  /**
   * A move's results. 250: the receiver has it on disk, so our copy is done. A 5xx for one
   * message (hop limit, too big): it cannot go there, so it bounces. Anything else (no reply,
   * 4xx, refused credentials): the parts go back, placed anew, and the peer's queue waits.
   */
  private onResults(q: DestQueue, groups: number[][], items: MmoveItem[], results: MmoveResult[]): void {
    const sched = this.o.sched;
    const st = sched.store;
    const now = this.o.now();
    let failed = 0;
    let authFailed = false;
    let why = '';
    groups.forEach((slots, i) => {
      const it = items[i]!;
      const r = results[i] ?? { id: it.id, ok: false, code: 0, text: 'no result', duplicate: false };
      if (r.ok) {
        this.o.counters.moved++;
        this.o.onOutcome?.('moved', it.rcpt.length);
        this.o.events.emit({
          type: 'mmove_sent', time: now, id: it.id, from: it.from, rcpt: it.rcpt, binding: `${it.bindingGroup}/${it.binding}`, peer: q.moveTo!,
          reply: `${r.code} ${r.text}`, duplicate: r.duplicate,
        });
        for (const s of slots) this.o.finish(s);
        return;
      }
      const auth = r.code === 530 || r.code === 535 || /^5\.7\./.test(r.text);
      if (r.code >= 500 && r.code < 600 && !auth) {
        const enhanced = enhancedOf(r.code, r.text);
        const reply = `${r.code} ${r.text}`;
        for (const rcpt of it.rcpt) {
          this.o.events.emit({
            type: 'permanent_failure', time: now, id: it.id, from: it.from, rcpt, binding: `${it.bindingGroup}/${it.binding}`, source: null, mx: null, ip: null,
            reply, code: r.code, enhanced, origin: 'remote', attempt: it.attempts, peer: q.moveTo!,
          });
        }
        this.o.counters.bounced += it.rcpt.length;
        this.o.onOutcome?.('bounced', it.rcpt.length);
        for (const s of slots) {
          const rcpts = st.rcptsOf(s).map((rcpt): RecipientResult => ({
            rcpt, status: 'bounced', code: r.code, enhanced, reply, origin: 'remote', remoteHost: q.moveTo, remoteAddress: null,
          }));
          this.o.bounce(s, rcpts, now);
          this.o.finish(s);
        }
        return;
      }
      failed += slots.length;
      authFailed ||= auth;
      why = `${r.code} ${r.text}`;
      for (const s of slots) {
        sched.leave(s);
        sched.settle(s, it.held === true);
      }
    });
    if (failed > 0) {
      this.o.counters.moveFailed += failed;
      const wait = authFailed ? MOVE_AUTH_RETRY_MS : MOVE_RETRY_MS;
      this.o.logger.warn({ node: q.moveTo, parts: failed, reply: why, retryInMs: wait }, authFailed ? 'mmove: the peer refused our cluster credentials (Cluster_Secret)' : 'mmove: the peer did not take the batch; retrying');
      this.pause(q, wait);
    }
  }

  /** The peer's queue waits `ms` before its next batch (the pump skips it until then). */
  private pause(q: DestQueue, ms: number): void {
    const sched = this.o.sched;
    q.pausedUntil = this.o.now() + ms;
    const t = setTimeout(() => {
      if (q.ready > 0) sched.runnable.add(q);
      sched.schedulePump();
    }, ms);
    t.unref();
  }
}
