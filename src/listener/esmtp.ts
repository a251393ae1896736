// One ESMTP listener in one worker: smtp-server parsing the dialogue on a socket fd this worker
// owns; relay policy at RCPT; DATA streamed chunk by chunk into the spool and answered 250 only
// once the group commit holding it is on disk. Counts sessions so a drain can tell idle sessions to
// go (421) while transactions in flight finish. Guards against abuse at connect and AUTH
// (connections per client network and Concurrency across workers, connections per client, AUTH
// failures), on one timer (the command and data deadlines) and for bodies over 64 KiB only
// (Max_Body_Memory: their client waits while memory is short); never per DATA chunk of a small
// body. Runs on a worker thread; must not block.
import fs from 'node:fs';
import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerAuthenticationResponse, SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import type { Logger } from 'pino';
import { errorCode } from '../errors.js';
import { RelayPolicy } from '../policy/relay.js';
import type { AcceptedMessage } from '../message/accepted.js';
import { encodeEnvelope, type SpoolEnvelope } from '../message/envelope.js';
import { Authenticator } from './auth.js';
import { AuthFailures, authFailureDelay, ConnectionsPerClient } from './client-limits.js';
import { SessionCount } from './session-count.js';
import { DrainFlag } from './drain-flag.js';
import { InboundCount } from './inbound-count.js';
import { CidrTable } from '../net/cidr.js';
import { BodyMemory, FREE_BYTES, type BodyLease } from './body-memory.js';
import { checkInterval, deadlinePassed, type DeadlineLimits } from './deadlines.js';
import { FastSmtpStream } from './smtp-stream.js';
import { mailParams, mailRefusal, rcptRefusal } from './params.js';
import { DataScanner, MAX_HOPS, MAX_LINE } from './data-scanner.js';
import { receivedHeader } from '../smtp/headers.js';
import { REPLIES, replyError } from '../smtp/replies.js';
import { refusal, VipSmtpServer, type RefusingSession } from './smtp-connection.js';
import { receptionPayload, rejectionOf } from '../events/build.js';
import { encodeEvent } from '../events/codec.js';
import type { NewEvent } from '../events/records.js';
import type { ListenerSpec } from './spec.js';

/** Where accepted messages go: the spool's writer as seen from a worker. */
export interface MessageSink {
  begin(): MessageInProgress;
}
export interface MessageInProgress {
  append(chunk: Buffer): void;
  /** Durable when it resolves, with `event` (the reception record) in the same group commit.
   *  Rejects with code ERR_SPOOL_FULL when the disk (or the event journal's cap) is full. */
  commit(envelope: Buffer, event?: Buffer): Promise<{ id: string; size: number }>;
  abort(): void;
}

export interface EsmtpListenerOptions {
  spec: ListenerSpec;
  hostname: string;
  logger: Logger;
  sink: MessageSink | null;
  onAccept: () => void;
  onMessage: (m: AcceptedMessage) => void;
  onError: (err: Error) => void;
  /** Every 4xx/5xx reply to a client, as a rejection record (src/events/). */
  onRejection?: (r: NewEvent) => void;
  /** The clock of the per-client tables (tests inject one). */
  now?: () => number;
  /** This worker's slot in spec.sessions (its worker id). */
  workerSlot?: number;
}

/** The listener options a worker reads (validated by the config schema on the main thread). */
interface ListenerOptionValues {
  Hostname?: string;
  Max_Message_Size: number;
  Max_Recipients: number;
  Concurrency: number;
  Max_Connections_Per_Client: number;
  Timeout: number;
  Command_Deadline: number;
  Max_Junk_Commands: number;
  Data_Deadline: number;
  Min_Data_Rate: number;
  Pipelining: boolean;
  Enable_8bitmime: boolean;
  Smtputf8: boolean;
  TLS_Certificate?: string;
  TLS_Key?: string;
  Auth_Users?: Record<string, string>;
  Max_Auth_Failures: number;
  Max_Auth_Failures_Per_Client: number;
  Auth_Failure_Window: number;
  Auth_Failure_Delay: number;
  Relay_Hosts: string[];
}

// smtp-server keeps its live connections in a Set on the server; we reach into it only to tell idle
// sessions to leave during a drain (smtp-server itself would wait for them until closeTimeout).
interface ConnectionLike {
  id: string;
  remoteAddress: string;
  _parser: unknown;
  send(code: number, text: string): void;
  close(): void;
}

