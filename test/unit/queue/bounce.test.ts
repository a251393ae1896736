// Bounces: the worker-side DSN writer (src/delivery/bounce.ts) against a real spool in a temp
// directory (it reads the original's headers from the spool and commits the DSN with its
// envelope), and the main-thread side (src/queue/bounce.ts): the gate and the retry on failure.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { spoolBounce, type BounceRequest } from '../../../src/delivery/bounce.js';
import type { RecipientResult } from '../../../src/delivery/results.js';
import { decodeEnvelope } from '../../../src/message/envelope.js';
import { Bounces } from '../../../src/queue/bounce.js';
import { Spool } from '../../../src/spool/index.js';
import { tempDir } from '../../helpers/tmp.js';

const logger = pino({ level: 'silent' });
const spools: Spool[] = [];
afterEach(async () => {
  for (const s of spools.splice(0)) await s.close();
});

function openSpool(): Spool {
  const s = Spool.open({ directory: tempDir('vipmta-bounce-'), nodeId: 't', sync: 'none', preallocate: 'none' });
  spools.push(s);
  return s;
}

async function original(spool: Spool, body: string): Promise<string> {
  const w = spool.writer().begin();
  w.append(Buffer.from(body));
  const { id } = await w.commit(Buffer.from('{"v":1,"from":"sender@s.test","rcpt":["a@d.test"]}'));
  return id;
}

const NOW = Date.UTC(2026, 11, 1, 9, 0, 0);

function request(originalId: string): BounceRequest {
  return {
    originalId, to: 'sender@s.test', arrival: NOW - 3_600_000, now: NOW, reportingMta: 'mta.test',
    recipients: [
      { rcpt: 'a@d.test', status: '5.1.1', remoteReply: '550 5.1.1 <a@d.test>: user unknown', remoteMta: 'mx.d.test', bounceClass: 10 },
      { rcpt: 'b@d.test', status: '4.4.7', remoteReply: null, remoteMta: null },
    ],
  };
}

describe('worker-side DSN writer', () => {
  it('reads the original headers from the spool, builds the DSN and commits it from the null sender', async () => {
    const spool = openSpool();
    // A header line starting with "." is stored dot-stuffed; the DSN carries it unstuffed.
    const id = await original(spool, 'Subject: hello\r\n.X-Dot: yes\r\n\r\nthe body must not be copied\r\n');
    const { id: dsnId, size } = await spoolBounce(request(id), { reader: spool, writer: spool.writer() }, logger);
    const rec = spool.live().find((r) => r.id === dsnId)!;
    expect(rec.size).toBe(size);
    expect(decodeEnvelope(rec.envelope)).toEqual({
      v: 1, from: '', rcpt: ['sender@s.test'], arrival: NOW, client: '', helo: '', user: null, tls: false, listener: null, headers: {}, dsnFor: id,
    });
    const body = spool.read(dsnId).toString('latin1');
    expect(body).toContain('To: <sender@s.test>');
    expect(body).toContain(`X-Vipmta-Queue-ID: ${id}`);
    expect(body).toContain('Final-Recipient: rfc822; a@d.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.d.test\r\nDiagnostic-Code: smtp; 550 5.1.1 <a@d.test>: user unknown');
    expect(body).toMatch(/Diagnostic-Code: smtp; 550 5\.1\.1 <a@d\.test>: user unknown\r\nLast-Attempt-Date: [^\r]+\r\nX-Vipmta-Bounce-Class: 10 \(Invalid Recipient\)\r\n/);
    expect(body).toContain('Final-Recipient: rfc822; b@d.test\r\nAction: failed\r\nStatus: 4.4.7\r\nLast-Attempt-Date:');
    expect(body).not.toMatch(/Status: 4\.4\.7\r\nLast-Attempt-Date: [^\r]+\r\nX-Vipmta/); // no class given: no field
    expect(body).toContain('Subject: hello\r\n..X-Dot: yes\r\n'); // stuffed again in the DSN's own wire form
    expect(body).not.toContain('the body must not be copied');
  });

  it('writes the DSN without the headers when the original is gone', async () => {
    const spool = openSpool();
    const warned: unknown[] = [];
    const { id } = await spoolBounce(request('t-00000000-000099'), { reader: spool, writer: spool.writer() }, { warn: (o: unknown) => warned.push(o) } as never);
    expect(spool.read(id).toString()).toContain('Content-Type: text/rfc822-headers');
    expect(warned).toHaveLength(1);
  });

  it('refuses a DSN to the null sender', async () => {
    const spool = openSpool();
    await expect(spoolBounce({ ...request('x'), to: '' }, { reader: spool, writer: spool.writer() }, logger)).rejects.toThrow(/null sender/);
    expect(spool.live()).toHaveLength(0);
  });
});

describe('main-thread bounces', () => {
  const bounced: RecipientResult[] = [
    { rcpt: 'a@d.test', status: 'bounced', code: 550, enhanced: '5.1.1', reply: '550 5.1.1 unknown', origin: 'remote', remoteHost: 'mx.d.test', remoteAddress: null, bounceClass: 10 },
    { rcpt: 'b@d.test', status: 'bounced', code: 421, enhanced: null, reply: '4.4.2 connection cut', origin: 'local', remoteHost: null, remoteAddress: null },
  ];

  it('asks for one DSN per request, gates the original until it is spooled, and queues it', async () => {
    const asked: BounceRequest[] = [];
    const queued: unknown[] = [];
    let finish!: () => void;
    const b = new Bounces({
      bounce: async (req) => {
        asked.push(req);
        await new Promise<void>((r) => (finish = r));
        return { id: 'dsn1', size: 10 };
      },
      hostname: () => 'mta.test', logger,
      spooled: (d) => queued.push(d),
    });
    const retried: string[][] = [];
    b.request({ id: 'q1', from: 's@s.test', arrival: 5 }, bounced, 99, (r) => retried.push(r));
    expect(b.gate('q1')).toBeDefined();
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([{
      originalId: 'q1', to: 's@s.test', arrival: 5, now: 99, reportingMta: 'mta.test',
      recipients: [
        { rcpt: 'a@d.test', status: '5.1.1', remoteReply: '550 5.1.1 unknown', remoteMta: 'mx.d.test', bounceClass: 10 },
        // Without a class (a refusal over #mmove): classed from its reply.
        { rcpt: 'b@d.test', status: '4.0.0', remoteReply: null, remoteMta: null, bounceClass: 70 },
      ],
    }]);
    expect(queued).toHaveLength(0);
    finish();
    await b.gate('q1');
    expect(queued).toEqual([{ id: 'dsn1', size: 10, to: 's@s.test', arrival: 99 }]);
    expect(b.gate('q1')).toBeUndefined();
    expect([b.spooledCount, b.failedCount, retried.length]).toEqual([1, 0, 0]);
  });

  it('puts the recipients back when the DSN cannot be spooled, and sends none for the null sender', async () => {
    const b = new Bounces({
      bounce: () => Promise.reject(Object.assign(new Error('disk full'), { code: 'ERR_SPOOL_FULL' })),
      hostname: () => 'mta.test', logger, spooled: () => undefined,
    });
    const retried: string[][] = [];
    b.request({ id: 'q1', from: 's@s.test', arrival: 5 }, bounced, 99, (r) => retried.push(r));
    b.request({ id: 'q2', from: '', arrival: 5 }, bounced, 99, (r) => retried.push(r));
    expect(b.gate('q2')).toBeUndefined();
    await b.settled();
    expect(retried).toEqual([['a@d.test', 'b@d.test']]);
    expect([b.spooledCount, b.failedCount]).toEqual([0, 1]);
  });
});
