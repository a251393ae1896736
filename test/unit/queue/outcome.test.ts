// What a delivery result means for one part (src/queue/outcome.ts), as a pure function of the
// part, its results, the queue's settings and a clock value: no manager, no timers, no sleeping.
import { describe, expect, it } from 'vitest';
import type { MessageResult, RecipientResult, RecipientStatus } from '../../../src/delivery/results.js';
import { backoff, outcomeOf, type OutcomeSettings, type PartSnapshot } from '../../../src/queue/outcome.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 11, 1, 8, 0, 0);
const here: OutcomeSettings = { retryMs: HOUR, expireMs: 5 * 24 * HOUR, local: true };
const noJitter = (): number => 0;

function reply(rcpt: string, status: RecipientStatus, origin: 'remote' | 'local' = 'remote'): RecipientResult {
  const [code, enhanced] = status === 'delivered' ? [250, '2.0.0'] : status === 'deferred' ? [451, '4.3.0'] : [550, '5.1.1'];
  const r: RecipientResult = { rcpt, status, code, enhanced, reply: `${code} ${enhanced} ${status}`, origin, remoteHost: 'mx.dest.test', remoteAddress: '192.0.2.1' };
  if (status !== 'delivered') r.bounceClass = status === 'bounced' ? 10 : 70;
  return r;
}

function results(...r: RecipientResult[]): MessageResult {
  return { id: 'q1', localAddress: '127.0.0.3', results: r };
}

function part(rcpts: string[], attempts = 0, arrival = T0): PartSnapshot {
  return { rcpts, attempts, arrival };
}

