// The spool envelope's decoder: version 1 read as it always was, and (for recovery, which hands
// many envelopes in one buffer) from a range of a larger buffer.
import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope, type SpoolEnvelope } from '../../../src/message/envelope.js';

const base: SpoolEnvelope = {
  v: 1, from: 'a@b.test', rcpt: ['c@d.test', 'e@f.test'], arrival: 1234, client: '192.0.2.1', helo: 'h.test', user: null, tls: true,
  listener: 'mx', headers: { 'message-id': '<1@b.test>', 'x-binding': 'b2' },
};

describe('decodeEnvelope', () => {
  it('decodes one envelope out of a buffer holding several, by range', () => {
    const a = encodeEnvelope(base);
    const b = encodeEnvelope({ ...base, from: 'other@b.test', dsnFor: 'q-1' });
    const all = Buffer.concat([a, b, Buffer.from('{"garbage"')]);
    expect(decodeEnvelope(all, 0, a.length)).toEqual(base);
    expect(decodeEnvelope(all, a.length, a.length + b.length)).toEqual({ ...base, from: 'other@b.test', dsnFor: 'q-1' });
    expect(decodeEnvelope(all, a.length + b.length, all.length)).toBeNull();
    expect(decodeEnvelope(all)).toBeNull();
  });

  it('gives fields of the wrong type their empty value and keeps only string header fields', () => {
    const raw = Buffer.from(JSON.stringify({ from: 7, rcpt: ['x@y.test', 3], arrival: 'soon', user: 5, tls: 'yes', listener: 1, headers: { a: 'b', n: 1, o: { p: 'q' } }, moved: { binding: 'b' } }));
    expect(decodeEnvelope(raw)).toEqual({ v: 1, from: '', rcpt: ['x@y.test'], arrival: 0, client: '', helo: '', user: null, tls: false, listener: null, headers: { a: 'b' } });
    expect(decodeEnvelope(Buffer.from('[1]'))).toBeNull();
    expect(decodeEnvelope(Buffer.from('null'))).toBeNull();
  });
});
