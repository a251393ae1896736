// GET /api/cluster/v1/stream: server-sent events over uWebSockets.js. A client gets the whole
// status document on connect (event "state"), then at most every `intervalMs` the delta from the
// last document when something changed (event "delta"), and a comment line as a heartbeat. Main
// thread; the document is built only while someone listens. Never blocks: a client that cannot
// keep up (its socket buffer full) is skipped, and gets a whole document again once it drains.
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import { diffStatus, type StatusState } from './status.js';

/** A full document at most this often while something changes (docs/cluster.md). */
export const STREAM_INTERVAL_MS = 250;
/** A comment line this often keeps proxies and the browser's EventSource from timing out. */
export const HEARTBEAT_MS = 15_000;
/** A client behind for this long is closed: it reconnects and starts from a whole document. */
const BEHIND_LIMIT_MS = 60_000;

interface Client {
  res: HttpResponse;
  /** Its socket buffer was full at the last write: skip deltas until it drains. */
  behindSince: number | null;
  closed: boolean;
}

export interface StatusStreamOptions {
  /** Builds the current document (seq is set here). */
  build: () => StatusState;
  intervalMs?: number;
  heartbeatMs?: number;
  /** A build that threw (logged by the server); the stream goes on with the next tick. */
  onError?: (err: unknown) => void;
  now?: () => number;
}

export class StatusStream {
  private readonly clients = new Set<Client>();
  private last: StatusState | null = null;
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly o: StatusStreamOptions) {
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.clients.size;
  }

  /** Takes a GET of the stream: headers, the whole document, then the client stays subscribed. */
  attach(res: HttpResponse): void {
    let first: string;
    try {
      first = this.full();
    } catch (err) {
      this.o.onError?.(err);
      res.cork(() => res.writeStatus('500 Internal Server Error').writeHeader('Content-Type', 'application/json').end('{"error":"internal error"}'));
      return;
    }
    const c: Client = { res, behindSince: null, closed: false };
    res.onAborted(() => {
      c.closed = true;
      this.clients.delete(c);
      this.idle();
    });
    res.onWritable(() => {
      // Drained: what it missed is replaced by a whole document.
      if (c.behindSince !== null && !c.closed && this.last !== null) {
        c.behindSince = null;
        this.write(c, event('state', this.last.seq, JSON.stringify(this.last)));
      }
      return true;
    });
    this.clients.add(c);
    res.cork(() => {
      res.writeStatus('200 OK')
        .writeHeader('Content-Type', 'text/event-stream; charset=utf-8')
        .writeHeader('Cache-Control', 'no-store')
        .writeHeader('X-Accel-Buffering', 'no');
      // Reconnect after 1 s when the node goes away (EventSource's own default is 3 s or more).
      res.write('retry: 1000\n\n');
    });
    this.write(c, first);
    this.busy();
  }

  /** Ends every stream (the server closes). */
  close(): void {
    for (const c of this.clients) {
      c.closed = true;
      try {
        c.res.cork(() => c.res.end());
      } catch { /* already gone */ }
    }
    this.clients.clear();
    this.idle();
  }

  /** The whole document as an event: the last one sent (the base of the next delta every other
   *  client gets), or a new one when nobody listened. */
  private full(): string {
    this.last ??= this.build();
    return event('state', this.last.seq, JSON.stringify(this.last));
  }

  private build(): StatusState {
    const s = this.o.build();
    s.seq = ++this.seq;
    return s;
  }

  /** One turn of the timer: the delta since the last document, to every client keeping up. */
  tick(): void {
    if (this.clients.size === 0) return;
    const prev = this.last;
    let next: StatusState;
    try {
      next = this.build();
    } catch (err) {
      this.o.onError?.(err);
      return;
    }
    this.last = next;
    const now = this.now();
    for (const c of this.clients) if (c.behindSince !== null && now - c.behindSince > BEHIND_LIMIT_MS) this.drop(c);
    if (prev === null) return;
    const d = diffStatus(prev, next);
    if (d === null) return;
    const text = event('delta', d.seq, JSON.stringify(d));
    for (const c of this.clients) if (c.behindSince === null) this.write(c, text);
  }

  private write(c: Client, text: string): void {
    if (c.closed) return;
    let ok = true;
    c.res.cork(() => (ok = c.res.write(text)));
    if (!ok) c.behindSince = this.now();
  }

  private drop(c: Client): void {
    c.closed = true;
    this.clients.delete(c);
    try {
      c.res.cork(() => c.res.close());
    } catch { /* already gone */ }
  }

  private busy(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), this.o.intervalMs ?? STREAM_INTERVAL_MS);
    this.timer.unref();
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) if (c.behindSince === null && !c.closed) this.write(c, ': ping\n\n');
    }, this.o.heartbeatMs ?? HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private idle(): void {
    if (this.clients.size > 0) return;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.timer = this.heartbeat = null;
    this.last = null;
  }
}

/** One SSE event; JSON has no raw newline, so the data is one line. */
function event(name: string, id: number, data: string): string {
  return `event: ${name}\nid: ${id}\ndata: ${data}\n\n`;
}
