// The webhook exporter's decisions with an injected clock and an in-memory journal: batching by
// count, bytes and Max_Delay, acks only after a 2xx and in order, the same batch retried with
// doubling backoff, one log line per distinct failure, types passed over and acked.
import { describe, expect, it } from 'vitest';
import type { EventReadResult } from '../../../src/spool/events.js';
import type { PostReply } from '../../../src/export/http-post.js';
import { retryDelay, WebhookExporter, type ExportClock, type WebhookOptions } from '../../../src/export/webhook.js';

class FakeClock implements ExportClock {
  t = 1_800_000_000_000;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private ids = 0;
  /** Delays asked for, in order (0s excluded: yields). */
  readonly delays: number[] = [];
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown {
    if (ms > 0) this.delays.push(ms);
    const id = ++this.ids;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void { this.timers = this.timers.filter((x) => x.id !== h); }
  /** Runs every timer due up to now + ms, letting promises settle in between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      this.timers.sort((a, b) => a.at - b.at);
      const x = this.timers[0];
      if (x === undefined || x.at > end) break;
      this.timers.shift();
      this.t = Math.max(this.t, x.at);
      x.fn();
    }
    this.t = end;
    await settle();
  }
}

const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); };

class FakeJournal {
  records: Array<{ seq: number; time: number; id: string | null; data: Buffer }> = [];
  checkpoint = 0;
  acks: number[] = [];
  subscribed: string[] = [];
  add(n: number, type = 'delivery'): void {
    for (let i = 0; i < n; i++) {
      const seq = this.records.length + 1;
      const payload = type === 'rejection'
        ? { v: 1, type, listener: 'mx', client: '192.0.2.1', stage: 'RCPT', code: 550, enhanced: '5.1.1', reply: '550 no' }
        : { v: 1, type, rcpt: `r${seq}@example.org`, binding: 'default/b1', source: null, mx: null, ip: null, reply: '250 ok', code: 250, enhanced: null, origin: 'remote', attempt: 1 };
      this.records.push({ seq, time: 1_800_000_000_000 + seq, id: type === 'rejection' ? null : `Q${seq}`, data: Buffer.from(JSON.stringify(payload)) });
    }
  }
  subscribe(name: string): number { this.subscribed.push(name); return this.checkpoint; }
  reads: Array<{ from: number; next: number }> = [];
  read(from: number, max: number): EventReadResult {
    const res = this.readAt(from, max);
    this.reads.push({ from, next: res.next });
    return res;
  }
  private readAt(from: number, max: number): EventReadResult {
    const records = this.records.filter((r) => r.seq >= from).slice(0, max);
    return { records, next: records.length > 0 ? records[records.length - 1]!.seq + 1 : Math.max(from, this.records.length + 1) };
  }
  async ack(_name: string, seq: number): Promise<void> {
    if (seq > this.records.length) throw new RangeError('past the end');
    this.acks.push(seq);
    this.checkpoint = Math.max(this.checkpoint, seq);
  }
  lastSeq(): number { return this.records.length; }
}

interface Logged { level: string; obj: Record<string, unknown>; msg: string }

function setup(over: Partial<WebhookOptions> = {}, replies: Array<number | Error> = []) {
  const clock = new FakeClock();
  const journal = new FakeJournal();
  const logs: Logged[] = [];
  const posts: Array<Array<Record<string, unknown>>> = [];
  const logger = {
    info: (obj: object, msg: string) => logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj: object, msg: string) => logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj: object, msg: string) => logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
  const post = async (body: Buffer): Promise<PostReply> => {
    posts.push(JSON.parse(body.toString('utf8')) as Array<Record<string, unknown>>);
    const r = replies.shift() ?? 200;
    if (r instanceof Error) throw r;
    return { status: r, head: r >= 300 ? `refused with ${r}` : '' };
  };
  const e = new WebhookExporter({
    name: 'billing', node: 'n1', journal, post, batchSize: 3, batchBytes: 1 << 20, maxDelayMs: 1000,
    minRetryMs: 1000, maxRetryMs: 8000, types: [], from: 'end', logger, clock, random: () => 0, ...over,
  });
  return { clock, journal, logs, posts, e, replies };
}

describe('webhook exporter', () => {
  it('sends full batches at once, each a JSON array of records with seq, id, node and record_id, acking each after its 2xx', async () => {
    const { clock, journal, posts, e } = setup();
    journal.add(7);
    e.start();
    expect(journal.subscribed).toEqual(['webhook-billing']);
    await clock.advance(0);
    expect(posts.map((p) => p.map((r) => r.seq))).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(journal.acks).toEqual([3, 6]);
    expect(posts[0]![0]).toMatchObject({ record_id: 'n1:1', seq: 1, id: 'Q1', node: 'n1', type: 'delivery', time: 1_800_000_000_001 });
    // The 7th waits for Max_Delay: a batch that is not full is not sent at once.
    await clock.advance(999);
    expect(posts).toHaveLength(2);
    await clock.advance(1);
    expect(posts.map((p) => p.map((r) => r.seq))).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(journal.acks).toEqual([3, 6, 7]);
    expect(e.stats()).toMatchObject({ state: 'idle', lagRecords: 0, lagSeconds: 0, batchesSent: 3, recordsSent: 7, retries: 0 });
  });

  it('retries the same batch with doubling backoff up to the cap, never acking or skipping before a 2xx', async () => {
    const { clock, journal, posts, logs, e } = setup({}, [500, 500, new Error('socket hang up'), 503, 500, 500]);
    journal.add(3);
    e.start();
    await clock.advance(0);
    expect(journal.acks).toEqual([]);
    expect(e.stats()).toMatchObject({ state: 'retrying', lagRecords: 3, retries: 1 });
    await clock.advance(60_000);
    // Six failures, then the 7th attempt succeeds: every attempt carried seq 1-3.
    expect(posts).toHaveLength(7);
    for (const p of posts) expect(p.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(journal.acks).toEqual([3]);
    expect(clock.delays.filter((d) => d >= 1000)).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    // One WARN per distinct reason (500, the connection error, 503), an INFO at recovery.
    expect(logs.filter((l) => l.level === 'warn').map((l) => l.obj.status ?? 'error')).toEqual([500, 'error', 503]);
    expect(logs.filter((l) => l.level === 'error')).toEqual([]);
    expect(logs.filter((l) => l.level === 'info').map((l) => l.obj.failedAttempts)).toEqual([6]);
    expect(e.stats()).toMatchObject({ retries: 6, failing: 0, batchesSent: 1, recordsSent: 3 });
  });

  it('logs a 4xx refusal at ERROR once per distinct status with the reply, and still retries it (408 and 429 are WARN)', async () => {
    const { clock, journal, logs, e } = setup({}, [401, 401, 404, 429, 401, 200]);
    journal.add(2);
    e.start();
    await clock.advance(120_000);
    expect(journal.acks).toEqual([2]);
    const errors = logs.filter((l) => l.level === 'error');
    expect(errors.map((l) => l.obj.status)).toEqual([401, 404]);
    expect(errors[0]!.obj.reply).toBe('refused with 401');
    expect(logs.filter((l) => l.level === 'warn').map((l) => l.obj.status)).toEqual([429]);
  });

  it('stops a batch before Batch_Bytes, the record that does not fit opening the next one', async () => {
    const { clock, journal, posts, e } = setup({ batchSize: 100, batchBytes: 600, readChunk: 4 });
    journal.add(5);
    e.start();
    await clock.advance(5000);
    const seqs = posts.map((p) => p.map((r) => r.seq as number));
    expect(seqs.flat()).toEqual([1, 2, 3, 4, 5]);
    expect(seqs.length).toBeGreaterThan(1);
    for (const p of posts.slice(0, -1)) expect(Buffer.byteLength(JSON.stringify(p))).toBeLessThanOrEqual(600);
    // Each read starts where the last one stopped: what did not fit is kept, not read again.
    for (let i = 1; i < journal.reads.length; i++) expect(journal.reads[i]!.from).toBe(journal.reads[i - 1]!.next);
  });

  it('sends only the Types asked for, and acks the records passed over', async () => {
    const { clock, journal, posts, e } = setup({ types: ['delivery'] });
    journal.add(2, 'rejection');
    journal.add(2);
    journal.add(3, 'rejection');
    e.start();
    await clock.advance(5000);
    expect(posts.map((p) => p.map((r) => r.seq))).toEqual([[3, 4]]);
    // The batch covers the rejections before and after it: the checkpoint ends at the last record.
    expect(journal.checkpoint).toBe(7);
    expect(e.stats().lagRecords).toBe(0);
  });

  it('picks up records appended while it is idle, and reports its lag while a batch is retried', async () => {
    const { clock, journal, posts, e } = setup({}, [500]);
    e.start();
    await clock.advance(5000);
    expect(posts).toEqual([]);
    journal.add(1);
    await clock.advance(300);
    await clock.advance(1000);
    expect(posts).toHaveLength(1);
    const s = e.stats();
    expect(s).toMatchObject({ state: 'retrying', lagRecords: 1, failing: 1 });
    expect(s.lagSeconds).toBeGreaterThan(0);
    await clock.advance(2000);
    expect(journal.acks).toEqual([1]);
  });

  it('abandons a request in flight at stop without acking it', async () => {
    const { clock, journal, e } = setup({
      post: (_b, signal) => new Promise((_res, rej) => signal.addEventListener('abort', () => rej(Object.assign(new Error('stopped'), { code: 'ABORT_ERR' })))),
    });
    journal.add(3);
    e.start();
    await clock.advance(0);
    expect(e.stats().state).toBe('sending');
    await e.stop();
    expect(e.stats().state).toBe('stopped');
    expect(journal.acks).toEqual([]);
  });
});

describe('retryDelay', () => {
  it('doubles from the minimum, caps at the maximum and takes off at most a quarter as jitter', () => {
    expect([1, 2, 3, 4, 9, 60].map((a) => retryDelay(a, 1000, 300_000, 0))).toEqual([1000, 2000, 4000, 8000, 256_000, 300_000]);
    expect(retryDelay(3, 1000, 300_000, 0.999)).toBeGreaterThanOrEqual(3000);
    expect(retryDelay(3, 1000, 300_000, 0.5)).toBe(3500);
  });
});
