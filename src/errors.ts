// The error codes vipmta uses, in one place, and VipError, the class of every error with a code:
// the native addon constructs it too (src/native/addon.ts hands it over at load). Across worker
// threads match on `err.code`, not `instanceof`: structured clone drops the class and own
// properties, so errors travel as SerializedError (serializeError / deserializeError).

/** Stable codes of our own; system errors keep their errno name ("EADDRINUSE", "EPERM", ...). */
export const ErrorCode = {
  CONFIG_INVALID: 'ERR_CONFIG_INVALID',
  INVALID_ADDRESS: 'ERR_INVALID_ADDRESS',
  NATIVE_UNAVAILABLE: 'ERR_NATIVE_UNAVAILABLE',
  SPOOL_FULL: 'ERR_SPOOL_FULL',
  SPOOL_CORRUPT: 'ERR_SPOOL_CORRUPT',
  SPOOL_CLOSED: 'ERR_SPOOL_CLOSED',
  /** A message handle used after its commit or abort. */
  INVALID_STATE: 'ERR_INVALID_STATE',
  /** An envelope (16 MiB) or message state (1 MiB) over the spool's record limits. */
  OUT_OF_RANGE: 'ERR_OUT_OF_RANGE',
  /** Outbound delivery: an attempt failed as a whole (connect, TLS, DNS); the next host may do. */
  DELIVERY: 'ERR_DELIVERY',
  /** Outbound delivery: a host refused us before any transaction (greeting, EHLO). */
  HOST_REFUSED: 'ERR_HOST_REFUSED',
  WORKER_DIED: 'ERR_WORKER_DIED',
  WORKER_TIMEOUT: 'ERR_WORKER_TIMEOUT',
  CONTROL_UNKNOWN_COMMAND: 'ERR_CONTROL_UNKNOWN_COMMAND',
  CONTROL_BAD_REQUEST: 'ERR_CONTROL_BAD_REQUEST',
  /** A console command named something that does not exist (a queue id that is not queued). */
  CONTROL_NOT_FOUND: 'ERR_CONTROL_NOT_FOUND',
  SHUTTING_DOWN: 'ERR_SHUTTING_DOWN',
  INVALID_MAC: 'ERR_INVALID_MAC',
  ARP_UNSUPPORTED_LINK: 'ERR_ARP_UNSUPPORTED_LINK',
  NDISC_UNSUPPORTED_LINK: 'ERR_NDISC_UNSUPPORTED_LINK',
  COROSYNC_UNAVAILABLE: 'ERR_COROSYNC_UNAVAILABLE',
  COROSYNC_NOT_RUNNING: 'ERR_COROSYNC_NOT_RUNNING',
  COROSYNC_DISCONNECTED: 'ERR_COROSYNC_DISCONNECTED',
  COROSYNC_CLOSED: 'ERR_COROSYNC_CLOSED',
  /** Too many messages wait for a corosync that does not take them (stopped or wedged). */
  COROSYNC_BUSY: 'ERR_COROSYNC_BUSY',
  /** Cluster console/control: this node runs without a Cluster stanza, or the request is refused. */
  CLUSTER_DISABLED: 'ERR_CLUSTER_DISABLED',
  CLUSTER_REFUSED: 'ERR_CLUSTER_REFUSED',
  COROSYNC: 'ERR_COROSYNC',
  /** `vipmta cluster corosync-conf`: the config gives no corosync.conf (no Cluster stanza, no Node list). */
  COROSYNC_CONF: 'ERR_COROSYNC_CONF',
  /** `vipmta cluster corosync-conf`: the corosync authkey cannot be created or is not a usable key. */
  AUTHKEY: 'ERR_AUTHKEY',
  /** An event record (src/events/) that does not decode or breaks its schema. */
  EVENT_INVALID: 'ERR_EVENT_INVALID',
  /** An event record of a type or version this reader does not know (pass it on as bytes). */
  EVENT_UNKNOWN: 'ERR_EVENT_UNKNOWN',
  /** The config repository (issue 16): a change made against a revision that is no longer the head. */
  CONFIG_REPO_STALE: 'ERR_CONFIG_REPO_STALE',
  /** The config repository: git failed, a revision or path does not exist, a bundle does not verify. */
  CONFIG_REPO: 'ERR_CONFIG_REPO',
  /** A config commit refused: no quorum, a member rejected it, or it did not finish in time. */
  CONFIG_REFUSED: 'ERR_CONFIG_REFUSED',
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An Error with a stable code and optional system-call details. */
export class VipError extends Error {
  readonly code: string;
  errno?: number;
  syscall?: string;
  constructor(code: string, message: string, extra?: { errno?: number; syscall?: string; cause?: unknown }) {
    super(message, extra?.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'VipError';
    this.code = code;
    if (extra?.errno !== undefined) this.errno = extra.errno;
    if (extra?.syscall !== undefined) this.syscall = extra.syscall;
  }
}

/** The plain-object form of an error for postMessage and the control socket. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  stack?: string;
}

/** Flattens any thrown value into a SerializedError, keeping code/errno/syscall. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const e = err as Error & { code?: unknown; errno?: unknown; syscall?: unknown };
    const out: SerializedError = { name: e.name, message: e.message };
    if (typeof e.code === 'string') out.code = e.code;
    if (typeof e.errno === 'number') out.errno = e.errno;
    if (typeof e.syscall === 'string') out.syscall = e.syscall;
    if (typeof e.stack === 'string') out.stack = e.stack;
    return out;
  }
  return { name: 'Error', message: String(err) };
}

/** Rebuilds an Error (a VipError when it had a code) from its serialized form. */
export function deserializeError(s: SerializedError): Error {
  const err: Error = s.code !== undefined
    ? new VipError(s.code, s.message, {
        ...(s.errno !== undefined ? { errno: s.errno } : {}),
        ...(s.syscall !== undefined ? { syscall: s.syscall } : {}),
      })
    : new Error(s.message);
  err.name = s.name;
  if (s.stack !== undefined) err.stack = s.stack;
  return err;
}

/** The code of an error-like value, or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (err !== null && typeof err === 'object' && 'code' in err) {
    const c = (err as { code: unknown }).code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}
