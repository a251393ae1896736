// One ECmmove2 connection on the receiving side: the dialogue with one peer node (challenge,
// XMMOVE proof, pipelined MAIL/RCPT/BDAT or DATA). Bodies stream into the spool; each 250 waits
// for its commit, and replies leave in command order while later transactions are received, so
// many messages of one connection share a group commit. Worker thread; never blocks (past
// MAX_IN_FLIGHT commits it pauses the socket). The listener around it is receiver.ts.
import type net from 'node:net';
import tls from 'node:tls';
import { errorCode } from '../errors.js';
import { REPLIES, type Reply } from '../smtp/replies.js';
import type { AcceptedMessage } from '../message/accepted.js';
import { encodeEnvelope, type MoveMeta, type SpoolEnvelope } from '../message/envelope.js';
import { DedupTable, moveKey } from './dedup.js';
import { mmoveReceivedPayload } from '../events/build.js';
import { encodeEvent } from '../events/codec.js';
import {
  EHLO_KEYWORD,
  greetingText,
  MAX_COMMAND_LINE,
  newChallenge,
  parseAnnounce,
  parseMail,
  parseRcpt,
  PROOF_MECHANISM,
  verifyProof,
} from './wire.js';
import { looksLikeTlsHello } from './tls.js';
import { JOURNAL_KEYWORD } from './journal.js';
import { startRead, XCONFIG, XJOURNAL, type ReadSources, type ReadVerb } from './receiver-reads.js';

/** One message being received, as the spool's writer hands it out (spool/index.ts MessageWriter). */
export interface ReceiverMessage {
  append(chunk: Buffer): void;
  /** `event`: the mmove_received record, in the same group commit as the message. */
  commit(envelope: Buffer, event?: Buffer): Promise<{ id: string; size: number }>;
  abort(): void;
}
export interface ReceiverSink {
  begin(envelope?: Buffer, sizeHint?: number): ReceiverMessage;
}

/** What a session needs of its listener's settings (MmoveReceiverOptions adds the TLS ones);
 *  ReadSources: the name, the logger and what XJOURNAL and XCONFIG read. */
export interface SessionOptions extends ReadSources {
  hostname: string;
  /** Cluster_Secret; null refuses every announce with 454 4.7.0 (and logs why). */
  secret: string | null;
  /** A message arriving with hops >= maxHops is refused (554 5.4.6): nothing loops. */
  maxHops: number;
  maxMessageSize: number;
  idleTimeoutMs: number;
  sink: ReceiverSink | null;
  dedup: DedupTable;
  onMessage: (m: AcceptedMessage) => void;
  /** The node is drained (`cluster drain`): MAIL is refused with 451 4.3.2. */
  drained?: () => boolean;
}

/** The listener's counters a session adds to (MmoveReceiverStats adds connections and active). */
export interface SessionCounters {
  /** Messages spooled and reported. */
  received: number;
  receivedBytes: number;
  /** Answered 250 without spooling again (this listener's share; the table counts all). */
  duplicates: number;
  authFailures: number;
  hopRefusals: number;
  /** Connections dropped for a TLS mismatch: a failed handshake (wrong secret, a plain client on
   *  a TLS listener, no handshake in time), or a TLS hello on a plain listener. */
  tlsFailures: number;
}

// RFC 3030 2: BDAT <chunk-size> [LAST]; the size is a decimal count of octets.
const BDAT = /^(\d{1,10})(?: +(LAST))? *$/i;
const LF_DOT = Buffer.from('\n.');
const CRLF = Buffer.from('\r\n');
const MAX_RECIPIENTS = 10_000;
/** Commits awaiting their fdatasync on one connection before we stop reading from it. */
const MAX_IN_FLIGHT = 512;

interface Transaction {
  from: string;
  meta: MoveMeta;
  rcpts: string[];
  /** A recipient was refused: the body is read and thrown away, the transaction refused. */
  refused: boolean;
  msg: ReceiverMessage | null;
  /** SIZE= from MAIL, if given. */
  size: number | null;
  bytes: number;
  tooBig: boolean;
}

