// SMTP AUTH (PLAIN, LOGIN) against the listener's Auth_Users: checks a user name and password
// against the table's hashes (their format and scrypt: src/config/password.ts). Hashing runs on
// libuv's thread pool (crypto.scrypt), never on the event loop.
import { hashPassword, verifyPassword } from '../config/password.js';

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
