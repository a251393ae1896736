// Puts DuraVIPs on and off the Topology's interface over rtnetlink, tagged as ours (IFA_PROTO, or
// the ":vip" label on old kernels) so that only what we added is ever removed. The guardian
// (guardian.ts) is told before each add and after each removal: if this process dies it removes
// them at once. As a second line, addresses carry a finite valid lifetime that the periodic check
// renews: should the guardian be gone too, the kernel removes them by itself within seconds.
// Main thread; every call is one short synchronous netlink request (microseconds).

import type { Logger } from 'pino';
import type { TopologyConfig } from '../config/types.js';
import { topologyFor } from '../config/duravip.js';
import { addAddress, deleteAddress, isOurAddress, listInterfaces, type NetInterface } from '../native/index.js';
import { canonicalAddress } from '../net/address.js';
import type { GuardianLink } from './guardian.js';

export interface Placement { readonly ifname: string; readonly prefixLength: number }

export class Plumbing {
  /** Seconds of valid lifetime given to every address; renewed every If_Check_Interval. */
  readonly lifetimeSec: number;
  /** Last operational error per address, for the console (EPERM, ENODEV, ...). */
  readonly errors = new Map<string, string>();

  constructor(
    private topologies: readonly TopologyConfig[],
    checkIntervalMs: number,
    private readonly logger: Logger,
    private readonly guardian: Pick<GuardianLink, 'declare' | 'forget'> | null = null,
  ) {
    // Three checks' worth, at least 3 s: one missed renewal (a slow event loop) must not drop it.
    this.lifetimeSec = Math.max(3, Math.ceil((3 * checkIntervalMs) / 1000));
  }

  setTopologies(t: readonly TopologyConfig[]): void {
    this.topologies = t;
  }

  /** Where an address is plumbed: its Topology's interface and Cidrmask (default a host mask). */
  placement(address: string): Placement | null {
    const t = topologyFor(this.topologies, address);
    if (t === null || t.options.Interface === undefined) return null;
    return { ifname: t.options.Interface, prefixLength: t.options.Cidrmask ?? (address.includes(':') ? 128 : 32) };
  }

  private interfaces(): Map<string, NetInterface> {
    return new Map(listInterfaces().map((i) => [i.name, i]));
  }

  /** Adds (or renews) the address; false on an operational error, which is logged and kept for the console. */
  add(address: string, ifs: Map<string, NetInterface> = this.interfaces()): boolean {
    const p = this.placement(address);
    if (p === null) return this.fail(address, 'no Topology contains it');
    const itf = ifs.get(p.ifname);
    if (itf === undefined) return this.fail(address, `interface ${p.ifname} does not exist (ENODEV)`);
    // Declared first: if we die between the two, the guardian removes what we may have added.
    this.guardian?.declare({ ifname: p.ifname, address, prefixLength: p.prefixLength });
    try {
      // replace: renews the lifetime when it is already there (ours after a restart, or a renewal).
      addAddress(itf.index, address, p.prefixLength, { validLifetime: this.lifetimeSec, replace: true });
      this.errors.delete(address);
      return true;
    } catch (err) {
      const e = err as Error & { code?: string };
      // EPERM: the process lacks CAP_NET_ADMIN (packaging/vipmta.service grants it); say so.
      return this.fail(address, `${e.code ?? 'error'}: ${e.message}${e.code === 'EPERM' ? ' (adding an address needs CAP_NET_ADMIN)' : ''}`);
    }
  }

  private fail(address: string, why: string): false {
    if (this.errors.get(address) !== why) this.logger.error({ address, error: why }, 'DuraVIP: cannot plumb the address');
    this.errors.set(address, why);
    return false;
  }

  /** Removes the address if it is on its interface and ours; true when something was removed. */
  remove(address: string, ifs: Map<string, NetInterface> = this.interfaces()): boolean {
    const p = this.placement(address);
    if (p === null) return false;
    const itf = ifs.get(p.ifname);
    const mine = itf?.addresses.find((a) => canonicalAddress(a.address) === address && isOurAddress(a));
    if (itf === undefined || mine === undefined) {
      this.guardian?.forget(address);
      return false;
    }
    try {
      // false: EADDRNOTAVAIL (expired meanwhile) or ENODEV (interface gone), both mean "not there".
      const removed = deleteAddress(itf.index, address, mine.prefixLength);
      // Forgotten only once gone: a guardian that still knows it removes it if we die now.
      this.guardian?.forget(address);
      return removed;
    } catch (err) {
      const need = (err as { code?: string }).code === 'EPERM' ? { missing: 'CAP_NET_ADMIN (removing an address needs it)' } : {};
      this.logger.error({ address, err, ...need }, 'DuraVIP: cannot remove the address');
      return false;
    }
  }

  /** Our tagged addresses on the Topology interfaces, canonical. */
  ours(ifs: Map<string, NetInterface> = this.interfaces()): Map<string, { ifname: string; prefixLength: number; validLifetime: number | null }> {
    const out = new Map<string, { ifname: string; prefixLength: number; validLifetime: number | null }>();
    const names = new Set(this.topologies.map((t) => t.options.Interface).filter((n): n is string => n !== undefined));
    for (const n of names) {
      for (const a of ifs.get(n)?.addresses ?? []) {
        const c = canonicalAddress(a.address);
        if (c !== null && isOurAddress(a)) out.set(c, { ifname: n, prefixLength: a.prefixLength, validLifetime: a.validLifetime });
      }
    }
    return out;
  }

  /** At start, before joining: removes every tagged address a crashed run left behind. */
  removeLeftovers(): string[] {
    const ifs = this.interfaces();
    const removed: string[] = [];
    for (const a of this.ours(ifs).keys()) if (this.remove(a, ifs)) removed.push(a);
    return removed;
  }

  /**
   * The periodic check: re-plumbs what we hold but is missing, renews the lifetime of what is
   * there, and removes tagged addresses we should not have.
   */
  check(held: ReadonlySet<string>): { readded: string[]; removed: string[] } {
    const ifs = this.interfaces();
    const present = this.ours(ifs);
    const readded: string[] = [];
    const removed: string[] = [];
    for (const a of held) {
      const was = present.has(a);
      if (this.add(a, ifs) && !was) readded.push(a);
    }
    for (const a of present.keys()) {
      if (!held.has(a) && this.remove(a, ifs)) removed.push(a);
    }
    return { readded, removed };
  }
}

/**
 * `vipmta release-addresses` (the systemd unit's ExecStopPost): removes every address tagged as
 * ours on the configured Topology interfaces, for when vipmta and its guardian are both gone (a
 * SIGKILL of the whole unit). Only for a stopped node: a running one would re-plumb at its check.
 */
export function releaseTaggedAddresses(topologies: readonly TopologyConfig[], logger: Logger): string[] {
  return new Plumbing(topologies, 1000, logger).removeLeftovers();
}
