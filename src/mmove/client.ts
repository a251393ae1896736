// The sending end of ECmmove2: moves a batch of spooled messages to the node that owns their
// binding's address, over pooled, authenticated connections to its ECCluster_Listener. Per
// connection, transactions are pipelined back to back (MAIL, RCPT, BDAT LAST + body, next MAIL
// ...; RFC 2920 + RFC 3030), so the receiver's group commit covers many of them; a message
// counts as moved only when its own 250 arrived. Usable on any thread (a worker in the daemon,
// the main thread in tests and the benchmark); never blocks except the one spool read per message.
import net from 'node:net';
import tls from 'node:tls';
import { ErrorCode, VipError } from '../errors.js';
import { clientTlsOptions } from './tls.js';
import type { MoveMeta } from '../message/envelope.js';
import { announceCommand, EHLO_KEYWORD, mailCommand, parseChallenge, unstuff } from './wire.js';

/** Where a body comes from: the spool (Spool or attachSpoolReader); wire form, one read. */
export interface BodyReader {
  read(id: string): Buffer;
  /** Optional: the body into the start of `buf` if it fits, returning its length either way
   *  (larger than buf.length: nothing read). With it the client reuses its read buffers. */
  readInto?(id: string, buf: Buffer): number;
}

export interface MmovePeer {
  host: string;
  port: number;
  /** Local address to connect from (the cluster link's); the kernel chooses when omitted. */
  localAddress?: string;
}

/** One queued message to move, with the retry state that must survive the move. */
export interface MmoveItem {
  /** Queue id in this node's spool. */
  id: string;
  from: string;
  rcpt: string[];
  binding: string;
  bindingGroup: string;
  /** First acceptance, ms since the epoch. */
  arrival: number;
  attempts: number;
  /** ms since the epoch; 0: as soon as possible. */
  nextAttempt: number;
  /** Moves made before this one (0 for a message injected here). */
  hops: number;
  /** The node that first accepted it; this node when omitted. */
  originNode?: string;
  /** Held by the operator: it stays held on the receiver (a drained node moves its held mail). */
  held?: boolean;
}

export interface MmoveResult {
  id: string;
  /** True only after the receiver's 250 for this message: the caller may mark it done. */
  ok: boolean;
  /** The reply that decided (the first non-2xx of the transaction), 0 when there was none
   *  (connection lost, not sent, body unreadable): then the message must stay. */
  code: number;
  text: string;
  /** The receiver had it already (a retry after a lost 250) and did not spool it again. */
  duplicate: boolean;
}

export interface MmoveClientOptions {
  /** This node's Nodename: announced, and the receiver's duplicate key with the queue id. */
  nodeName: string;
  secret: string;
  reader: BodyReader;
  /** Connections per peer a batch is spread over (Mmove_Connections). Default 4. */
  connectionsPerPeer?: number;
  /** Messages sent on one connection whose final reply is still outstanding. Default 256. */
  maxInFlight?: number;
  connectTimeoutMs?: number;
  /** No reply for this long while replies are outstanding: the connection is dropped. */
  replyTimeoutMs?: number;
  /** Idle pooled connections are closed (QUIT) after this long. Default 30 s. */
  idleMs?: number;
  /** EHLO name; defaults to nodeName. */
  heloName?: string;
  /** Mmove_TLS: TLS-PSK keyed by `secret` (tls.ts) around every connection. Default false. */
  tls?: boolean;
}

export interface MmoveClientStats {
  connectionsOpened: number;
  open: number;
  moved: number;
  movedBytes: number;
  duplicates: number;
  failed: number;
}

type ResolvedOptions = Required<Omit<MmoveClientOptions, 'heloName'>> & { heloName: string };

/** A reply: code and the text of its last line (with the enhanced code). */
interface Reply {
  code: number;
  text: string;
}

export class MmoveClient {
  private readonly pools = new Map<string, Connection[]>();
  private readonly o: ResolvedOptions;
  private closed = false;
  readonly counters: MmoveClientStats = { connectionsOpened: 0, open: 0, moved: 0, movedBytes: 0, duplicates: 0, failed: 0 };

