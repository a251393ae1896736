// Who a request is: its Authorization header against the Http_Injection tokens. "Bearer SECRET" is
// checked against every token's scrypt hash, "Basic NAME:SECRET" against that token's only. scrypt
// runs on libuv's thread pool (config/password.ts); a secret once checked, right or wrong, is
// remembered by its SHA-256 so that a sender's every request does not pay 50 ms of scrypt.
// Worker thread; never blocks.
import crypto from 'node:crypto';
import { verifyPassword } from '../config/password.js';
import type { InjectToken } from './settings.js';

/** Secrets remembered at most (both kinds); the table starts over when full. */
const REMEMBERED = 4096;

export class TokenCheck {
  private readonly known = new Map<string, InjectToken | null>();
  private readonly byName: Map<string, InjectToken>;

  constructor(private readonly tokens: readonly InjectToken[]) {
    this.byName = new Map(tokens.map((t) => [t.name, t]));
  }

  /** The token the header proves, or null (no header, a malformed one, a wrong secret). */
  async check(header: string): Promise<InjectToken | null> {
    const m = /^(Bearer|Basic)[ ]+(\S+)\s*$/i.exec(header);
    if (m === null) return null;
    const basic = m[1]!.toLowerCase() === 'basic';
    const key = crypto.createHash('sha256').update(header).digest('base64');
    const seen = this.known.get(key);
    if (seen !== undefined) return seen;
    let found: InjectToken | null = null;
    if (basic) {
      const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const t = colon < 0 ? undefined : this.byName.get(decoded.slice(0, colon));
      if (t !== undefined && (await verifyPassword(decoded.slice(colon + 1), t.secret))) found = t;
    } else {
      for (const t of this.tokens) {
        if (await verifyPassword(m[2]!, t.secret)) {
          found = t;
          break;
        }
      }
    }
    if (this.known.size >= REMEMBERED) this.known.clear();
    this.known.set(key, found);
    return found;
  }
}

/** Whether `token` may choose `binding`: "403 forbidden" when not; "unknown" when it names nothing. */
export function bindingRefusal(token: InjectToken, binding: string, known: ReadonlySet<string>): string | null {
  if (!known.has(binding)) return `binding "${binding}" names no binding or binding group`;
  if (!token.bindings.includes('*') && !token.bindings.includes(binding)) return `token "${token.name}" may not choose binding "${binding}"`;
  return null;
}