/** One connection. Replies are slots filled in any order and written in command order. */
export class ReceiverSession {
  private readonly challenge = newChallenge();
  private helo: string | null = null;
  private peer: string | null = null;
  private tx: Transaction | null = null;
  private mode: 'cmd' | 'bdat' | 'data' = 'cmd';
  private bdatLeft = 0;
  private bdatLast = false;
  private partial: Buffer | null = null;
  private carry: Buffer = Buffer.alloc(0);
  private carrySkip = 0;
  /** Replies not yet written; slots[i] is reply number base + i; null until its commit settles. */
  private readonly slots: (string | null)[] = [];
  private base = 0;
  /** XJOURNAL batches, XCONFIG bundles: octets written right after the reply of that number (null: none pending). */
  private payloads: Map<number, Buffer> | null = null;
  private draining = false;
  private flushQueued = false;
  private inFlight = 0;
  private quitting = false;
  private closed = false;
  private paused = false;
  private firstData = true;
  private readonly remote: string;

  constructor(
    private readonly o: SessionOptions,
    private readonly counters: SessionCounters,
    private readonly sock: net.Socket,
  ) {
    this.remote = sock.remoteAddress ?? '';
    sock.setTimeout(o.idleTimeoutMs, () => {
      this.reply(REPLIES.idleTimeout);
      this.quitting = true;
      this.flush();
    });
    sock.on('error', (err) => o.logger.debug({ err, listener: o.name, client: this.remote }, 'mmove connection error'));
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    this.line(`220 ${greetingText(o.hostname, this.challenge)}`);
    this.flush();
  }

  /** Node stopping: idle now gets 421 4.3.2; a body being received finishes first. */
  shutdown(): void {
    if (this.mode === 'cmd' && (this.tx === null || this.tx.msg === null)) {
      this.resetTx();
      this.reply(REPLIES.shuttingDown);
      this.quitting = true; // flush ends the socket once the commits in flight are answered
      this.flush();
    } else {
      this.draining = true;
    }
  }

  destroy(): void {
    this.sock.destroy();
  }

  onClose(): void {
    this.closed = true;
    // A transfer cut off in the middle: nothing of that message is kept (the sender saw no 250).
    this.tx?.msg?.abort();
    this.tx = null;
  }

  // ---- input ----