  constructor(opts: MmoveClientOptions) {
    this.o = {
      connectionsPerPeer: 4,
      maxInFlight: 256,
      connectTimeoutMs: 10_000,
      replyTimeoutMs: 60_000,
      idleMs: 30_000,
      heloName: opts.nodeName,
      tls: false,
      ...opts,
    };
    if (!(this.o.connectionsPerPeer >= 1)) throw new RangeError('connectionsPerPeer must be >= 1');
  }

  /**
   * Moves `items` to `peer` and resolves with one result per item, in the same order. Never
   * rejects for a per-message or connection failure: those come back as ok: false (code 0 when
   * no reply decided), and the caller keeps those messages for a later retry.
   */
  async send(peer: MmovePeer, items: MmoveItem[]): Promise<MmoveResult[]> {
    if (this.closed) throw new VipError(ErrorCode.SHUTTING_DOWN, 'mmove client is closed');
    if (items.length === 0) return [];
    const results = new Array<MmoveResult>(items.length);
    // Contiguous slices, one per connection: a small batch uses fewer connections.
    const n = Math.min(this.o.connectionsPerPeer, Math.ceil(items.length / 16));
    const per = Math.ceil(items.length / n);
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const slice = items.slice(i * per, (i + 1) * per);
        const out = await this.sendOn(peer, i, slice);
        for (let j = 0; j < out.length; j++) results[i * per + j] = out[j]!;
      }),
    );
    for (const r of results) {
      if (r.ok) {
        if (r.duplicate) this.counters.duplicates++;
      } else this.counters.failed++;
    }
    return results;
  }

  /**
   * Drops every connection to `peer` (it left the cluster). A machine that died sends no RST:
   * without this, moves in flight to it would wait for the reply timeout. They end now as not
   * sent (code 0), so the caller can move them to the new owner. Returns how many were open.
   */
  drop(peer: MmovePeer, reason: string): number {
    const key = `${peer.host}:${peer.port}`;
    const pool = this.pools.get(key);
    if (pool === undefined) return 0;
    this.pools.delete(key);
    let n = 0;
    for (const c of pool) {
      if (c === undefined || !c.alive) continue;
      c.abort(new VipError(ErrorCode.DELIVERY, `mmove: ${reason}`));
      n++;
    }
    return n;
  }

  stats(): MmoveClientStats {
    let open = 0;
    for (const p of this.pools.values()) open += p.filter((c) => c !== undefined && c.alive).length;
    return { ...this.counters, open };
  }

  /** Closes every pooled connection (QUIT when idle). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.pools.values()].flat().filter((c) => c !== undefined);
    this.pools.clear();
    await Promise.all(all.map((c) => c.quit()));
  }

  private async sendOn(peer: MmovePeer, slot: number, items: MmoveItem[]): Promise<MmoveResult[]> {
    const key = `${peer.host}:${peer.port}`;
    let pool = this.pools.get(key);
    if (pool === undefined) this.pools.set(key, (pool = []));
    let conn = pool[slot];
    if (conn === undefined || !conn.alive) {
      conn = new Connection(this.o, peer, this.counters);
      pool[slot] = conn;
      this.counters.connectionsOpened++;
    }
    return conn.enqueue(items);
  }
}

/** Queued bytes after which a corked connection is flushed (several small messages per writev). */
const FLUSH_BYTES = 256 * 1024;

const notSent = (id: string, why: string): MmoveResult => ({ id, ok: false, code: 0, text: why, duplicate: false });

/** One pooled connection: handshake once, then jobs one after another, each fully pipelined. */
class Connection {
  alive = true;
  private readonly sock: net.Socket;
  private ready: Promise<void>;
  private chain: Promise<unknown> = Promise.resolve();
  private partial = '';
  private lines: string[] = [];
  private readonly waiters: ((r: Reply | Error) => void)[] = [];
  private deadError: Error | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly pool = new BufferPool();
  /** The receiver's greeting arrived (TLS, if on, is up): mismatches fail before this. */
  private greeted = false;

