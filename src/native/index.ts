// The one typed facade over native/ (build/Release/vipmta.node). Nothing else in src/ loads the
// addon. Each section below belongs to one native file; functions are either short synchronous
// system calls or return Promises backed by AsyncWorkers. Safe to import from worker threads:
// Node-API loads a separate instance of the addon per thread.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ErrorCode, VipError } from '../errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/native/index.js and src/native/index.ts both sit two levels below the package root.
const addonPath = path.resolve(here, '..', '..', 'build', 'Release', 'vipmta.node');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Binding = Record<string, any>;

function load(): Binding {
  const require = createRequire(import.meta.url);
  try {
    return require(addonPath) as Binding;
  } catch (err) {
    throw new VipError(
      ErrorCode.NATIVE_UNAVAILABLE,
      `cannot load the native addon at ${addonPath}: run "npm ci" (or "npm run build") first`,
      { cause: err },
    );
  }
}

const binding: Binding = load();

// ---- socket.cc -------------------------------------------------------------------------------

/** Options of {@link listenTcp}. */
export interface ListenTcpOptions {
  /** A literal IPv4 or IPv6 address ("0.0.0.0", "::", "fe80::1%eth0"); never a host name. */
  host: string;
  /** 0..65535; 0 lets the kernel choose (read it back with {@link socketLocalAddress}). */
  port: number;
  /** listen(2) backlog, default 511; the kernel caps it at net.core.somaxconn. */
  backlog?: number;
  /** SO_REUSEPORT, default true: each worker listens on its own socket on the same ip:port. */
  reusePort?: boolean;
  /** IP_FREEBIND / IPV6_FREEBIND, default true: bind an address this node does not (yet) own. */
  freeBind?: boolean;
  /** IPV6_V6ONLY for IPv6 hosts, default true; ignored for IPv4. */
  v6Only?: boolean;
}

/** The local end of a socket, from getsockname(2). */
export interface SocketAddress {
  address: string;
  port: number;
  family: 4 | 6;
}

/**
 * Opens a listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR, plus SO_REUSEPORT and
 * IP_FREEBIND unless turned off) and returns its fd. Synchronous and short.
 *
 * Ownership: the caller owns the fd. Hand it to `net.Server.listen({ fd })`, after which the server
 * owns it and `server.close()` closes it; otherwise release it with {@link closeFd}. The fd is
 * per process, so it is valid in every thread, but only one owner may close it.
 *
 * Throws: a TypeError for a port outside 0..65535 or a bad option type; `ERR_INVALID_ADDRESS` for a
 * host that is not a literal address (no syscall made); `ENODEV` for an unknown IPv6 zone; otherwise
 * an error with the errno `code` and `syscall` (`EADDRINUSE` from bind when a socket without
 * SO_REUSEPORT holds the port, `EADDRNOTAVAIL` for a non-local address without freeBind, `EACCES`).
 * No fd is left open when it throws.
 */
export function listenTcp(opts: ListenTcpOptions): number {
  return binding.listenTcp(opts) as number;
}

/** Closes an fd from {@link listenTcp} that no server took over. Throws `EBADF` if it is not open. */
export function closeFd(fd: number): void {
  binding.closeFd(fd);
}

/** getsockname(2) of an IP socket: the port the kernel chose for port 0, the bound address. */
export function socketLocalAddress(fd: number): SocketAddress {
  return binding.socketLocalAddress(fd) as SocketAddress;
}

// ---- netlink.cc ------------------------------------------------------------------------------

// Imported here rather than at the top so this section stays self-contained (sections belong to
// different owners); ES imports are hoisted, so placement does not change behaviour.
import { release as osRelease } from 'node:os';

/** One address on an interface, from an RTM_GETADDR dump (rtnetlink(7)). */
export interface InterfaceAddress {
  family: 4 | 6;
  address: string;
  prefixLength: number;
  /** rt_scope_t by name; any other value as its number. */
  scope: 'global' | 'site' | 'link' | 'host' | 'nowhere' | number;
  /** IPv4 label (IFA_LABEL, e.g. "eth0:vip"); null for IPv6, which has none. */
  label: string | null;
  flags: { permanent: boolean; secondary: boolean; tentative: boolean; deprecated: boolean };
  /** IFA_PROTO (Linux >= 5.18): who added it; {@link VIPMTA_ADDR_PROTO} marks ours. Null when absent. */
  protocol: number | null;
  /** Seconds left (IFA_CACHEINFO); null means forever. */
  validLifetime: number | null;
  preferredLifetime: number | null;
}

