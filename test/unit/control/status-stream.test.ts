// The status event stream over a fake uWS response: the whole document on connect, deltas on the
// timer only when something changed, a client whose buffer is full skipped until it drains and then
// given the whole document, an aborted client forgotten. Timer driven by hand (tick()); no sleeps.
import { describe, expect, it } from 'vitest';
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import { STATUS_VERSION, type StatusState } from '../../../src/control/status.js';
import { StatusStream } from '../../../src/control/status-stream.js';

class FakeRes {
  written: string[] = [];
  status = '';
  headers: [string, string][] = [];
  full = false;
  ended = false;
  aborted: (() => void) | null = null;
  writable: ((offset: number) => boolean) | null = null;
  onAborted(h: () => void) { this.aborted = h; return this; }
  onWritable(h: (o: number) => boolean) { this.writable = h; return this; }
  cork(f: () => void) { f(); return this; }
  writeStatus(s: string) { this.status = s; return this; }
  writeHeader(k: string, v: string) { this.headers.push([k, v]); return this; }
  write(t: string) { this.written.push(t); return !this.full; }
  end() { this.ended = true; return this; }
  close() { this.ended = true; return this; }
  events() { return this.written.filter((w) => w.startsWith('event:')).map((w) => ({ event: /^event: (.*)$/m.exec(w)![1], data: JSON.parse(/^data: (.*)$/m.exec(w)![1]!) })); }
}

function doc(active: number): StatusState {
  return {
    version: STATUS_VERSION, seq: 0, generatedAt: 0, node: { name: 'n1', version: '1', startedAt: 0, pid: 1 }, cluster: null,
    members: [], addresses: [], queues: [{ bindingGroup: 'default', binding: 'default', active, deferred: 0, hold: 0 }], nodes: [], mmove: [], failovers: [], shaping: [],
  };
}

describe('status stream', () => {
  it('sends the document, then deltas only on change, and resynchronises a client that fell behind', () => {
    let active = 0;
    let built = 0;
    const stream = new StatusStream({ build: () => (built++, doc(active)), intervalMs: 1e9, heartbeatMs: 1e9 });
    const a = new FakeRes();
    stream.attach(a as unknown as HttpResponse);
    expect(a.status).toBe('200 OK');
    expect(a.headers).toContainEqual(['Content-Type', 'text/event-stream; charset=utf-8']);
    expect(a.events().map((e) => e.event)).toEqual(['state']);
    stream.tick();
    expect(a.events()).toHaveLength(1); // nothing changed
    active = 1;
    stream.tick();
    expect(a.events()[1]).toMatchObject({ event: 'delta', data: { upsert: { queues: [{ active: 1 }] } } });

    // A second client gets the last document sent, so the next delta fits both.
    const b = new FakeRes();
    stream.attach(b as unknown as HttpResponse);
    expect(b.events()[0]!.data.queues[0].active).toBe(1);
    b.full = true;
    active = 2;
    stream.tick();
    expect(a.events()).toHaveLength(3);
    expect(b.events()).toHaveLength(2); // written into a full buffer: behind now
    active = 3;
    stream.tick();
    expect(a.events()).toHaveLength(4);
    expect(b.events()).toHaveLength(2); // skipped
    b.full = false;
    b.writable!(0);
    expect(b.events().at(-1)).toMatchObject({ event: 'state', data: { queues: [{ active: 3 }] } });

    // Aborted clients are forgotten; with nobody left nothing is built.
    a.aborted!();
    b.aborted!();
    expect(stream.size).toBe(0);
    const n = built;
    stream.tick();
    expect(built).toBe(n);
    stream.close();
  });

  it('answers 500 when the document cannot be built, and a failing tick is reported, not thrown', () => {
    let fail = true;
    const errors: unknown[] = [];
    const stream = new StatusStream({ build: () => { if (fail) throw new Error('boom'); return doc(0); }, intervalMs: 1e9, heartbeatMs: 1e9, onError: (e) => errors.push(e) });
    const a = new FakeRes();
    stream.attach(a as unknown as HttpResponse);
    expect(a.status).toBe('500 Internal Server Error');
    expect(a.ended).toBe(true);
    expect(stream.size).toBe(0);
    fail = false;
    const b = new FakeRes();
    stream.attach(b as unknown as HttpResponse);
    fail = true;
    expect(() => stream.tick()).not.toThrow();
    expect(errors).toHaveLength(2);
    expect(b.events()).toHaveLength(1);
    stream.close();
    expect(b.ended).toBe(true);
  });
});
