// The console protocol on the control socket: one JSON line in, one JSON line out, then the server
// closes. Deliberately tiny so `vipmta console` and scripts (socat, nc -U) can speak it.
export interface ControlRequest {
  argv: string[];
  /** `console --cluster`: run on every member of the cluster's view (src/node/cluster-console.ts). */
  cluster?: boolean;
  /** `console --node NAME`: run on that member only. */
  node?: string;
  /** How long to wait for the members' answers (ms); default CLUSTER_TIMEOUT_MS. */
  timeoutMs?: number;
}
/** `status`: the exit status the console gives (a cluster answer is printed and may still be 1,
 *  e.g. a node did not answer); absent means 0. */
export type ControlResponse = { ok: true; output: string; status?: number } | { ok: false; error: string; code: string };

/** Requests larger than this are refused: a command line is short. */
export const MAX_REQUEST_BYTES = 64 * 1024;

/** `console --cluster`: how long members have to answer unless --timeout says otherwise. */
export const CLUSTER_TIMEOUT_MS = 10_000;
/** The longest --timeout taken. */
export const MAX_CLUSTER_TIMEOUT_MS = 600_000;