export class EsmtpListener {
  private readonly server: VipSmtpServer;
  private readonly inTransaction = new Map<string, MessageInProgress>();
  /** Whether each open session's client address may relay, decided once at connect. */
  private readonly relayBySession = new Map<string, boolean>();
  private readonly relay: RelayPolicy;
  private readonly auth: Authenticator;
  /** Failed AUTH attempts per open session, and per client address within Auth_Failure_Window. */
  private readonly authFailsBySession = new Map<string, number>();
  private readonly authFails: AuthFailures;
  /** Open sessions per client address outside Relay_Hosts, in this worker. */
  private readonly perClient = new ConnectionsPerClient();
  /** Open sessions on this listener across workers (Concurrency), when the host shares a count. */
  private readonly sessions: SessionCount | null;
  /** The node is drained (`cluster drain`): new sessions are refused, sessions open finish. */
  private readonly drainFlag: DrainFlag | null;
  /** Inbound_Cidr networks (most specific wins) and their counters across workers; null: none. */
  private readonly networks: CidrTable | null;
  private readonly inbound: InboundCount[];
  /** Memory for bodies in flight across listeners and workers, when the host shares a budget. */
  private readonly body: BodyMemory | null;
  /** Bodies over FREE_BYTES and what they hold, by session id. */
  private readonly leases = new Map<string, BodyLease>();
  private readonly deadlines: DeadlineLimits;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private readonly o: ListenerOptionValues;
  private readonly name: string;
  private readonly disabled: string[];
  private readonly mailParams: ReadonlySet<string>;
  private closing = false;
  private closed: Promise<number> | null = null;
  private resolveClosed: (cutOff: number) => void = () => undefined;
  private deadline: NodeJS.Timeout | null = null;
  private deadlineAt = Infinity;
  private cut = 0;

