// The aggregator's connection to one member's ECCluster_Listener: the #mmove handshake (greeting
// challenge, EHLO, XMMOVE with the HMAC keyed by Cluster_Secret; TLS-PSK first under Mmove_TLS),
// then XJOURNAL READ / ACK one at a time (src/mmove/journal.ts has the wire). Main thread;
// asynchronous socket I/O, never blocks.
import net from 'node:net';
import tls from 'node:tls';
import { clientTlsOptions } from '../mmove/tls.js';
import { announceCommand, EHLO_KEYWORD, parseChallenge } from '../mmove/wire.js';
import { ackCommand, decodeBatchBody, JOURNAL_KEYWORD, parseBatchHead, readCommand, type JournalBatch } from '../mmove/journal.js';

export interface LinkOptions {
  host: string;
  port: number;
  localAddress?: string;
  /** This node's Nodename: announced and proven. */
  nodeName: string;
  secret: string;
  tls: boolean;
  /** Connect, handshake and each reply. Default 10 s. */
  timeoutMs?: number;
}

/** A refusal or failure with the reply (if any) that said so. */
export class LinkError extends Error {
  constructor(message: string, readonly code = 0) {
    super(message);
  }
}

const EMPTY = Buffer.alloc(0);

interface Reply {
  code: number;
  /** The last line's text after the code and a space. */
  text: string;
}

export class JournalLink {
  /** What arrived and is not consumed yet: chunks joined only when a reply or a whole batch is
   *  there (a 1 MiB batch is copied once, not once per chunk). */
  private chunks: Buffer[] = [];
  private buffered = 0;
  private wake: (() => void) | null = null;
  private error: Error | null = null;
  private busy: Promise<unknown> = Promise.resolve();

  private constructor(private readonly sock: net.Socket, private readonly where: string) {
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      this.poke();
    });
    sock.on('error', (err) => this.fail(err));
    sock.on('close', () => this.fail(new LinkError(`connection to ${where} closed`)));
  }

  /** Connects and authenticates; rejects with a LinkError saying what the member refused. */
  static async open(o: LinkOptions): Promise<JournalLink> {
    const timeout = o.timeoutMs ?? 10_000;
    const where = `${o.host}:${o.port}`;
    const local = o.localAddress !== undefined ? { localAddress: o.localAddress } : {};
    const sock = o.tls
      ? tls.connect({ host: o.host, port: o.port, ...local, ...clientTlsOptions(o.secret, o.nodeName) })
      : net.connect({ host: o.host, port: o.port, noDelay: true, ...local });
    const link = new JournalLink(sock, where);
    sock.setTimeout(timeout, () => link.fail(new LinkError(`no answer from ${where} within ${timeout} ms`)));
    try {
      await link.handshake(o);
    } catch (err) {
      link.close();
      throw err;
    }
    return link;
  }

  private async handshake(o: LinkOptions): Promise<void> {
    const greeting = await this.reply();
    const challenge = parseChallenge(greeting.text);
    if (greeting.code !== 220 || challenge === null) throw new LinkError(`${this.where} is not a vipmta cluster link: ${greeting.code} ${greeting.text}`, greeting.code);
    this.sock.write(`EHLO ${o.nodeName}\r\n`);
    const ehlo = await this.reply(true);
    if (ehlo.code !== 250) throw new LinkError(`${this.where} refused EHLO: ${ehlo.code} ${ehlo.text}`, ehlo.code);
    const kw = ehlo.text.toUpperCase();
    if (!new RegExp(`(^|\\n)${EHLO_KEYWORD}\\b`).test(kw)) throw new LinkError(`${this.where} does not speak ECmmove2`);
    if (!new RegExp(`(^|\\n)${JOURNAL_KEYWORD}\\b`).test(kw)) throw new LinkError(`${this.where} does not serve its journal (XJOURNAL not offered: an older vipmta?)`);
    this.sock.write(announceCommand(o.nodeName, o.secret, challenge) + '\r\n');
    const ann = await this.reply();
    if (ann.code !== 235) throw new LinkError(`${this.where} refused the authentication: ${ann.code} ${ann.text}${ann.code === 535 ? ' (a different Cluster_Secret there?)' : ''}`, ann.code);
  }

  /** Records from `from` on (XJOURNAL READ). */
  read(from: number, max: number): Promise<JournalBatch> {
    return this.serial(async () => {
      this.sock.write(readCommand(from, max) + '\r\n');
      const r = await this.reply();
      if (r.code !== 250) throw new LinkError(`${this.where} refused XJOURNAL READ: ${r.code} ${r.text}`, r.code);
      const head = parseBatchHead(r.text.replace(/^\d\.\d\.\d+ /, ''));
      if (head === null) throw new LinkError(`${this.where} answered XJOURNAL READ with ${JSON.stringify(r.text)}`);
      const body = await this.take(head.bytes);
      const records = decodeBatchBody(body, head.count);
      if (records.length > 0 && records[0]!.seq < from) throw new LinkError(`${this.where} sent seq ${records[0]!.seq} for a read from ${from}`);
      return { records, next: head.next, first: head.first, last: head.last };
    });
  }

  /** Tells the member its subscriber has everything through `seq` (XJOURNAL ACK). */
  ack(subscriber: string, seq: number): Promise<void> {
    return this.serial(async () => {
      this.sock.write(ackCommand(subscriber, seq) + '\r\n');
      const r = await this.reply();
      if (r.code !== 250) throw new LinkError(`${this.where} refused XJOURNAL ACK: ${r.code} ${r.text}`, r.code);
    });
  }

  get alive(): boolean {
    return this.error === null;
  }

  close(): void {
    if (this.error === null) {
      this.sock.end('QUIT\r\n');
      this.fail(new LinkError('closed'));
    }
    this.sock.destroy();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn);
    this.busy = run.catch(() => undefined);
    return run;
  }

  private fail(err: Error): void {
    if (this.error === null) this.error = err;
    this.sock.destroy();
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async wait(): Promise<void> {
    if (this.error !== null) throw this.error;
    await new Promise<void>((resolve) => (this.wake = resolve));
  }

  /** The next reply (RFC 5321 4.2.1: "ddd-" lines continue it). `all`: every line's text, joined by \n. */
  private async reply(all = false): Promise<Reply> {
    const lines: string[] = [];
    for (;;) {
      const buf = this.flat();
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > 64 * 1024) throw new LinkError(`${this.where} sent a reply line over 64 KiB`);
        await this.wait();
        continue;
      }
      const line = buf.toString('latin1', 0, nl > 0 && buf[nl - 1] === 0x0d ? nl - 1 : nl);
      this.consume(nl + 1);
      lines.push(line.slice(4));
      if (line[3] !== '-') {
        const code = Number(line.slice(0, 3));
        return { code: Number.isInteger(code) ? code : 0, text: all ? lines.join('\n') : line.slice(4) };
      }
    }
  }

  /** Exactly n octets after the reply just read. */
  private async take(n: number): Promise<Buffer> {
    while (this.buffered < n) await this.wait();
    const out = this.flat().subarray(0, n);
    this.consume(n);
    return out;
  }

  /** Everything buffered as one Buffer (joined once). */
  private flat(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0] ?? EMPTY;
  }

  private consume(n: number): void {
    const rest = this.flat().subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
  }
}
