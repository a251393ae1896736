// Intake: the one way a message enters the queue. A worker's `accepted` event and spool recovery
// (start-up, a dead worker's unreported commits) both end in enqueue(): a moved message keeps the
// sending node's binding and retry state, other mail gets the binding policy's choice (a trusted
// X-Binding first), then queue.add. Main thread; synchronous, never touches a body, never blocks.
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { mmoveReceivedOf, receptionOf } from '../events/build.js';
import { logEvents, type EventEmit } from '../events/emitter.js';
import type { AcceptedMessage } from '../message/accepted.js';
import { decodeEnvelope, type MoveMeta } from '../message/envelope.js';
import { decodeState, stateOfMove, type PersistedState } from '../message/retry-state.js';
import { moveKey } from '../mmove/dedup.js';
import type { BindingPolicy } from '../policy/binding.js';
import type { QueueInput, QueueManager } from '../queue/manager.js';
import type { RecoveredChunk } from '../spool/index.js';
import type { Settled } from './settled.js';

export interface IntakeDeps {
  queue: Pick<QueueManager, 'add' | 'has'>;
  /** The running config (a reload swaps it): the bindings a moved message may name. */
  config: () => Config;
  /** The running binding policy (a reload makes a new one). */
  policy: () => BindingPolicy;
  /** The #mmove duplicate table: a restart re-learns the moves it had spooled. */
  dedup: { add(node: string, id: string): void };
  logger: Logger;
  /** Where reception and mmove_received records go; default: their log lines. */
  events?: EventEmit;
}

const NONE_SETTLED: Settled = new Map();

export class Intake {
  private readonly events: EventEmit;
  constructor(private readonly d: IntakeDeps) {
    this.events = d.events ?? logEvents(d.logger);
  }

  /** Messages a worker acknowledged (its 'accepted' event): queued, and logged as received. */
  accepted(batch: readonly AcceptedMessage[]): void {
    for (const m of batch) this.enqueue(m, null, true);
  }