/** One network interface with its addresses. */
export interface NetInterface {
  index: number;
  name: string;
  mtu: number;
  /** Link-layer address as "aa:bb:..." (all zeros for `lo`); null when the link has none. */
  mac: string | null;
  flags: { up: boolean; running: boolean; loopback: boolean; noarp: boolean; broadcast: boolean; multicast: boolean };
  addresses: InterfaceAddress[];
}

/**
 * Every interface with its IPv4 and IPv6 addresses: an RTM_GETLINK and an RTM_GETADDR dump over a
 * fresh netlink socket. Synchronous and short (microseconds to a millisecond). The result is a
 * plain snapshot the caller owns; it does not update.
 */
export function listInterfaces(): NetInterface[] {
  return binding.listInterfaces() as NetInterface[];
}

/**
 * One interface by name. Throws `code: 'ENODEV'` (`syscall: 'if_nametoindex'`) when there is no such
 * interface, which callers treat as an operational condition (an interface can come and go).
 */
export function getInterface(name: string): NetInterface {
  return binding.getInterface(name) as NetInterface;
}

/**
 * The IFA_PROTO value that tags addresses vipmta plumbs ('V'). The kernel reserves 0-3
 * (include/uapi/linux/if_addr.h IFAPROT_*); the rest are free for user space.
 */
export const VIPMTA_ADDR_PROTO = 0x56;

/** Label suffix that tags our IPv4 addresses on kernels without IFA_PROTO (before 5.18). */
export const VIPMTA_LABEL_SUFFIX = ':vip';

/** Whether this kernel stores IFA_PROTO (Linux 5.18); older ones silently ignore the attribute. */
export function kernelSupportsAddrProto(release: string = osRelease()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (m === null) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 5 || (major === 5 && minor >= 18);
}

/** Options of {@link addAddress}. */
export interface AddAddressOptions {
  /** Seconds until the kernel removes the address by itself; null/absent = forever. Renew with `replace`. */
  validLifetime?: number | null;
  /** Seconds until it is deprecated as a source; defaults to validLifetime. */
  preferredLifetime?: number | null;
  /** IFA_PROTO tag, default {@link VIPMTA_ADDR_PROTO}; null sends none. */
  protocol?: number | null;
  /** IPv4 label; default `<ifname>:vip` where IFA_PROTO is unsupported, else the kernel's default. */
  label?: string | null;
  /** IPv6: skip duplicate address detection (IFA_F_NODAD), default true. */
  noDad?: boolean;
  /** Update an existing address (lifetime renewal) instead of failing on it. Default false. */
  replace?: boolean;
}

/**
 * Adds an address to interface `ifindex` over rtnetlink, tagged as ours. Synchronous and short.
 * Returns true when it was added (or replaced), false when it was already there (EEXIST, expected
 * after a crash or a racing renewal: the caller's goal holds). Needs CAP_NET_ADMIN (else `EPERM`).
 * Adding sends no ARP: announce the address separately.
 */
export function addAddress(ifindex: number, address: string, prefixLength: number, opts: AddAddressOptions = {}): boolean {
  const protocol = opts.protocol === undefined ? VIPMTA_ADDR_PROTO : opts.protocol;
  let label = opts.label;
  if (label === undefined && !address.includes(':') && !kernelSupportsAddrProto()) {
    label = `${interfaceName(ifindex)}${VIPMTA_LABEL_SUFFIX}`;
  }
  const validLifetime = opts.validLifetime ?? null;
  return binding.addAddress(ifindex, address, prefixLength, {
    validLifetime,
    preferredLifetime: opts.preferredLifetime ?? validLifetime,
    protocol,
    label: label ?? null,
    noDad: opts.noDad ?? true,
    replace: opts.replace ?? false,
  }) as boolean;
}

/**
 * Removes an address from interface `ifindex`. Returns true when it was removed, false when it was
 * not there (EADDRNOTAVAIL: expired or removed by someone else; ENODEV: the interface is gone).
 * Removes whatever matches: check {@link isOurAddress} on a listing first to remove only ours.
 */