  constructor(private readonly opts: EsmtpListenerOptions) {
    const o = opts.spec.options as unknown as ListenerOptionValues;
    this.o = o;
    this.name = o.Hostname ?? opts.hostname;
    this.relay = new RelayPolicy(o.Relay_Hosts ?? []);
    this.auth = new Authenticator(o.Auth_Users ?? {});
    this.sessions = opts.spec.sessions !== undefined ? new SessionCount(opts.spec.sessions, opts.workerSlot ?? 0) : null;
    this.drainFlag = opts.spec.drained !== undefined ? new DrainFlag(opts.spec.drained) : null;
    const inbound = opts.spec.inbound ?? [];
    this.networks = inbound.length > 0 ? new CidrTable(inbound.map((n) => n.cidr)) : null;
    this.inbound = inbound.map((n) => new InboundCount(n.count, opts.workerSlot ?? 0));
    this.body = opts.spec.bodies !== undefined ? new BodyMemory(opts.spec.bodies, opts.workerSlot ?? 0) : null;
    this.deadlines = { commandMs: o.Command_Deadline ?? 60_000, dataMs: o.Data_Deadline ?? 300_000, minDataRate: o.Min_Data_Rate ?? 10_240 };
    this.authFails = new AuthFailures(o.Auth_Failure_Window ?? 600_000, 4096, opts.now);
    const tls = o.TLS_Certificate !== undefined && o.TLS_Key !== undefined;
    const disabled: string[] = [];
    if (!tls) disabled.push('STARTTLS');
    if (!this.auth.enabled) disabled.push('AUTH');
    this.disabled = disabled;
    this.mailParams = mailParams(o);
    const serverOptions: SMTPServerOptions = {
      name: this.name,
      banner: 'vipmta', // smtp-server writes '220 <name> ESMTP <banner>'
      logger: false,
      disableReverseLookup: true,
      hideENHANCEDSTATUSCODES: false,
      hidePIPELINING: !o.Pipelining,
      hide8BITMIME: !o.Enable_8bitmime,
      hideSMTPUTF8: !o.Smtputf8,
      size: o.Max_Message_Size,
      // With a shared count, onConnect enforces Concurrency across workers; else smtp-server per worker.
      maxClients: this.sessions === null ? o.Concurrency : 0,
      socketTimeout: o.Timeout,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: true,
      // AUTH only over TLS (RFC 4954 4: plain-text mechanisms need a protected channel).
      allowInsecureAuth: false,
      disabledCommands: disabled,
      ...(tls ? { key: fs.readFileSync(o.TLS_Key!), cert: fs.readFileSync(o.TLS_Certificate!) } : {}),
      onConnect: (session, cb) => this.onConnect(session, cb),
      onSecure: (_socket, session, cb) => {
        // TLS is up: AUTH may now be offered (EHLO after STARTTLS lists it).
        session.disabledCommands = [...this.disabled];
        cb();
      },
      onAuth: (auth, session, cb) => void this.onAuth(auth, session, cb),
      onMailFrom: (address, session, cb) => this.onMailFrom(address, session, cb),
      onRcptTo: (address, session, cb) => this.onRcptTo(address, session, cb),
      onData: (stream, session, cb) => this.onData(stream, session, cb),
      onClose: (session) => this.onClose(session),
    };
    this.server = new VipSmtpServer(serverOptions, opts.now, {
      maxJunkCommands: o.Max_Junk_Commands ?? 100,
      onJunkLimit: (client) => {
        this.opts.logger.info({ listener: opts.spec.name, client, limit: o.Max_Junk_Commands }, 'too many junk commands: session closed');
        this.body?.count('junkCommands');
        const r = REPLIES.tooManyJunkCommands;
        return { code: r.code, text: `${r.enhanced} ${this.name} ${r.text.slice(r.enhanced.length + 1)}` };
      },
      // Replies of 400 and up only: nothing on the DATA path of a message that is accepted.
      ...(opts.onRejection !== undefined ? { onReject: (c: RefusingSession, code: number, text: string) => opts.onRejection!(rejectionOf(refusal(c, opts.spec.name), code, text)) } : {}),
    });
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
        if (this.deadlineTimer === null) {
          this.deadlineTimer = setInterval(() => this.checkDeadlines(), checkInterval(this.deadlines));
          this.deadlineTimer.unref();
        }
        net.on('error', (err: Error) => this.opts.onError(err));
        resolve();
      });
    });
  }

  /**
   * Stops accepting; idle sessions get 421 4.3.2 at once (RFC 5321 3.8), a session inside DATA
   * finishes its message (its 250 goes out once the commit is on disk) and gets 421 at its next
   * command (smtp-server answers every command so while its server closes). What is still open
   * after graceMs is cut off. Resolves with how many were. A second call returns the same promise
   * and brings the deadline forward if its grace ends sooner (a worker's drain during a reload's).
   */
  close(graceMs: number): Promise<number> {
    const ms = Math.max(1, graceMs);
    if (this.closed === null) {
      this.closing = true;
      // smtp-server has a deadline of its own; ours comes first, so the cut sessions are counted.
      (this.server.options as SMTPServerOptions & { closeTimeout?: number }).closeTimeout = ms + 1_000;
      this.closed = new Promise((resolve) => {
        this.resolveClosed = resolve;
        this.server.close(() => this.settleClose());
      });
      for (const c of this.connections()) this.sayGoodbyeIfIdle(c);
    }
    const at = Date.now() + ms;
    if (at < this.deadlineAt) {
      this.deadlineAt = at;
      if (this.deadline !== null) clearTimeout(this.deadline);
      this.deadline = setTimeout(() => this.cutOff(), ms);
      this.deadline.unref();
    }
    return this.closed;
  }

  private connections(): Set<ConnectionLike> {
    return (this.server as unknown as { connections: Set<ConnectionLike> }).connections;
  }

  private cutOff(): void {
    const conns = this.connections();
    this.cut = conns.size;
    for (const c of [...conns]) {
      c.send(421, '4.3.2 Service shutting down, closing transmission channel');
      c.close();
    }
    this.settleClose();
  }

  private settleClose(): void {
    if (this.deadline !== null) clearTimeout(this.deadline);
    this.deadline = null;
    if (this.deadlineTimer !== null) clearInterval(this.deadlineTimer);
    this.deadlineTimer = null;
    this.resolveClosed(this.cut);
  }

  /**
   * Every few hundred ms (deadlines.ts checkInterval): a session past its command or data deadline,
   * or waiting for body memory longer than Timeout, is answered 421 and closed. One scan of the open
   * sessions, nothing per byte.
   */
  private checkDeadlines(): void {
    const now = Date.now();
    const holdMs = this.o.Timeout;
    for (const c of [...this.connections()]) {
      const p = c._parser;
      if (!(p instanceof FastSmtpStream)) continue;
      const kind = p.heldSince > 0 && now - p.heldSince > holdMs ? 'memory' : deadlinePassed(p, now, this.deadlines);
      if (kind === null) continue;
      const client = c.remoteAddress;
      if (kind === 'memory') {
        // Our shortage, not the client's fault: WARN, the operator may want a larger Max_Body_Memory.
        this.opts.logger.warn({ listener: this.opts.spec.name, client, waitedMs: now - p.heldSince }, 'no body memory in time: session closed');
        this.body?.count('memoryTimeouts');
        const r = REPLIES.bodyMemoryBusy;
        c.send(r.code, r.text);
      } else {
        const data = kind === 'data';
        this.opts.logger.info(
          { listener: this.opts.spec.name, client, ...(data ? { bytes: p.dataBytes, ms: now - p.dataSince } : { ms: now - p.commandSince }) },
          data ? 'data deadline exceeded' : 'command deadline exceeded',
        );
        this.body?.count(data ? 'dataDeadline' : 'commandDeadline');
        const r = REPLIES.deadlineExceeded;
        c.send(r.code, `${r.enhanced} ${this.name} ${r.text.slice(r.enhanced.length + 1)}`);
      }
      c.close();
    }
  }

  private sayGoodbyeIfIdle(c: ConnectionLike): void {
    if (this.inTransaction.has(c.id)) return;
    c.send(421, '4.3.2 Service shutting down, closing transmission channel');
    c.close();
  }

  private onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    if (this.closing) {
      cb(replyError('shuttingDown'));
      return;
    }
    if (this.drainFlag?.drained === true) {
      // RFC 5321 3.8 (421 closes the channel) / RFC 3463 X.3.2: system not accepting messages.
      const err = new Error(`4.3.2 ${this.name} draining, try another server`) as Error & { responseCode: number };
      err.responseCode = 421;
      cb(err);
      return;
    }
    // Cluster_Max_Inbound_Connections: the client's most specific Inbound_Cidr, whoever it is
    // (Relay_Hosts too: the operator named the network). Policy, so INFO, not an error.
    const net = this.networks === null ? -1 : this.networks.match(session.remoteAddress);
    if (net >= 0 && !this.inbound[net]!.tryOpen()) {
      this.opts.logger.info({ listener: this.opts.spec.name, client: session.remoteAddress, cidr: this.opts.spec.inbound![net]!.cidr }, 'too many connections from client network');
      cb(this.tooManyFromNetwork());
      return;
    }
    const relay = this.relay.allows(session.remoteAddress);
    // Slow clients holding sessions (issue 12 section 4): a client outside Relay_Hosts gets a share,
    // not the listener; injectors in Relay_Hosts are exempt as Postfix exempts $mynetworks.
    if (!relay && !this.perClient.tryOpen(session.remoteAddress, this.o.Max_Connections_Per_Client ?? 20)) {
      if (net >= 0) this.inbound[net]!.close();
      this.opts.logger.info({ listener: this.opts.spec.name, client: session.remoteAddress }, 'too many connections from client');
      cb(replyError('tooManyFromClient'));
      return;
    }
    if (this.sessions !== null && !this.sessions.tryOpen(this.o.Concurrency)) {
      if (net >= 0) this.inbound[net]!.close();
      if (!relay) this.perClient.close(session.remoteAddress);
      cb(replyError('tooManyClients'));
      return;
    }
    this.opts.onAccept();
    this.relayBySession.set(session.id, relay);
    // RFC 4954 4: PLAIN and LOGIN are not offered on an unprotected channel, not even in EHLO.
    if (!session.secure && this.auth.enabled) session.disabledCommands = [...this.disabled, 'AUTH'];
    cb();
  }

  /** 421 4.7.0 with the listener's name (RFC 3463 X.7.0: other security or policy status). */
  private tooManyFromNetwork(): Error {
    const err = new Error(`4.7.0 ${this.name} too many connections from your network, try again later`) as Error & { responseCode: number };
    err.responseCode = 421;
    return err;
  }

  private async onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    cb: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
  ): Promise<void> {
    const client = session.remoteAddress;
    const perClient = this.o.Max_Auth_Failures_Per_Client ?? 10;
    // A client past its failures in the window is not even checked: guessing stops here.
    if (this.authFails.count(client) >= perClient) {
      this.opts.logger.warn({ listener: this.opts.spec.name, client }, 'authentication refused: too many failures from this client');
      this.cutSession(session.id, 'authTooManyFailures');
      return;
    }
    const user = auth.username ?? '';
    const ok = auth.method === 'PLAIN' || auth.method === 'LOGIN' ? await this.auth.check(user, auth.password ?? '') : false;
    if (ok) {
      cb(null, { user });
      return;
    }
    const onSession = (this.authFailsBySession.get(session.id) ?? 0) + 1;
    this.authFailsBySession.set(session.id, onSession);
    const fromClient = this.authFails.fail(client);
    this.opts.logger.warn({ listener: this.opts.spec.name, client, user, failures: fromClient }, 'authentication failed');
    // RFC 4954 14: slow guessing down; the delay grows with the client's failures in the window.
    const last = onSession >= (this.o.Max_Auth_Failures ?? 3) || fromClient >= perClient;
    const answer = (): void => {
      if (last) this.cutSession(session.id, 'authTooManyFailures');
      else cb(replyError('authFailed'));
    };
    const delay = authFailureDelay(fromClient, this.o.Auth_Failure_Delay ?? 1_000);
    if (delay > 0) setTimeout(answer, delay).unref();
    else answer();
  }

  /** Answers the session's pending command with the reply (a 421) and closes its connection. */
  private cutSession(id: string, reply: 'authTooManyFailures'): void {
    const r = REPLIES[reply];
    for (const c of this.connections()) {
      if (c.id !== id) continue;
      c.send(r.code, r.text);
      c.close();
      return;
    }
  }

  private onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const refused = mailRefusal(address, session.envelope.smtpUtf8 === true, this.mailParams);
    cb(refused === null ? undefined : replyError(refused));
  }

  private onRcptTo(rcpt: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const address = rcpt.address;
    const refused = rcptRefusal(rcpt, session.envelope.smtpUtf8 === true);
    if (refused !== null) {
      cb(replyError(refused));
      return;
    }
    if (session.user === undefined && this.relayBySession.get(session.id) !== true) {
      this.opts.logger.info({ listener: this.opts.spec.name, client: session.remoteAddress, rcpt: address }, 'relay denied');
      cb(replyError('relayDenied'));
      return;
    }
    if (session.envelope.rcptTo.length >= this.o.Max_Recipients) {
      cb(replyError('tooManyRecipients'));
      return;
    }
    cb();
  }

  private onClose(session: SMTPServerSession): void {
    // Only a session onConnect accepted has an entry; only one outside Relay_Hosts was counted.
    const relay = this.relayBySession.get(session.id);
    if (relay === false) this.perClient.close(session.remoteAddress);
    if (relay !== undefined) {
      this.sessions?.close();
      // The same table as at connect: the client matches the network it was counted under.
      const net = this.networks === null ? -1 : this.networks.match(session.remoteAddress);
      if (net >= 0) this.inbound[net]!.close();
    }
    this.relayBySession.delete(session.id);
    this.authFailsBySession.delete(session.id);
    this.releaseBody(session.id);
    // The client went away in the middle of DATA: nothing of that message is kept.
    const m = this.inTransaction.get(session.id);
    if (m !== undefined) {
      this.inTransaction.delete(session.id);
      m.abort();
    }
  }

  /** Gives back what the session's body held, if it was over FREE_BYTES; a waiter of it stops waiting. */
  private releaseBody(id: string): void {
    const lease = this.leases.get(id);
    if (lease === undefined) return;
    this.leases.delete(id);
    lease.release();
  }

  private parserOf(id: string): FastSmtpStream | null {
    for (const c of this.connections()) if (c.id === id) return c._parser instanceof FastSmtpStream ? c._parser : null;
    return null;
  }

  /**
   * The body of session `id` needs more memory than the budget has now: stop reading it (the
   * parser, then the socket, fill up and pause) until a release lets the lease cover `size()`;
   * then `resume` takes the chunk held back. The client is not charged the wait (data deadline).
   */
  private holdBody(id: string, stream: SMTPServerDataStream, lease: BodyLease, size: () => number, resume: () => void): void {
    const body = this.body!;
    stream.pause();
    const parser = this.parserOf(id);
    parser?.hold();
    this.opts.logger.debug({ listener: this.opts.spec.name, session: id, bytes: size() }, 'body waits for memory');
    body.wait(() => {
      if (this.leases.get(id) !== lease) return true; // the session went away meanwhile
      if (!lease.cover(size())) return false;
      parser?.release();
      resume();
      stream.resume();
      return true;
    });
  }

  private onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void): void {
    const sink = this.opts.sink;
    if (sink === null) {
      stream.resume();
      stream.on('end', () => cb(replyError('localError')));
      return;
    }
    const arrival = Date.now();
    const msg = sink.begin();
    this.inTransaction.set(session.id, msg);
    const rcpts = session.envelope.rcptTo.map((r) => r.address);
    const max = this.o.Max_Message_Size;
    const scanner = new DataScanner();
    let size = 0;
    let tooBig = false;
    let lease: BodyLease | null = null;
    const received = Buffer.from(
      receivedHeader({
        helo: session.hostNameAppearsAs ?? '',
        remoteAddress: session.remoteAddress,
        hostname: this.name,
        secure: session.secure,
        authenticated: session.user !== undefined,
        recipient: rcpts.length === 1 ? rcpts[0]! : null,
        date: new Date(arrival),
      }),
      'latin1',
    );
    msg.append(received);
    // Hot path: every chunk goes to the native spool buffer as it arrives, never joined here. A body
    // up to FREE_BYTES costs one comparison more; a larger one a lease (Max_Body_Memory).
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (tooBig) return;
      if (size > max) {
        tooBig = true;
        return;
      }
      if (size > FREE_BYTES && this.body !== null) {
        if (lease === null) this.leases.set(session.id, (lease = this.body.lease(max)));
        if (!lease.cover(size)) {
          // Closures only on this rare path: the chunk is taken once memory is there.
          this.holdBody(session.id, stream, lease, () => size, () => {
            scanner.scan(chunk);
            msg.append(chunk);
          });
          return;
        }
      }
      scanner.scan(chunk);
      msg.append(chunk);
    });
    stream.on('error', () => {
      this.inTransaction.delete(session.id);
      this.releaseBody(session.id);
      msg.abort();
    });
    stream.on('end', () => {
      scanner.finish();
      const refuse = tooBig || stream.sizeExceeded ? 'messageTooBig'
        : scanner.longestLine > MAX_LINE ? 'lineTooLong'
        : scanner.hops >= MAX_HOPS ? 'tooManyHops'
        : null;
      if (refuse !== null) {
        this.inTransaction.delete(session.id);
        this.releaseBody(session.id);
        msg.abort();
        cb(replyError(refuse));
        return;
      }
      const envelope: SpoolEnvelope = {
        v: 1,
        from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
        rcpt: rcpts,
        arrival,
        client: session.remoteAddress,
        helo: session.hostNameAppearsAs ?? '',
        user: session.user ?? null,
        tls: session.secure,
        listener: this.opts.spec.name,
        headers: scanner.headers,
      };
      // The reception record goes to the event journal in the same group commit: on disk when the
      // 250 goes out (docs/events.md). Its queue id is the one the commit assigns (in the frame).
      msg.commit(encodeEnvelope(envelope), encodeEvent(receptionPayload(envelope, received.length + size))).then(
        ({ id, size: stored }) => {
          this.inTransaction.delete(session.id);
          this.releaseBody(session.id);
          this.opts.onMessage({ id, size: stored, arrival, from: envelope.from, rcpt: rcpts, headers: scanner.headers, listener: envelope.listener, client: envelope.client });
          cb(null, `2.0.0 Ok: queued as ${id}`);
        },
        (err: unknown) => {
          this.inTransaction.delete(session.id);
          this.releaseBody(session.id);
          if (errorCode(err) === 'ERR_SPOOL_FULL') {
            // Per message at debug only: the host reads the spool's counters and logs the state once.
            this.opts.logger.debug({ listener: this.opts.spec.name }, 'spool full: refused a message with 452 4.3.1');
            cb(replyError('spoolFull'));
          } else {
            this.opts.logger.error({ err, listener: this.opts.spec.name }, 'spool commit failed');
            cb(replyError('localError'));
          }
        },
      );
    });
  }
}
