// One ESMTP listener in one worker: smtp-server parsing the dialogue on a socket fd this worker
// owns. It counts sessions so a drain can tell idle sessions to go (421) while transactions in
// flight finish. Runs on a worker thread; must not block.
import type { Socket } from 'node:net';
import type { SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { VipSmtpServer } from './smtp-connection.js';
import type { Logger } from 'pino';
import type { ListenerSpec } from '../workers/protocol.js';

export interface EsmtpListenerOptions {
  spec: ListenerSpec;
  hostname: string;
  logger: Logger;
  onAccept: () => void;
  onError: (err: Error) => void;
}

// smtp-server keeps its live connections in a Set on the server; we reach into it only to tell idle
// sessions to leave during a drain (smtp-server itself would wait for them until closeTimeout).
interface ConnectionLike {
  id: string;
  send(code: number, text: string): void;
  close(): void;
}

export class EsmtpListener {
  private readonly server: VipSmtpServer;
  private readonly inTransaction = new Set<string>();
  private closing = false;

  constructor(private readonly opts: EsmtpListenerOptions) {
    const o = opts.spec.options;
    const name = typeof o['Hostname'] === 'string' ? o['Hostname'] : opts.hostname;
    const serverOptions: SMTPServerOptions = {
      name,
      banner: 'ESMTP vipmta',
      logger: false,
      disableReverseLookup: true,
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      onConnect: (session, cb) => this.onConnect(session, cb),
      onData: (stream, session, cb) => {
        // Until the spool is attached to listeners, refuse with a temporary error rather than
        // pretend to accept: RFC 5321 4.2.3, 451 requested action aborted; RFC 3463 4.3.0.
        stream.resume();
        stream.on('end', () => {
          const err = new Error('4.3.0 Temporary failure: spool not available') as Error & { responseCode: number };
          err.responseCode = 451;
          cb(err);
        });
      },
    };
    this.server = new VipSmtpServer(serverOptions);
    this.server.on('error', (err: Error) => {
      // Per-connection errors (a client resetting) are routine; only log them at debug.
      opts.logger.debug({ err, listener: opts.spec.name }, 'smtp connection error');
    });
  }

  get activeSessions(): number {
    return (this.server as unknown as { connections: Set<unknown> }).connections.size;
  }

  listenFd(fd: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const net = (this.server as unknown as { server: import('node:net').Server }).server;
      const onError = (err: Error): void => reject(err);
      net.once('error', onError);
      this.server.listen({ fd }, () => {
        net.off('error', onError);
        net.on('error', (err: Error) => this.opts.onError(err));
        resolve();
      });
    });
  }

  /**
   * Stops accepting; idle sessions get 421 4.3.2 at once (RFC 5321 3.8), sessions inside a
   * transaction get up to timeoutMs to finish. Resolves with how many were cut off at the deadline.
   */
  close(timeoutMs: number): Promise<number> {
    if (this.closing) return Promise.resolve(0);
    this.closing = true;
    const conns = (this.server as unknown as { connections: Set<ConnectionLike> }).connections;
    const opts = this.server.options as SMTPServerOptions & { closeTimeout?: number };
    opts.closeTimeout = Math.max(1, timeoutMs);
    return new Promise((resolve) => {
      let cutOff = 0;
      const deadline = setTimeout(() => {
        cutOff = conns.size;
      }, Math.max(1, timeoutMs) - 1);
      deadline.unref();
      this.server.close(() => {
        clearTimeout(deadline);
        resolve(cutOff);
      });
      for (const c of conns) this.sayGoodbyeIfIdle(c);
    });
  }

  private sayGoodbyeIfIdle(c: ConnectionLike): void {
    if (this.inTransaction.has(c.id)) return;
    c.send(421, '4.3.2 Service shutting down, closing transmission channel');
    c.close();
  }

  private onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    if (this.closing) {
      const err = new Error('4.3.2 Service shutting down') as Error & { responseCode: number };
      err.responseCode = 421;
      cb(err);
      return;
    }
    this.opts.onAccept();
    cb();
  }
}

export type { Socket };
