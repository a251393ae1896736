// The receiving end of ECmmove2 on one ECCluster_Listener socket of one worker: accepts other
// vipmta nodes (plain TCP, or TLS-PSK keyed by the Cluster_Secret under Mmove_TLS), counts them
// and drains them on close; the dialogue of each connection is receiver-session.ts. Worker
// thread; never blocks.
//
// Not smtp-server: its per-command overhead and its reply-per-command lockstep (a 354 round trip
// per message, no CHUNKING) cap a link far below the network; here the only per-byte work is the
// spool's own append (and, on the DATA path only, Buffer.indexOf for line-leading dots).
import net from 'node:net';
import tls from 'node:tls';
import type { ReplyName } from '../smtp/replies.js';
import { ReceiverSession, type SessionCounters, type SessionOptions } from './receiver-session.js';
import { serverTlsOptions } from './tls.js';

export type { ReceiverMessage, ReceiverSink } from './receiver-session.js';

export interface MmoveReceiverOptions extends SessionOptions {
  /** Mmove_TLS: accept only TLS-PSK connections keyed by `secret` (tls.ts); default false. */
  tls?: boolean;
  /** With tls: a connection without a finished handshake after this long is dropped. Default 10 s. */
  tlsHandshakeTimeoutMs?: number;
}

export interface MmoveReceiverStats extends SessionCounters {
  connections: number;
  active: number;
}

export class MmoveReceiver {
  private readonly server: net.Server;
  private readonly sessions = new Set<ReceiverSession>();
  private closing = false;
  private closed: Promise<number> | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private deadlineAt = Infinity;
  private cutOff = 0;
  readonly counters: MmoveReceiverStats = { connections: 0, active: 0, received: 0, receivedBytes: 0, duplicates: 0, authFailures: 0, hopRefusals: 0, tlsFailures: 0 };

  constructor(readonly opts: MmoveReceiverOptions) {
    if (opts.tls === true) {
      // The PSK identity a peer offered, for the log line when its handshake fails.
      const identities = new WeakMap<tls.TLSSocket, string>();
      const server = tls.createServer(
        serverTlsOptions(opts.secret, (sock, identity) => identities.set(sock, identity), opts.tlsHandshakeTimeoutMs),
        (sock) => this.onConnection(sock),
      );
      server.on('tlsClientError', (err: Error & { code?: string }, sock: tls.TLSSocket) => {
        this.counters.tlsFailures++;
        const node = identities.get(sock);
        const why =
          opts.secret === null
            ? 'no Cluster_Secret configured on this node'
            : err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
              ? 'no TLS handshake in time (a plain-text peer? Mmove_TLS must be the same on every node)'
              : node === undefined
                ? 'not a TLS-PSK client (Mmove_TLS off at the peer?)'
                : 'wrong Cluster_Secret at the peer?';
        opts.logger.warn({ err, listener: opts.name, client: sock.remoteAddress, node }, `mmove refused: TLS handshake failed: ${why}`);
        // With a listener here Node leaves the socket open: close it, or the peer waits for its own timeout.
        sock.destroy();
      });
      this.server = server;
    } else {
      this.server = net.createServer({ noDelay: true }, (sock) => this.onConnection(sock));
    }
  }

  /** Serves connections on a listening fd (listenTcp); the server owns the fd from then on. */
  listenFd(fd: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ fd }, () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => this.opts.logger.error({ err, listener: this.opts.name }, 'mmove listener failed'));
        resolve();
      });
    });
  }

  /** Listens on host:port (tests; the workers use listenFd with SO_REUSEPORT sockets). */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  stats(): MmoveReceiverStats {
    return { ...this.counters, active: this.sessions.size };
  }

  /** Sessions open right now. */
  get activeSessions(): number {
    return this.sessions.size;
  }

  /**
   * Stops accepting. Idle sessions get 421 4.3.2 at once; a session receiving a body finishes it
   * and closes once its commits in flight are answered; what is still open after graceMs is cut
   * off. Resolves with how many were. A second call returns the same promise and brings the
   * deadline forward if its grace ends sooner (a worker's drain during a reload's).
   */
  close(graceMs: number): Promise<number> {
    const ms = Math.max(1, graceMs);
    if (this.closed === null) {
      this.closing = true;
      this.closed = new Promise((resolve) => {
        this.server.close(() => {
          if (this.deadline !== null) clearTimeout(this.deadline);
          resolve(this.cutOff);
        });
      });
      for (const s of this.sessions) s.shutdown();
    }
    const at = Date.now() + ms;
    if (at < this.deadlineAt) {
      this.deadlineAt = at;
      if (this.deadline !== null) clearTimeout(this.deadline);
      this.deadline = setTimeout(() => {
        for (const s of this.sessions) {
          this.cutOff++;
          s.destroy();
        }
      }, ms);
      this.deadline.unref();
    }
    return this.closed;
  }

  private onConnection(sock: net.Socket): void {
    this.counters.connections++;
    if (sock instanceof tls.TLSSocket) sock.setNoDelay(true);
    const s = new ReceiverSession(this.opts, this.counters, sock);
    this.sessions.add(s);
    sock.once('close', () => {
      this.sessions.delete(s);
      s.onClose();
    });
    if (this.closing) s.shutdown();
  }
}

export type { ReplyName };