describe('delivery outcome', () => {
  it('delivered: every recipient done, nothing left, nothing bounced', () => {
    const o = outcomeOf(part(['a@d.test', 'b@d.test']), results(reply('a@d.test', 'delivered'), reply('b@d.test', 'delivered')), here, T0 + 1000);
    expect(o).toMatchObject({ delivered: 2, refused: 0, bounced: [], expired: [], attempt: 1, retry: null });
    expect(o.replies.map((r) => [r.rcpt, r.status])).toEqual([['a@d.test', 'delivered'], ['b@d.test', 'delivered']]);
  });

  it('deferred: the recipient is tried again after Retry_Interval doubled per attempt made', () => {
    const now = T0 + 10 * HOUR;
    const first = outcomeOf(part(['a@d.test']), results(reply('a@d.test', 'deferred')), here, now, noJitter);
    expect(first.retry).toEqual({ rcpts: ['a@d.test'], attempts: 1, next: now + HOUR, away: false });
    const third = outcomeOf(part(['a@d.test'], 2), results(reply('a@d.test', 'deferred')), here, now, noJitter);
    expect(third.retry).toEqual({ rcpts: ['a@d.test'], attempts: 3, next: now + 4 * HOUR, away: false });
    expect(third.attempt).toBe(3);
    // The jitter adds at most 10%.
    const jittered = outcomeOf(part(['a@d.test']), results(reply('a@d.test', 'deferred')), here, now, () => 0.5);
    expect(jittered.retry!.next).toBe(now + 1.05 * HOUR);
  });

  it('a recipient without a result (the worker said nothing of it) is deferred like a 4xx', () => {
    const o = outcomeOf(part(['a@d.test', 'b@d.test']), results(reply('a@d.test', 'delivered')), here, T0, noJitter);
    expect(o.delivered).toBe(1);
    expect(o.retry).toMatchObject({ rcpts: ['b@d.test'], attempts: 1 });
    expect(outcomeOf(part(['a@d.test']), undefined, here, T0, noJitter).retry).toMatchObject({ rcpts: ['a@d.test'], attempts: 1 });
  });

  it('bounced: a 5xx recipient bounces with its reply; the part is done when nothing else is left', () => {
    const bad = reply('a@d.test', 'bounced');
    const o = outcomeOf(part(['a@d.test']), results(bad), here, T0);
    expect(o).toMatchObject({ delivered: 0, refused: 1, bounced: [bad], expired: [], retry: null });
  });

  it('mixed recipients: delivered, bounced and deferred in one part, replies in the part\'s order', () => {
    const rcpts = ['ok@d.test', 'bad@d.test', 'later@d.test', 'silent@d.test'];
    const o = outcomeOf(part(rcpts, 1), results(reply('later@d.test', 'deferred'), reply('bad@d.test', 'bounced'), reply('ok@d.test', 'delivered')), here, T0 + HOUR, noJitter);
    expect(o.replies.map((r) => r.rcpt)).toEqual(['ok@d.test', 'bad@d.test', 'later@d.test']);
    expect(o.delivered).toBe(1);
    expect(o.refused).toBe(1);
    expect(o.bounced.map((r) => r.rcpt)).toEqual(['bad@d.test']);
    expect(o.retry).toEqual({ rcpts: ['later@d.test', 'silent@d.test'], attempts: 2, next: T0 + HOUR + 2 * HOUR, away: false });
  });

  it('expired: what is left after Message_Expiration bounces with 4.4.7 and the last reply', () => {
    const q = { ...here, expireMs: 24 * HOUR };
    const rcpts = ['bad@d.test', 'later@d.test', 'silent@d.test'];
    const res = results(reply('bad@d.test', 'bounced'), reply('later@d.test', 'deferred'));
    // A millisecond before expiry it is still a retry.
    expect(outcomeOf(part(rcpts, 4), res, q, T0 + 24 * HOUR - 1, noJitter).retry).not.toBeNull();
    const o = outcomeOf(part(rcpts, 4), res, q, T0 + 24 * HOUR);
    expect(o.retry).toBeNull();
    expect(o.refused).toBe(1);
    expect(o.bounced.map((r) => [r.rcpt, r.enhanced, r.reply, r.bounceClass])).toEqual([
      // The 5xx keeps the class delivery gave it; the expired ones are Momentum's 24 (Timeout).
      ['bad@d.test', '5.1.1', '550 5.1.1 bounced', 10],
      ['later@d.test', '4.4.7', '451 4.3.0 deferred', 24],
      // No reply of its own: the part's last reply (the 4xx of later@).
      ['silent@d.test', '4.4.7', '451 4.3.0 deferred', 24],
    ]);
    expect(o.expired).toEqual([{ rcpt: 'later@d.test', reply: '451 4.3.0 deferred', bounceClass: 24 }, { rcpt: 'silent@d.test', reply: '451 4.3.0 deferred', bounceClass: 24 }]);
    // No reply at all: 4.4.7 with no diagnostic, our own.
    const none = outcomeOf(part(['x@d.test']), undefined, q, T0 + 24 * HOUR);
    expect(none.bounced).toEqual([expect.objectContaining({ rcpt: 'x@d.test', code: 0, enhanced: '4.4.7', reply: '', origin: 'local' })]);
    expect(none.expired).toEqual([{ rcpt: 'x@d.test', reply: null, bounceClass: 24 }]);
  });

  it("'away': the binding left this node and only our side failed: no attempt counted, it goes at once", () => {
    const gone = { ...here, local: false };
    const cut = reply('a@d.test', 'deferred', 'local');
    const o = outcomeOf(part(['a@d.test', 'b@d.test'], 2), results(cut), gone, T0 + HOUR);
    expect(o.retry).toEqual({ rcpts: ['a@d.test', 'b@d.test'], attempts: 2, next: 0, away: true });
    // The remote answered a 4xx: that says something about the destination, so it is an attempt.
    const o2 = outcomeOf(part(['a@d.test'], 2), results(reply('a@d.test', 'deferred', 'remote')), gone, T0 + HOUR, noJitter);
    expect(o2.retry).toEqual({ rcpts: ['a@d.test'], attempts: 3, next: T0 + HOUR + 4 * HOUR, away: false });
    // Our side failed but the binding is still here: an attempt, with backoff.
    const o3 = outcomeOf(part(['a@d.test'], 2), results(cut), here, T0 + HOUR, noJitter);
    expect(o3.retry).toMatchObject({ attempts: 3, away: false });
  });

  it("'away' for a result the engine marked cut (the handover's abortFrom), even before the route says the binding left", () => {
    // The results of a cut can arrive before the queue has looked the binding's route up again.
    const cut: MessageResult = { ...results(reply('a@d.test', 'delivered'), reply('b@d.test', 'deferred', 'local')), cut: true };
    const o = outcomeOf(part(['a@d.test', 'b@d.test'], 2), cut, here, T0 + HOUR);
    expect(o).toMatchObject({ delivered: 1, retry: { rcpts: ['b@d.test'], attempts: 2, next: 0, away: true } });
    // A remote reply among what is left is an attempt, cut or not.
    const mixed: MessageResult = { ...results(reply('a@d.test', 'deferred', 'remote'), reply('b@d.test', 'deferred', 'local')), cut: true };
    expect(outcomeOf(part(['a@d.test', 'b@d.test'], 2), mixed, here, T0 + HOUR, noJitter).retry).toMatchObject({ attempts: 3, away: false });
  });

  it('counts attempts up to 65535 (the store keeps 16 bits)', () => {
    const o = outcomeOf(part(['a@d.test'], 0xffff), results(reply('a@d.test', 'deferred')), { ...here, expireMs: Infinity }, T0, noJitter);
    expect(o.retry!.attempts).toBe(0xffff);
    expect(o.retry!.next).toBe(T0 + backoff(HOUR, 0x10000, noJitter));
  });
});
