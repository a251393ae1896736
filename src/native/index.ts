// The barrel of src/native/: re-exports each native module's typed wrappers (socket.ts, netlink.ts,
// spool.ts, arp.ts, ndisc.ts, corosync.ts; addon.ts alone loads build/Release/vipmta.node). Callers
// import from here. Safe to import from worker threads: Node-API loads a separate instance of the addon
// per thread. Importing it loads the addon (a dlopen, once per thread).
export { nativeExports } from './addon.js';
export * from './socket.js';
export * from './netlink.js';
export * from './spool.js';
export * from './arp.js';
export * from './ndisc.js';
export * from './corosync.js';
