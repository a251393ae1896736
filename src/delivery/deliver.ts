// The delivery engine of one worker: takes a batch of messages for one (binding, destination
// domain), finds the MX or route, and delivers over a connection from the binding's address.
// Each connection has an id; an idle one is kept for the connection the main thread names in a
// later batch (the main thread's book counts it), and closes on its own after the idle timeout,
// reported through onIdleClosed. Reports one result per recipient;
// deciding what happens next (retry, bounce, done-mark) is the queue manager's job on the main thread.
// Runs on a delivery worker; waits on DNS and sockets only.
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { canonicalAddress, destinationHost, type HostPort } from '../net/address.js';
import { resolveDestination, type Candidate, type DnsResolver } from './mx.js';
import { replyText } from '../smtp/replies.js';
import { cutFailure, DeliveryFailure, localResult, remoteResult, type MessageResult, type RecipientResult, type Where } from './results.js';
import { HostRefused, needsUtf8, SmtpSession, type TlsPolicy } from './session.js';

export interface DeliveryTarget {
  domain: string;
  /** Domain Routes ("host:port"): tried in order instead of the MX. Empty or absent: MX. */
  routes?: HostPort[];
  /** Max_Deliveries_Per_Connection for this (binding, domain); default: the engine's. */
  maxDeliveriesPerConnection?: number;
}

export interface BindingIdentity {
  name: string;
  /** Bind_Address: source address of the connections; null lets the kernel choose. */
  bindAddress: string | null;
  ehloHostname: string;
}

export interface OutboundMessage {
  /** Queue id. */
  id: string;
  /** Envelope sender; '' for the null sender (bounces). */
  from: string;
  /** Envelope recipients, all in the target domain. */
  rcpt: string[];
  /** Wire form as the spool stores it: CRLF, dot-stuffed, without the final ".". Sent as is. */
  body: Buffer;
}

/** pino-compatible. */
export interface DeliveryLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DeliveryEngineOptions {
  /** The node:dns Resolver's settings (servers: "ip" or "ip:port"; default: the system's). */
  resolver?: { servers?: string[]; timeoutMs?: number; tries?: number };
  /** A resolver to use instead of node:dns (tests inject a fake; no test asks real DNS). */
  dns?: DnsResolver;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** Wait for the reply to the end of data; default commandTimeoutMs. */
  dataTimeoutMs?: number;
  /** Max_Deliveries_Per_Connection: transactions per connection before it is closed. */
  maxDeliveriesPerConnection: number;
  /** Recipients per transaction (RFC 5321 4.5.3.1.8: servers take at least 100). Default 100. */
  maxRecipientsPerTransaction?: number;
  /** An idle connection stays in the pool this long for the next batch. Default 5000; 0: no pool. */
  idleTimeoutMs?: number;
  /** Port of MX hosts. Default 25; tests use another. */
  mxPort?: number;
  /** Addresses tried per batch over all MX hosts (Postfix's smtp_mx_address_limit). Default 5. */
  maxAddresses?: number;
  /** An idle connection closed on its own (idle timeout, peer hangup, abortFrom, close()): its
   *  id, called after its socket closed. Not for those closeIdle() closes (it answers for them). */
  onIdleClosed?: (id: number) => void;
  logger: DeliveryLogger;
}

/** A batch's results and what it left open. Every connection it closed is closed (the socket's
 *  'close' seen) before this is sent. */
export interface BatchOutcome {
  results: MessageResult[];
  /** The connection it keeps idle for the main thread to hand on (id, transactions done). */
  kept: { id: number; deliveries: number } | null;
  /** Connections it opened. */
  opened: number;
}

/** Which connection a batch may use: the idle one named (`conn`) and how many it may open. */
export interface ConnUse {
  conn: number | null;
  mayOpen: number;
}

export type { TlsPolicy } from './session.js';
export type { MessageResult, RecipientResult } from './results.js';

