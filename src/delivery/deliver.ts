// The delivery engine of one worker: takes a batch of messages for one (binding, destination
// domain), finds the MX or route, and delivers over a connection from the binding's address,
// reusing idle connections per (binding, host) across batches. Reports one result per recipient;
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
  logger: DeliveryLogger;
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
  session: SmtpSession;
  timer: NodeJS.Timeout;
}

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
  private readonly idle = new Map<string, IdleSession[]>();
  /** The pool key of each connection we opened. */
  private readonly keys = new WeakMap<SmtpSession, string>();
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
    let idle = 0;
    for (const l of this.idle.values()) idle += l.length;
    return { ...this.counters, idle };
  }

  /** deliver() calls in progress. */
  get busy(): number {
    return this.running.size;
  }

  /** Delivers `messages` (all for `target.domain`) one after the other over one connection at a
   *  time; run several calls at once for parallel connections. Never rejects for a delivery
   *  problem: every recipient gets a result. */
  async deliver(binding: BindingIdentity, target: DeliveryTarget, tls: TlsPolicy, messages: OutboundMessage[]): Promise<MessageResult[]> {
    const out: MessageResult[] = messages.map((m) => ({ id: m.id, results: [], localAddress: null }));
    if (this.closed) {
      for (let i = 0; i < messages.length; i++) out[i]!.results = messages[i]!.rcpt.map((r) => localResult(r, 'shuttingDown', 'delivery engine shutting down', NOWHERE));
      return out;
    }
    // Registered before the first await: a cut that arrives after this call started reaches it.
    const run: Running = { bindAddress: binding.bindAddress, ctl: new AbortController(), session: null };
    this.running.add(run);
    try {
      return await this.send(run, binding, target, tls, messages, out);
    } finally {
      this.running.delete(run);
    }
  }

  private async send(run: Running, binding: BindingIdentity, target: DeliveryTarget, tls: TlsPolicy, messages: OutboundMessage[], out: MessageResult[]): Promise<MessageResult[]> {
    const signal = run.ctl.signal;
    const failAll = (from: number, f: (rcpt: string) => RecipientResult) => {
      for (let i = from; i < messages.length; i++) out[i]!.results = messages[i]!.rcpt.map(f);
    };
    /** abortFrom cut this call: message i's recipients from `start` on (`results` holds the
     *  earlier ones) and every later message end as 'bindingMoved', untried from here on. */
    const cutRest = (i: number, start: number, results: Map<string, RecipientResult> | null, where: Where): MessageResult[] => {
      const reason = signal.reason as DeliveryFailure;
      const f = (r: string) => localResult(r, 'bindingMoved', reason.detail, where);
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
                session = await this.acquire(binding, candidates, tls, limit, signal);
                run.session = session;
              } catch (err) {
                if (signal.aborted) return cutRest(i, start, results, NOWHERE);
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
      if (session !== null) this.release(session, limit);
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
    for (const list of this.idle.values()) {
      for (const { session, timer } of list) {
        clearTimeout(timer);
        all.push(session.quit());
      }
    }
    this.idle.clear();
    await Promise.all(all);
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
  private async acquire(binding: BindingIdentity, candidates: Candidate[], tls: TlsPolicy, limit: number, signal: AbortSignal): Promise<SmtpSession> {
    for (const c of candidates) {
      const s = this.take(poolKey(binding, c, tls), limit);
      if (s !== null) {
        this.counters.connectionsReused++;
        return s;
      }
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
        this.keys.set(s, poolKey(binding, c, tls));
        this.open.add(s);
        s.onClose(() => this.open.delete(s));
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

  private take(key: string, limit: number): SmtpSession | null {
    const list = this.idle.get(key);
    while (list !== undefined && list.length > 0) {
      const { session, timer } = list.pop()!;
      clearTimeout(timer);
      if (list.length === 0) this.idle.delete(key);
      if (session.reusable && session.deliveries < limit) return session;
      session.destroy();
    }
    return null;
  }

  private release(session: SmtpSession, limit: number): void {
    const key = this.keys.get(session);
    const idleMs = this.o.idleTimeoutMs ?? 5000;
    if (this.closed || key === undefined || idleMs <= 0 || !session.reusable || session.deliveries >= limit) {
      void session.quit();
      return;
    }
    const entry: IdleSession = {
      session,
      timer: setTimeout(() => {
        this.drop(key, entry);
        void session.quit();
      }, idleMs),
    };
    entry.timer.unref();
    // A peer that hangs up on an idle connection (421 on its timeout) takes it out of the pool.
    session.onClose(() => this.drop(key, entry));
    const list = this.idle.get(key) ?? [];
    list.push(entry);
    this.idle.set(key, list);
  }

  private drop(key: string, entry: IdleSession): void {
    clearTimeout(entry.timer);
    const list = this.idle.get(key);
    const k = list?.indexOf(entry) ?? -1;
    if (k >= 0) list!.splice(k, 1);
    if (list?.length === 0) this.idle.delete(key);
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
