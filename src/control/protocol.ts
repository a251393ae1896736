// The console protocol on the control socket: one JSON line in, one JSON line out, then the server
// closes. Deliberately tiny so `vipmta console` and scripts (socat, nc -U) can speak it.
export interface ControlRequest {
  argv: string[];
}
export type ControlResponse = { ok: true; output: string } | { ok: false; error: string; code: string };

/** Requests larger than this are refused: a command line is short. */
export const MAX_REQUEST_BYTES = 64 * 1024;