export function deleteAddress(ifindex: number, address: string, prefixLength: number): boolean {
  return binding.deleteAddress(ifindex, address, prefixLength) as boolean;
}

/** Whether vipmta plumbed this address: IFA_PROTO tag, or the label suffix on older kernels. */
export function isOurAddress(a: InterfaceAddress): boolean {
  return a.protocol === VIPMTA_ADDR_PROTO || (a.label !== null && a.label.endsWith(VIPMTA_LABEL_SUFFIX));
}

function interfaceName(ifindex: number): string {
  const found = listInterfaces().find((i) => i.index === ifindex);
  if (found === undefined) {
    throw new VipError('ENODEV', `no interface with index ${ifindex}`, { syscall: 'if_indextoname' });
  }
  return found.name;
}

// ---- spool.cc --------------------------------------------------------------------------------
// Thin typed wrappers; the spool's own API and its documentation live in src/spool/index.ts.

/** An open spool (process-wide native instance); a handle is valid in the thread that made it. */
export type NativeSpoolHandle = { readonly __brand: 'NativeSpoolHandle' };
/** A message being received; owned by the thread that began it until commit or abort. */
export type NativeMessageHandle = { readonly __brand: 'NativeMessageHandle' };

export interface NativeSpoolOpenOptions {
  directory: string;
  nodeId: string;
  sync?: 'fdatasync' | 'none';
  commitDelayMs?: number;
  segmentSize?: number;
  copyForwardAfterMs?: number;
  preallocate?: 'zero' | 'fallocate' | 'none';
  journalLimit?: number;
}
export interface NativeSpoolEvent {
  kind: 'torn-tail' | 'corrupt';
  file: string;
  offset: number;
  length: number;
  reason: string;
  savedAs?: string;
}
export interface NativeSpoolOpened {
  handle: NativeSpoolHandle;
  directory: string;
  nodeId: string;
  events: NativeSpoolEvent[];
}
export interface NativeRecovered {
  id: string;
  envelope: Buffer;
  state: Buffer | null;
  size: number;
  arrival: number;
}
export interface NativeBodyLocation {
  fd: number;
  path: string;
  offset: number;
  length: number;
}
export interface NativeSpoolStats {
  messages: number;
  bytes: number;
  segments: number;
  commits: number;
  batches: number;
  syncs: number;
  journalEntries: number;
  copiedForward: number;
  reclaimed: number;
  fullErrors: number;
  ioErrors: number;
  recovered: number;
  corrupt: number;
  tornTails: number;
  latencyBoundsUs: number[];
  latencyCounts: number[];
  /** Sum of every commit latency counted in latencyCounts, µs. */
  latencySumUs: number;
  crc32cHardware: boolean;
}

/** Opens, locks and recovers a spool directory; blocks for the recovery scan. Throws on error. */
export function spoolOpen(opts: NativeSpoolOpenOptions): NativeSpoolOpened {
  return binding.spoolOpen(opts) as NativeSpoolOpened;
}
/** The process-wide spool another thread opened; throws ERR_SPOOL_CLOSED when there is none. */
export function spoolAttach(directory: string): NativeSpoolHandle {
  return binding.spoolAttach(directory) as NativeSpoolHandle;
}
/** Hot path: a new in-memory message. */
export function spoolBegin(sizeHint: number): NativeMessageHandle {
  return binding.spoolBegin(sizeHint) as NativeMessageHandle;
}
/** Hot path: converts one DATA chunk to wire form into the message; the chunk is not kept. */
export function spoolAppend(m: NativeMessageHandle, chunk: Buffer): void {
  binding.spoolAppend(m, chunk);
}
export function spoolAbort(m: NativeMessageHandle): void {
  binding.spoolAbort(m);
}
export function spoolCommit(h: NativeSpoolHandle, m: NativeMessageHandle, envelope: Buffer): Promise<{ id: string; size: number }> {
  return binding.spoolCommit(h, m, envelope) as Promise<{ id: string; size: number }>;
}
export function spoolMarkDone(h: NativeSpoolHandle, ids: string[]): Promise<void> {
  return binding.spoolMarkDone(h, ids) as Promise<void>;
}
export function spoolUpdate(h: NativeSpoolHandle, id: string, state: Buffer): Promise<void> {
  return binding.spoolUpdate(h, id, state) as Promise<void>;
}
export function spoolRead(h: NativeSpoolHandle, id: string): Buffer {
  return binding.spoolRead(h, id) as Buffer;
}
/** Reads the body into the start of `buf` if it fits; returns its length either way. */
export function spoolReadInto(h: NativeSpoolHandle, id: string, buf: Buffer): number {
  return binding.spoolReadInto(h, id, buf) as number;
}
export function spoolBodyLocation(h: NativeSpoolHandle, id: string): NativeBodyLocation {
  return binding.spoolBodyLocation(h, id) as NativeBodyLocation;
}
export function spoolRecover(h: NativeSpoolHandle, all = false): NativeRecovered[] {
  return binding.spoolRecover(h, all) as NativeRecovered[];
}
export function spoolStats(h: NativeSpoolHandle): NativeSpoolStats {
  return binding.spoolStats(h) as NativeSpoolStats;
}
export function spoolClose(h: NativeSpoolHandle): Promise<void> {
  return binding.spoolClose(h) as Promise<void>;
}

