// The outbound delivery engine's public face (issue 4, item 3): what a delivery worker imports.
// See docs/delivery.md for the API and the behaviour; the pieces live in deliver.ts (engine and
// connection pool), session.ts (the SMTP client), mx.ts (MX and routes), results.ts (results).
export {
  DeliveryEngine,
  type BindingIdentity,
  type DeliveryEngineOptions,
  type DeliveryLogger,
  type DeliveryStats,
  type DeliveryTarget,
  type OutboundMessage,
} from './deliver.js';
export type { DnsResolver } from './mx.js';
export type { TlsPolicy } from './session.js';
export { LOCAL_FAILURES, type MessageResult, type RecipientResult, type RecipientStatus } from './results.js';
