// The NATS JetStream exporter (issue 15, docs/events.md "Exporters"): the shared loop of loop.ts
// with a sender that publishes each record of a batch to a subject (`<prefix>.<node>.<type>`) with
// the message id `<node>:<seq>` (JetStream's duplicate window drops a re-send) and counts the batch
// sent once every PubAck is in. Main thread; asynchronous, never blocks: the client (the `nats`
// package) keeps one connection per exporter and reconnects on its own once it has connected.
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, headers, type ConnectionOptions, type JetStreamClient, type MsgHdrs, type NatsConnection, type NatsError } from 'nats';
import { BatchExporter, type BatchSender, type ExporterOptions, type ExportRecord, type SendResult } from './loop.js';

export interface NatsSenderOptions {
  /** "nats://host:port" URLs, tried in turn. */
  servers: readonly string[];
  subjectPrefix: string;
  /** When set, every PubAck must come from this stream (the Nats-Expected-Stream header). */
  stream: string | null;
  token: string | null;
  /** A .creds file (user JWT and NKey seed), read at each connection. */
  credentials: string | null;
  /** How long a connection attempt and each PubAck may take. */
  timeoutMs: number;
  /** The connection's name, as the server's monitoring shows it. */
  connectionName: string;
}

/** One message of a batch, made once and sent again as is on a retry. */
export interface NatsMessage {
  subject: string;
  msgId: string;
  data: Uint8Array;
}

/** A subject token from a node name or a type: NATS splits subjects at "." and gives "*" and ">"
 *  meaning, so those (and white space) become "_". */
export function subjectToken(s: string): string {
  return s.replace(/[.*>\s]/g, '_') || '_';
}

/** The JetStream message of one record: its subject and message id. */
export function natsMessage(rec: ExportRecord, subjectPrefix: string): NatsMessage {
  return {
    subject: `${subjectPrefix}.${subjectToken(rec.node)}.${subjectToken(rec.type)}`,
    msgId: `${rec.node}:${rec.seq}`,
    data: Buffer.from(rec.json, 'utf8'),
  };
}

/** The headers of one publish: the message id (dedup) and, with Stream set, the expected stream. */
export function natsHeaders(m: NatsMessage, stream: string | null): MsgHdrs {
  const h = headers();
  h.set('Nats-Msg-Id', m.msgId);
  if (stream !== null) h.set('Nats-Expected-Stream', stream);
  return h;
}

/** What a failed publish means for the operator: no stream (or no JetStream) is a misconfiguration
 *  (ERROR); a timeout or a lost connection is the server being away (WARN). */
export function publishFailure(err: NatsError, subject: string, stream: string | null): SendResult {
  const api = err.api_error;
  if (err.code === '503') {
    return {
      ok: false, key: 'no stream', level: 'error', detail: { subject, code: err.code },
      reason: `no JetStream stream captures subject ${subject} (or JetStream is not enabled on the server): create one whose subjects cover it (docs/events.md "The JetStream exporter")`,
    };
  }
  if (api !== undefined) {
    return {
      ok: false, key: `jetstream ${api.err_code ?? api.code}`, level: 'error', detail: { subject, code: api.code, errCode: api.err_code, stream },
      reason: `JetStream refused the message on ${subject}: ${api.description}`,
    };
  }
  return { ok: false, key: `error ${err.code ?? err.message}`, level: 'warn', detail: { subject, code: err.code, err: err.message }, reason: `publish failed: ${err.code ?? ''} ${err.message}`.replace('  ', ' ') };
}

/** A connection that could not be made: refused credentials are a misconfiguration (ERROR), a
 *  server that does not answer is away (WARN). */
export function connectFailure(err: NatsError, servers: readonly string[]): SendResult {
  const code = err.code ?? (err as unknown as NodeJS.ErrnoException).code;
  const auth = code !== undefined && /AUTH|PERMISSION/.test(code);
  return {
    ok: false, key: `connect ${code ?? err.message}`, level: auth ? 'error' : 'warn', detail: { servers, code, err: err.message },
    reason: `cannot connect to NATS (${servers.join(', ')}): ${code !== undefined ? `${code} ` : ''}${err.message}`,
  };
}

export interface NatsSender extends BatchSender<NatsMessage[]> {
  close(): Promise<void>;
}

export function natsSender(o: NatsSenderOptions): NatsSender {
  let nc: NatsConnection | null = null;
  let js: JetStreamClient | null = null;
  let connecting: Promise<NatsConnection> | null = null;
  let closed = false;

  const open = async (): Promise<JetStreamClient> => {
    if (js !== null && nc !== null && !nc.isClosed()) return js;
    connecting ??= (async () => {
      const opts: ConnectionOptions = {
        servers: [...o.servers],
        name: o.connectionName,
        timeout: o.timeoutMs,
        // Once connected the client reconnects by itself, forever; the exporter's own backoff only
        // paces the first connection (a failed connect() is a failed attempt of the batch).
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        waitOnFirstConnect: false,
      };
      if (o.token !== null) opts.token = o.token;
      if (o.credentials !== null) opts.authenticator = credsAuthenticator(readFileSync(o.credentials));
      return connect(opts);
    })();
    try {
      const c = await connecting;
      if (closed) {
        await c.close();
        throw Object.assign(new Error('stopped'), { code: 'ABORT_ERR' });
      }
      nc = c;
      js = c.jetstream({ timeout: o.timeoutMs });
      return js;
    } finally {
      connecting = null;
    }
  };

  return {
    prepare: (records) => records.map((r) => natsMessage(r, o.subjectPrefix)),
    send: async (msgs, signal): Promise<SendResult> => {
      const aborted = new Promise<never>((_res, rej) => {
        const fail = (): void => rej(Object.assign(new Error('stopped'), { code: 'ABORT_ERR' }));
        if (signal.aborted) fail();
        else signal.addEventListener('abort', fail, { once: true });
      });
      aborted.catch(() => undefined);
      let client: JetStreamClient;
      try {
        client = await Promise.race([open(), aborted]);
      } catch (err) {
        const e = err as NatsError;
        if (e.code === 'ABORT_ERR') throw e;
        return connectFailure(e, o.servers);
      }
      // All published at once (one connection keeps their order), then every PubAck awaited.
      const acks = Promise.allSettled(msgs.map((m) => client.publish(m.subject, m.data, { headers: natsHeaders(m, o.stream), timeout: o.timeoutMs })));
      const settled = await Promise.race([acks, aborted]);
      for (let i = 0; i < settled.length; i++) {
        const s = settled[i]!;
        if (s.status === 'rejected') return publishFailure(s.reason as NatsError, msgs[i]!.subject, o.stream);
      }
      return { ok: true };
    },
    close: async () => {
      closed = true;
      const c = nc;
      nc = null;
      js = null;
      if (c === null || c.isClosed()) return;
      // close() flushes; with the server away it must not hold the node's shutdown for long.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([c.close().catch(() => undefined), new Promise<void>((r) => { timer = setTimeout(r, 2000); })]);
      clearTimeout(timer);
    },
  };
}

export interface NatsExporterOptions extends ExporterOptions {
  sender: NatsSender;
}

export class NatsExporter extends BatchExporter<NatsMessage[]> {
  constructor(o: NatsExporterOptions) {
    super(o, { kind: 'nats', label: 'event nats' }, o.sender);
  }
}
