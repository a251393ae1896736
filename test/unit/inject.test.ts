// The HTTP injection engine's pure parts: the request's checks (each refusal names its field),
// templates that reach only the data (no prototype, no function), MIME per recipient, the token
// check and its memory, and the request count across workers.
import { describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/config/password.js';
import { bindingRefusal, TokenCheck } from '../../src/inject/auth.js';
import { compose, renderPlain, viewOf } from '../../src/inject/compose.js';
import { newRequestCount, RequestCount, requestsInProgress, resetRequestSlot } from '../../src/inject/limits.js';
import { parseRequest, recipientProblem, RequestError, type InjectRequest } from '../../src/inject/request.js';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const base = { envelope_sender: 's@sender.test', content: 'Subject: x\r\n\r\nhi\r\n', recipients: [{ email: 'r@example.net' }] };

function refused(body: Buffer | unknown, max = 100): RequestError {
  try {
    parseRequest(Buffer.isBuffer(body) ? body : json(body), max);
  } catch (err) {
    if (err instanceof RequestError) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('the request', () => {
  it('takes KumoMTA\'s shape', () => {
    const r = parseRequest(json({
      ...base, substitutions: { a: 1 }, binding: 'b1',
      recipients: [{ email: 'r@example.net', name: 'R', substitutions: { b: 2 } }],
    }), 10);
    expect(r).toMatchObject({ envelopeSender: 's@sender.test', binding: 'b1', substitutions: { a: 1 }, recipients: [{ email: 'r@example.net', name: 'R', substitutions: { b: 2 } }] });
  });

  it('names the field of each refusal', () => {
    expect(refused(Buffer.from('{')).field).toBe('body');
    expect(refused([1]).field).toBe('body');
    expect(refused({ ...base, envelope_sender: 'a b@c' }).field).toBe('envelope_sender');
    expect(refused({ ...base, content: 5 }).field).toBe('content');
    expect(refused({ ...base, content: '{{#open}}' }).field).toBe('content');
    expect(refused({ ...base, recipients: [] }).field).toBe('recipients');
    expect(refused({ ...base, recipients: [{ name: 'x' }] }).field).toBe('recipients[0].email');
    expect(refused({ ...base, recipients: [{ email: 'a@b', substitutions: [] }] }).field).toBe('recipients[0].substitutions');
    expect(refused({ ...base, content: { from: 'f@x.test', text_body: 'x' } }).field).toBe('content.subject');
    expect(refused({ ...base, content: { from: 'f@x.test', subject: 's' } }).field).toBe('content.text_body');
    expect(refused({ ...base, content: { from: 'f@x.test', subject: 's', text_body: 't', headers: { 'Bad Name': 'v' } } }).field).toBe('content.headers.Bad Name');
    expect(refused({ ...base, content: { from: 'f@x.test', subject: 's', text_body: 't', headers: { 'X-A': 'a\r\nBcc: x@y' } } }).field).toBe('content.headers.X-A');
    expect(refused({ ...base, content: { from: 'f@x.test', subject: 's', text_body: 't', headers: { To: 'x@y' } } }).field).toBe('content.headers.To');
    expect(refused({ ...base, content: { from: 'f@x.test', subject: 's', text_body: 't', attachments: [{ data: '!!', base64: true }] } }).field).toBe('content.attachments[0].data');
  });

  it('answers more recipients than allowed with 413', () => {
    const e = refused({ ...base, recipients: [{ email: 'a@b' }, { email: 'c@d' }] }, 1);
    expect([e.status, e.field]).toEqual([413, 'recipients']);
  });

  it('leaves a bad recipient address to fail alone', () => {
    expect(recipientProblem('r@example.net')).toBeNull();
    expect(recipientProblem('no at sign')).not.toBeNull();
    expect(recipientProblem('ü@example.net')).not.toBeNull();
  });
});

describe('templates', () => {
  const req = parseRequest(json({ ...base, substitutions: { who: 'all', list: [{ x: 1 }, { x: 2 }] } }), 10);

  it('substitute the recipient\'s data over the request\'s', () => {
    const v = viewOf(req, { email: 'r@example.net', name: null, substitutions: { who: 'you' } });
    expect(renderPlain('{{who}} {{email}} {{#list}}{{x}}{{/list}}', v)).toBe('you r@example.net 12');
  });

  it('reach no prototype and call no function', () => {
    const v = viewOf(req, { email: 'r@example.net', name: null, substitutions: {} });
    expect(renderPlain('[{{constructor}}][{{email.constructor}}][{{#list.constructor.constructor}}x{{/list.constructor.constructor}}][{{__proto__}}][{{toString}}]', v)).toBe('[][][][][]');
    expect(renderPlain('{{list.length}}', v)).toBe('2');
  });
});

describe('compose', () => {
  it('keeps an RFC 5322 message as given, substituted, and reads its Message-ID', async () => {
    const req: InjectRequest = parseRequest(json({ ...base, content: 'Message-ID: <{{n}}@x.test>\r\nSubject: {{n}}\r\n\r\nbody {{n}}\r\n' }), 10);
    const c = await compose(req, { email: 'r@example.net', name: null, substitutions: { n: '7' } }, 'mta.test');
    expect(c.message.toString()).toBe('Message-ID: <7@x.test>\r\nSubject: 7\r\n\r\nbody 7\r\n');
    expect(c.messageId).toBe('<7@x.test>');
  });

  it('builds MIME from parts with the recipient in To', async () => {
    const req = parseRequest(json({ ...base, content: { from: { email: 'f@sender.test', name: 'F' }, subject: 'Hi {{name}}', text_body: 'x' } }), 10);
    const c = await compose(req, { email: 'r@example.net', name: 'Ré', substitutions: {} }, 'mta.test');
    const s = c.message.toString();
    // RFC 2047 encoded words for the non-ASCII name, in To and in the substituted Subject.
    expect(s).toMatch(/^To: =\?UTF-8\?B\?UsOp\?= <r@example\.net>\r$/m);
    expect(s).toMatch(/^Subject: =\?UTF-8\?Q\?Hi_R=C3=A9\?=\r$/m);
    expect(c.messageId).toMatch(/^<[0-9a-f-]+@mta\.test>$/);
  });
});

describe('tokens', () => {
  it('accept Bearer and Basic, refuse the rest, and remember what they checked', async () => {
    const secret = await hashPassword('s3cret', { ln: 4, r: 8, p: 1 });
    const t = { name: 'app', secret, bindings: ['b1'] };
    const check = new TokenCheck([{ name: 'other', secret: await hashPassword('x', { ln: 4, r: 8, p: 1 }), bindings: [] }, t]);
    expect(await check.check('Bearer s3cret')).toBe(t);
    expect(await check.check(`Basic ${Buffer.from('app:s3cret').toString('base64')}`)).toBe(t);
    expect(await check.check(`Basic ${Buffer.from('other:s3cret').toString('base64')}`)).toBeNull();
    expect(await check.check('Bearer wrong')).toBeNull();
    expect(await check.check('Token s3cret')).toBeNull();
  });

  it('allow only their bindings, and only bindings that exist', () => {
    const known = new Set(['b1', 'b2', 'g1']);
    expect(bindingRefusal({ name: 'a', secret: '', bindings: ['b1'] }, 'b1', known)).toBeNull();
    expect(bindingRefusal({ name: 'a', secret: '', bindings: ['b1'] }, 'b2', known)).toMatch(/may not/);
    expect(bindingRefusal({ name: 'a', secret: '', bindings: ['*'] }, 'g1', known)).toBeNull();
    expect(bindingRefusal({ name: 'a', secret: '', bindings: ['*'] }, 'zz', known)).toMatch(/names no binding/);
  });
});

describe('the request count', () => {
  it('counts across slots and forgets a replaced worker\'s', () => {
    const buf = newRequestCount();
    const w0 = new RequestCount(buf, 0);
    const w1 = new RequestCount(buf, 1);
    expect(w0.tryOpen(2)).toBe(true);
    expect(w1.tryOpen(2)).toBe(true);
    expect(w1.tryOpen(2)).toBe(false);
    w0.close();
    expect(w1.tryOpen(2)).toBe(true);
    expect(requestsInProgress(buf)).toBe(2);
    resetRequestSlot(buf, 1);
    expect(requestsInProgress(buf)).toBe(0);
  });
});
