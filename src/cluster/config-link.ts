// A member catching up fetches the config revisions it misses from another member's
// ECCluster_Listener: the #mmove handshake (greeting challenge, EHLO, XMMOVE with the HMAC keyed by
// Cluster_Secret; TLS-PSK first under Mmove_TLS), then one XCONFIG BUNDLE (src/mmove/config-fetch.ts
// has the wire), then QUIT. Main thread; asynchronous socket I/O, never blocks.
import net from 'node:net';
import tls from 'node:tls';
import { bundleCommand, MAX_BUNDLE_BYTES, parseBundleReply } from '../mmove/config-fetch.js';
import { clientTlsOptions } from '../mmove/tls.js';
import { announceCommand, EHLO_KEYWORD, parseChallenge } from '../mmove/wire.js';

export interface FetchOptions {
  readonly host: string;
  readonly port: number;
  /** This node's Nodename: announced and proven. */
  readonly nodeName: string;
  readonly secret: string;
  readonly tls: boolean;
  /** The revision this node has ('' : none). */
  readonly since: string;
  /** The whole fetch. Default 30 s. */
  readonly timeoutMs?: number;
}

/** The bundle of every revision after `since` up to the member's head, and that head. */
export async function fetchConfigBundle(o: FetchOptions): Promise<{ head: string; bundle: Buffer }> {
  const where = `${o.host}:${o.port}`;
  const timeout = o.timeoutMs ?? 30_000;
  const sock = o.tls ? tls.connect({ host: o.host, port: o.port, ...clientTlsOptions(o.secret, o.nodeName) }) : net.connect({ host: o.host, port: o.port, noDelay: true });
  let buf: Buffer = Buffer.alloc(0);
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const poke = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const fail = (err: Error): void => {
    failure ??= err;
    sock.destroy();
    poke();
  };
  sock.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    poke();
  });
  sock.on('error', (err) => fail(new Error(`${where}: ${err.message}`)));
  sock.on('close', () => fail(new Error(`connection to ${where} closed`)));
  const timer = setTimeout(() => fail(new Error(`no bundle from ${where} within ${timeout} ms`)), timeout);
  timer.unref();
  const wait = async (): Promise<void> => {
    if (failure !== null) throw failure;
    await new Promise<void>((r) => (wake = r));
    if (failure !== null) throw failure;
  };
  /** The next reply: its code and every line's text joined by \n. */
  const reply = async (): Promise<{ code: number; text: string }> => {
    const lines: string[] = [];
    for (;;) {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > 64 * 1024) throw new Error(`${where} sent a reply line over 64 KiB`);
        await wait();
        continue;
      }
      const line = buf.toString('latin1', 0, nl > 0 && buf[nl - 1] === 0x0d ? nl - 1 : nl);
      buf = buf.subarray(nl + 1);
      lines.push(line.slice(4));
      if (line[3] !== '-') return { code: Number(line.slice(0, 3)) || 0, text: lines.join('\n') };
    }
  };
  try {
    const greeting = await reply();
    const challenge = parseChallenge(greeting.text);
    if (greeting.code !== 220 || challenge === null) throw new Error(`${where} is not a vipmta cluster link: ${greeting.code} ${greeting.text}`);
    sock.write(`EHLO ${o.nodeName}\r\n`);
    const ehlo = await reply();
    if (ehlo.code !== 250 || !new RegExp(`(^|\\n)${EHLO_KEYWORD}\\b`).test(ehlo.text.toUpperCase())) throw new Error(`${where} does not speak ECmmove2: ${ehlo.code} ${ehlo.text}`);
    sock.write(announceCommand(o.nodeName, o.secret, challenge) + '\r\n');
    const ann = await reply();
    if (ann.code !== 235) throw new Error(`${where} refused the authentication: ${ann.code} ${ann.text}${ann.code === 535 ? ' (a different Cluster_Secret there?)' : ''}`);
    sock.write(bundleCommand(o.since) + '\r\n');
    const r = await reply();
    if (r.code !== 250) throw new Error(`${where} refused XCONFIG BUNDLE: ${r.code} ${r.text}`);
    const head = parseBundleReply(r.text);
    if (head === null) throw new Error(`${where} answered XCONFIG BUNDLE with ${JSON.stringify(r.text.slice(0, 200))}`);
    if (head.bytes > MAX_BUNDLE_BYTES) throw new Error(`${where} offers a bundle of ${head.bytes} bytes, over ${MAX_BUNDLE_BYTES}`);
    while (buf.length < head.bytes) await wait();
    const bundle = Buffer.from(buf.subarray(0, head.bytes));
    sock.end('QUIT\r\n');
    return { head: head.head, bundle };
  } finally {
    clearTimeout(timer);
    sock.removeAllListeners('close');
    sock.on('error', () => undefined);
    if (!sock.writableEnded) sock.destroy();
  }
}
