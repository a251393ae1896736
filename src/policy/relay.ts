// Who may inject: relaying is allowed only from configured client networks (Relay_Hosts) or for an
// authenticated session, so vipmta is never an open relay. Uses node:net's BlockList for CIDR
// matching. Pure and cheap (one lookup per RCPT); safe on any thread.
import net from 'node:net';

export class RelayPolicy {
  private readonly list = new net.BlockList();

  /** `cidrs` as the config normalizes them: "addr/len". */
  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const slash = c.lastIndexOf('/');
      const addr = c.slice(0, slash);
      const len = Number(c.slice(slash + 1));
      this.list.addSubnet(addr, len, net.isIPv6(addr) ? 'ipv6' : 'ipv4');
    }
  }

  /** True if a client at `address` may relay without authenticating. */
  allows(address: string): boolean {
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; match them as IPv4.
    const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (v4) return this.list.check(v4[1]!, 'ipv4');
    const family = net.isIP(address);
    if (family === 0) return false;
    return this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}
