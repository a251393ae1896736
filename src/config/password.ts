// The password format of Auth_Users: a PHC string with scrypt, "$scrypt$ln=15,r=8,p=1$<salt b64>$<hash
// b64>". The config checks the format at load, `vipmta hash-password` makes one, the listener's SMTP
// AUTH (src/listener/auth.ts) verifies against one. Hashing runs on libuv's thread pool
// (crypto.scrypt), never on the event loop; isPasswordHash is a regular expression, any thread.
import crypto from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(crypto.scrypt) as (pw: string | Buffer, salt: Buffer, len: number, opts: crypto.ScryptOptions) => Promise<Buffer>;

const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

export interface ScryptParams {
  ln: number;
  r: number;
  p: number;
}

/** Default cost: 2^15 iterations, 32 MiB of memory, about 50-100 ms on these machines. */
export const DEFAULT_SCRYPT: ScryptParams = { ln: 15, r: 8, p: 1 };

export function isPasswordHash(s: string): boolean {
  return PHC.test(s);
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = crypto.randomBytes(16);
  const hash = await scrypt(password, salt, 32, { N: 2 ** params.ln, r: params.r, p: params.p, maxmem: 256 * 1024 * 1024 });
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Constant-time check of a password against a PHC scrypt string; false for a malformed hash. */
export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  const m = PHC.exec(phc);
  if (m === null) return false;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const salt = Buffer.from(m[4]!, 'base64');
  const expected = Buffer.from(m[5]!, 'base64');
  if (ln < 1 || ln > 22 || expected.length < 16) return false;
  const got = await scrypt(password, salt, expected.length, { N: 2 ** ln, r, p, maxmem: 256 * 1024 * 1024 });
  return crypto.timingSafeEqual(got, expected);
}
