// Typed wrappers of native/corosync.cc: membership in one corosync CPG group with quorum tracking,
// as an EventEmitter. Main thread (the cluster manager); nothing blocks: the join and the sends run
// on the native IO thread (the join resolves a promise), and libcpg/libquorum are dlopen()ed.
import { EventEmitter } from 'node:events';
import { ErrorCode, VipError } from '../errors.js';
import { binding } from './addon.js';

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
  /**
   * Whether the group, and the join while it waits for corosync, keeps the event loop alive (like
   * a server socket). Default true.
   */
  ref?: boolean;
}

/** What the join's first event says. */
interface Opened {
  localNodeId: number;
  quorate: boolean;
  quorumType: number;
}

type NativeEvent =
  | ({ type: 'opened' } & Opened)
  | { type: 'openFailed'; error: Error }
  | { type: 'message'; nodeId: number; pid: number; data: Buffer }
  | ({ type: 'confchg' } & CpgConfChange)
  | ({ type: 'totem' } & TotemView)
  | ({ type: 'quorum' } & QuorumState)
  | { type: 'error'; error: Error };

/** Corosync's client libraries as this process found them: the files loaded, or what to install. */
export type CorosyncLibrary = { available: true; cpg: string; quorum: string } | { available: false; error: string };

/**
 * Loads libcpg.so.4 and libquorum.so.5 (dlopen; the addon is built without them) unless already
 * loaded, and says which files were loaded or why they could not be. A failed load is tried again
 * at the next call or join, so corosync installed while vipmta runs is found. Fast (no IPC).
 */
export function corosyncLibrary(): CorosyncLibrary {
  return binding.corosyncLibrary() as CorosyncLibrary;
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
 * Lifetime: {@link join} starts a native poll thread that connects and joins; the group then holds
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
  /** Events that arrived before the caller of join() could listen; null once handed out. */
  private held: NativeEvent[] | null = [];
  private closedFlag = false;
  private lastMembers: CpgMember[] = [];
  private lastQuorum: QuorumState;
  private refed: boolean;

  private constructor(name: string, handle: unknown, opened: Opened, opts: CorosyncJoinOptions) {
    super();
    this.name = name;
    this.handle = handle;
    this.localNodeId = opened.localNodeId;
    this.quorumType = opened.quorumType;
    this.lastQuorum = { quorate: opened.quorate, ringSeq: 0, members: [] };
    this.refed = opts.ref ?? true;
  }

  /**
   * Connects to the local corosync and joins group `name` (1-128 bytes). The IPC runs on the native
   * IO thread: the promise settles when corosync has answered, which a stopped (SIGSTOP) corosync
   * never does until it continues; the event loop stays free meanwhile. Rejects with
   * `ERR_INVALID_ARG_TYPE` (bad name), `ERR_COROSYNC_UNAVAILABLE` (libcpg or libquorum cannot be
   * loaded: the message says what to install), `ERR_COROSYNC_NOT_RUNNING` (no corosync in this network
   * namespace) or `ERR_COROSYNC` (with `csError` and `call`, e.g. CS_ERR_EXIST from cpg_join when this
   * process already joined `name`). Events that arrive with the answer are emitted from a later
   * turn of the event loop, so listeners added when the promise resolves see them all.
   */
  static join(name: string, opts: CorosyncJoinOptions = {}): Promise<CorosyncGroup> {
    return new Promise((resolve, reject) => {
      // A throw here (bad name, libraries missing) rejects the promise.
      let group: CorosyncGroup | undefined;
      const handle: unknown = binding.corosyncOpen(name, (events: NativeEvent[]) => {
        if (group !== undefined) {
          group.onEvents(events);
          return;
        }
        const [first, ...rest] = events;
        if (first?.type === 'openFailed') {
          reject(first.error); // the native side has closed itself
          return;
        }
        if (first?.type !== 'opened') {
          // The IO thread always reports the join's outcome first: anything else is our bug.
          binding.corosyncClose(handle);
          reject(new Error(`corosync: the join's outcome was not the first event (got ${first?.type})`));
          return;
        }
        const g = new CorosyncGroup(name, handle, first, opts);
        group = g;
        g.held!.push(...rest);
        setImmediate(() => g.release());
        resolve(g);
      });
      if (opts.ref === false) binding.corosyncRef(handle, false);
    });
  }

  /** Emits what arrived before join()'s caller could listen, then lets events through directly. */
  private release(): void {
    const held = this.held;
    this.held = null;
    if (held !== null && held.length > 0 && !this.closedFlag) this.onEvents(held);
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
    if (this.held !== null) {
      this.held.push(...events);
      return;
    }
    for (const ev of events) {
      switch (ev.type) {
        case 'opened':
        case 'openFailed':
          break; // only ever first, handled by join()
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
