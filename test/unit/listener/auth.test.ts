// SMTP AUTH credentials: a user table of scrypt hashes, unknown users refused.
import { describe, expect, it } from 'vitest';
import { hashPassword } from '../../../src/config/password.js';
import { Authenticator } from '../../../src/listener/auth.js';

const FAST = { ln: 10, r: 8, p: 1 };

describe('authenticator', () => {
  it('refuses unknown users', async () => {
    const a = new Authenticator({ alice: await hashPassword('pw', FAST) });
    expect(await a.check('alice', 'pw')).toBe(true);
    expect(await a.check('alice', 'pW')).toBe(false);
    expect(await a.check('bob', 'pw')).toBe(false);
    expect(await a.check('__proto__', 'pw')).toBe(false);
  });
});
