// The unit of work the queue hands to a delivery worker: plain data that survives structured clone
// (the worker protocol carries it as it is). Pure types; any thread.
import type { BindingIdentity } from './deliver.js';
import type { HostPort } from '../net/address.js';
import type { TlsPolicy } from './session.js';

/** Messages for one (binding, domain) that one worker delivers over one connection at a time.
 *  Bodies are not in it: the worker reads each from the spool. */
export interface DeliveryBatch {
  binding: BindingIdentity;
  target: { domain: string; routes: HostPort[]; maxDeliveriesPerConnection: number };
  tls: TlsPolicy;
  messages: { id: string; from: string; rcpt: string[] }[];
}
