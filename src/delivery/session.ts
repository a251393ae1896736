// One outbound SMTP connection: connect from the binding's address, greeting, EHLO (HELO when
// EHLO is refused), STARTTLS, and mail transactions, pipelined (RFC 2920) when the peer offers it.
// A small client of our own instead of nodemailer's smtp-connection, which neither pipelines nor
// takes a body that is already dot-stuffed (the spool's wire form): see bench/delivery-client.bench.ts.
// Runs on a delivery worker; waits on the socket only. Hot path: bodies are written as the Buffers
// they are (never converted to strings), commands of one transaction go out in one write.
import net from 'node:net';
import tls from 'node:tls';
import { enhancedOf, replyText, type SmtpReply } from '../smtp/replies.js';
import { DeliveryFailure, type Where } from './results.js';
import { ErrorCode } from '../errors.js';

export interface TlsPolicy {
  /** 'opportunistic': STARTTLS when offered, certificates not checked (RFC 7435); if the handshake
   *  fails, the same host is tried once more in plain text. 'required': no STARTTLS or a failed
   *  handshake defers with 4.7.x. */
  mode: 'opportunistic' | 'required';
  /** With 'required': verify the certificate chain and the host name (the MX or route host). */
  verify: boolean;
  /** PEM CA certificates to trust instead of Node's bundle (a private CA; tests). */
  ca?: string[];
}

export interface SessionOptions {
  /** The MX or route host name (SNI and certificate name); an IP literal for IP routes. */
  host: string;
  address: string;
  port: number;
  /** Source address (the binding's Bind_Address); null: the kernel chooses. */
  localAddress: string | null;
  ehloHostname: string;
  tls: TlsPolicy;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** Wait for the reply to the end of data (RFC 5321 4.5.3.2.6 suggests 10 minutes). */
  dataTimeoutMs: number;
  /** Cuts the opening (connect, greeting, EHLO, STARTTLS and its handshake): open() then throws
   *  the signal's reason (a DeliveryFailure) at once. An open session is cut with cut(). */
  signal?: AbortSignal;
}

// RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; we allow far more, but not without end.
const MAX_PENDING = 64 * 1024;
const DOT_CRLF = Buffer.from('.\r\n');
const CRLF_DOT_CRLF = Buffer.from('\r\n.\r\n');

interface Waiter {
  resolve(r: SmtpReply): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/** The reply that decides each recipient of one transaction, in the order given. */
export interface TransactionOutcome {
  /** null: no reply of the peer's decides that recipient (the connection failed first: `lost`). */
  replies: (SmtpReply | null)[];
  /** How the connection failed, when it did after the peer had decided some recipients (a
   *  transaction with no recipient decided throws instead); the session is closed then. */
  lost: DeliveryFailure | null;
}

export class SmtpSession {
  /** EHLO keywords, upper case (empty after HELO). */
  extensions = new Set<string>();
  /** Transactions attempted on this connection (Max_Deliveries_Per_Connection counts these). */
  deliveries = 0;
  /** Socket writes of command groups; with PIPELINING a transaction is one (tests count them). */
  commandWrites = 0;
  secure = false;
  /** Whether the peer's certificate verified (only meaningful when secure). */
  authorized = false;
  private socket: net.Socket | tls.TLSSocket;
  private pending: Buffer | null = null;
  private lines: string[] = [];
  private readonly replies: SmtpReply[] = [];
  private readonly waiters: Waiter[] = [];
  private closed: Error | null = null;
  /** A transaction ended without its final reply (failed MAIL, no recipient, refused DATA). */
  private dirty = false;
  private busy = false;
  /** Replies received since the current transaction began (0: the peer has taken nothing). */
  private txReplies = 0;
  /** A 421 the peer sent since the current transaction began: it is closing the channel (RFC 5321
   *  3.8), and that reply answers every command it will not answer any more. */
  private goodbye: SmtpReply | null = null;
  /** What the peer has answered so far in the current transaction: MAIL, then each RCPT in order
   *  (fields, not an object per transaction: this is the delivery path). */
  private txMail: SmtpReply | null = null;
  private txRcpt: SmtpReply[] = [];
  /** Ends a TLS handshake in progress (set only while one runs). */
  private cutHandshake: ((err: DeliveryFailure) => void) | null = null;
  private readonly onData = (chunk: Buffer) => this.receive(chunk);
  readonly where: Where;

  private constructor(private readonly o: SessionOptions, socket: net.Socket) {
    this.socket = socket;
    this.where = { remoteHost: o.host, remoteAddress: o.address };
    this.attach(socket);
  }

