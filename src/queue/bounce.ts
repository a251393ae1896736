// Bounces, main-thread side: asks for a DSN (a worker builds and spools it, delivery/bounce.ts)
// and keeps the gate the original's done-mark waits on, so a message is never marked done before
// the DSN about it is on disk. A DSN that cannot be spooled (disk full, no worker) puts its
// recipients back for a later bounce. Main thread; never blocks (the request is a Promise).
import type { Logger } from 'pino';
import type { BounceRequest } from '../delivery/bounce.js';
import type { RecipientResult } from '../delivery/results.js';
import { classify } from '../policy/bounce-class.js';
import { logEvents, type EventEmit } from '../events/emitter.js';

/** A DSN that could not be spooled: its recipients wait this long and bounce again. */
export const DSN_RETRY_MS = 60_000;

export interface BouncesOptions {
  /** Builds and spools a DSN (in a worker); resolves with its queue id and size. */
  bounce: (req: BounceRequest) => Promise<{ id: string; size: number }>;
  /** Reporting-MTA: this node's host name. */
  hostname: () => string;
  logger: Logger;
  /** Where the dsn record goes (default: its log line). */
  events?: EventEmit;
  /** The DSN is on disk: queue it (from the null sender to `to`). */
  spooled: (dsn: { id: string; size: number; to: string; arrival: number }) => void;
}

/** The original message a bounce is about. */
export interface BouncedMessage {
  id: string;
  /** Its envelope sender: the DSN's recipient ('' : no DSN, RFC 5321 4.5.5). */
  from: string;
  arrival: number;
}

export class Bounces {
  /** DSNs being spooled, per original id: its done-mark waits for them. */
  private readonly pending = new Map<string, Promise<void>>();
  spooledCount = 0;
  failedCount = 0;

  constructor(private readonly o: BouncesOptions) {}

  /**
   * Spools a DSN for bounced recipients (none for the null sender), after any DSN already being
   * spooled for the same message. When it cannot be spooled, `retry` puts the recipients back.
   */
  request(m: BouncedMessage, rcpts: RecipientResult[], now: number, retry: (rcpts: string[]) => void): void {
    const id = m.id;
    if (m.from === '') {
      this.o.logger.info({ id, rcpt: rcpts.map((r) => r.rcpt) }, 'no DSN for a message from the null sender');
      return;
    }
    const gate = (this.pending.get(id) ?? Promise.resolve())
      .then(() => this.spool(m, rcpts, now))
      .catch((err: unknown) => {
        this.failedCount++;
        this.o.logger.error({ err, id }, 'could not spool a DSN; the recipients bounce again later');
        retry(rcpts.map((r) => r.rcpt));
      })
      .finally(() => {
        if (this.pending.get(id) === gate) this.pending.delete(id);
      });
    this.pending.set(id, gate);
  }

  /** The DSNs of message `id` still being spooled, or undefined. */
  gate(id: string): Promise<void> | undefined {
    return this.pending.get(id);
  }

  /** Settles when every DSN asked for so far is spooled or failed. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending.values()]);
  }

  private async spool(m: BouncedMessage, rcpts: RecipientResult[], now: number): Promise<void> {
    const req: BounceRequest = {
      originalId: m.id, to: m.from, arrival: m.arrival, now, reportingMta: this.o.hostname(),
      recipients: rcpts.map((r) => ({
        rcpt: r.rcpt,
        status: r.enhanced ?? `${Math.floor(r.code / 100)}.0.0`,
        remoteReply: r.origin === 'remote' ? r.reply : null,
        remoteMta: r.remoteHost,
        // Delivery classed it; a refusal over #mmove (mmove-queue.ts) is classed here, from its reply.
        bounceClass: r.bounceClass ?? classify({ code: r.code, enhanced: r.enhanced, text: r.reply }),
      })),
    };
    const { id, size } = await this.o.bounce(req);
    this.spooledCount++;
    this.o.spooled({ id, size, to: m.from, arrival: now });
    (this.o.events ?? logEvents(this.o.logger)).emit({ type: 'dsn', id, for: m.id, to: m.from, rcpt: rcpts.map((r) => r.rcpt), size });
  }
}
