// The delivery engine's settings as a worker is given them: plain data that survives structured
// clone, built from the global options on the main thread. Pure types; any thread.

/** The delivery engine's settings (global options); a change replaces the worker's engine. */
export interface DeliverySettings {
  resolverServers: string[];
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  dataTimeoutMs: number;
  /** Port of MX hosts (25; tests use another). */
  mxPort?: number;
}
