// #mmove (ECmmove2): the surface the rest of vipmta uses. Sender: MmoveClient (or the workers'
// 'mmoveSend' request). Receiver: MmoveReceiver (the workers run one per ECCluster_Listener after
// 'setMmove'). Wire format: docs/mmove.md. Any thread.
export { MmoveClient, type BodyReader, type MmoveClientOptions, type MmoveClientStats, type MmoveItem, type MmovePeer, type MmoveResult } from './client.js';
export { DedupTable, type DedupStats } from './dedup.js';
export { MmoveReceiver, type MmoveReceiverOptions, type MmoveReceiverStats, type ReceiverSink } from './receiver.js';
export { mmoveDedupTable, mmoveSettings } from './settings.js';
export type { MoveMeta } from '../message/envelope.js';