  private onData(chunk: Buffer): void {
    if (this.firstData) {
      this.firstData = false;
      // A TLS ClientHello on a plain listener: no SMTP command starts with 0x16. Say so and
      // close, instead of answering the binary with 500s until the peer gives up.
      if (!(this.sock instanceof tls.TLSSocket) && looksLikeTlsHello(chunk)) {
        this.counters.tlsFailures++;
        this.o.logger.warn({ listener: this.o.name, client: this.remote }, 'mmove refused: TLS handshake on a plain ECCluster_Listener (Mmove_TLS is on at the peer and off here)');
        this.closed = true;
        this.sock.destroy();
        return;
      }
    }
    let b = chunk;
    if (this.partial !== null) {
      b = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    let pos = 0;
    while (pos < b.length && !this.closed && !this.quitting) {
      if (this.mode === 'bdat') {
        pos = this.feedBdat(b, pos);
      } else if (this.mode === 'data') {
        pos = this.feedData(b, pos);
      } else {
        const nl = b.indexOf(0x0a, pos);
        if (nl < 0 || nl - pos > MAX_COMMAND_LINE) {
          if (b.length - pos > MAX_COMMAND_LINE) {
            this.reply(REPLIES.lineTooLongCommand);
            this.quitting = true;
            break;
          }
          // Copy: a short fragment, kept until the rest of the line arrives.
          this.partial = Buffer.from(b.subarray(pos));
          break;
        }
        const end = nl > pos && b[nl - 1] === 0x0d ? nl - 1 : nl;
        const line = b.toString('utf8', pos, end);
        pos = nl + 1;
        this.command(line);
      }
    }
    this.flush();
  }

  /** Hot path for CHUNKING: hands the chunk's bytes to the spool as they are, no scan, no copy. */
  private feedBdat(b: Buffer, pos: number): number {
    const take = Math.min(this.bdatLeft, b.length - pos);
    if (take > 0) this.body(b.subarray(pos, pos + take));
    this.bdatLeft -= take;
    pos += take;
    if (this.bdatLeft === 0) {
      this.mode = 'cmd';
      if (this.bdatLast) this.endOfMessage();
      else if (this.tx !== null && !this.tx.refused && this.tx.msg !== null) this.line('250 2.0.0 Chunk received');
      else this.endOfMessage(); // refuse the transaction at its first chunk
    }
    return pos;
  }

  /**
   * DATA (RFC 5321 4.1.1.4): finds the end "CRLF.CRLF" and removes the stuffed dots (4.5.2) with
   * Buffer.indexOf for line-leading dots. `carry` holds up to three bytes that might begin one of
   * those sequences across chunks; at the start of data it is a virtual CRLF (carrySkip).
   */
  private feedData(b: Buffer, pos: number): number {
    const carried = this.carry.length;
    const buf = carried > 0 ? Buffer.concat([this.carry, b.subarray(pos)]) : b.subarray(pos);
    let emit = this.carrySkip;
    this.carrySkip = 0;
    let from = 0;
    for (;;) {
      const k = buf.indexOf(LF_DOT, from);
      if (k < 0) break;
      const d = k + 1;
      if (d + 2 >= buf.length) {
        // Cannot tell yet whether this ends the data: carry from the LF on (not yet appended).
        if (emit < k) this.body(buf.subarray(emit, k));
        this.carry = emit <= k ? buf.subarray(k) : buf.subarray(emit);
        return b.length;
      }
      if (buf[d + 1] === 0x0d && buf[d + 2] === 0x0a) {
        if (emit < d) this.body(buf.subarray(emit, d));
        this.carry = Buffer.alloc(0);
        this.mode = 'cmd';
        this.endOfMessage();
        return pos + (d + 3 - carried);
      }
      // A line-leading dot followed by anything else was stuffed: drop it.
      if (emit < d) this.body(buf.subarray(emit, d));
      emit = d + 1;
      from = d + 1;
    }
    const keep = Math.max(emit, buf.length - 3);
    if (emit < keep) this.body(buf.subarray(emit, keep));
    this.carry = buf.subarray(keep);
    return b.length;
  }

  private body(chunk: Buffer): void {
    const tx = this.tx;
    if (tx === null || tx.msg === null) return;
    tx.bytes += chunk.length;
    if (tx.tooBig) return;
    if (tx.bytes > this.o.maxMessageSize) {
      tx.tooBig = true;
      return;
    }
    tx.msg.append(chunk);
  }

  private command(line: string): void {
    const sp = line.indexOf(' ');
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const args = sp < 0 ? '' : line.slice(sp + 1);
    switch (verb) {
      case 'EHLO':
      case 'HELO': {
        if (args.trim() === '') return this.reply(REPLIES.syntaxError);
        this.resetTx();
        this.helo = args.trim();
        if (verb === 'HELO') return this.line(`250 ${this.o.hostname}`);
        // RFC 5321 4.1.1.1; RFC 2920 (PIPELINING), RFC 3030 (CHUNKING), RFC 6152 (8BITMIME),
        // RFC 2034 (ENHANCEDSTATUSCODES), RFC 1870 (SIZE).
        return this.line(
          [
            `250-${this.o.hostname}`,
            '250-PIPELINING',
            '250-CHUNKING',
            '250-8BITMIME',
            '250-ENHANCEDSTATUSCODES',
            `250-SIZE ${this.o.maxMessageSize}`,
            `250-${JOURNAL_KEYWORD}`,
            `250 ${EHLO_KEYWORD} ${PROOF_MECHANISM}`,
          ].join('\r\n'),
        );
      }
      case 'XMMOVE':
        return this.announce(args);
      case 'XJOURNAL':
        return this.read(XJOURNAL, args);
      case 'XCONFIG':
        return this.read(XCONFIG, args);
      case 'MAIL':
        return this.mail(args);
      case 'RCPT':
        return this.rcpt(args);
      case 'DATA':
        return this.data(args);
      case 'BDAT':
        return this.bdat(args);
      case 'RSET':
        this.resetTx();
        return this.line('250 2.0.0 Ok');
      case 'NOOP':
        return this.line('250 2.0.0 Ok');
      case 'QUIT':
        this.line('221 2.0.0 Bye');
        this.quitting = true;
        return;
      default:
        return this.reply(REPLIES.commandUnrecognized);
    }
  }

  private announce(args: string): void {
    const o = this.o;
    if (this.helo === null || this.peer !== null || this.tx !== null) return this.reply(REPLIES.badSequence);
    const a = parseAnnounce(args);
    if (a === null) return this.reply(REPLIES.syntaxError);
    if (a.mechanism !== PROOF_MECHANISM) return this.reply(REPLIES.authMechanism);
    if (o.secret === null) {
      o.logger.error({ listener: o.name, client: this.remote, node: a.node }, 'mmove refused: no Cluster_Secret configured on this node');
      this.reply(REPLIES.authUnavailable);
      return;
    }
    if (!verifyProof(o.secret, this.challenge, a.node, a.proof)) {
      this.counters.authFailures++;
      o.logger.warn({ listener: o.name, client: this.remote, node: a.node }, 'mmove refused: authentication failed (wrong Cluster_Secret?)');
      this.reply(REPLIES.authFailed);
      // One try per connection: a guesser has to reconnect for each (and is logged each time).
      this.quitting = true;
      return;
    }
    this.peer = a.node;
    o.logger.debug({ listener: o.name, client: this.remote, node: a.node }, 'mmove peer authenticated');
    this.line(`235 2.7.0 Authentication successful, mmove from ${a.node} accepted`);
  }

  /** XJOURNAL and XCONFIG (receiver-reads.ts): the reply waits in its slot like a commit's 250
   *  (the read is asynchronous), and the octets read follow its line on the wire. */
  private read<C>(verb: ReadVerb<C>, args: string): void {
    const r = startRead(verb, args, this.o, this.peer, this.tx !== null);
    if (typeof r === 'string') return this.line(r);
    const slot = this.reserve();
    this.inFlight++;
    void r.then(({ line, body }) => {
      if (body.length > 0) (this.payloads ??= new Map()).set(slot, body);
      this.fill(slot, line);
    });
  }

  private mail(args: string): void {
    const o = this.o;
    if (this.peer === null) {
      o.logger.info({ listener: o.name, client: this.remote }, 'mmove: MAIL from an unauthenticated peer refused');
      return this.reply(REPLIES.authRequired);
    }
    if (this.tx !== null) return this.reply(REPLIES.badSequence);
    const p = parseMail(args);
    if (!p.ok) {
      o.logger.info({ listener: o.name, node: this.peer, reason: p.reason, detail: p.detail }, 'mmove: MAIL refused');
      return this.reply(p.reason === 'unknown-parameter' ? REPLIES.parameterUnknown : REPLIES.syntaxError);
    }
    if (p.meta.hops >= o.maxHops) {
      this.counters.hopRefusals++;
      o.logger.warn({ listener: o.name, node: this.peer, originalId: p.meta.originalId, hops: p.meta.hops, limit: o.maxHops }, 'mmove refused: hop limit reached (routing loop?)');
      return this.reply(REPLIES.tooManyHops);
    }
    if (p.size !== null && p.size > o.maxMessageSize) return this.reply(REPLIES.messageTooBig);
    if (o.drained?.() === true) {
      // A transient refusal: the sender keeps the message and moves it where its route points
      // once the election has given this node's addresses away (queue/mmove-queue.ts).
      o.logger.debug({ listener: o.name, node: this.peer }, 'mmove: MAIL refused, this node is drained');
      return this.line(`451 4.3.2 ${o.hostname} draining, try another server`);
    }
    this.tx = { from: p.from, meta: p.meta, rcpts: [], refused: false, msg: null, size: p.size, bytes: 0, tooBig: false };
    this.line('250 2.1.0 Ok');
  }

  private rcpt(args: string): void {
    const tx = this.tx;
    if (tx === null) return this.reply(REPLIES.badSequence);
    const to = parseRcpt(args);
    if (to === null) {
      tx.refused = true;
      return this.reply(REPLIES.syntaxError);
    }
    if (tx.rcpts.length >= MAX_RECIPIENTS) {
      tx.refused = true;
      return this.reply(REPLIES.tooManyRecipients);
    }
    tx.rcpts.push(to);
    this.line('250 2.1.5 Ok');
  }

  private data(args: string): void {
    if (args.trim() !== '') return this.reply(REPLIES.syntaxError);
    const tx = this.tx;
    if (tx === null) return this.reply(REPLIES.badSequence);
    if (tx.refused || tx.rcpts.length === 0) {
      this.resetTx();
      return this.reply(REPLIES.noValidRecipients);
    }
    if (!this.beginBody(tx)) {
      this.resetTx();
      return this.reply(REPLIES.localError);
    }
    this.line('354 End data with <CR><LF>.<CR><LF>');
    this.mode = 'data';
    this.carry = CRLF;
    this.carrySkip = 2;
  }

  private bdat(args: string): void {
    const m = BDAT.exec(args);
    if (m === null) {
      // RFC 3030 2: without a valid size the octets cannot be skipped; the stream is lost.
      this.reply(REPLIES.syntaxError);
      this.quitting = true;
      return;
    }
    this.bdatLeft = Number(m[1]);
    this.bdatLast = m[2] !== undefined;
    this.mode = 'bdat';
    const tx = this.tx;
    // RFC 3030 2: the octets are read (and thrown away) even when the command fails.
    if (tx !== null && !tx.refused && tx.rcpts.length > 0 && tx.msg === null) this.beginBody(tx);
    if (this.bdatLeft === 0) this.feedBdat(Buffer.alloc(0), 0);
  }

  /** Starts the spool record; false (and no reply: the caller answers) without a spool. */
  private beginBody(tx: Transaction): boolean {
    const sink = this.o.sink;
    if (sink === null) return false;
    // SIZE= presizes the native buffer: no regrowth while a 64 KiB body arrives.
    tx.msg = sink.begin(undefined, Math.min(tx.size ?? 0, 64 * 1024 * 1024));
    return true;
  }

  /** The body is complete (DATA's dot or BDAT LAST) or the chunked transaction is refused. */
  private endOfMessage(): void {
    const o = this.o;
    const tx = this.tx;
    this.tx = null;
    if (this.draining) this.quitting = true; // the transaction a shutdown waited for
    if (tx === null) return this.reply(REPLIES.badSequence);
    if (tx.refused || tx.rcpts.length === 0) {
      tx.msg?.abort();
      return this.reply(REPLIES.noValidRecipients);
    }
    if (tx.msg === null) return this.reply(REPLIES.localError); // no spool in this worker
    const msg = tx.msg;
    if (tx.tooBig) {
      msg.abort();
      return this.reply(REPLIES.messageTooBig);
    }
    const peer = this.peer!;
    const key = DedupTable.key(peer, moveKey(tx.meta.originalId, tx.rcpts));
    if (o.dedup.seenKey(key)) {
      msg.abort();
      this.counters.duplicates++;
      o.logger.info({ listener: o.name, node: peer, originalId: tx.meta.originalId }, 'mmove: duplicate answered 250 without spooling again');
      return this.line(`250 2.0.0 Ok: ${tx.meta.originalId} already queued (duplicate)`);
    }
    // The receiver counts this move; the metadata it queues says how many moves there were.
    const moved: MoveMeta = { ...tx.meta, hops: tx.meta.hops + 1 };
    const envelope: SpoolEnvelope = {
      v: 1,
      from: tx.from,
      rcpt: tx.rcpts,
      arrival: moved.arrival,
      client: this.remote,
      helo: this.helo ?? '',
      user: null,
      tls: this.sock instanceof tls.TLSSocket,
      listener: o.name,
      headers: {},
      moved,
      // The duplicate key with moved.originalId: a restarted node re-learns it from the spool.
      mmovePeer: peer,
    };
    const slot = this.reserve();
    this.inFlight++;
    if (this.inFlight >= MAX_IN_FLIGHT && !this.paused) {
      this.paused = true;
      this.sock.pause();
    }
    msg.commit(encodeEnvelope(envelope), encodeEvent(mmoveReceivedPayload(envelope, moved, tx.bytes))).then(
      ({ id, size }) => {
        o.dedup.addKey(key);
        this.counters.received++;
        this.counters.receivedBytes += size;
        o.onMessage({ id, size, arrival: moved.arrival, from: tx.from, rcpt: tx.rcpts, headers: {}, listener: o.name, client: this.remote, moved });
        this.fill(slot, `250 2.0.0 Ok: queued as ${id}`);
      },
      (err: unknown) => {
        const full = errorCode(err) === 'ERR_SPOOL_FULL';
        // A full spool is reported once by the main thread's watch (node/spool-full.ts), which
        // counts every refusal from the spool's own counters; one line per message would flood.
        if (full) o.logger.debug({ listener: o.name, node: peer }, 'spool full: refused an mmove with 452 4.3.1');
        else o.logger.error({ err, listener: o.name, node: peer }, 'mmove: spool commit failed');
        this.fill(slot, text(full ? REPLIES.spoolFull : REPLIES.localError));
      },
    );
  }

  private resetTx(): void {
    this.tx?.msg?.abort();
    this.tx = null;
  }

  // ---- output: in command order ----

  private reply(r: Reply): void {
    this.line(text(r));
  }

  private line(s: string): void {
    this.slots.push(s);
  }

  private reserve(): number {
    this.slots.push(null);
    return this.slots.length - 1 + this.base;
  }

  private fill(slot: number, s: string): void {
    this.inFlight--;
    this.slots[slot - this.base] = s;
    if (this.paused && this.inFlight < MAX_IN_FLIGHT / 2) {
      this.paused = false;
      this.sock.resume();
    }
    // One group commit settles many of this connection's messages in one turn (the spool resolves
    // all their promises in one call): write all their 250s with one send, not one each.
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    if (this.closed) return;
    let n = 0;
    while (n < this.slots.length && this.slots[n] !== null) n++;
    if (n > 0 && this.payloads !== null) {
      this.flushPayloads(n);
    } else if (n > 0) {
      const out = this.slots.slice(0, n).join('\r\n') + '\r\n';
      this.slots.splice(0, n);
      this.base += n;
      this.sock.write(out);
    }
    if (this.quitting && this.slots.length === 0 && this.inFlight === 0) {
      this.closed = true;
      this.tx?.msg?.abort();
      this.tx = null;
      this.sock.end();
    }
  }

  /** flush() when XJOURNAL batches are pending: each batch right after its reply line. */
  private flushPayloads(n: number): void {
    const payloads = this.payloads!;
    let text = '';
    for (let i = 0; i < n; i++) {
      text += this.slots[i]! + '\r\n';
      const body = payloads.get(this.base + i);
      if (body !== undefined) {
        payloads.delete(this.base + i);
        this.sock.write(text);
        this.sock.write(body);
        text = '';
      }
    }
    if (text !== '') this.sock.write(text);
    this.slots.splice(0, n);
    this.base += n;
    if (payloads.size === 0) this.payloads = null;
  }
}

function text(r: Reply): string {
  return `${r.code} ${r.text}`;
}
