// A deliberately small SMTP client for tests: exact bytes on the wire (bare LF, NUL, long lines,
// a drop in the middle of DATA) and every reply returned as it came. Real TCP, loopback only.
import net from 'node:net';

export interface SmtpReply {
  code: number;
  text: string;
}

export class SmtpTestClient {
  private buf = '';
  private waiting: ((r: SmtpReply) => void) | null = null;
  private failed: Error | null = null;
  private readonly replies: SmtpReply[] = [];

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.pump();
    });
    sock.on('error', (e) => (this.failed = e));
    sock.on('close', () => {
      this.failed ??= new Error(`connection closed; unread: ${JSON.stringify(this.buf)}`);
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w({ code: 0, text: this.failed.message });
      }
    });
  }

  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<{ client: SmtpTestClient; greeting: SmtpReply }> {
    const sock = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const client = new SmtpTestClient(sock);
    return { client, greeting: await client.read() };
  }

  private pump(): void {
    for (;;) {
      const lines = this.buf.split('\r\n');
      const last = lines.findIndex((l) => /^\d{3}( |$)/.test(l));
      if (last < 0) return;
      const block = lines.slice(0, last + 1);
      this.buf = lines.slice(last + 1).join('\r\n');
      const r = { code: Number(block[last]!.slice(0, 3)), text: block.map((l) => l.slice(4)).join('\n') };
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(r);
      } else this.replies.push(r);
    }
  }

  read(timeoutMs = 15_000): Promise<SmtpReply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failed && this.sock.destroyed) return Promise.resolve({ code: 0, text: this.failed.message });
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      this.waiting = (r) => {
        clearTimeout(t);
        resolve(r);
      };
    });
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  async cmd(line: string): Promise<SmtpReply> {
    this.write(line + '\r\n');
    return this.read();
  }

  /** EHLO, MAIL, RCPT..., DATA, body (already in wire form, without the final dot), ".". */
  async send(from: string, to: string[], wireBody: Buffer | string, ehlo = true): Promise<SmtpReply & { id: string | null; step: string }> {
    if (ehlo) {
      const e = await this.cmd('EHLO client.test');
      if (e.code !== 250) return { ...e, id: null, step: 'EHLO' };
    }
    const m = await this.cmd(`MAIL FROM:<${from}>`);
    if (m.code !== 250) return { ...m, id: null, step: 'MAIL' };
    for (const t of to) {
      const r = await this.cmd(`RCPT TO:<${t}>`);
      if (r.code !== 250) return { ...r, id: null, step: 'RCPT' };
    }
    const d = await this.cmd('DATA');
    if (d.code !== 354) return { ...d, id: null, step: 'DATA' };
    this.write(wireBody);
    const end = await this.cmd('.');
    const id = /queued as (\S+)/.exec(end.text)?.[1] ?? null;
    return { ...end, id, step: 'END' };
  }

  close(): void {
    this.sock.destroy();
  }

  async quit(): Promise<void> {
    if (!this.sock.destroyed) {
      this.write('QUIT\r\n');
      await new Promise<void>((r) => {
        this.sock.once('close', () => r());
        setTimeout(() => {
          this.sock.destroy();
          r();
        }, 2000).unref();
      });
    }
  }
}

/** A test message in wire form: CRLF line ends, dot-stuffed, ending in CRLF. */
export function wireMessage(subject: string, bodyLines: string[], extraHeaders: string[] = []): string {
  const lines = [`From: <sender@client.test>`, `To: <rcpt@dest.test>`, `Subject: ${subject}`, ...extraHeaders, '', ...bodyLines];
  return lines.map((l) => (l.startsWith('.') ? '.' + l : l)).join('\r\n') + '\r\n';
}
