// The Auth_Users password format (src/config/password.ts): scrypt PHC hashes, salted, constant-time
// checks, malformed entries never match.
import { describe, expect, it } from 'vitest';
import { hashPassword, isPasswordHash, verifyPassword } from '../../../src/config/password.js';

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
});