  /** Connects and gets the session ready for MAIL. Throws DeliveryFailure (connectFailed,
   *  lostConnection, protocolError, tlsNotOffered, tlsFailed) or HostRefused. */
  static async open(o: SessionOptions, plainOnly = false): Promise<SmtpSession> {
    const socket = await connect(o);
    const signal = o.signal;
    if (signal?.aborted === true) {
      socket.destroy();
      throw signal.reason;
    }
    const s = new SmtpSession(o, socket);
    const onAbort = () => s.cut(signal!.reason as DeliveryFailure);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const greeting = await s.next('the greeting', o.commandTimeoutMs);
      if (greeting.code !== 220) throw new HostRefused('greeting', greeting, s.where);
      await s.hello();
      if (!plainOnly && (s.extensions.has('STARTTLS') || o.tls.mode === 'required')) {
        try {
          await s.startTls();
        } catch (err) {
          if (!(err instanceof DeliveryFailure) || err.failure !== 'tlsFailed' || o.tls.mode === 'required') throw err;
          // Opportunistic: a peer whose TLS does not work still gets its mail, in plain text.
          s.destroy();
          return SmtpSession.open(o, true);
        }
      }
      return s;
    } catch (err) {
      s.destroy();
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  get localAddress(): string | null {
    return this.socket.localAddress ?? null;
  }

  /** Alive, idle and with nothing unsolicited from the peer (a 421 before it hangs up). */
  get reusable(): boolean {
    return this.closed === null && !this.busy && this.replies.length === 0 && this.pending === null && this.lines.length === 0;
  }

  /** Whether the peer answered anything in the last transaction. When it did not, a failed
   *  transaction can be retried elsewhere without risk of a duplicate. */
  get answeredInTransaction(): boolean {
    return this.txReplies > 0;
  }

  get pipelining(): boolean {
    return this.extensions.has('PIPELINING');
  }

  /** One mail transaction: MAIL, RCPT for each recipient, DATA, the body, the end of data.
   *  `body` is wire form (CRLF, dot-stuffed) and goes to the socket as is. Returns the reply that
   *  decides each recipient. When the connection fails on the way, what the peer answered before
   *  still decides what it answers (`lost` says how the rest ended); throws DeliveryFailure when
   *  it decided nothing. */
  async transaction(from: string, rcpts: string[], body: Buffer): Promise<TransactionOutcome> {
    if (this.busy) throw new Error('SmtpSession.transaction: a transaction is already running');
    this.busy = true;
    this.deliveries++;
    this.txReplies = 0;
    this.goodbye = null;
    this.txMail = null;
    this.txRcpt = [];
    try {
      return this.pipelining ? await this.pipelined(from, rcpts, body) : await this.stepwise(from, rcpts, body);
    } catch (err) {
      return this.answeredBefore(err, rcpts.length);
    } finally {
      this.busy = false;
    }
  }

  /** Says QUIT, waits briefly for the answer, closes. Never throws. */
  async quit(): Promise<void> {
    if (this.closed === null) {
      try {
        this.write(Buffer.from('QUIT\r\n'));
        await this.next('QUIT', Math.min(this.o.commandTimeoutMs, 2000));
      } catch {
        // The peer going away first is fine.
      }
    }
    this.destroy();
  }

  destroy(): void {
    this.cut(new DeliveryFailure('lostConnection', `connection to ${hostText(this.o)} closed`, this.where));
  }

  /** Closes the connection now, whatever it is doing: what waits on it (a reply, the TLS
   *  handshake) fails with `err`. The engine's abortFrom cuts with 'bindingMoved'. */
  cut(err: DeliveryFailure): void {
    this.fail(err);
    this.socket.destroy();
    this.cutHandshake?.(err);
  }

  /** Resolves once the socket has closed (its 'close' seen), or after `boundMs` whatever happens
   *  (the socket is destroyed then): the engine answers a batch only after its connections are
   *  gone, so the main thread never counts one closed that the receiver still sees. */
  whenClosed(boundMs: number): Promise<void> {
    if (this.socket.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, boundMs);
      timer.unref();
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Calls `cb` once when the connection closes (for the pool to drop it). */
  onClose(cb: () => void): void {
    if (this.closed !== null) cb();
    else this.socket.once('close', cb);
  }

  private mailCommand(from: string, size: number, utf8: boolean): string {
    let cmd = `MAIL FROM:<${from}>`;
    // RFC 1870 6: SIZE is the size in octets (an estimate: the wire form is a little larger).
    if (this.extensions.has('SIZE')) cmd += ` SIZE=${size}`;
    if (utf8) cmd += ' SMTPUTF8';
    return cmd;
  }

  /**
   * The connection failed (`err`) after the peer answered txMail and txRcpt. Its replies are its
   * real word on what they answer, so they are kept: a failed MAIL decides every recipient, a
   * refused RCPT its recipient; a 421 it sent before closing (Yahoo's "[TSS04] ... temporarily deferred", answered
   * to a pipelined RCPT) decides every recipient nothing else decided. Only the rest (accepted and
   * waiting for the end of data, or never answered) is left to `err`, our own lost connection.
   */
  private answeredBefore(err: unknown, n: number): TransactionOutcome {
    if (!(err instanceof DeliveryFailure)) throw err;
    const closing = this.goodbye;
    const mail = this.txMail;
    const replies: (SmtpReply | null)[] = new Array<SmtpReply | null>(n);
    let decided = false;
    for (let k = 0; k < n; k++) {
      const r = mail === null || !is(mail, 2) ? mail : this.txRcpt[k];
      const d = r !== null && r !== undefined && !is(r, 2) ? r : closing;
      replies[k] = d;
      if (d !== null) decided = true;
    }
    if (!decided) throw err;
    return { replies, lost: err };
  }

  private async pipelined(from: string, rcpts: string[], body: Buffer): Promise<TransactionOutcome> {
    // RFC 2920 3.1: RSET, MAIL and RCPT may be anywhere in a group; DATA ends it.
    const utf8 = needsUtf8(from, rcpts);
    const cmds: string[] = [];
    const wasDirty = this.dirty;
    if (wasDirty) cmds.push('RSET');
    cmds.push(this.mailCommand(from, body.length, utf8));
    for (const r of rcpts) cmds.push(`RCPT TO:<${r}>`);
    cmds.push('DATA');
    this.write(Buffer.from(cmds.join('\r\n') + '\r\n', 'utf8'));
    if (wasDirty) await this.expect('RSET', 2);
    this.dirty = true;
    const mail = (this.txMail = await this.next('MAIL FROM', this.o.commandTimeoutMs));
    const rcpt = this.txRcpt;
    for (let i = 0; i < rcpts.length; i++) rcpt.push(await this.next('RCPT TO', this.o.commandTimeoutMs));
    const data = await this.next('DATA', this.o.commandTimeoutMs);
    if (!is(mail, 2)) {
      if (data.code === 354) await this.endData(EMPTY);
      return { replies: rcpts.map(() => mail), lost: null };
    }
    return this.afterData(rcpt, data, body);
  }

  private async stepwise(from: string, rcpts: string[], body: Buffer): Promise<TransactionOutcome> {
    if (this.dirty) await this.command('RSET', 2);
    this.dirty = true;
    const mail = (this.txMail = await this.command(this.mailCommand(from, body.length, needsUtf8(from, rcpts))));
    if (!is(mail, 2)) return { replies: rcpts.map(() => mail), lost: null };
    const rcpt = this.txRcpt;
    for (const r of rcpts) rcpt.push(await this.command(`RCPT TO:<${r}>`));
    // RFC 5321 3.3: no DATA without at least one accepted recipient.
    if (!rcpt.some((r) => is(r, 2))) return { replies: rcpt, lost: null };
    return this.afterData(rcpt, await this.command('DATA'), body);
  }

  /** After the reply to DATA: the body when it is 354, and the reply for each accepted recipient. */
  private async afterData(rcpt: SmtpReply[], data: SmtpReply, body: Buffer): Promise<TransactionOutcome> {
    const accepted = rcpt.some((r) => is(r, 2));
    if (data.code !== 354) {
      // The transaction is over without a message; recipients the peer took get DATA's reply.
      return { replies: rcpt.map((r) => (is(r, 2) ? (is(data, 2) ? protocolReply(data) : data) : r)), lost: null };
    }
    if (!accepted) {
      // A pipelining peer said 354 with no recipient (RFC 2920 3.1 says it must not): end it empty.
      await this.endData(EMPTY);
      return { replies: rcpt, lost: null };
    }
    const final = await this.endData(body);
    this.dirty = false;
    return { replies: rcpt.map((r) => (is(r, 2) ? final : r)), lost: null };
  }

  /** Writes the body and the end-of-data mark; the body ends with CRLF in wire form, else we add it. */
  private async endData(body: Buffer): Promise<SmtpReply> {
    const n = body.length;
    const tail = n === 0 || (n >= 2 && body[n - 2] === 0x0d && body[n - 1] === 0x0a) ? DOT_CRLF : CRLF_DOT_CRLF;
    this.socket.cork();
    if (n > 0) this.socket.write(body);
    this.socket.write(tail);
    this.socket.uncork();
    return this.next('end of data', this.o.dataTimeoutMs);
  }

  private async hello(): Promise<void> {
    this.write(Buffer.from(`EHLO ${this.o.ehloHostname}\r\n`));
    const ehlo = await this.next('EHLO', this.o.commandTimeoutMs);
    this.extensions = new Set();
    if (is(ehlo, 2)) {
      for (const line of ehlo.lines.slice(1)) this.extensions.add(line.split(' ')[0]!.toUpperCase());
      return;
    }
    if (!is(ehlo, 5)) throw new HostRefused('EHLO', ehlo, this.where);
    // RFC 5321 3.2: a server that does not know EHLO gets HELO.
    const helo = await this.command(`HELO ${this.o.ehloHostname}`);
    if (!is(helo, 2)) throw new HostRefused('HELO', helo, this.where);
  }

  private async startTls(): Promise<void> {
    const { tls: policy } = this.o;
    if (!this.extensions.has('STARTTLS')) {
      throw new DeliveryFailure('tlsNotOffered', `TLS is required, but ${hostText(this.o)} does not offer STARTTLS`, this.where);
    }
    const r = await this.command('STARTTLS');
    if (r.code !== 220) {
      if (policy.mode === 'required') {
        throw new DeliveryFailure('tlsFailed', `STARTTLS refused by ${hostText(this.o)}: ${replyText(r)}`, this.where);
      }
      return; // opportunistic: carry on in plain text
    }
    const verify = policy.mode === 'required' && policy.verify;
    const plain = this.socket;
    plain.off('data', this.onData);
    // RFC 3207 4.2: anything the peer sent after 220 and before the handshake is discarded.
    this.pending = null;
    this.lines = [];
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const t = tls.connect({
        socket: plain,
        ...(net.isIP(this.o.host) === 0 ? { servername: this.o.host } : {}),
        rejectUnauthorized: verify,
        ...(policy.ca !== undefined ? { ca: policy.ca } : {}),
      });
      const onError = (e: Error) => { clearTimeout(timer); reject(e); };
      const timer = setTimeout(() => { t.destroy(); reject(new Error('handshake timed out')); }, this.o.commandTimeoutMs);
      t.once('secureConnect', () => { clearTimeout(timer); t.off('error', onError); resolve(t); });
      t.once('error', onError);
      // A cut (or a destroy) while the handshake runs ends it with the cut's reason.
      this.cutHandshake = (e) => { clearTimeout(timer); t.destroy(); reject(e); };
      if (this.closed !== null) this.cutHandshake(this.closed as DeliveryFailure);
    }).catch((e: Error & { code?: string }) => {
      if (e instanceof DeliveryFailure) throw e;
      throw new DeliveryFailure('tlsFailed', `TLS handshake with ${hostText(this.o)} failed: ${e.code ?? e.message}`, this.where);
    }).finally(() => {
      this.cutHandshake = null;
    });
    this.socket = secure;
    this.secure = true;
    this.authorized = secure.authorized;
    this.attach(secure);
    // RFC 3207 4.2: forget what EHLO said before TLS, ask again.
    await this.hello();
  }

