// The SMTP client against a scripted server on loopback: replies smtp-server cannot be made to
// give (a refused DATA command in a pipelined group, a 5xx greeting, no EHLO, multi-line replies,
// a peer that hangs up mid-transaction) and what the engine makes of them.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryEngine, type OutboundMessage } from '../../../src/delivery/index.js';

/** Answers each command line with the reply the script gives (null: hang up; a 421 is sent and
 *  then the connection closed, as RFC 5321 3.8 has it, whatever else the client had sent); end of
 *  data is "."; */
type Script = (cmd: string, conn: number) => string | null;

interface Scripted {
  port: number;
  /** Every command each connection sent, in order ("<body>" for a message body). */
  seen: string[][];
  close(): Promise<void>;
}

async function scripted(script: Script, greeting = '220 scripted ESMTP'): Promise<Scripted> {
  const seen: string[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    sockets.add(c);
    const n = seen.push([]) - 1;
    let buf = '';
    let data = false;
    let closing = false;
    c.write(greeting + '\r\n');
    c.on('error', () => {});
    c.on('data', (d) => {
      if (closing) return;
      buf += d.toString('latin1');
      for (;;) {
        if (data) {
          const e = buf.indexOf('\r\n.\r\n');
          if (e < 0) break;
          buf = buf.slice(e + 5);
          data = false;
          seen[n]!.push('<body>');
          const r = script('.', n);
          if (r === null) return void c.destroy();
          if (r !== '') c.write(r + '\r\n');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) break;
        const cmd = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        seen[n]!.push(cmd);
        const r = script(cmd, n);
        if (r === null) return void c.destroy();
        c.write(r + '\r\n');
        if (r.startsWith('421')) { closing = true; c.end(); return; }
        if (r.startsWith('354')) { data = true; buf = '\r\n' + buf; }
        if (cmd === 'QUIT') c.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

/** A server that does what most do: EHLO with the given extensions, 250 to the rest. */
function ordinary(ext: string[], over: (cmd: string, conn: number) => string | null | undefined = () => undefined): Script {
  return (cmd, conn) => {
    const r = over(cmd, conn);
    if (r !== undefined) return r;
    if (cmd.startsWith('EHLO')) return ['250-scripted', ...ext.map((e) => `250-${e}`), '250 8BITMIME'].join('\r\n');
    if (cmd === 'DATA') return '354 go ahead';
    if (cmd === 'QUIT') return '221 bye';
    return '250 2.0.0 ok';
  };
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function run(script: Script, messages: OutboundMessage[], greeting?: string, engineOpts: object = {}) {
  const s = await scripted(script, greeting);
  cleanup.push(() => s.close());
  const e = new DeliveryEngine({ connectTimeoutMs: 2000, commandTimeoutMs: 2000, maxDeliveriesPerConnection: 10, logger: { debug() {}, warn() {} }, ...engineOpts });
  cleanup.push(() => e.close());
  const deliver = () => e.deliver({ name: 'b', bindAddress: '127.0.0.1', ehloHostname: 'me.test' },
    { domain: 'd.test', routes: [{ host: '127.0.0.1', port: s.port }] }, { mode: 'opportunistic', verify: false }, messages);
  return { s, e, deliver, results: await deliver() };
}

const msg = (id: string, rcpt: string[]): OutboundMessage => ({ id, from: 's@src.test', rcpt, body: Buffer.from('Subject: t\r\n\r\nx\r\n') });

describe('SMTP session', () => {
  it('gives a refused DATA command\'s reply to the accepted recipients and keeps RCPT refusals', async () => {
    const { s, results } = await run(ordinary(['PIPELINING'], (cmd) => (cmd === 'DATA' ? '451 4.3.0 queue full' : cmd.includes('no@') ? '550 5.1.1 no' : undefined)),
      [msg('m', ['a@d.test', 'no@d.test']), msg('n', ['b@d.test'])]);
    expect(results[0]!.results.map((r) => [r.status, r.code, r.reply])).toEqual([
      ['deferred', 451, '451 4.3.0 queue full'], ['bounced', 550, '550 5.1.1 no'],
    ]);
    expect(results[1]!.results[0]!.status).toBe('deferred');
    // The destination it resolved (for MX rollup): one array for the batch, host:port off port 25.
    expect(results[0]!.mx).toEqual([`127.0.0.1:${s.port}`]);
    expect(results[1]!.mx).toBe(results[0]!.mx);
    // The next transaction starts with RSET, pipelined with MAIL.
    expect(s.seen[0]!.slice(5, 9)).toEqual(['RSET', 'MAIL FROM:<s@src.test>', 'RCPT TO:<b@d.test>', 'DATA']);
  });

  it('does not send DATA when no recipient was accepted (no PIPELINING)', async () => {
    const { s, results } = await run(ordinary([], (cmd) => (cmd.startsWith('RCPT') ? '550 5.1.1 no' : undefined)), [msg('m', ['a@d.test'])]);
    expect(results[0]!.results[0]!.status).toBe('bounced');
    expect(s.seen[0]).not.toContain('DATA');
  });

  it('parses multi-line replies and keeps every line', async () => {
    const { results } = await run(ordinary(['PIPELINING'], (cmd) => (cmd.startsWith('RCPT') ? '550-5.7.1 first line\r\n550-5.7.1 second line\r\n550 5.7.1 last line' : undefined)),
      [msg('m', ['a@d.test'])]);
    expect(results[0]!.results[0]).toMatchObject({ code: 550, enhanced: '5.7.1', reply: '550 5.7.1 first line 5.7.1 second line 5.7.1 last line' });
  });

  it('falls back to HELO when EHLO is not understood', async () => {
    const { s, results } = await run((cmd) => (cmd.startsWith('EHLO') ? '502 5.5.1 what?' : cmd === 'DATA' ? '354 go' : cmd === 'QUIT' ? '221 bye' : '250 ok'), [msg('m', ['a@d.test'])]);
    expect(results[0]!.results[0]!.status).toBe('delivered');
    expect(s.seen[0]!.slice(0, 3)).toEqual(['EHLO me.test', 'HELO me.test', 'MAIL FROM:<s@src.test>']);
  });

  it('defers (never bounces) on a 5xx greeting, with the host\'s words', async () => {
    const { results } = await run(ordinary([]), [msg('m', ['a@d.test'])], '554 5.3.2 not now');
    expect(results[0]!.results[0]).toMatchObject({ status: 'deferred', code: 554, reply: '554 5.3.2 not now', origin: 'remote', bounceClass: 40 });
  });

  it('cuts the connections from an address the node no longer holds: the transaction in flight is deferred at once', async () => {
    const s = await scripted(ordinary(['PIPELINING'], (cmd) => (cmd === '.' ? '' : undefined))); // never answers the data
    cleanup.push(() => s.close());
    const e = new DeliveryEngine({ connectTimeoutMs: 2000, commandTimeoutMs: 60_000, dataTimeoutMs: 60_000, maxDeliveriesPerConnection: 10, logger: { debug() {}, warn() {} } });
    cleanup.push(() => e.close());
    const pending = e.deliver({ name: 'b', bindAddress: '127.0.0.1', ehloHostname: 'me.test' },
      { domain: 'd.test', routes: [{ host: '127.0.0.1', port: s.port }] }, { mode: 'opportunistic', verify: false }, [msg('m', ['a@d.test'])]);
    while (!s.seen.some((c) => c.includes('<body>'))) await new Promise((r) => setTimeout(r, 5));
    expect(e.abortFrom('127.0.0.2')).toBe(0);
    expect(e.abortFrom('127.0.0.1')).toBe(1);
    const [r] = await pending;
    expect(r!.results[0]).toMatchObject({ status: 'deferred', origin: 'local' });
    expect(r!.results[0]!.reply).toBe('4.4.2 delivery cut: this node no longer holds 127.0.0.1'); // cut, not the 60 s data timeout
    expect(r!.cut).toBe(true);
  });

  it('defers a transaction the peer hangs up on, with where it happened, and goes on with the next message', async () => {
    let hungUp = false;
    const { results } = await run(ordinary(['PIPELINING'], (cmd) => {
      if (cmd === '.' && !hungUp) { hungUp = true; return null; }
      return undefined;
    }), [msg('m', ['a@d.test']), msg('n', ['b@d.test'])]);
    expect(results[0]!.results[0]).toMatchObject({ status: 'deferred', enhanced: '4.4.2', origin: 'local' });
    expect(results[0]!.results[0]!.reply).toMatch(/^4\.4\.2 lost connection with 127\.0\.0\.1:\d+ while waiting for the reply to end of data$/);
    expect(results[1]!.results[0]!.status).toBe('delivered');
  });

  it('defers with 4.4.2 when the peer does not answer in time', async () => {
    const { results } = await run(ordinary(['PIPELINING'], (cmd) => (cmd === '.' ? '' : undefined)), [msg('m', ['a@d.test'])], undefined, { commandTimeoutMs: 300 });
    expect(results[0]!.results[0]!.reply).toMatch(/^4\.4\.2 timeout waiting for the reply to end of data from 127\.0\.0\.1:\d+$/);
  });

  it('retries once on a fresh connection when a pooled one turns out dead', async () => {
    const state = { kill: false };
    const { s, deliver } = await run(ordinary(['PIPELINING'], (cmd, conn) => (state.kill && conn === 0 && cmd.startsWith('MAIL') ? null : undefined)), [msg('m', ['a@d.test'])]);
    state.kill = true;
    const [r] = await deliver();
    expect(r!.results[0]!.status).toBe('delivered');
    expect(s.seen).toHaveLength(2);
  });

  it('does not retry a transaction the peer hung up on after answering part of it (no duplicates)', async () => {
    const state = { kill: false };
    const { s, deliver } = await run(ordinary(['PIPELINING'], (cmd, conn) => (state.kill && conn === 0 && cmd === '.' ? null : undefined)), [msg('m', ['a@d.test'])]);
    state.kill = true;
    const [r] = await deliver();
    expect(r!.results[0]).toMatchObject({ status: 'deferred', enhanced: '4.4.2' });
    expect(s.seen).toHaveLength(1);
  });

  it('bounces non-ASCII addresses with 5.6.7 when the peer has no SMTPUTF8, and sends SMTPUTF8 when it has', async () => {
    const m = msg('m', ['j\u00f6rg@d.test']);
    const { results } = await run(ordinary(['PIPELINING']), [m]);
    expect(results[0]!.results[0]).toMatchObject({ status: 'bounced', enhanced: '5.6.7' });
    const { s, results: r2 } = await run(ordinary(['PIPELINING', 'SMTPUTF8']), [m]);
    expect(r2[0]!.results[0]!.status).toBe('delivered');
    expect(s.seen[0]).toContain('MAIL FROM:<s@src.test> SMTPUTF8');
  });

  it('falls back to plain text on a new connection when an opportunistic TLS handshake fails', async () => {
    // The peer says 220 to STARTTLS and then answers the ClientHello in plain text.
    const { s, results } = await run(ordinary(['PIPELINING', 'STARTTLS'], (cmd) => (cmd === 'STARTTLS' ? '220 go ahead' : undefined)), [msg('m', ['a@d.test'])]);
    expect(results[0]!.results[0]!.status).toBe('delivered');
    expect(s.seen).toHaveLength(2);
    expect(s.seen[0]).toContain('STARTTLS');
    expect(s.seen[1]).not.toContain('STARTTLS');
  });

  describe('the receiver\'s real reply when it closes after answering', () => {
    const TSS04 = '421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume or user complaints - see https://postmaster.example.net/error-codes';

    it('gives a 421 to the first pipelined RCPT, followed by the close, to every recipient (origin remote, class 70)', async () => {
      let rcpts = 0;
      const { s, results } = await run(ordinary(['PIPELINING'], (cmd) => (cmd.startsWith('RCPT') && rcpts++ === 0 ? TSS04 : undefined)),
        [msg('m', ['a@d.test', 'b@d.test'])]);
      // The server stopped reading at the 421: the second RCPT and DATA got no reply.
      expect(s.seen[0]).toEqual(['EHLO me.test', 'MAIL FROM:<s@src.test>', 'RCPT TO:<a@d.test>']);
      for (const r of results[0]!.results) {
        expect(r).toMatchObject({ status: 'deferred', code: 421, enhanced: '4.7.0', reply: TSS04, origin: 'remote', bounceClass: 70 });
      }
    });

    it('gives a 421 to a pipelined MAIL, followed by the close, to every recipient', async () => {
      const { results } = await run(ordinary(['PIPELINING'], (cmd) => (cmd.startsWith('MAIL') ? '421 4.3.2 Service shutting down, closing channel' : undefined)),
        [msg('m', ['a@d.test', 'b@d.test'])]);
      expect(results[0]!.results.map((r) => [r.code, r.origin, r.reply, r.bounceClass])).toEqual([
        [421, 'remote', '421 4.3.2 Service shutting down, closing channel', 70],
        [421, 'remote', '421 4.3.2 Service shutting down, closing channel', 70],
      ]);
    });

    it('does the same one command at a time (no PIPELINING)', async () => {
      let rcpts = 0;
      const { results } = await run(ordinary([], (cmd) => (cmd.startsWith('RCPT') && rcpts++ === 1 ? TSS04 : undefined)),
        [msg('m', ['a@d.test', 'b@d.test', 'c@d.test'])]);
      // a was accepted, but its transaction ended with the 421: the 421 decides it too.
      expect(results[0]!.results.map((r) => [r.rcpt, r.code, r.origin])).toEqual([['a@d.test', 421, 'remote'], ['b@d.test', 421, 'remote'], ['c@d.test', 421, 'remote']]);
    });

    it('gives a 421 to the RSET before a transaction to its recipients', async () => {
      // The first transaction ends without a message (DATA refused), so the next starts with RSET.
      const { results } = await run(ordinary(['PIPELINING'], (cmd) => (cmd === 'DATA' ? '451 4.3.0 not now' : cmd === 'RSET' ? '421 4.7.0 too many connections' : undefined)),
        [msg('m', ['a@d.test']), msg('n', ['b@d.test'])]);
      expect(results[1]!.results[0]).toMatchObject({ status: 'deferred', code: 421, origin: 'remote', reply: '421 4.7.0 too many connections', bounceClass: 70 });
    });

    it('keeps a refusal the peer sent before hanging up, and defers only the unanswered with our own 4.4.2', async () => {
      const { results } = await run(ordinary(['PIPELINING'], (cmd) => (cmd.includes('no@') ? '550 5.1.1 no such user' : cmd === 'DATA' ? null : undefined)),
        [msg('m', ['no@d.test', 'a@d.test'])]);
      const [no, a] = results[0]!.results;
      expect(no).toMatchObject({ status: 'bounced', code: 550, origin: 'remote', bounceClass: 10 });
      expect(a).toMatchObject({ status: 'deferred', enhanced: '4.4.2', origin: 'local', bounceClass: 70 });
      expect(a!.reply).toMatch(/^4\.4\.2 lost connection with 127\.0\.0\.1:\d+ while waiting for the reply to DATA$/);
    });

    it('takes the 421 that ends a session after a 250 to the end of data as that session\'s news, not the message\'s', async () => {
      const { s, results } = await run(ordinary(['PIPELINING'], (cmd) => (cmd === '.' ? '250 2.0.0 queued\r\n' + TSS04 : undefined)),
        [msg('m', ['a@d.test']), msg('n', ['b@d.test'])]);
      expect(results[0]!.results[0]).toMatchObject({ status: 'delivered', code: 250 });
      // The next message goes over a new connection (the old one was closed with the 421).
      expect(results[1]!.results[0]!.status).toBe('delivered');
      expect(s.seen).toHaveLength(2);
    });
  });
});
