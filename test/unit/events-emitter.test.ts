// The main thread's event emitter (src/events/emitter.ts): what one turn of the event loop emits
// reaches the sink as one batch of encoded records, in order, with the node and the schema version
// set; without a sink (and when the sink refuses a batch) each record becomes its old log line.
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { decodeEvent } from '../../src/events/codec.js';
import { Events, logSink, type EventSink } from '../../src/events/emitter.js';

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, out), lines };
}

class MemorySink implements EventSink {
  readonly batches: Array<Array<{ id?: string; data: Buffer }>> = [];
  fail = false;
  append(records: Array<{ id?: string; data: Buffer }>): Promise<void> {
    if (this.fail) return Promise.reject(new Error('disk on fire'));
    this.batches.push(records);
    return Promise.resolve();
  }
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('event emitter', () => {
  it('hands what one turn emitted to the sink as one batch, in order, stamped with node, v and time', async () => {
    const sink = new MemorySink();
    const { logger } = capture();
    const ev = new Events({ node: 'n1', logger, sink, now: () => 1234 });
    ev.emit({ type: 'hold', id: 'A', binding: 'g/b', rcpt: ['x@y.test'] });
    ev.emit({ type: 'release', id: 'B', binding: 'g/b', rcpt: ['x@y.test'], time: 99 });
    ev.emit({ type: 'address_taken', address: '192.0.2.1' });
    expect(sink.batches).toEqual([]); // nothing on the caller's path
    await nextTurn();
    await ev.flush();
    expect(sink.batches.length).toBe(1);
    const [batch] = sink.batches;
    expect(batch!.map((f) => f.id)).toEqual(['A', 'B', undefined]);
    expect(batch!.map((f) => decodeEvent(f.data, f.id !== undefined ? { id: f.id } : {}))).toEqual([
      { type: 'hold', id: 'A', binding: 'g/b', rcpt: ['x@y.test'], v: 1, node: 'n1', time: 1234 },
      { type: 'release', id: 'B', binding: 'g/b', rcpt: ['x@y.test'], time: 99, v: 1, node: 'n1' },
      { type: 'address_taken', address: '192.0.2.1', v: 1, node: 'n1', time: 1234 },
    ]);
    ev.emit({ type: 'address_released', address: '192.0.2.1' });
    await nextTurn();
    await ev.flush();
    expect(sink.batches.length).toBe(2);
    expect(ev.stats).toEqual({ emitted: 4, batches: 2, failedAppends: 0 });
  });

  it('appends one batch after the other: the next waits until a slow append settled', async () => {
    const calls: string[] = [];
    let release: () => void = () => {};
    const sink: EventSink = {
      append(records): Promise<void> {
        calls.push(records.map((r) => r.id!).join());
        return calls.length === 1 ? new Promise((r) => (release = r)) : Promise.resolve();
      },
    };
    const ev = new Events({ node: 'n1', logger: capture().logger, sink });
    ev.emit({ type: 'hold', id: 'A', binding: 'g/b', rcpt: [] });
    await nextTurn();
    ev.emit({ type: 'hold', id: 'B', binding: 'g/b', rcpt: [] });
    await nextTurn();
    await nextTurn();
    expect(calls).toEqual(['A']);
    const done = ev.flush();
    release();
    await done;
    expect(calls).toEqual(['A', 'B']);
  });

  it('writes the old log lines when no journal is connected', async () => {
    const { logger, lines } = capture();
    const ev = new Events({ node: 'n1', logger });
    ev.emit({
      type: 'delivery', id: 'Q1', rcpt: 'b@y.test', binding: 'g/b', source: '192.0.2.1', mx: 'mx.y.test', ip: '203.0.113.5',
      reply: '250 2.0.0 Ok', code: 250, enhanced: '2.0.0', origin: 'remote', attempt: 1,
    });
    await nextTurn();
    expect(lines).toEqual([
      expect.objectContaining({
        level: 30, msg: 'delivered', event: 'delivery', id: 'Q1', binding: 'g/b', source: '192.0.2.1', rcpt: 'b@y.test',
        destination: '203.0.113.5', host: 'mx.y.test', reply: '250 2.0.0 Ok', origin: 'remote', attempt: 1,
      }),
    ]);
  });

  it('logs a batch the journal refused, record by record, and counts the refusal', async () => {
    const { logger, lines } = capture();
    const sink = new MemorySink();
    sink.fail = true;
    const ev = new Events({ node: 'n1', logger, sink, logLines: false });
    ev.emit({ type: 'dsn', id: 'D1', for: 'Q1', to: 'a@x.test', rcpt: ['b@y.test'] });
    await nextTurn();
    await ev.flush();
    expect(lines.map((l) => l.msg)).toEqual(['events: the journal refused a batch; its records go to the log', 'DSN queued']);
    expect(ev.stats.failedAppends).toBe(1);
  });

  it('connects a journal later: records not yet flushed go to it', async () => {
    const { logger, lines } = capture();
    const ev = new Events({ node: 'n1', logger, logLines: false });
    const sink = new MemorySink();
    ev.emit({ type: 'address_taken', address: '192.0.2.1' });
    ev.connect(sink);
    await nextTurn();
    await ev.flush();
    expect(lines).toEqual([]);
    expect(sink.batches.length).toBe(1);
  });

  it('has a log sink that decodes what it is given (a journal-less tee)', async () => {
    const { logger, lines } = capture();
    const ev = new Events({ node: 'n1', logger: capture().logger, sink: logSink(logger) });
    ev.emit({ type: 'mmove_sent', id: 'Q1', rcpt: ['b@y.test'], binding: 'g/b', peer: 'n2', reply: '250 ok', duplicate: false });
    await nextTurn();
    await ev.flush();
    expect(lines).toEqual([expect.objectContaining({ event: 'mmove', id: 'Q1', node: 'n2', msg: 'moved' })]);
  });

  it('with Event_Log_Lines on, writes each record to the journal and its line to the log; a record a worker journaled gets its line only', async () => {
    const { logger, lines } = capture();
    const sink = new MemorySink();
    const ev = new Events({ node: 'n1', logger, sink });
    ev.emit({ type: 'address_taken', address: '192.0.2.1' });
    ev.journaled({ type: 'address_released', address: '192.0.2.2' });
    await nextTurn();
    await ev.flush();
    expect(sink.batches.length).toBe(1);
    expect(sink.batches[0]!.length).toBe(1);
    expect(lines.map((l) => l.event)).toEqual(['address_released', 'address_taken']);
    // Off: the journal only, and nothing for what is already journaled.
    ev.setLogLines(false);
    ev.emit({ type: 'address_taken', address: '192.0.2.3' });
    ev.journaled({ type: 'address_released', address: '192.0.2.4' });
    await nextTurn();
    await ev.flush();
    expect(sink.batches.length).toBe(2);
    expect(lines.length).toBe(2);
  });
});