export interface DeliveryStats {
  connectionsOpened: number;
  connectionsReused: number;
  transactions: number;
  idle: number;
  /** Connections being opened now (connect, greeting, EHLO, STARTTLS). */
  opening: number;
}

interface IdleSession {
  id: number;
  key: string;
  session: SmtpSession;
  timer: NodeJS.Timeout;
}

/** The connections one deliver() call has used (one array per call, never per message). */
interface CallConns {
  /** null: the engine's own reuse of any idle connection with the pool key (direct callers). */
  use: ConnUse | null;
  /** The named idle connection was looked at already. */
  namedTaken: boolean;
  opened: number;
  /** Every connection it used: each not kept is closed (and its close awaited) before it returns. */
  used: SmtpSession[];
  kept: SmtpSession | null;
}

/** Connection ids: unique in the thread (a replaced engine's connections keep theirs). */
let nextConnId = 1;

/** One deliver() call in progress: abortFrom finds it by its source address and aborts it. */
interface Running {
  bindAddress: string | null;
  /** One per call (a call uses one connection at a time), never one per message. */
  ctl: AbortController;
  /** The connection it uses now, if any. */
  session: SmtpSession | null;
}

const NOWHERE: Where = { remoteHost: null, remoteAddress: null };

export class DeliveryEngine {
  private readonly dns: DnsResolver;
  /** Idle connections by id. */
  private readonly idle = new Map<number, IdleSession>();
  /** The id and pool key of each connection we opened. */
  private readonly meta = new WeakMap<SmtpSession, { id: number; key: string }>();
  /** Every open connection, idle or in use (for abortFrom). */
  private readonly open = new Set<SmtpSession>();
  /** Every deliver() call in progress (for abortFrom), whatever it is doing. */
  private readonly running = new Set<Running>();
  private closed = false;
  private readonly counters = { connectionsOpened: 0, connectionsReused: 0, transactions: 0, opening: 0 };

  constructor(private readonly o: DeliveryEngineOptions) {
    if (o.maxDeliveriesPerConnection < 1) throw new RangeError('maxDeliveriesPerConnection must be at least 1');
    if (o.dns !== undefined) this.dns = o.dns;
    else {
      const r = new Resolver({ timeout: o.resolver?.timeoutMs ?? 5000, tries: o.resolver?.tries ?? 2 });
      if (o.resolver?.servers !== undefined && o.resolver.servers.length > 0) r.setServers(o.resolver.servers);
      this.dns = r;
    }
  }

  stats(): DeliveryStats {
    return { ...this.counters, idle: this.idle.size };
  }

  /** deliver() calls in progress. */
  get busy(): number {
    return this.running.size;
  }

  /** Delivers `messages` (all for `target.domain`) one after the other over one connection at a
   *  time; run several calls at once for parallel connections. Never rejects for a delivery
   *  problem: every recipient gets a result. */
  async deliver(binding: BindingIdentity, target: DeliveryTarget, tls: TlsPolicy, messages: OutboundMessage[]): Promise<MessageResult[]> {
    return (await this.run(binding, target, tls, messages, null)).results;
  }

  /** deliver() for the queue: uses the idle connection `use.conn` names (if still good), opens at
   *  most `use.mayOpen`, and says which connection it keeps idle. Every other connection it used
   *  is closed, its socket's close seen, before this resolves. */
  async run(binding: BindingIdentity, target: DeliveryTarget, tls: TlsPolicy, messages: OutboundMessage[], use: ConnUse | null): Promise<BatchOutcome> {
    const out: MessageResult[] = messages.map((m) => ({ id: m.id, results: [], localAddress: null }));
    const conns: CallConns = { use, namedTaken: false, opened: 0, used: [], kept: null };
    if (this.closed) {
      for (let i = 0; i < messages.length; i++) out[i]!.results = messages[i]!.rcpt.map((r) => localResult(r, 'shuttingDown', 'delivery engine shutting down', NOWHERE));
      // The named connection is this engine's no more (close() closed it and reported it).
      return { results: out, kept: null, opened: 0 };
    }
    // Registered before the first await: a cut that arrives after this call started reaches it.
    const run: Running = { bindAddress: binding.bindAddress, ctl: new AbortController(), session: null };
    this.running.add(run);
    try {
      await this.send(run, conns, binding, target, tls, messages, out);
    } finally {
      this.running.delete(run);
    }
    const k = conns.kept;
    if (k === null && !conns.namedTaken && use !== null && use.conn !== null) {
      // Never reached a connection (DNS failed, a cut while resolving): the named one is still
      // idle here, and the main thread counts it again.
      return { results: out, kept: this.idleConn(use.conn), opened: conns.opened };
    }
    return { results: out, kept: k === null ? null : { id: this.meta.get(k)!.id, deliveries: k.deliveries }, opened: conns.opened };
  }