  /**
   * Spool records the queue does not know yet, chunk by chunk (Spool.recoverChunks/liveChunks):
   * their envelope is decoded and they take the same path as accepted mail. An envelope that does
   * not decode stays in the spool, not queued. A record's saved retry state (attempts, next
   * attempt, parts, hold) wins over the move's; a state that does not decode is ignored and the
   * message starts over. Nothing kept takes a view of a chunk's buffers: they go with the chunk.
   */
  recovered(chunks: Iterable<RecoveredChunk>, settled: Settled = NONE_SETTLED): { added: number; unreadable: number; done: string[] } {
    let added = 0;
    let unreadable = 0;
    const done: string[] = [];
    for (const c of chunks) {
      const { ids, envelopes, envOffsets, stateIndex, stateOffsets } = c;
      let k = 0; // the next message with a saved state is ids[stateIndex[k]]
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        let state: Buffer | null = null;
        if (k < stateIndex.length && stateIndex[k] === i) {
          state = c.states.subarray(stateOffsets[k], stateOffsets[k + 1]);
          k++;
        }
        if (this.d.queue.has(id)) continue;
        const env = decodeEnvelope(envelopes, envOffsets[i], envOffsets[i + 1]);
        if (env === null) {
          unreadable++;
          this.d.logger.error({ id }, 'spool: message with an unreadable envelope kept in the spool, not queued');
          continue;
        }
        if (env.moved !== undefined && env.mmovePeer !== undefined) this.d.dedup.add(env.mmovePeer, moveKey(env.moved.originalId, env.rcpt));
        let saved = decodeState(state);
        if (state !== null && saved === null) this.d.logger.warn({ id }, 'spool: unreadable retry state ignored; the message starts over');
        let rcpt = env.rcpt;
        const gone = settled.get(id);
        if (gone !== undefined) {
          // Delivered (or moved) before the crash, by the journal: not again (settled.ts).
          rcpt = rcpt.filter((x) => !gone.has(x));
          if (saved !== null) saved = { ...saved, p: saved.p.map((p) => ({ ...p, r: p.r.filter((x) => !gone.has(x)) })).filter((p) => p.r.length > 0) };
          if (saved !== null ? saved.p.length === 0 : rcpt.length === 0) {
            done.push(id);
            continue;
          }
        }
        const m: AcceptedMessage = {
          id,
          size: c.sizes[i]!,
          // The listener's arrival time (the one the queue used before a restart), else the commit's.
          arrival: env.arrival > 0 ? env.arrival : c.arrivals[i]!,
          from: env.from,
          rcpt,
          headers: env.headers,
          listener: env.listener,
          client: env.client,
          ...(env.moved !== undefined ? { moved: env.moved } : {}),
        };
        if (this.enqueue(m, saved, false)) added++;
      }
    }
    return { added, unreadable, done };
  }

  /**
   * The one path into the queue. Moved mail keeps the binding the sending node chose (a binding
   * unknown here falls back to the policy, with a warning) and the attempts it had made, unless
   * `saved` (a state this node persisted) says more; other mail gets the policy's binding. False
   * when the queue already held the message.
   */
  private enqueue(m: AcceptedMessage, saved: PersistedState | null, reception: boolean): boolean {
    const moved = m.moved;
    const rcpt = this.postmaster(m.id, m.rcpt);
    let input: QueueInput;
    let state = saved;
    if (moved !== undefined) {
      const a = this.movedBinding(m.id, moved);
      input = {
        id: m.id, size: m.size, arrival: m.arrival, from: m.from, rcpt, xBinding: null, listener: m.listener,
        bindingGroup: a.bindingGroup, binding: a.binding, hops: moved.hops, origin: moved.originNode,
      };
      state ??= stateOfMove(moved, rcpt, a);
    } else {
      const policy = this.d.policy();
      const xBinding = policy.trustedXBinding(m);
      // assign() is assignStored() over the trusted X-Binding: computed once here, kept for `rebind`.
      const a = policy.assignStored({ xBinding, listener: m.listener, from: m.from });
      if (a.warning !== undefined) this.d.logger.warn({ id: m.id, binding: 'default/default' }, `binding assignment: ${a.warning}; using default`);
      input = {
        id: m.id, size: m.size, arrival: m.arrival, from: m.from, rcpt, xBinding, listener: m.listener,
        bindingGroup: a.bindingGroup, binding: a.binding,
      };
    }
    const added = this.d.queue.add(input, state);
    // The listener (or the #mmove receiver) wrote the durable record with the message's commit;
    // here only its log line, now that the binding is known.
    if (reception) {
      const binding = `${input.bindingGroup}/${input.binding}`;
      this.events.journaled(moved !== undefined ? mmoveReceivedOf(m, moved, binding) : receptionOf(m, binding));
    }
    return added;
  }

  /**
   * RFC 5321 4.5.1: mail to the bare <postmaster> (any case) must reach someone. Rewritten here, the
   * one path into the queue, so reception, recovery and moves all get it and a reload's new address
   * applies to what is recovered next; the spool envelope keeps what the client sent. Returns the
   * same array (no copy) when no recipient is postmaster.
   */
  private postmaster(id: string, rcpt: string[]): string[] {
    let i = 0;
    while (i < rcpt.length && !isPostmaster(rcpt[i]!)) i++;
    if (i === rcpt.length) return rcpt;
    const to = this.d.config().global.Postmaster_Address;
    if (to === undefined) {
      this.d.logger.warn({ id }, 'mail to <postmaster> with no Postmaster_Address set: it will bounce; set Postmaster_Address (RFC 5321 4.5.1)');
      return rcpt;
    }
    return rcpt.map((r) => (isPostmaster(r) ? to : r));
  }

  /** The binding a moved message names, if it exists here; else the policy's choice for mail it knows nothing of. */
  private movedBinding(id: string, moved: MoveMeta): { bindingGroup: string; binding: string } {
    const b = this.d.config().bindings.get(moved.binding);
    if (b !== undefined) return { bindingGroup: b.group, binding: b.name };
    const a = this.d.policy().assignStored({ xBinding: null, listener: null, from: '' });
    this.d.logger.warn({ id, binding: moved.binding, from: moved.originNode }, `moved message names binding "${moved.binding}", unknown here; using ${a.bindingGroup}/${a.binding}`);
    return { bindingGroup: a.bindingGroup, binding: a.binding };
  }
}

function isPostmaster(rcpt: string): boolean {
  return rcpt.length === 10 && rcpt.toLowerCase() === 'postmaster';
}