// ---- arp.cc ----------------------------------------------------------------------------------

/** Options of {@link sendArp}. */
export interface SendArpOptions {
  /**
   * 'request' (default): an ARP announcement, RFC 5227 2.3 (sender IP = target IP), as keepalived
   * and `arping -U` send it. 'reply': an unsolicited reply (`arping -A`), for the rare host that
   * only learns from replies.
   */
  op?: 'request' | 'reply';
  /** Unicast the frame to this MAC ("aa:bb:cc:dd:ee:ff") instead of broadcasting (Arp_All_Hosts). */
  destMac?: string | null;
  /**
   * ar$tpa; default the announced address itself (gratuitous). With `destMac`, the host's own
   * address turns the frame into a request for that host, which RFC 826 makes it learn from even
   * when it has no entry for us yet.
   */
  targetAddress?: string | null;
}

/**
 * Sends ONE ARP frame announcing IPv4 `address` with interface `ifname`'s MAC, from a fresh raw
 * AF_PACKET socket. Synchronous and short (a socket, two ioctls, one sendto); pacing and repetition
 * belong to the caller. Frame layout follows keepalived's vrrp_arp.c (see native/arp.h).
 *
 * Returns true when the frame went out, false when the interface has IFF_NOARP: it must not speak
 * ARP, which is an expected configuration, not a failure (keepalived skips such interfaces too).
 *
 * Throws: `ERR_INVALID_ADDRESS` (not an IPv4 literal), `ERR_INVALID_MAC`, `ENODEV`
 * (`if_nametoindex`), `ERR_ARP_UNSUPPORTED_LINK` (not Ethernet: loopback, tun, ...), `EPERM` from
 * `socket` without CAP_NET_RAW, `ENETDOWN` from `sendto` when the link is down.
 */
export function sendArp(ifname: string, address: string, opts: SendArpOptions = {}): boolean {
  return binding.sendArp(ifname, address, {
    op: opts.op ?? 'request',
    destMac: opts.destMac ?? null,
    targetAddress: opts.targetAddress ?? null,
  }) as boolean;
}

/** NUD state of a neighbour entry (ip-neighbour(8)); an unknown combination as its number. */
export type NeighbourState =
  | 'incomplete' | 'reachable' | 'stale' | 'delay' | 'probe' | 'failed' | 'noarp' | 'permanent' | 'none' | number;

/** One IPv4 entry of the kernel's neighbour (ARP) table. */
export interface Neighbour {
  ifindex: number;
  /** Interface name, null if it vanished while listing. */
  interface: string | null;
  address: string;
  /** "aa:bb:..."; null while incomplete or failed. */
  mac: string | null;
  state: NeighbourState;
  /** NTF_ROUTER. */
  router: boolean;
}

/**
 * The IPv4 neighbour table (an RTM_GETNEIGH dump, like `ip -4 neigh show`), optionally for one
 * interface. Synchronous and short. A snapshot the caller owns. Throws `ENODEV` for an unknown name.
 */
export function listNeighbours(ifname: string | null = null): Neighbour[] {
  return binding.listNeighbours(ifname) as Neighbour[];
}

// ---- corosync.cc -----------------------------------------------------------------------------

// Imported here so this section stays self-contained (see the netlink section); hoisted anyway.
import { EventEmitter } from 'node:events';

