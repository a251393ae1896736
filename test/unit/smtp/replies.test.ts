// The one SMTP reply table (src/smtp/replies.ts): every row is a well-formed reply whose enhanced
// code agrees with its reply code, and replies read from a peer yield their enhanced code.
import { describe, expect, it } from 'vitest';
import { enhancedOf, REPLIES, replyError, replyText } from '../../../src/smtp/replies.js';

describe('reply table', () => {
  it('has a class-consistent enhanced code at the start of every row', () => {
    for (const [name, r] of Object.entries(REPLIES)) {
      expect(r.code, name).toBeGreaterThanOrEqual(400);
      expect(r.code, name).toBeLessThan(600);
      expect(r.text.startsWith(`${r.enhanced} `), name).toBe(true);
      expect(enhancedOf(r.code, r.text), name).toBe(r.enhanced);
      expect(r.text, name).not.toMatch(/[\r\n]/);
    }
  });
  it('makes the Error smtp-server sends as "code text"', () => {
    const e = replyError('relayDenied');
    expect(e.responseCode).toBe(550);
    expect(e.message).toBe('5.7.1 Relaying denied: authenticate or use a permitted network');
  });
});

describe('replies from a peer', () => {
  it('takes the enhanced code only when its class matches the reply code', () => {
    expect(enhancedOf(550, '5.1.1 <x@y>: user unknown')).toBe('5.1.1');
    expect(enhancedOf(451, '5.1.1 mismatch')).toBeNull();
    expect(enhancedOf(250, '2.0.0')).toBe('2.0.0');
    expect(enhancedOf(550, 'user unknown')).toBeNull();
    expect(enhancedOf(550, '5.1.1x')).toBeNull();
  });
  it('joins a multi-line reply on one line', () => {
    expect(replyText({ code: 550, lines: ['5.1.1 first', 'second'], enhanced: '5.1.1' })).toBe('550 5.1.1 first second');
    expect(replyText({ code: 421, lines: [''], enhanced: null })).toBe('421');
  });
});
