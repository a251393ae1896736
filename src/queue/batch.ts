// What a worker gets for one delivery batch: the queue's binding, target and TLS settings as the
// config gives them now, and each part's queue id, sender and recipients, read out of the store
// (one string each: the store keeps none). Main thread (the scheduler's dispatch); pure, never blocks.
import type { Config } from '../config/index.js';
import type { DeliveryBatch } from '../delivery/batch.js';
import type { PartStore } from './store.js';

/** What a batch needs of its queue (scheduler.ts's DestQueue). */
export interface BatchQueue {
  readonly bindingGroup: string;
  readonly binding: string;
  readonly domain: string;
  readonly maxPerConnection: number;
}

/** The batch of `slots` (in flight, of queue `q`), over idle connection `conn` or a new one. */
export function deliveryBatch(cfg: Config, q: BatchQueue, st: PartStore, slots: number[], conn: number | null, mayOpen: number): DeliveryBatch {
  const ctx = { bindingGroup: q.bindingGroup, binding: q.binding, domain: q.domain };
  const bc = cfg.bindings.get(q.binding);
  const routes = cfg.lookup('Routes', ctx);
  return {
    binding: {
      name: q.binding,
      bindAddress: bc?.options.Bind_Address ?? null,
      ehloHostname: cfg.lookup('Ehlo_Hostname', ctx) ?? cfg.global.Hostname,
    },
    target: { domain: q.domain, routes: routes.map((r) => ({ host: r.host, port: r.port })), maxDeliveriesPerConnection: q.maxPerConnection },
    tls: { mode: cfg.lookup('Outbound_TLS', ctx), verify: cfg.lookup('Outbound_TLS_Verify', ctx) },
    messages: slots.map((s) => ({ id: st.idOf(s), from: st.fromOf(s), rcpt: st.rcptsOf(s) })),
    conn,
    mayOpen,
  };
}