/** Why a process joined or left a CPG group (cpg_reason_t, cpg_overview(7)). */
export type CpgReason = 'join' | 'leave' | 'nodedown' | 'nodeup' | 'procdown' | 'undefined';

/** One process in a CPG group: corosync nodeid and the process id on that node. */
export interface CpgMember {
  nodeId: number;
  pid: number;
}

/** A CPG configuration change: the group's members after it, and who left or joined, with why. */
export interface CpgConfChange {
  group: string;
  members: CpgMember[];
  left: Array<CpgMember & { reason: CpgReason }>;
  joined: Array<CpgMember & { reason: CpgReason }>;
}

/** A totem (whole-ring) membership change: every node in the ring, members of our group or not. */
export interface TotemView {
  ringId: { nodeId: number; seq: number };
  members: number[];
}

/** The quorum state (quorum_overview(3)): only a quorate partition may own addresses. */
export interface QuorumState {
  quorate: boolean;
  ringSeq: number;
  /** nodeids in the current ring (the votequorum view). */
  members: number[];
}

/** Options of {@link CorosyncGroup.join}. */
export interface CorosyncJoinOptions {
  /** Whether the open group keeps the event loop alive (like a server socket). Default true. */
  ref?: boolean;
}

type NativeEvent =
  | { type: 'message'; nodeId: number; pid: number; data: Buffer }
  | ({ type: 'confchg' } & CpgConfChange)
  | ({ type: 'totem' } & TotemView)
  | ({ type: 'quorum' } & QuorumState)
  | { type: 'error'; error: Error };

/** Whether this build of the addon has corosync support (built where libcpg-dev was installed). */
export function corosyncSupported(): boolean {
  return binding.corosyncSupported === true;
}

/**
 * Membership in one corosync CPG group plus quorum tracking, over one connection to the local
 * corosync. Messages sent with {@link send} are delivered to every member, this process included,
 * in the same (agreed) order, interleaved consistently with configuration changes (virtual synchrony).
 *
 * Events (all on the thread that joined, after corosync's dispatch has returned):
 * - `'message' (nodeId, pid, data: Buffer)`: one delivery; the Buffer is the listener's to keep.
 * - `'confchg' (CpgConfChange)`: the group's membership changed; the first one lists us joining.
 * - `'totem' (TotemView)`: the ring changed (first one right after join).
 * - `'quorum' (QuorumState)`: quorum changed (first one right after join, with the current state).
 * - `'error' (Error)`: the connection to corosync was lost (`ERR_COROSYNC_DISCONNECTED`, e.g.
 *   corosync was killed); the group is closed after it, and `'close'` follows.
 * - `'close' ()`: once, after {@link close} or a lost connection.
 * As with any EventEmitter, an `'error'` nobody listens for is thrown, here as an uncaught exception.
 *
 * Lifetime: {@link join} connects, joins and starts a native poll thread; the group then holds
 * the event loop open (see {@link unref}) until {@link close}, which leaves the group (others see
 * reason 'leave') and stops the thread. A group must be closed; if it is garbage-collected or its
 * worker thread ends first, the native side closes itself. One connection per group per process.
 */
export class CorosyncGroup extends EventEmitter {
  /** The group name as given to {@link join}. */
  readonly name: string;
  /** This node's corosync nodeid (cpg_local_get). */
  readonly localNodeId: number;
  /** The quorum provider type (0 = none configured: everyone is quorate). */
  readonly quorumType: number;
  private readonly handle: unknown;
  private closedFlag = false;
  private lastMembers: CpgMember[] = [];
  private lastQuorum: QuorumState;
  private refed: boolean;

  private constructor(name: string, opened: { handle: unknown; localNodeId: number; quorate: boolean; quorumType: number }, opts: CorosyncJoinOptions) {
    super();
    this.name = name;
    this.handle = opened.handle;
    this.localNodeId = opened.localNodeId;
    this.quorumType = opened.quorumType;
    this.lastQuorum = { quorate: opened.quorate, ringSeq: 0, members: [] };
    this.refed = opts.ref ?? true;
  }

