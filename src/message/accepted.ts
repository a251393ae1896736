// The accepted-message record: what a worker tells the main thread about each message it
// acknowledged (never the body), and what intake builds from a recovered spool record. The
// queue, policy and the logs read it; only intake (src/node/intake.ts) turns it into queued parts.
// Pure data: structured-clone safe, any thread.
import type { MoveMeta } from './envelope.js';

/** What the main thread knows of a message: its envelope summary, never its body. */
export interface MessageSummary {
  id: string;
  size: number;
  arrival: number;
  from: string;
  rcpt: string[];
  /** Header fields captured for policy, lower-case names (x-binding, message-id). */
  headers: Record<string, string>;
}

export interface AcceptedMessage extends MessageSummary {
  /** The listener's name; null for mail vipmta made itself (a DSN recovered from the spool). */
  listener: string | null;
  /** The injecting client's address (policy decides whether to trust its X-Binding). */
  client: string;
  /**
   * Set when the message came over #mmove from another node: queue it on this binding with this
   * retry state (attempts, nextAttempt; expiry counts from arrival), not by local policy. `hops`
   * counts the moves including the one that brought it here. `headers` is empty for these.
   */
  moved?: MoveMeta;
}
