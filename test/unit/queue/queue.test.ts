// The main thread's queue index: mailq rows per (group, binding, domain) and per-binding sizes
// counting each message once. Pure, in memory.
import { describe, expect, it } from 'vitest';
import { MessageQueue } from '../../../src/queue/queue.js';

function queue(): MessageQueue {
  const q = new MessageQueue();
  const m = { size: 10, arrival: 0, from: 's@x.test', headers: {} };
  q.add({ ...m, id: 'a', rcpt: ['r1@dest.test', 'r2@other.test'] });
  q.add({ ...m, id: 'b', rcpt: ['r3@dest.test'], state: 'deferred' });
  q.add({ ...m, id: 'c', rcpt: ['r4@dest.test'], bindingGroup: 'news', binding: 'news-a', state: 'hold' });
  return q;
}

describe('message queue', () => {
  it('counts a message in every recipient domain in mailq rows', () => {
    expect(queue().mailq()).toEqual([
      { bindingGroup: 'default', binding: 'default', domain: 'dest.test', active: 1, deferred: 1, hold: 0 },
      { bindingGroup: 'default', binding: 'default', domain: 'other.test', active: 1, deferred: 0, hold: 0 },
      { bindingGroup: 'news', binding: 'news-a', domain: 'dest.test', active: 0, deferred: 0, hold: 1 },
    ]);
  });

  it('counts each message once per binding for the queue gauges', () => {
    expect(queue().byBinding()).toEqual([
      { bindingGroup: 'default', binding: 'default', active: 1, deferred: 1, hold: 0 },
      { bindingGroup: 'news', binding: 'news-a', active: 0, deferred: 0, hold: 1 },
    ]);
  });
});
