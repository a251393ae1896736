// What a worker is told to serve for HTTP injection (src/inject/): the addresses, the limits, the
// tokens (hashes only) and the binding names a request may choose from. Built from the config on
// the main thread (node/worker-settings.ts); plain data, structured-clone safe, any thread.

export interface InjectListenSpec {
  /** "ip:port" as written in Http_Injection. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** The listener name its messages carry ("http:ip:port"): what the binding policy trusts. */
  readonly listener: string;
}

export interface InjectToken {
  readonly name: string;
  /** scrypt PHC string (config/password.ts). */
  readonly secret: string;
  /** Bindings and groups it may name; "*": any. */
  readonly bindings: readonly string[];
}

export interface InjectSettings {
  readonly listens: readonly InjectListenSpec[];
  readonly tls: { readonly cert: string; readonly key: string } | null;
  readonly maxBodySize: number;
  readonly maxRecipients: number;
  readonly maxConcurrent: number;
  readonly requestDeadlineMs: number;
  readonly tokens: readonly InjectToken[];
  /** Every configured binding and binding group name. */
  readonly bindingNames: readonly string[];
  /** Requests in progress per worker slot (limits.ts), one buffer for the process. */
  readonly requests: SharedArrayBuffer;
  /** Requests answered and recipients taken, for /metrics (counters.ts), one buffer for the process. */
  readonly counters: SharedArrayBuffer;
  /** The name in Received and Message-ID. */
  readonly hostname: string;
  /** The node-wide drain flag (listener/drain-flag.ts): new requests get 503 while it is up. */
  readonly drained?: SharedArrayBuffer;
}
