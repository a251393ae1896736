// SMTP AUTH (PLAIN, LOGIN) against the listener's Auth_Users, whose passwords are stored hashed
// in the PHC string format with scrypt: "$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>". Hashing runs
// on libuv's thread pool (crypto.scrypt), never on the event loop. `vipmta hash-password` makes them.
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

/**
 * Checks credentials against a user table. Unknown users cost the same as known ones (a dummy
 * hash is verified), so the reply time does not tell which user names exist.
 */
export class Authenticator {
  private static dummy: Promise<string> | null = null;

  constructor(private readonly users: Readonly<Record<string, string>>) {}

  get enabled(): boolean {
    return Object.keys(this.users).length > 0;
  }

  async check(user: string, password: string): Promise<boolean> {
    const phc = Object.prototype.hasOwnProperty.call(this.users, user) ? this.users[user]! : null;
    if (phc === null) {
      Authenticator.dummy ??= hashPassword('not a password');
      await verifyPassword(password, await Authenticator.dummy);
      return false;
    }
    return verifyPassword(password, phc);
  }
}
