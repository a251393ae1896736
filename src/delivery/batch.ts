// The unit of work the queue hands to a delivery worker, and what comes back: plain data that
// survives structured clone (the worker protocol carries it as it is). Pure types; any thread.
import type { BatchOutcome, BindingIdentity } from './deliver.js';
import type { HostPort } from '../net/address.js';
import type { TlsPolicy } from './session.js';

export type { BatchOutcome };

/** Messages for one (binding, domain) that one worker delivers over one connection at a time.
 *  Bodies are not in it: the worker reads each from the spool. */
export interface DeliveryBatch {
  binding: BindingIdentity;
  target: { domain: string; routes: HostPort[]; maxDeliveriesPerConnection: number };
  tls: TlsPolicy;
  messages: { id: string; from: string; rcpt: string[] }[];
  /** An idle connection of this worker (its id) the batch should use; the engine closes it and
   *  opens another when it is gone or leads elsewhere. null: open one. The main thread owns the
   *  idle connections: the engine reuses no other. */
  conn: number | null;
  /** New connections the batch may open (connection limits and throttles); beyond them the rest
   *  of the batch comes back untried ('throttled', marked `cut`: no attempt counted). */
  mayOpen: number;
}

