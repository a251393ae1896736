// ECmmove2 codec: greeting challenge, HMAC proof, xtext, MAIL FROM metadata, BDAT unstuffing.
import { describe, expect, it } from 'vitest';
import {
  announceCommand,
  mailCommand,
  newChallenge,
  parseAnnounce,
  parseChallenge,
  parseMail,
  parseRcpt,
  proof,
  unstuff,
  verifyProof,
  xtextDecode,
  xtextEncode,
  greetingText,
} from '../../../src/mmove/wire.js';
import type { MoveMeta } from '../../../src/message/envelope.js';
import { wireForm } from '../spool/helpers.js';

const meta: MoveMeta = {
  binding: 'b1', bindingGroup: 'g 1+x=y', originalId: 'n1-00000001-abc', originNode: 'n0',
  arrival: 1_795_000_000_123, attempts: 3, nextAttempt: 1_795_000_600_000, hops: 2,
};

describe('mmove wire: challenge and proof', () => {
  it('puts a fresh challenge in the greeting and finds it again', () => {
    const c = newChallenge();
    expect(c).toMatch(/^[0-9a-f]{32}$/);
    expect(newChallenge()).not.toBe(c);
    expect(parseChallenge(greetingText('b.example', c))).toBe(c);
    expect(parseChallenge('b.example ESMTP Postfix')).toBeNull();
  });

  it('computes RFC 2104 HMAC-SHA256 over challenge and node (known answer)', () => {
    // Computed independently: printf 'ECmmove2\nc0ffee\nnode-a' | openssl dgst -sha256 -hmac secret
    expect(proof('secret', 'c0ffee', 'node-a')).toBe('1148625ba855eea3ddc3a323cb6e5352783ec1f694662ed5274d5aa063287bcb');
    const p = proof('secret', 'c0ffee', 'node-a');
    expect(p).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyProof('secret', 'c0ffee', 'node-a', p)).toBe(true);
  });

  it('rejects a proof made with another secret, challenge or node name, or malformed', () => {
    const p = proof('secret', 'c0ffee', 'node-a');
    expect(verifyProof('Secret', 'c0ffee', 'node-a', p)).toBe(false);
    expect(verifyProof('secret', 'c0ffef', 'node-a', p)).toBe(false);
    expect(verifyProof('secret', 'c0ffee', 'node-b', p)).toBe(false);
    expect(verifyProof('secret', 'c0ffee', 'node-a', p.slice(2))).toBe(false);
    expect(verifyProof('secret', 'c0ffee', 'node-a', 'zz' + p.slice(2))).toBe(false);
  });

  it('formats and parses the XMMOVE announce', () => {
    const cmd = announceCommand('node-a', 's', 'abcd');
    expect(cmd).toMatch(/^XMMOVE node-a HMAC-SHA256 [0-9a-f]{64}$/);
    const a = parseAnnounce(cmd.slice('XMMOVE '.length));
    expect(a).toEqual({ node: 'node-a', mechanism: 'HMAC-SHA256', proof: proof('s', 'abcd', 'node-a') });
    expect(parseAnnounce('node-a')).toBeNull();
    expect(parseAnnounce('bad/name HMAC-SHA256 00')).toBeNull();
    expect(() => announceCommand('bad name', 's', 'abcd')).toThrow(TypeError);
  });
});

describe('mmove wire: xtext (RFC 3461 4)', () => {
  it('round-trips any string and encodes +, = and non-printables', () => {
    for (const s of ['plain', 'a+b=c', 'sp ace', 'tab\there', 'ünïcode', '~!@#$%^&*()']) {
      const e = xtextEncode(s);
      expect(e).toMatch(/^[\x21-\x7e]*$/);
      expect(e).not.toMatch(/=/);
      expect(xtextDecode(e)).toBe(s);
    }
    expect(xtextEncode('a+b=c d')).toBe('a+2Bb+3Dc+20d');
  });

  it('refuses malformed xtext', () => {
    expect(xtextDecode('a+2')).toBeNull();
    expect(xtextDecode('a+zz')).toBeNull();
    expect(xtextDecode('a=b')).toBeNull();
    expect(xtextDecode('a b')).toBeNull();
  });
});

describe('mmove wire: MAIL FROM metadata', () => {
  it('round-trips every metadata field', () => {
    const cmd = mailCommand('sender@example.com', 4096, meta);
    expect(cmd.startsWith('MAIL FROM:<sender@example.com> SIZE=4096 ')).toBe(true);
    const p = parseMail(cmd.slice('MAIL '.length));
    expect(p).toEqual({ ok: true, from: 'sender@example.com', size: 4096, meta });
  });

  it('carries the null sender', () => {
    const p = parseMail(mailCommand('', 1, meta).slice(5));
    expect(p.ok && p.from).toBe('');
  });

  it('names what is wrong: syntax, unknown or missing parameters', () => {
    const good = mailCommand('a@b', 1, meta).slice(5);
    expect(parseMail('TO:<a@b>')).toMatchObject({ ok: false, reason: 'syntax' });
    expect(parseMail(good + ' FOO=1')).toMatchObject({ ok: false, reason: 'unknown-parameter', detail: 'FOO' });
    expect(parseMail(good.replace(/ XMM-HOPS=\d+/, ''))).toMatchObject({ ok: false, reason: 'missing-parameter', detail: 'XMM-HOPS' });
    expect(parseMail(good.replace(/XMM-HOPS=\d+/, 'XMM-HOPS=-1'))).toMatchObject({ ok: false, reason: 'syntax' });
    expect(parseMail(good.replace(/XMM-ID=\S+/, 'XMM-ID='))).toMatchObject({ ok: false, reason: 'syntax' });
    expect(parseMail(good + ' XMM-HOPS=1')).toMatchObject({ ok: false, reason: 'syntax' });
  });

  it('refuses metadata that is not a non-negative integer', () => {
    expect(() => mailCommand('a@b', 1, { ...meta, attempts: -1 })).toThrow(RangeError);
    expect(() => mailCommand('a@b', 1, { ...meta, arrival: 1.5 })).toThrow(RangeError);
  });

  it('parses RCPT TO', () => {
    expect(parseRcpt('TO:<x@y.example>')).toBe('x@y.example');
    expect(parseRcpt('to: <x@y>')).toBe('x@y');
    expect(parseRcpt('TO:<>')).toBeNull();
    expect(parseRcpt('TO:<x@y> NOTIFY=NEVER')).toBeNull();
  });
});

describe('mmove wire: BDAT content from wire form', () => {
  const cases = ['plain\r\nlines\r\n', '.leading dot\r\n', 'a\r\n.b\r\n..c\r\n.\r\nend\r\n', '...\r\n', 'x\r\n.'];
  it('undoes exactly the dot-stuffing of the wire form', () => {
    for (const raw of cases) {
      const wire = wireForm(Buffer.from(raw));
      const { pieces, length } = unstuff(wire);
      const out = Buffer.concat(pieces);
      expect(out.length).toBe(length);
      // Stuffing the result again gives the stored wire form back, byte for byte.
      expect(wireForm(out).equals(wire)).toBe(true);
    }
  });

  it('returns a body without leading dots as the one buffer it is (no copy)', () => {
    const wire = Buffer.from('hello\r\nworld\r\n');
    const { pieces } = unstuff(wire);
    expect(pieces).toHaveLength(1);
    expect(pieces[0]).toBe(wire);
  });
});