  private attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('error', (e: Error & { code?: string }) => {
      this.fail(new DeliveryFailure('lostConnection', `lost connection with ${hostText(this.o)}: ${e.code ?? e.message}`, this.where));
    });
    socket.on('close', () => {
      this.fail(new DeliveryFailure('lostConnection', `lost connection with ${hostText(this.o)}`, this.where));
    });
  }

  private write(b: Buffer): void {
    if (this.closed !== null) throw this.closed;
    this.commandWrites++;
    this.socket.write(b);
  }

  private async command(line: string, expectClass?: number): Promise<SmtpReply> {
    this.write(Buffer.from(line + '\r\n', 'utf8'));
    const name = line.split(' ')[0]!.replace(/:.*/, '');
    return expectClass === undefined ? this.next(name, this.o.commandTimeoutMs) : this.expect(name, expectClass);
  }

  private async expect(what: string, cls: number): Promise<SmtpReply> {
    const r = await this.next(what, this.o.commandTimeoutMs);
    if (!is(r, cls)) {
      throw new DeliveryFailure('protocolError', `unexpected reply to ${what} from ${hostText(this.o)}: ${replyText(r)}`, this.where);
    }
    return r;
  }

  /** The next reply from the peer, in order. */
  private next(what: string, timeoutMs: number): Promise<SmtpReply> {
    const r = this.replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    if (this.closed !== null) return Promise.reject(this.closedWhile(what));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new DeliveryFailure('lostConnection', `timeout waiting for the reply to ${what} from ${hostText(this.o)}`, this.where));
        this.socket.destroy();
      }, timeoutMs);
      this.waiters.push({
        resolve, timer,
        reject: (e) => reject(e instanceof DeliveryFailure && e.failure === 'lostConnection' && !e.detail.startsWith('timeout') ? this.closedWhile(what) : e),
      });
    });
  }

  private closedWhile(what: string): DeliveryFailure {
    const c = this.closed as DeliveryFailure;
    if (c.detail.startsWith('timeout') || c.failure !== 'lostConnection') return c;
    return new DeliveryFailure('lostConnection', `${c.detail} while waiting for the reply to ${what}`, this.where);
  }

  /** Splits the stream into lines and lines into replies (RFC 5321 4.2: "250-" continues, "250 " ends). */
  private receive(chunk: Buffer): void {
    let buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) break;
      const end = nl > start && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      this.line(buf.toString('utf8', start, end));
      if (this.closed !== null) return;
      start = nl + 1;
    }
    buf = buf.subarray(start);
    this.pending = buf.length > 0 ? Buffer.from(buf) : null;
    if (this.pending !== null && this.pending.length > MAX_PENDING) this.protocolError('a reply line without end');
  }

  private line(text: string): void {
    const m = /^([2-5]\d\d)([ -]|$)(.*)$/.exec(text);
    if (m === null) return this.protocolError(`a malformed reply line "${text.slice(0, 80)}"`);
    this.lines.push(m[3]!);
    if (m[2] === '-') {
      if (this.lines.length > 1000) this.protocolError('a reply of more than 1000 lines');
      return;
    }
    const code = Number(m[1]);
    const reply: SmtpReply = { code, lines: this.lines, enhanced: enhancedOf(code, this.lines[0]!) };
    this.lines = [];
    this.txReplies++;
    if (code === 421) this.goodbye = reply;
    const w = this.waiters.shift();
    if (w === undefined) this.replies.push(reply);
    else {
      clearTimeout(w.timer);
      w.resolve(reply);
    }
  }

  private protocolError(what: string): void {
    this.fail(new DeliveryFailure('protocolError', `${hostText(this.o)} sent ${what}`, this.where));
    this.socket.destroy();
  }

  private fail(err: DeliveryFailure): void {
    if (this.closed !== null) return;
    this.closed = err;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }
}

