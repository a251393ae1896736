// One worker's reloadable set of listening sockets, for any engine that serves connections on a
// listening fd (the ESMTP listeners, the #mmove receivers). It owns the one drain policy of vipmta.
// Worker thread; never blocks (socket creation is one synchronous addon call per new address).
//
// The policy, for a reload that removes or replaces a listener and for a worker's drain alike:
// - the old listener stops accepting at once; on a replace the new socket (SO_REUSEPORT) listens
//   before the old one closes, so no connection is refused (the main thread has checked with a
//   probe that no other program holds the port: node/listen-check.ts);
// - its sessions finish what they are inside of: a message in DATA (or a #mmove body) is received,
//   committed and answered 250; idle sessions get 421 4.3.2 at once or after their current
//   command (the engine decides which, by what it can tell);
// - what is still open after the grace is cut off and counted.
// A reload is all or nothing: if one socket cannot be made, the running set stays as it was.
import { closeFd, listenTcp } from '../native/index.js';

/** The grace a retired listener gives its sessions, and what a worker's stop gives by default. */
export const DRAIN_GRACE_MS = 30_000;

/** Where a listener listens; `name` ("ip:port" as written) is its identity across reloads. */
export interface SocketSpec {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** IP_FREEBIND: a DuraVIP, listened on before this node plumbs it. Any other address must be on
   *  the host (EADDRNOTAVAIL otherwise). */
  readonly freeBind?: boolean;
}

/** What an engine's listener implements for the set. */
export interface ServedSocket {
  /** Serves connections on a listening fd; owns the fd once this resolves. */
  listenFd(fd: number): Promise<void>;
  /**
   * Stops accepting now; sessions finish under the policy above within graceMs, then the rest are
   * cut off. Resolves with how many were cut off. Called again (a drain during a retire), it
   * returns the same promise and brings the deadline forward if the new grace ends sooner.
   */
  close(graceMs: number): Promise<number>;
  /** Sessions open right now. */
  readonly activeSessions: number;
}

export interface SocketSetOptions<S extends SocketSpec, L extends ServedSocket> {
  /** The engine's listener for one spec, not yet listening. */
  create(spec: S): L;
  /** Specs with equal keys are served by the running listener as it is. Default: the spec's JSON. */
  key?(spec: S): string;
  /** Grace of a listener retired by a reload. Default DRAIN_GRACE_MS. */
  retireGraceMs?: number;
  /** A retired listener has closed; cutOff sessions did not finish within the grace. */
  onRetired?(name: string, cutOff: number): void;
  /** Makes and closes the listening socket (tests); default the addon, reusePort, freeBind as the spec says. */
  socket?: { open(spec: S): number; close(fd: number): void };
}

interface Entry<S, L> {
  spec: S;
  key: string;
  listener: L;
}

const addonSocket = {
  // SO_REUSEPORT: every worker has its own socket on the address and the kernel spreads
  // connections over them. IP_FREEBIND (DuraVIPs only): a node listens on a cluster address
  // before it holds it.
  open: (spec: SocketSpec): number =>
    listenTcp({ host: spec.host, port: spec.port, reusePort: true, freeBind: spec.freeBind === true }),
  close: closeFd,
};

export class SocketSet<S extends SocketSpec, L extends ServedSocket> {
  private open = new Map<string, Entry<S, L>>();
  /** Listeners a reload took out of service whose sessions are still finishing. */
  private readonly retiring = new Set<L>();
  /** set() calls run one after the other: each sees the set the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();
  private draining = false;
  private readonly key: (spec: S) => string;
  private readonly socket: { open(spec: S): number; close(fd: number): void };

  constructor(private readonly opts: SocketSetOptions<S, L>) {
    this.key = opts.key ?? ((s) => JSON.stringify(s));
    this.socket = opts.socket ?? addonSocket;
  }

  /**
   * Makes the listeners exactly `specs`: keeps the unchanged ones, opens new ones, retires the
   * removed ones, and replaces a changed one (new socket first). Resolves with the names now
   * served. Rejects (with the errno code of the socket that failed) and keeps the old set if any
   * socket cannot be made. After drain() it does nothing and resolves with [].
   */
  set(specs: readonly S[]): Promise<string[]> {
    const run = this.queue.then(() => this.apply(specs));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The listeners in service, by name (not the retiring ones). */
  listeners(): [string, L][] {
    return [...this.open].map(([name, e]) => [name, e.listener]);
  }

  get names(): string[] {
    return [...this.open.keys()];
  }

  /** Sessions open right now, on listeners in service and on retiring ones. */
  get activeSessions(): number {
    let n = 0;
    for (const e of this.open.values()) n += e.listener.activeSessions;
    for (const l of this.retiring) n += l.activeSessions;
    return n;
  }

  /** Stops accepting everywhere; sessions finish under the policy within graceMs (retiring
   *  listeners too, their grace shortened if need be). Resolves with how many were cut off. */
  async drain(graceMs: number): Promise<number> {
    this.draining = true;
    await this.queue;
    const all = [...[...this.open.values()].map((e) => e.listener), ...this.retiring];
    this.open.clear();
    const cut = await Promise.all(all.map((l) => l.close(graceMs)));
    return cut.reduce((a, b) => a + b, 0);
  }

  private async apply(specs: readonly S[]): Promise<string[]> {
    if (this.draining) return [];
    const next = new Map<string, Entry<S, L>>();
    const started: Entry<S, L>[] = [];
    try {
      for (const spec of specs) {
        const key = this.key(spec);
        const cur = this.open.get(spec.name);
        if (cur !== undefined && cur.key === key) {
          next.set(spec.name, cur);
          continue;
        }
        const e = { spec, key, listener: await this.start(spec) };
        started.push(e);
        next.set(spec.name, e);
      }
    } catch (err) {
      // All or nothing. The sockets opened so far may already have taken connections (they share
      // the port): those sessions finish like any other on a listener taken out of service.
      for (const e of started) this.retire(e);
      throw err;
    }
    for (const cur of this.open.values()) if (next.get(cur.spec.name) !== cur) this.retire(cur);
    this.open = next;
    return [...next.keys()];
  }

  private async start(spec: S): Promise<L> {
    // The listener first: if it cannot be made (a TLS key that cannot be read), no fd is open.
    const listener = this.opts.create(spec);
    const fd = this.socket.open(spec);
    try {
      await listener.listenFd(fd);
    } catch (err) {
      this.socket.close(fd);
      throw err;
    }
    return listener;
  }

  private retire(e: Entry<S, L>): void {
    const l = e.listener;
    this.retiring.add(l);
    void l.close(this.opts.retireGraceMs ?? DRAIN_GRACE_MS).then((cutOff) => {
      this.retiring.delete(l);
      this.opts.onRetired?.(e.spec.name, cutOff);
    });
  }
}