  constructor(
    private readonly o: ResolvedOptions,
    peer: MmovePeer,
    private readonly counters: MmoveClientStats,
  ) {
    const local = peer.localAddress !== undefined ? { localAddress: peer.localAddress } : {};
    if (o.tls) {
      this.sock = tls.connect({ host: peer.host, port: peer.port, ...local, ...clientTlsOptions(o.secret, o.nodeName) });
      this.sock.setNoDelay(true);
    } else {
      this.sock = net.connect({ host: peer.host, port: peer.port, noDelay: true, ...local });
    }
    const where = `${peer.host}:${peer.port}`;
    // Before the greeting a silent or closing peer is most likely one that disagrees about
    // Mmove_TLS (a TLS receiver waits for a ClientHello a plain client never sends): say so.
    const hint = (): string =>
      this.greeted ? '' : o.tls ? ' (TLS refused: Mmove_TLS off there, or a different Cluster_Secret?)' : ' before its greeting (Mmove_TLS on there and off here?)';
    this.sock.setTimeout(o.connectTimeoutMs, () => this.die(new VipError(ErrorCode.DELIVERY, `mmove: no answer from ${where} within ${o.connectTimeoutMs} ms${hint()}`)));
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (err) => this.die(this.greeted || !o.tls ? err : tlsFailure(where, err)));
    this.sock.on('close', () => this.die(new VipError(ErrorCode.DELIVERY, `mmove: connection closed by ${this.greeted ? 'the peer' : where}${hint()}`)));
    this.ready = this.handshake(peer);
    this.ready.catch(() => undefined);
  }

  enqueue(items: MmoveItem[]): Promise<MmoveResult[]> {
    this.clearIdle();
    const job = this.chain.then(() => this.run(items));
    this.chain = job.catch(() => undefined).then(() => this.armIdle());
    return job;
  }

  quit(): Promise<void> {
    this.clearIdle();
    return this.chain.then(async () => {
      if (!this.alive) return;
      try {
        this.sock.write('QUIT\r\n');
        await this.next();
      } catch {
        /* closing anyway */
      }
      this.alive = false;
      this.sock.destroy();
    });
  }

  private armIdle(): void {
    if (!this.alive) return;
    this.idleTimer = setTimeout(() => void this.quit(), this.o.idleMs);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private async handshake(peer: MmovePeer): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.sock.once(this.o.tls ? 'secureConnect' : 'connect', resolve);
      // die() ran first (the constructor's listeners): reject with its explained error.
      this.sock.once('close', () => reject(this.deadError ?? new VipError(ErrorCode.DELIVERY, 'mmove: connection closed')));
    });
    const greeting = await this.next();
    this.greeted = true;
    const challenge = parseChallenge(greeting.text);
    if (greeting.code !== 220 || challenge === null) throw this.refused(peer, 'greeting', greeting);
    this.sock.write(`EHLO ${this.o.heloName}\r\n`);
    const ehlo = await this.next();
    if (ehlo.code !== 250) throw this.refused(peer, 'EHLO', ehlo);
    const kw = ehlo.text.toUpperCase();
    for (const k of [EHLO_KEYWORD, 'PIPELINING', 'CHUNKING']) {
      if (!new RegExp(`(^|\\n)250[ -]${k}\\b`).test(kw)) throw this.refused(peer, `EHLO (no ${k})`, ehlo);
    }
    this.sock.write(announceCommand(this.o.nodeName, this.o.secret, challenge) + '\r\n');
    const ann = await this.next();
    if (ann.code !== 235) throw this.refused(peer, 'XMMOVE', ann);
    this.sock.setTimeout(this.o.replyTimeoutMs, () => {
      if (this.waiters.length > 0) this.die(new VipError(ErrorCode.DELIVERY, `mmove: no reply within ${this.o.replyTimeoutMs} ms`));
    });
  }

  private refused(peer: MmovePeer, stage: string, r: Reply): Error {
    const err = new VipError(ErrorCode.HOST_REFUSED, `mmove: ${peer.host}:${peer.port} refused ${stage}: ${r.code} ${lastLine(r.text)}`);
    (err as VipError & { reply?: Reply }).reply = r;
    this.die(err);
    return err;
  }

  /**
   * Sends every item pipelined and collects each one's final reply. Writes are coalesced: the
   * socket stays corked while messages are queued and is flushed every FLUSH_BYTES and whenever
   * this loop waits (for the kernel to take data, or for replies), so many small messages leave
   * in one writev instead of one system call each. Replies are counted with plain callbacks, no
   * Promise per reply.
   */
  private async run(items: MmoveItem[]): Promise<MmoveResult[]> {
    try {
      await this.ready;
    } catch (err) {
      const r = (err as { reply?: Reply }).reply;
      return items.map((it) => ({ id: it.id, ok: false, code: r?.code ?? 0, text: r !== undefined ? lastLine(r.text) : (err as Error).message, duplicate: false }));
    }
    const results = new Array<MmoveResult>(items.length);
    let inFlight = 0;
    let wake: (() => void) | null = null;
    const settle = (): void => {
      inFlight--;
      const w = wake;
      wake = null;
      w?.();
    };
    const sock = this.sock;
    let corked = false;
    const uncork = (): void => {
      if (corked) {
        corked = false;
        sock.uncork();
      }
    };
    try {
      for (let i = 0; i < items.length; i++) {
        const it = items[i]!;
        if (!this.alive) {
          results[i] = notSent(it.id, this.deadError?.message ?? 'mmove: connection lost');
          continue;
        }
        let wire: Buffer;
        let pooled: Buffer | null = null;
        try {
          if (this.o.reader.readInto !== undefined) {
            pooled = this.pool.take(0);
            let n = this.o.reader.readInto(it.id, pooled);
            if (n > pooled.length) {
              this.pool.give(pooled);
              pooled = this.pool.take(n);
              n = this.o.reader.readInto(it.id, pooled);
            }
            wire = pooled.subarray(0, n);
          } else {
            wire = this.o.reader.read(it.id);
          }
        } catch (err) {
          if (pooled !== null) this.pool.give(pooled);
          results[i] = notSent(it.id, `mmove: cannot read the body: ${(err as Error).message}`);
          continue;
        }
        const { pieces, length } = unstuff(wire);
        const wireLength = wire.length;
        const meta: MoveMeta = {
          binding: it.binding,
          bindingGroup: it.bindingGroup,
          originalId: it.id,
          originNode: it.originNode ?? this.o.nodeName,
          arrival: it.arrival,
          attempts: it.attempts,
          nextAttempt: it.nextAttempt,
          hops: it.hops,
          ...(it.held === true ? { held: true } : {}),
        };
        let head = mailCommand(it.from, length, meta) + '\r\n';
        for (const r of it.rcpt) head += `RCPT TO:<${r}>\r\n`;
        head += `BDAT ${length} LAST\r\n`;
        // Register the replies before writing: a fast receiver may answer within this turn.
        this.expect(it.rcpt.length + 2, (final, ok, err) => {
          if (err !== null) {
            results[i] = notSent(it.id, `mmove: no final reply (${err.message}); the message stays here`);
          } else {
            const text = lastLine(final!.text);
            if (ok) {
              this.counters.moved++;
              this.counters.movedBytes += wireLength;
            }
            results[i] = { id: it.id, ok, code: final!.code, text, duplicate: ok && text.includes('(duplicate)') };
          }
          settle();
        });
        inFlight++;
        if (!corked) {
          corked = true;
          sock.cork();
        }
        sock.write(head, 'latin1');
        for (let k = 0; k < pieces.length - 1; k++) sock.write(pieces[k]!);
        // The buffer goes back to the pool once the kernel has the last piece (writes complete
        // in order); on a dead connection the callback may never come and it is just dropped.
        const buf = pooled;
        sock.write(pieces[pieces.length - 1]!, buf === null ? undefined : (err) => {
          if (err == null) this.pool.give(buf);
        });
        if (sock.writableLength >= FLUSH_BYTES) {
          uncork();
          if (sock.writableNeedDrain && this.alive) await this.drained();
        }
        if (inFlight >= this.o.maxInFlight) {
          uncork();
          while (inFlight >= this.o.maxInFlight) await new Promise<void>((resolve) => (wake = resolve));
        }
      }
    } finally {
      uncork();
    }
    while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve));
    return results;
  }

  private drained(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.sock.off('drain', done);
        this.sock.off('close', done);
        resolve();
      };
      this.sock.on('drain', done);
      this.sock.on('close', done);
    });
  }

  /**
   * Registers the next `n` replies as one transaction: `cb` gets the first non-2xx reply (or the
   * last one when all were 2xx) once all n arrived, or the error when the connection dies first.
   */
  private expect(n: number, cb: (final: Reply | null, ok: boolean, err: Error | null) => void): void {
    if (this.deadError !== null) return cb(null, false, this.deadError);
    let left = n;
    let bad: Reply | null = null;
    let failed = false;
    const one = (r: Reply | Error): void => {
      if (failed) return;
      if (r instanceof Error) {
        failed = true;
        return cb(null, false, r);
      }
      if (bad === null && (r.code < 200 || r.code >= 300)) bad = r;
      if (--left === 0) cb(bad ?? r, bad === null, null);
    };
    for (let k = 0; k < n; k++) this.waiters.push(one);
  }

  /** The next complete reply (FIFO); rejects when the connection dies first. */
  private next(): Promise<Reply> {
    if (this.deadError !== null) return Promise.reject(this.deadError);
    return new Promise((resolve, reject) => {
      this.waiters.push((r) => (r instanceof Error ? reject(r) : resolve(r)));
    });
  }

  private onData(d: Buffer): void {
    const s = this.partial + d.toString('latin1');
    let start = 0;
    for (let nl = s.indexOf('\n'); nl >= 0; nl = s.indexOf('\n', start)) {
      const line = s.slice(start, nl > start && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl);
      start = nl + 1;
      this.lines.push(line);
      // RFC 5321 4.2.1: "ddd-" continues a reply, "ddd " (or "ddd") ends it.
      if (line.length >= 3 && line[3] !== '-') {
        const code = Number(line.slice(0, 3));
        const text = this.lines.join('\n');
        this.lines = [];
        const w = this.waiters.shift();
        if (w !== undefined) w({ code: Number.isInteger(code) ? code : 0, text });
      }
    }
    this.partial = s.slice(start);
  }

  /** Ends the connection now; outstanding messages come back as not sent. */
  abort(err: Error): void {
    this.die(err);
  }

  private die(err: Error): void {
    if (this.deadError !== null) return;
    this.alive = false;
    this.deadError = err;
    this.clearIdle();
    this.sock.destroy();
    for (const w of this.waiters.splice(0)) w(err);
  }
}