/** What refused us before any transaction (greeting, EHLO/HELO): the next host may be better. */
export class HostRefused extends Error {
  readonly code = ErrorCode.HOST_REFUSED;
  constructor(readonly stage: string, readonly reply: SmtpReply, readonly where: Where) {
    super(`${stage}: ${replyText(reply)}`);
    this.name = 'HostRefused';
  }
}

const EMPTY = Buffer.alloc(0);

function is(r: SmtpReply, cls: number): boolean {
  return Math.floor(r.code / 100) === cls;
}

/** A 2xx to DATA is not what RFC 5321 allows; a recipient it would decide is retried, not dropped. */
function protocolReply(r: SmtpReply): SmtpReply {
  return { code: 451, enhanced: '4.5.0', lines: [`4.5.0 unexpected reply to DATA: ${replyText(r)}`] };
}

/** RFC 6531 3.4: addresses with non-ASCII characters need the SMTPUTF8 parameter. */
export function needsUtf8(from: string, rcpts: string[]): boolean {
  // eslint-disable-next-line no-control-regex
  const nonAscii = /[^\x00-\x7f]/;
  return nonAscii.test(from) || rcpts.some((r) => nonAscii.test(r));
}

export function hostText(o: { host: string; address: string; port: number }): string {
  const addr = o.address.includes(':') ? `[${o.address}]` : o.address;
  return o.host === o.address ? `${addr}:${o.port}` : `${o.host}[${o.address}]:${o.port}`;
}

function connect(o: SessionOptions): Promise<net.Socket> {
  const signal = o.signal;
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: o.address,
      port: o.port,
      ...(o.localAddress !== null ? { localAddress: o.localAddress } : {}),
    });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(new DeliveryFailure('connectFailed', `connect to ${hostText(o)} timed out`, where));
    }, o.connectTimeoutMs);
    const where = { remoteHost: o.host, remoteAddress: o.address };
    // A cut while the SYN is unanswered: nothing else would end it before the connect timeout.
    const onAbort = () => {
      clearTimeout(timer);
      socket.destroy();
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e: Error & { code?: string }) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(new DeliveryFailure('connectFailed', `connect to ${hostText(o)} failed: ${e.code ?? e.message}`, where));
    });
  });
}
