// The delivery engine of one worker: takes a batch of messages for one (binding, destination
// domain), finds the MX or route, and delivers over a connection from the binding's address,
// reusing idle connections per (binding, host) across batches. Reports one result per recipient;
// deciding what happens next (retry, bounce, done-mark) is the queue manager's job on the main thread.
// Runs on a delivery worker; waits on DNS and sockets only.
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import type { HostPort } from '../net/address.js';
import { resolveDestination, type Candidate, type DnsResolver } from './mx.js';
import { replyText } from '../smtp/replies.js';
import { DeliveryFailure, localResult, remoteResult, type MessageResult, type RecipientResult, type Where } from './results.js';
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
}

interface IdleSession {
  session: SmtpSession;
  timer: NodeJS.Timeout;
}

export class DeliveryEngine {
  private readonly dns: DnsResolver;
  private readonly idle = new Map<string, IdleSession[]>();
  /** The pool key of each connection we opened. */
  private readonly keys = new WeakMap<SmtpSession, string>();
  /** Every open connection, idle or in use (for abortFrom). */
  private readonly open = new Set<SmtpSession>();
  private closed = false;
  private readonly counters = { connectionsOpened: 0, connectionsReused: 0, transactions: 0 };

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

  /** Delivers `messages` (all for `target.domain`) one after the other over one connection at a
   *  time; run several calls at once for parallel connections. Never rejects for a delivery
   *  problem: every recipient gets a result. */
  async deliver(binding: BindingIdentity, target: DeliveryTarget, tls: TlsPolicy, messages: OutboundMessage[]): Promise<MessageResult[]> {
    const out: MessageResult[] = messages.map((m) => ({ id: m.id, results: [], localAddress: null }));
    const nowhere: Where = { remoteHost: null, remoteAddress: null };
    const failAll = (from: number, f: (rcpt: string) => RecipientResult) => {
      for (let i = from; i < messages.length; i++) out[i]!.results = messages[i]!.rcpt.map(f);
    };
    if (this.closed) {
      failAll(0, (r) => localResult(r, 'shuttingDown', 'delivery engine shutting down', nowhere));
      return out;
    }
    const family = binding.bindAddress === null ? 0 : (net.isIP(binding.bindAddress) as 4 | 6);
    let candidates: Candidate[];
    try {
      candidates = await resolveDestination(target.domain, target.routes, this.dns, {
        family, port: this.o.mxPort ?? 25, limit: this.o.maxAddresses ?? 5,
      });
    } catch (err) {
      if (!(err instanceof DeliveryFailure)) throw err;
      failAll(0, (r) => localResult(r, err.failure, err.detail, err.where));
      return out;
    }

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
            if (session !== null && (session.deliveries >= limit || !session.reusable)) {
              await this.finish(session);
              session = null;
            }
            if (session === null) {
              try {
                session = await this.acquire(binding, candidates, tls, limit);
              } catch (err) {
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
            try {
              this.counters.transactions++;
              const { replies } = await session.transaction(m.from, rcpts, m.body);
              rcpts.forEach((r, k) => results.set(r, remoteResult(r, replies[k]!, session!.where)));
              break;
            } catch (err) {
              if (!(err instanceof DeliveryFailure)) throw err;
              const s: SmtpSession = session;
              session = null;
              s.destroy();
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
   * Cuts every connection from `localAddress`, idle or in use: this node no longer holds that
   * address (its DuraVIP moved), so nothing sent from it can complete. Transactions in flight end
   * as lost connections (deferred, never counted as delivered). Returns how many were cut.
   */
  abortFrom(localAddress: string): number {
    let n = 0;
    for (const s of [...this.open]) {
      if (s.localAddress !== localAddress) continue;
      s.destroy();
      n++;
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
  private async acquire(binding: BindingIdentity, candidates: Candidate[], tls: TlsPolicy, limit: number): Promise<SmtpSession> {
    for (const c of candidates) {
      const s = this.take(poolKey(binding, c, tls), limit);
      if (s !== null) {
        this.counters.connectionsReused++;
        return s;
      }
    }
    let last: unknown = null;
    for (const c of candidates) {
      try {
        const s = await SmtpSession.open({
          host: c.host, address: c.address, port: c.port,
          localAddress: binding.bindAddress, ehloHostname: binding.ehloHostname, tls,
          connectTimeoutMs: this.o.connectTimeoutMs, commandTimeoutMs: this.o.commandTimeoutMs,
          dataTimeoutMs: this.o.dataTimeoutMs ?? this.o.commandTimeoutMs,
        });
        this.counters.connectionsOpened++;
        this.keys.set(s, poolKey(binding, c, tls));
        this.open.add(s);
        s.onClose(() => this.open.delete(s));
        this.o.logger.debug({ binding: binding.name, host: c.host, address: c.address, port: c.port, local: s.localAddress, tls: s.secure, pipelining: s.pipelining }, 'delivery connection open');
        return s;
      } catch (err) {
        this.o.logger.debug({ binding: binding.name, host: c.host, address: c.address, port: c.port, err: describe(err) }, 'delivery connection failed');
        last = err;
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

function describe(err: unknown): string {
  if (err instanceof HostRefused) return `${err.stage}: ${replyText(err.reply)}`;
  return err instanceof Error ? err.message : String(err);
}
