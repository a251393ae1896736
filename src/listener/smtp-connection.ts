// smtp-server, adapted for an injection MTA where connections are short and many. Two changes,
// both through smtp-server's public exports (`smtp-server/lib/smtp-connection.js`, pinned version):
// - no 100 ms early-talker pause before the 220 greeting: with one message per connection that
//   pause alone caps a listener at sessions / 0.1 s (ANCHORS.md: 531 msg/s at 64 sessions). Early
//   talkers are still refused: the pipeline only starts reading after the greeting is sent.
// - the DATA parser searches for the end of data with Buffer.indexOf (smtp-stream.ts), not a
//   JavaScript loop over every byte.
// - a reply whose text already starts with an RFC 3463 enhanced code keeps it, instead of getting
//   smtp-server's generic one for the basic code (452 would become 4.2.2 where we mean 4.5.3).
// - NOOP, RSET, VRFY, EXPN, HELP and ETRN beyond the junk limit without a DATA end the session
//   (Postfix's smtpd_junk_command_limit): cheap commands would otherwise hold it forever.
// - every 4xx/5xx reply is reported (SessionLimits.onReject) with the command it answers: the
//   listener's rejection records (src/events/); one comparison per reply otherwise.
// - the parser keeps the clock marks of the command and data deadlines (deadlines.ts), and the idle
//   timeout does not run while the listener itself holds a message's data back (body memory).
// - after QUIT's 221, a plain socket whose reply is already in the kernel is closed at once instead
//   of waiting for the client's FIN (clients that close first reset it: an error with a stack each).
// - no PROXY-protocol step per connection (vipmta configures none): the session id comes from a
//   counter, and the connection starts in the same turn of the event loop.
// Worker thread; nothing here blocks.
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import type { RefusedSession } from '../events/build.js';
import { FastSmtpStream } from './smtp-stream.js';

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
const JUNK = new Set(['NOOP', 'RSET', 'VRFY', 'EXPN', 'HELP', 'ETRN']);

/** What the server tells its sessions beyond smtp-server's options. */
export interface SessionLimits {
  /** Junk commands allowed without a DATA (0: no limit). */
  maxJunkCommands: number;
  /** A session went over it: the reply to send before closing (the caller logs and counts). */
  onJunkLimit(remoteAddress: string): { code: number; text: string };
  /** A 4xx/5xx reply is going out: `text` with its enhanced code in front when it has one. */
  onReject?(session: RefusingSession, code: number, text: string): void;
}

/** What a session tells of itself when it refuses something. */
export interface RefusingSession {
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly localPort: number;
  readonly session: SMTPServerSession;
  /** The command line being answered; null before the first (a refusal at connect). */
  readonly lastCommand: Buffer | null;
}

/** What a refusal's record needs of the session (src/events/build.ts rejectionOf). */
export function refusal(c: RefusingSession, listener: string): RefusedSession {
  const env = c.session?.envelope;
  const from = env === undefined || env.mailFrom === false ? null : env.mailFrom.address;
  return { listener, client: c.remoteAddress, local: `${c.localAddress}:${c.localPort}`, command: c.lastCommand, from, rcpt: env?.rcptTo ?? [] };
}

class VipSmtpConnection extends SMTPConnection implements RefusingSession {
  private junk = 0;
  /** A reference to the parser's buffer (no copy): read only when a reply refuses it. */
  lastCommand: Buffer | null = null;

  override _onCommand(command: Buffer, callback?: () => void): void {
    this.lastCommand = command;
    const limits = (this._server as VipSmtpServer).limits;
    if (limits !== null && limits.maxJunkCommands > 0) {
      const sp = command.indexOf(0x20);
      const verb = command.toString('latin1', 0, Math.min(sp < 0 ? command.length : sp, 8)).toUpperCase();
      if (verb === 'DATA') {
        this.junk = 0;
      } else if (JUNK.has(verb) && ++this.junk > limits.maxJunkCommands) {
        const r = limits.onJunkLimit(this.remoteAddress);
        this.send(r.code, r.text);
        this.close();
        return;
      }
    }
    super._onCommand(command, callback);
  }

  override init(): void {
    this._setListeners(() => {
      const server = this._server as SMTPServer & { connections: Set<unknown> };
      const max = server.options.maxClients;
      if (max !== undefined && max > 0 && server.connections.size > max) {
        // RFC 5321 3.8 / RFC 3463 4.3.2: system not accepting network messages (at capacity).
        this.send(421, `${this.name} 4.3.2 Too many connected clients, try again in a moment`, false);
        this.close();
        return;
      }
      this.connectionReady();
    });
  }