  /**
   * Connects to the local corosync and joins group `name` (1-128 bytes). Synchronous: a few IPC
   * round trips. Throws `ERR_COROSYNC_UNAVAILABLE` (built without corosync), `ERR_COROSYNC_NOT_RUNNING`
   * (no corosync in this network namespace), `ERR_COROSYNC` (with `csError`, e.g. CS_ERR_EXIST when
   * this process already joined `name`).
   */
  static join(name: string, opts: CorosyncJoinOptions = {}): CorosyncGroup {
    let group: CorosyncGroup | undefined;
    const queued: NativeEvent[][] = [];
    const opened = binding.corosyncOpen(name, (events: NativeEvent[]) => {
      if (group === undefined) queued.push(events);
      else group.onEvents(events);
    }) as { handle: unknown; localNodeId: number; quorate: boolean; quorumType: number };
    group = new CorosyncGroup(name, opened, opts);
    if (!group.refed) binding.corosyncRef(opened.handle, false);
    // Events are delivered from the event loop, never synchronously inside corosyncOpen, so the
    // queue is always empty here; kept for safety should that ever change.
    for (const ev of queued) group.onEvents(ev);
    return group;
  }

  /** The group's members as of the last 'confchg'. */
  get members(): CpgMember[] {
    return this.lastMembers;
  }

  /** The quorum state as of the last 'quorum' event (or the initial query at join). */
  get quorum(): QuorumState {
    return this.lastQuorum;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Multicasts `data` to the group in agreed order (CPG_TYPE_AGREED). The bytes are copied and
   * queued for the native IO thread, which sends them in order (retrying while corosync applies
   * flow control); this never blocks, even when corosync is stopped. Throws `ERR_COROSYNC_CLOSED`
   * after close, `ERR_COROSYNC_BUSY` when 4096 messages wait (corosync has stopped taking them).
   */
  send(data: Buffer | Uint8Array): void {
    if (this.closedFlag) throw new VipError(ErrorCode.COROSYNC_CLOSED, `corosync group "${this.name}" is closed`);
    if (!(binding.corosyncSend(this.handle, data) as boolean)) {
      throw new VipError(ErrorCode.COROSYNC_BUSY, `corosync group "${this.name}": 4096 messages wait to be sent; corosync is not taking them`);
    }
  }

  /**
   * Messages waiting to be sent, and how long (ms) the IO thread has been inside one corosync call
   * (0 when none). A corosync that is stopped shows as a growing `stalledMs`: the caller decides
   * when that means it can no longer speak for this node (the cluster manager releases its addresses).
   */
  sendState(): { queued: number; stalledMs: number } {
    if (this.closedFlag) return { queued: 0, stalledMs: 0 };
    return binding.corosyncSendState(this.handle) as { queued: number; stalledMs: number };
  }

  /** Messages waiting for the IO thread (corosync's flow control, or corosync stopped). */
  get pendingSends(): number {
    return this.sendState().queued;
  }

  /**
   * Leaves the group and disconnects. Idempotent; never blocks for more than ~200 ms (a stopped
   * corosync cannot hold it up: the leave finishes in the background). Unsent messages are dropped.
   */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    binding.corosyncClose(this.handle);
    process.nextTick(() => this.emit('close'));
  }

  /** Lets the process exit while the group is open. */
  unref(): this {
    this.refed = false;
    if (!this.closedFlag) binding.corosyncRef(this.handle, false);
    return this;
  }

  ref(): this {
    this.refed = true;
    if (!this.closedFlag) binding.corosyncRef(this.handle, true);
    return this;
  }

  private onEvents(events: NativeEvent[]): void {
    for (const ev of events) {
      switch (ev.type) {
        case 'message':
          this.emit('message', ev.nodeId, ev.pid, ev.data);
          break;
        case 'confchg': {
          const { type: _t, ...c } = ev;
          this.lastMembers = c.members;
          this.emit('confchg', c);
          break;
        }
        case 'totem': {
          const { type: _t, ...t } = ev;
          this.emit('totem', t);
          break;
        }
        case 'quorum': {
          const { type: _t, ...q } = ev;
          this.lastQuorum = q;
          this.emit('quorum', q);
          break;
        }
        case 'error':
          // The native side has already closed itself; mirror that here.
          this.closedFlag = true;
          this.emit('error', ev.error);
          this.emit('close');
          break;
      }
    }
  }
}

/** @internal for tests of the facade itself: the raw binding's export names. */
export function nativeExports(): string[] {
  return Object.keys(binding).sort();
}
