// HTTP injection as one worker thread hosts it (issue 17): one InjectServer per Http_Injection
// Listen, every worker on the same address with SO_REUSEPORT as the ESMTP listeners are (the main
// thread's listen-check keeps other programs off the port), replaced on reload new-first, all or
// nothing, and drained with the worker. Worker thread; never blocks.
import type { Logger } from 'pino';
import type { AcceptedMessage } from '../message/accepted.js';
import { InjectServer, type InjectSink } from '../inject/server.js';
import type { InjectSettings } from '../inject/settings.js';
import { DrainFlag } from '../listener/drain-flag.js';
import { DRAIN_GRACE_MS } from './socket-set.js';

export interface InjectHostOptions {
  workerId: number;
  logger: Logger;
  sink: InjectSink | null;
  onMessage: (m: AcceptedMessage) => void;
}

interface Running {
  key: string;
  server: InjectServer;
}

export class InjectHost {
  private running = new Map<string, Running>();
  private queue: Promise<unknown> = Promise.resolve();
  private draining = false;

  constructor(private readonly o: InjectHostOptions) {}

  /** Serves exactly `settings`' addresses (none when null); resolves with the names served. */
  set(settings: InjectSettings | null): Promise<string[]> {
    const run = this.queue.then(() => this.apply(settings));
    this.queue = run.catch(() => undefined);
    return run;
  }

  get names(): string[] {
    return [...this.running.keys()];
  }

  get activeRequests(): number {
    let n = 0;
    for (const r of this.running.values()) n += r.server.activeSessions;
    return n;
  }

  /** Stops accepting everywhere; requests in progress finish within graceMs. */
  async drain(graceMs: number): Promise<number> {
    this.draining = true;
    await this.queue;
    const all = [...this.running.values()];
    this.running.clear();
    const cut = await Promise.all(all.map((r) => r.server.close(graceMs)));
    return cut.reduce((a, b) => a + b, 0);
  }

  private async apply(settings: InjectSettings | null): Promise<string[]> {
    if (this.draining) return [];
    const next = new Map<string, Running>();
    const started: Running[] = [];
    // The request counter is a SharedArrayBuffer: the same one on every call, not part of the key.
    const common = settings === null ? '' : JSON.stringify({ ...settings, listens: undefined, requests: undefined, drained: undefined });
    try {
      for (const spec of settings?.listens ?? []) {
        const key = `${JSON.stringify(spec)}${common}`;
        const cur = this.running.get(spec.name);
        if (cur !== undefined && cur.key === key) {
          next.set(spec.name, cur);
          continue;
        }
        const flag = settings!.drained === undefined ? null : new DrainFlag(settings!.drained);
        const server = new InjectServer({
          spec, settings: settings!, workerSlot: this.o.workerId, sink: this.o.sink, logger: this.o.logger, onMessage: this.o.onMessage,
          ...(flag !== null ? { drained: () => flag.drained } : {}),
        });
        await server.listen();
        const r = { key, server };
        started.push(r);
        next.set(spec.name, r);
      }
    } catch (err) {
      for (const r of started) void r.server.close(0);
      throw err;
    }
    for (const [name, cur] of this.running) {
      if (next.get(name) === cur) continue;
      void cur.server.close(DRAIN_GRACE_MS).then((cut) => {
        if (cut > 0) this.o.logger.warn({ listener: name, cut }, 'a retired HTTP injection listener cut requests that did not finish in time');
      });
    }
    this.running = next;
    return [...next.keys()];
  }
}