  // RFC 5321 4.1.1.10: the server sends 221 and closes. smtp-server's close() half-closes and reads
  // on until the client's FIN, but most clients close first (smtp-source among them): their reset
  // arrives as ECONNRESET, which Node turns into an Error with a formatted stack on every such
  // connection (about 0.03 ms of CPU each, docs/performance.md "Issue 18"). Once the 221 is in the
  // kernel (nothing left queued in Node) closing the descriptor sends it, then FIN. TLS keeps
  // smtp-server's path (its close_notify), and so does a reply still queued behind a full socket.
  override handler_QUIT(command: Buffer, callback: () => void): void {
    super.handler_QUIT(command, callback);
    const s = this._socket;
    if (!this.secure && !s.destroyed && s.writableLength === 0) s.destroy();
  }

  // The same wiring as smtp-server's own _createParser, with the faster parser.
  override _createParser(): SMTPStream {
    const parser = new FastSmtpStream({ maxCommandLength: this._server.options.maxCommandLength }, (this._server as VipSmtpServer).now);
    parser.oncommand = (command: Buffer, callback?: () => void) => this._onCommand(command, callback);
    parser.on('error', (err: Error) => this.send(421, 'Error: ' + err.message));
    return parser;
  }

  override _onTimeout(): void {
    // Waiting for body memory is our delay, not the client's: the socket is paused on purpose.
    const p = this._parser;
    if (!this._closing && p instanceof FastSmtpStream && p.heldSince > 0) {
      this._armTimeout();
      return;
    }
    super._onTimeout();
  }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    if (typeof data === 'string' && ENHANCED.test(data)) {
      if (code >= 400) (this._server as VipSmtpServer).limits?.onReject?.(this, code, data);
      super.send(code, data, false);
      return;
    }
    if (code >= 400) this.reportRefusal(code, data, context);
    super.send(code, data, context);
  }

  /** The reply as smtp-server will word it (its enhanced code for the basic one), for onReject. */
  private reportRefusal(code: number, data: string | string[] | null | undefined, context: string | false | undefined): void {
    const onReject = (this._server as VipSmtpServer).limits?.onReject;
    if (onReject === undefined) return;
    const enhanced = (this as unknown as { _getEnhancedStatusCode(c: number, ctx?: string | false): string })._getEnhancedStatusCode(code, context);
    const text = Array.isArray(data) ? data.join(' ') : (data ?? '');
    onReject(this, code, enhanced !== '' ? `${enhanced} ${text}` : text);
  }
}

// A random prefix per thread and a counter: unique, in smtp-server's 16-character base-32 form.
const ID_PREFIX = randomBytes(5).readUIntBE(0, 5).toString(32).padStart(8, '0');
let idCounter = 0;
function nextSessionId(): string {
  idCounter = (idCounter + 1) % 0xffffffffff;
  return ID_PREFIX + idCounter.toString(32).padStart(8, '0');
}

/** SMTPServer whose sessions use VipSmtpConnection. Same options, same events. */
export class VipSmtpServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    /** The clock of the deadline marks (tests inject one). */
    readonly now: () => number = Date.now,
    /** Limits smtp-server has no option for; null: none. */
    readonly limits: SessionLimits | null = null,
  ) {
    super(options);
  }

  /**
   * vipmta configures no PROXY protocol, so smtp-server's PROXY check has nothing to read: it would
   * still draw 10 random bytes for the session id and wait a setImmediate turn per connection.
   * The id only has to be unique among this thread's sessions (logs, our per-session maps).
   */
  override _handleProxy(_socket: net.Socket, callback: (err: Error | null, opts: { id: string }) => void): void {
    callback(null, { id: nextSessionId() });
  }

  override connect(socket: net.Socket, socketOptions?: ConstructorParameters<typeof SMTPConnection>[2]): void {
    const connection = new VipSmtpConnection(this, socket, socketOptions);
    const self = this as unknown as {
      connections: Set<SMTPConnection>;
      _onError(err: Error): void;
      _onClientConnect(data: unknown): void;
    };
    self.connections.add(connection);
    connection.on('error', (err: Error) => self._onError(err));
    connection.on('connect', (data: unknown) => self._onClientConnect(data));
    connection.init();
  }
}
