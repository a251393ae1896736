// AUTH credentials: scrypt PHC hashes, constant-time checks, unknown users.
import { describe, expect, it } from 'vitest';
import { Authenticator, hashPassword, isPasswordHash, verifyPassword } from '../../../src/listener/auth.js';

const FAST = { ln: 10, r: 8, p: 1 };

describe('password hashes', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const h = await hashPassword('s3cret', FAST);
    expect(isPasswordHash(h)).toBe(true);
    expect(h).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$/);
    expect(await verifyPassword('s3cret', h)).toBe(true);
    expect(await verifyPassword('s3creT', h)).toBe(false);
  });
  it('salts every hash', async () => {
    expect(await hashPassword('x', FAST)).not.toBe(await hashPassword('x', FAST));
  });
  it('treats a plain-text or malformed entry as never matching', async () => {
    expect(isPasswordHash('s3cret')).toBe(false);
    expect(await verifyPassword('s3cret', 's3cret')).toBe(false);
    expect(await verifyPassword('', '$scrypt$ln=10,r=8,p=1$$')).toBe(false);
  });
  it('refuses unknown users', async () => {
    const a = new Authenticator({ alice: await hashPassword('pw', FAST) });
    expect(await a.check('alice', 'pw')).toBe(true);
    expect(await a.check('bob', 'pw')).toBe(false);
    expect(await a.check('__proto__', 'pw')).toBe(false);
  });
});
