// The ESMTP listeners as one worker thread hosts them: one EsmtpListener per ESMTP_Listener Listen
// stanza on this worker's own socket (SocketSet: SO_REUSEPORT, reload and drain policy), and the
// per-listener counts the main thread sums for the console. Worker thread; never blocks.
import type { Logger } from 'pino';
import type { AcceptedMessage } from '../message/accepted.js';
import type { NewEvent } from '../events/records.js';
import { EsmtpListener, type MessageSink } from '../listener/esmtp.js';
import type { ListenerSpec } from '../listener/spec.js';
import { SocketSet } from './socket-set.js';
import type { WorkerStats } from './protocol.js';

export interface EsmtpHostOptions {
  workerId: number;
  hostname: string;
  logger: Logger;
  /** The spool as this worker writes it; null refuses DATA with 451 4.3.0. */
  sink: MessageSink | null;
  onMessage: (m: AcceptedMessage) => void;
  /** A listener refused something (a 4xx/5xx reply): its rejection record. */
  onRejection?: (r: NewEvent) => void;
  /** A listener failed after it had started (e.g. its socket died). */
  onError: (name: string, err: Error) => void;
}

export class EsmtpHost {
  private readonly listeners: SocketSet<ListenerSpec, EsmtpListener>;
  private readonly accepted: Record<string, number> = {};

  constructor(private readonly opts: EsmtpHostOptions) {
    this.listeners = new SocketSet<ListenerSpec, EsmtpListener>({
      create: (spec) =>
        new EsmtpListener({
          spec,
          workerSlot: opts.workerId,
          hostname: opts.hostname,
          logger: opts.logger,
          sink: opts.sink,
          onMessage: opts.onMessage,
          ...(opts.onRejection !== undefined ? { onRejection: opts.onRejection } : {}),
          onAccept: () => {
            this.accepted[spec.name] = (this.accepted[spec.name] ?? 0) + 1;
          },
          onError: (err) => opts.onError(spec.name, err),
        }),
      onRetired: (name, cutOff) => {
        if (cutOff > 0) opts.logger.warn({ listener: name, cutOff }, 'a retired ESMTP listener cut sessions that did not finish in time');
      },
    });
  }

  /** Opens (or keeps) exactly these listeners; all or nothing (SocketSet.set). */
  set(specs: ListenerSpec[]): Promise<string[]> {
    return this.listeners.set(specs);
  }

  stats(threadId: number): WorkerStats {
    return {
      workerId: this.opts.workerId,
      threadId,
      accepted: { ...this.accepted },
      active: this.listeners.activeSessions,
      listening: this.listeners.names,
    };
  }

  /** Stops accepting; sessions finish within graceMs. Resolves with how many were cut off. */
  drain(graceMs: number): Promise<number> {
    return this.listeners.drain(graceMs);
  }
}