/**
 * Read buffers a connection reuses: power-of-two sizes from 64 KiB, at most POOL_BYTES kept. A
 * fresh Buffer per message would be external memory V8 counts towards its next full GC: at
 * 64 KiB a message that was one major GC every few hundred messages (about a third of the
 * sender's CPU in its GC threads). One thread (the connection's).
 */
class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private bytes = 0;

  take(min: number): Buffer {
    const size = Math.max(MIN_POOLED, 2 ** Math.ceil(Math.log2(Math.max(1, min))));
    const list = this.free.get(size);
    const b = list?.pop();
    if (b !== undefined) {
      this.bytes -= b.length;
      return b;
    }
    return Buffer.allocUnsafeSlow(size);
  }

  give(b: Buffer): void {
    if (this.bytes + b.length > POOL_BYTES) return;
    let list = this.free.get(b.length);
    if (list === undefined) this.free.set(b.length, (list = []));
    list.push(b);
    this.bytes += b.length;
  }
}
const MIN_POOLED = 64 * 1024;
const POOL_BYTES = 8 * 1024 * 1024;

/** A TLS error before the greeting, with what it most likely means for the cluster config. */
function tlsFailure(where: string, err: Error & { code?: string }): Error {
  const code = err.code ?? '';
  if (!code.startsWith('ERR_SSL') && !code.startsWith('ERR_TLS') && code !== 'ECONNRESET') return err; // ECONNREFUSED etc.: as they are
  const why = /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE|UNKNOWN_PROTOCOL/.test(code)
    ? 'the peer answered in plain text: Mmove_TLS is off there'
    : /BAD_RECORD_MAC|DECRYPT_ERROR|DECRYPTION_FAILED|CIPHER_OPERATION_FAILED/.test(code)
      ? 'the pre-shared keys differ: a different Cluster_Secret there'
      : code === 'ECONNRESET'
        ? 'reset during the TLS handshake: Mmove_TLS off there, or a different Cluster_Secret?'
        : 'Mmove_TLS and Cluster_Secret must be the same on every node';
  return new VipError(ErrorCode.DELIVERY, `mmove: TLS handshake with ${where} failed (${code || err.message}): ${why}`);
}

/** The last line of a (multi-line) reply without its code: "2.0.0 Ok: queued as ...". */
function lastLine(text: string): string {
  const l = text.slice(text.lastIndexOf('\n') + 1);
  return l.length > 4 ? l.slice(4) : l;
}
