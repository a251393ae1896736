// Who may inject: relaying is allowed only from configured client networks (Relay_Hosts) or for an
// authenticated session, so vipmta is never an open relay. The networks are matched by
// src/net/cidr.ts. Pure and cheap (one lookup per RCPT); safe on any thread.
import { CidrSet } from '../net/cidr.js';

export class RelayPolicy {
  private readonly nets: CidrSet;

  /** `cidrs` as the config normalizes them: "addr/len". */
  constructor(cidrs: readonly string[]) {
    this.nets = new CidrSet(cidrs);
  }

  /** True if a client at `address` may relay without authenticating (IPv4-mapped peers count as IPv4). */
  allows(address: string): boolean {
    return this.nets.has(address);
  }
}