  /** Idle connection `id` (its transactions done so far), or null when it is not idle here. */
  idleConn(id: number): { id: number; deliveries: number } | null {
    const e = this.idle.get(id);
    return e === undefined ? null : { id, deliveries: e.session.deliveries };
  }

  private async send(run: Running, conns: CallConns, binding: BindingIdentity, target: DeliveryTarget, tls: TlsPolicy, messages: OutboundMessage[], out: MessageResult[]): Promise<MessageResult[]> {
    const signal = run.ctl.signal;
    const failAll = (from: number, f: (rcpt: string) => RecipientResult) => {
      for (let i = from; i < messages.length; i++) out[i]!.results = messages[i]!.rcpt.map(f);
    };
    /** abortFrom cut this call (or `why`: a throttle held its next connection): message i's
     *  recipients from `start` on (`results` holds the earlier ones) and every later message end
     *  as 'bindingMoved' ('throttled'), untried from here on. */
    const cutRest = (i: number, start: number, results: Map<string, RecipientResult> | null, where: Where, why?: DeliveryFailure): MessageResult[] => {
      const reason = why ?? (signal.reason as DeliveryFailure);
      const f = (r: string) => localResult(r, reason.failure, reason.detail, where);
      for (let k = i; k < messages.length; k++) {
        const m = messages[k]!;
        if (k === i && results !== null) {
          for (let j = start; j < m.rcpt.length; j++) results.set(m.rcpt[j]!, f(m.rcpt[j]!));
          out[k]!.results = m.rcpt.map((r) => results.get(r)!);
        } else out[k]!.results = m.rcpt.map(f);
        out[k]!.cut = true;
      }
      return out;
    };
    const family = binding.bindAddress === null ? 0 : (net.isIP(binding.bindAddress) as 4 | 6);
    let candidates: Candidate[];
    try {
      candidates = await untilAborted(resolveDestination(target.domain, target.routes, this.dns, {
        family, port: this.o.mxPort ?? 25, limit: this.o.maxAddresses ?? 5,
      }), signal);
    } catch (err) {
      // The named connection stays idle (the main thread still counts it); none was used.
      if (signal.aborted) return cutRest(0, 0, null, NOWHERE);
      if (!(err instanceof DeliveryFailure)) throw err;
      failAll(0, (r) => localResult(r, err.failure, err.detail, err.where));
      return out;
    }
    // What the destination is, for MX rollup on the main thread: one array for the whole batch.
    const mx = [...new Set(candidates.map((c) => destinationHost(c.host, c.port)))].sort();
    for (const o of out) o.mx = mx;

    let session: SmtpSession | null = null;
    const limit = Math.max(1, target.maxDeliveriesPerConnection ?? this.o.maxDeliveriesPerConnection);
    const perTx = Math.max(1, this.o.maxRecipientsPerTransaction ?? 100);
    try {
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!;
        const results = new Map<string, RecipientResult>();
        for (let start = 0; start < m.rcpt.length; start += perTx) {
          const rcpts = m.rcpt.slice(start, start + perTx);
          // Try the transaction; a reused connection the peer closed meanwhile gets one fresh retry.
          for (let attempt = 0; ; attempt++) {
            if (signal.aborted) return cutRest(i, start, results, session?.where ?? NOWHERE);
            if (session !== null && (session.deliveries >= limit || !session.reusable)) {
              await this.finish(session);
              session = null;
              run.session = null;
            }
            if (session === null) {
              try {
                session = await this.acquire(binding, candidates, tls, limit, signal, conns);
                run.session = session;
              } catch (err) {
                if (signal.aborted) return cutRest(i, start, results, NOWHERE);
                if (err instanceof DeliveryFailure && err.failure === 'throttled') return cutRest(i, start, results, NOWHERE, err);
                // No host took us: this message's remaining recipients and all later messages wait.
                const f = this.failureOf(err);
                for (const r of m.rcpt.slice(start)) results.set(r, f(r));
                out[i]!.results = m.rcpt.map((r) => results.get(r)!);
                failAll(i + 1, f);
                return out;
              }
            }
            const fresh = session.deliveries === 0;
            out[i]!.localAddress = session.localAddress;
            if (needsUtf8(m.from, rcpts) && !session.extensions.has('SMTPUTF8')) {
              for (const r of rcpts) {
                results.set(r, localResult(r, 'utf8NotOffered', `${session.where.remoteHost} does not offer SMTPUTF8 for non-ASCII addresses`, session.where));
              }
              break;
            }
            const cur: SmtpSession = session;
            try {
              this.counters.transactions++;
              const { replies, lost } = await cur.transaction(m.from, rcpts, m.body);
              const where = cur.where;
              // null: the connection failed before the peer decided this recipient (`lost` says how).
              rcpts.forEach((r, k) => {
                const reply = replies[k] ?? null;
                results.set(r, reply !== null ? remoteResult(r, reply, where) : localResult(r, lost!.failure, lost!.detail, lost!.where));
              });
              if (lost !== null) {
                // The peer answered part of it and the connection is gone: no retry (no duplicates).
                session = null;
                run.session = null;
                cur.destroy();
                if (signal.aborted) return cutRest(i, start + rcpts.length, results, where);
              }
              break;
            } catch (err) {
              if (!(err instanceof DeliveryFailure)) throw err;
              const s = cur;
              session = null;
              run.session = null;
              s.destroy();
              if (signal.aborted) return cutRest(i, start, results, s.where);
              // A pooled connection the peer had closed: it answered nothing, so nothing can have
              // been accepted; one retry on a new connection (never after a reply: no duplicates).
              if (!fresh && attempt === 0 && err.failure === 'lostConnection' && !s.answeredInTransaction) continue;
              for (const r of rcpts) results.set(r, localResult(r, err.failure, err.detail, err.where));
              break;
            }
          }
        }
        out[i]!.results = m.rcpt.map((r) => results.get(r)!);
      }
      return out;
    } finally {
      if (session !== null) conns.kept = this.release(session, limit);
      await this.shutAll(conns);
    }
  }

  /**
   * Cuts every delivery from `localAddress` at once, whatever it is doing: this node no longer
   * holds that address (its DuraVIP moved), so nothing sent from it can complete. A deliver() call
   * from it that is resolving, connecting, waiting for the greeting, in EHLO/STARTTLS or in a
   * transaction returns now: every recipient without a reply of the peer's is deferred with
   * 'bindingMoved' (4.4.2) and its message marked `cut` (the queue counts no attempt and sends it
   * on from the new owner); later messages of the batch are not tried. Idle pooled connections from
   * the address close; so do connections the kernel gave that source (a binding without an
   * address), whose call goes on from another. Returns the deliveries and idle connections cut.
   */
  abortFrom(localAddress: string): number {
    const a = canonicalAddress(localAddress) ?? localAddress;
    const from = (x: string | null) => x !== null && (x === localAddress || canonicalAddress(x) === a);
    const reason = cutFailure(localAddress);
    let n = 0;
    const theirs = new Set<SmtpSession>();
    for (const run of this.running) {
      if (!from(run.bindAddress)) continue;
      n++;
      if (run.session !== null) theirs.add(run.session);
      run.ctl.abort(reason);
    }
    for (const s of [...this.open]) {
      if (!from(s.localAddress)) continue;
      if (!theirs.has(s)) n++;
      s.cut(reason);
    }
    return n;
  }

  /** Closes idle connections (QUIT) and refuses new work; connections in use close when done. */
  async close(): Promise<void> {
    this.closed = true;
    const all: Promise<void>[] = [];
    // Left in the map: each reports itself closed (onIdleClosed) when its socket is.
    for (const { session, timer } of this.idle.values()) {
      clearTimeout(timer);
      all.push(this.shut(session));
    }
    await Promise.all(all);
  }

  /** Closes these idle connections now (the main thread needs their room); resolves with the ids
   *  it closed, once their sockets are closed. Ids not idle here (in use, gone) are left out. */
  async closeIdle(ids: readonly number[]): Promise<number[]> {
    const done: number[] = [];
    const all: Promise<void>[] = [];
    for (const id of ids) {
      const e = this.idle.get(id);
      if (e === undefined) continue;
      this.unidle(e);
      done.push(id);
      all.push(this.shut(e.session));
    }
    await Promise.all(all);
    return done;
  }

  /** Whether `id` is one of this engine's idle connections. */
  hasIdle(id: number): boolean {
    return this.idle.has(id);
  }

  private failureOf(err: unknown): (rcpt: string) => RecipientResult {
    if (err instanceof DeliveryFailure) return (r) => localResult(r, err.failure, err.detail, err.where);
    if (err instanceof HostRefused) {
      // A 5xx greeting or EHLO is about the host, not the recipient: defer (Postfix's
      // smtp_skip_5xx_greeting), keeping what the peer said.
      return (r) => ({ ...remoteResult(r, err.reply, err.where), status: 'deferred' });
    }
    throw err;
  }

  /** An idle pooled connection to the first candidate that has one, else a new connection to the
   *  first candidate that works. Throws the last candidate's failure. */
  private async acquire(binding: BindingIdentity, candidates: Candidate[], tls: TlsPolicy, limit: number, signal: AbortSignal, conns: CallConns): Promise<SmtpSession> {
    const s = conns.use === null ? this.takeAny(binding, candidates, tls, limit) : this.takeNamed(binding, candidates, tls, limit, conns);
    if (s !== null) {
      this.counters.connectionsReused++;
      conns.used.push(s);
      return s;
    }
    // One connection per call at a time: the last one is closed before another opens.
    await this.shutAll(conns);
    if (conns.use !== null && conns.opened >= conns.use.mayOpen) {
      throw new DeliveryFailure('throttled', 'held by a connection limit or throttle: no new connection allowed for this batch now', NOWHERE);
    }
    let last: unknown = null;
    for (const c of candidates) {
      this.counters.opening++;
      try {
        const s = await SmtpSession.open({
          host: c.host, address: c.address, port: c.port,
          localAddress: binding.bindAddress, ehloHostname: binding.ehloHostname, tls,
          connectTimeoutMs: this.o.connectTimeoutMs, commandTimeoutMs: this.o.commandTimeoutMs,
          dataTimeoutMs: this.o.dataTimeoutMs ?? this.o.commandTimeoutMs, signal,
        });
        this.counters.connectionsOpened++;
        conns.opened++;
        conns.used.push(s);
        const id = nextConnId++;
        this.meta.set(s, { id, key: poolKey(binding, c, tls) });
        this.open.add(s);
        s.onClose(() => this.onClosed(s, id));
        this.o.logger.debug({ binding: binding.name, host: c.host, address: c.address, port: c.port, local: s.localAddress, tls: s.secure, pipelining: s.pipelining }, 'delivery connection open');
        return s;
      } catch (err) {
        // Cut: the next candidate would be from the same address.
        if (signal.aborted) throw err;
        this.o.logger.debug({ binding: binding.name, host: c.host, address: c.address, port: c.port, err: describe(err) }, 'delivery connection failed');
        last = err;
      } finally {
        this.counters.opening--;
      }
    }
    throw last;
  }

  /** Direct callers (no main thread book): any idle connection to a candidate, as a pool. */
  private takeAny(binding: BindingIdentity, candidates: Candidate[], tls: TlsPolicy, limit: number): SmtpSession | null {
    for (const c of candidates) {
      const key = poolKey(binding, c, tls);
      for (const e of this.idle.values()) {
        if (e.key !== key) continue;
        this.unidle(e);
        if (e.session.reusable && e.session.deliveries < limit) return e.session;
        e.session.destroy();
      }
    }
    return null;
  }

  /** The idle connection the batch names, if it is still good and leads to one of the batch's
   *  candidates; else it is the batch's to close (acquire closes it before opening another). */
  private takeNamed(binding: BindingIdentity, candidates: Candidate[], tls: TlsPolicy, limit: number, conns: CallConns): SmtpSession | null {
    if (conns.namedTaken || conns.use === null || conns.use.conn === null) return null;
    conns.namedTaken = true;
    const e = this.idle.get(conns.use.conn);
    if (e === undefined) return null;
    this.unidle(e);
    if (e.session.reusable && e.session.deliveries < limit) {
      for (const c of candidates) if (poolKey(binding, c, tls) === e.key) return e.session;
    }
    conns.used.push(e.session);
    return null;
  }

  /** Keeps `session` idle for a later batch (the one it returns), or null: it is closed then. */
  private release(session: SmtpSession, limit: number): SmtpSession | null {
    const m = this.meta.get(session);
    const idleMs = this.o.idleTimeoutMs ?? 5000;
    if (this.closed || m === undefined || idleMs <= 0 || !session.reusable || session.deliveries >= limit) return null;
    const entry: IdleSession = { id: m.id, key: m.key, session, timer: setTimeout(() => void session.quit(), idleMs) };
    entry.timer.unref();
    this.idle.set(m.id, entry);
    return session;
  }

  private unidle(e: IdleSession): void {
    clearTimeout(e.timer);
    this.idle.delete(e.id);
  }

  /** A connection's socket closed: if it was idle, it closed on its own (timeout, peer, cut). */
  private onClosed(s: SmtpSession, id: number): void {
    this.open.delete(s);
    const e = this.idle.get(id);
    if (e === undefined || e.session !== s) return;
    this.unidle(e);
    this.o.onIdleClosed?.(id);
  }

  /** QUIT (its reply waited for briefly), then the socket's close, bounded by the command timeout. */
  private async shut(s: SmtpSession): Promise<void> {
    await s.quit();
    await s.whenClosed(this.o.commandTimeoutMs);
  }

  /** Closes every connection the call used but keeps (each at most once) and waits for them. */
  private async shutAll(conns: CallConns): Promise<void> {
    if (conns.used.length === 0) return;
    const closing: Promise<void>[] = [];
    for (const s of conns.used) if (s !== conns.kept) closing.push(this.shut(s));
    conns.used.length = 0;
    if (conns.kept !== null) conns.used.push(conns.kept);
    await Promise.all(closing);
  }

  private async finish(session: SmtpSession): Promise<void> {
    await session.quit();
  }
}

/** Connections are shared only between batches with the same source, EHLO name, peer and TLS policy. */
function poolKey(b: BindingIdentity, c: Candidate, tls: TlsPolicy): string {
  return [b.name, b.bindAddress ?? '', b.ehloHostname, c.host, c.address, c.port, tls.mode, tls.verify ? 'v' : '-'].join('\0');
}

/** `p`, or the signal's reason as soon as it is aborted (a DNS query cannot be cancelled alone). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e as Error); },
    );
  });
}

function describe(err: unknown): string {
  if (err instanceof HostRefused) return `${err.stage}: ${replyText(err.reply)}`;
  return err instanceof Error ? err.message : String(err);
}
