// smtp-server sinks on loopback for the delivery tests: they record who connected (address, EHLO
// name, TLS), every transaction with its body bytes, and can refuse recipients, senders or data.
// Also a TCP proxy that records what the client wrote in each chunk (to see pipelining).
import net from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

export interface SinkTransaction {
  connection: string;
  from: string;
  rcpt: string[];
  body: Buffer;
}
export interface SinkConnection {
  id: string;
  remoteAddress: string;
  ehlo: string;
  secure: boolean;
}
/** A refusal: "451 4.3.0 try later" style; null accepts. */
export type Refusal = { code: number; text: string } | null;

export interface SinkOptions {
  host?: string;
  rcpt?: (address: string) => Refusal;
  mail?: (address: string) => Refusal;
  data?: (t: SinkTransaction) => Refusal;
  pipelining?: boolean;
  tls?: { key: Buffer; cert: Buffer };
  /** Idle time after which the sink says 421 and closes (smtp-server's socketTimeout). */
  idleTimeoutMs?: number;
}

export interface Sink {
  port: number;
  host: string;
  connections: SinkConnection[];
  transactions: SinkTransaction[];
  close(): Promise<void>;
}

function refuse(r: Refusal): Error | null {
  if (r === null) return null;
  return Object.assign(new Error(r.text), { responseCode: r.code });
}

export async function startSink(o: SinkOptions = {}): Promise<Sink> {
  const connections: SinkConnection[] = [];
  const transactions: SinkTransaction[] = [];
  const conn = (s: SMTPServerSession) => connections.find((c) => c.id === s.id);
  const options: SMTPServerOptions = {
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    hideENHANCEDSTATUSCODES: false,
    size: 10 * 1024 * 1024,
    ...(o.idleTimeoutMs !== undefined ? { socketTimeout: o.idleTimeoutMs } : {}),
    hidePIPELINING: o.pipelining === false,
    disabledCommands: o.tls === undefined ? ['AUTH', 'STARTTLS'] : ['AUTH'],
    ...(o.tls !== undefined ? { key: o.tls.key, cert: o.tls.cert } : {}),
    onConnect(session, cb) {
      connections.push({ id: session.id, remoteAddress: session.remoteAddress, ehlo: '', secure: false });
      cb();
    },
    onMailFrom(address, session, cb) {
      const c = conn(session)!;
      c.ehlo = session.hostNameAppearsAs;
      c.secure = session.secure;
      cb(refuse(o.mail?.(address.address) ?? null) ?? undefined);
    },
    onRcptTo(address, _session, cb) {
      cb(refuse(o.rcpt?.(address.address) ?? null) ?? undefined);
    },
    onData(stream, session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => {
        const t: SinkTransaction = {
          connection: session.id,
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          rcpt: session.envelope.rcptTo.map((r) => r.address),
          body: Buffer.concat(parts),
        };
        const err = refuse(o.data?.(t) ?? null);
        if (err === null) transactions.push(t);
        cb(err);
      });
    },
  };
  const server = new SMTPServer(options);
  server.on('error', () => {});
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.server.address() as net.AddressInfo).port;
  return {
    port, host, connections, transactions,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A TCP proxy in front of `port`: `chunks` holds each piece the client wrote, as latin1 text. */
export async function startProxy(port: number): Promise<{ port: number; chunks: string[]; close(): Promise<void> }> {
  const chunks: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port });
    sockets.add(client).add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (d) => { chunks.push(d.toString('latin1')); upstream.write(d); });
    upstream.pipe(client);
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    chunks,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}
