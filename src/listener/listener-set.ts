// The ESMTP listeners of one worker thread. Each listener gets this worker's own listening socket
// (SO_REUSEPORT + IP_FREEBIND, made by the addon), so the kernel spreads connections across workers
// and a node can listen on a cluster address before it owns it. Runs on a worker thread; never blocks.
import type { Logger } from 'pino';
import { closeFd, listenTcp } from '../native/index.js';
import type { AcceptedMessage } from '../message/accepted.js';
import type { ListenerSpec, WorkerStats } from '../workers/protocol.js';
import { EsmtpListener, type MessageSink } from './esmtp.js';

export interface ListenerSetOptions {
  workerId: number;
  hostname: string;
  logger: Logger;
  /** The spool as this worker writes it; null refuses DATA with 451 4.3.0. */
  sink: MessageSink | null;
  onMessage: (m: AcceptedMessage) => void;
  onError: (name: string, err: Error) => void;
}

export class ListenerSet {
  private readonly open = new Map<string, { spec: ListenerSpec; listener: EsmtpListener }>();
  private readonly accepted: Record<string, number> = {};
  private draining = false;

  constructor(private readonly opts: ListenerSetOptions) {}

  /**
   * Makes the open listeners exactly `specs`: opens new ones, closes removed ones, and replaces a
   * listener whose options changed (the new socket listens before the old one closes, so a reload
   * never refuses a connection). Throws (with the errno code) if a new socket cannot be made.
   */
  async set(specs: ListenerSpec[]): Promise<string[]> {
    if (this.draining) return [];
    const wanted = new Map(specs.map((s) => [s.name, s]));
    const started: EsmtpListener[] = [];
    try {
      for (const spec of specs) {
        const cur = this.open.get(spec.name);
        if (cur !== undefined && sameOptions(cur.spec, spec)) continue;
        const listener = await this.start(spec);
        started.push(listener);
        if (cur !== undefined) void cur.listener.close(0);
        this.open.set(spec.name, { spec, listener });
      }
    } catch (err) {
      // All or nothing: a reload that cannot open one listener keeps the old set.
      for (const l of started) void l.close(0);
      throw err;
    }
    for (const [name, cur] of this.open) {
      if (!wanted.has(name)) {
        this.open.delete(name);
        void cur.listener.close(0);
      }
    }
    return [...this.open.keys()];
  }

  stats(threadId: number): WorkerStats {
    let active = 0;
    for (const { listener } of this.open.values()) active += listener.activeSessions;
    return { workerId: this.opts.workerId, threadId, accepted: { ...this.accepted }, active, listening: [...this.open.keys()] };
  }

  /** Stops accepting on every listener, then waits up to timeoutMs for sessions in flight. */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    const results = await Promise.all([...this.open.values()].map(({ listener }) => listener.close(timeoutMs)));
    this.open.clear();
    return results.reduce((a, b) => a + b, 0);
  }

  private async start(spec: ListenerSpec): Promise<EsmtpListener> {
    const fd = listenTcp({ host: spec.host, port: spec.port, reusePort: true, freeBind: true });
    const listener = new EsmtpListener({
      spec,
      hostname: this.opts.hostname,
      logger: this.opts.logger,
      sink: this.opts.sink,
      onMessage: this.opts.onMessage,
      onAccept: () => {
        this.accepted[spec.name] = (this.accepted[spec.name] ?? 0) + 1;
      },
      onError: (err) => this.opts.onError(spec.name, err),
    });
    try {
      await listener.listenFd(fd);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return listener;
  }
}

function sameOptions(a: ListenerSpec, b: ListenerSpec): boolean {
  return a.host === b.host && a.port === b.port && JSON.stringify(a.options) === JSON.stringify(b.options);
}
