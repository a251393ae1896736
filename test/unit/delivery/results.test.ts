// Bounce classes where results are made (src/delivery/results.ts): the receiver's reply decides a
// remote failure's class, each of our own failures (LOCAL_FAILURES) has the class of its cause,
// and a delivered recipient carries none.
import { describe, expect, it } from 'vitest';
import { LOCAL_FAILURES, localClass, localResult, remoteResult, type LocalFailureName } from '../../../src/delivery/results.js';

const where = { remoteHost: 'mx.dest.test', remoteAddress: '192.0.2.1' };
const reply = (code: number, enhanced: string | null, ...lines: string[]) => ({ code, enhanced, lines });

describe('bounce classes of delivery results', () => {
  it('classes a remote failure by the receiver\'s reply, and a delivery not at all', () => {
    expect(remoteResult('a@d.test', reply(550, '5.1.1', '5.1.1 <a@d.test>: no such user'), where)).toMatchObject({ status: 'bounced', bounceClass: 10 });
    expect(remoteResult('a@d.test', reply(452, '4.2.2', '4.2.2 mailbox full'), where)).toMatchObject({ status: 'deferred', bounceClass: 22 });
    expect(remoteResult('a@d.test', reply(421, '4.7.0', '4.7.0 [TSS04] Messages from 192.0.2.9 temporarily deferred due to unexpected volume or user complaints'), where))
      .toMatchObject({ status: 'deferred', bounceClass: 70 });
    expect(remoteResult('a@d.test', reply(554, '5.7.1', '5.7.1 Service unavailable; client host blocked using Spamhaus'), where)).toMatchObject({ bounceClass: 51 });
    const ok = remoteResult('a@d.test', reply(250, '2.0.0', '2.0.0 ok'), where);
    expect(ok.status).toBe('delivered');
    expect('bounceClass' in ok).toBe(false);
  });

  it('gives each of our own failures the class of its cause, never by the X.4.x code alone', () => {
    const expected: Record<LocalFailureName, number> = {
      dnsTemporary: 21, noSuchDomain: 21, nullMx: 21, noRoute: 21,
      // 4.4.1 / 4.4.2 would read as "network and routing" (21): they are transient.
      connectFailed: 70, lostConnection: 70, bindingMoved: 70,
      protocolError: 70, tlsNotOffered: 70, tlsFailed: 70, spoolRead: 70, throttled: 70,
      utf8NotOffered: 40,
      shuttingDown: 25,
    };
    for (const name of Object.keys(LOCAL_FAILURES) as LocalFailureName[]) {
      expect([name, localClass(name)]).toEqual([name, expected[name]]);
      expect(localResult('a@d.test', name, 'detail', where).bounceClass).toBe(expected[name]);
    }
  });

  it('never classes our own words as the receiver\'s: a detail that names a block stays transient', () => {
    expect(localResult('a@d.test', 'protocolError', 'mx sent a malformed reply line "blocked: spam"', where).bounceClass).toBe(70);
  });
});
