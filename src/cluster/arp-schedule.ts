// Announcements of the DuraVIPs this node holds: gratuitous ARP for IPv4, unsolicited Neighbour
// Advertisements (RFC 4861 7.2.6, override set) for IPv6. One at once on takeover (failover time is
// detection time plus this frame: clients switch within milliseconds of it, ANCHORS.md), then
// Arp_Count - 1 more paced Arp_Interval apart, and one every Arp_Refresh. With Arp_All_Hosts each
// IPv4 round also unicasts to every known host of the subnet (local ARP cache plus what other
// members share), paced in small batches. IFF_NOARP interfaces are skipped (the senders return false).
// Main thread; each frame is one short synchronous sendto on a raw socket.

import type { Logger } from 'pino';
import { listNeighbours, sendArp, sendNeighbourAdvertisement } from '../native/index.js';
import type { SharedNeighbour } from './messages.js';

export interface ArpSettings {
  readonly count: number;
  readonly intervalMs: number;
  readonly refreshMs: number;
  readonly mode: 'request' | 'reply';
  readonly allHosts: boolean;
}

export interface ArpStatus {
  readonly address: string;
  readonly ifname: string;
  /** Broadcast ARP frames (IPv4) or all-nodes Neighbour Advertisements (IPv6) sent since we took it. */
  broadcasts: number;
  /** Unicast frames sent to known hosts (Arp_All_Hosts, IPv4 only). */
  unicasts: number;
  lastSent: number | null;
  /** Why nothing is sent: IFF_NOARP, or the last error. */
  note: string | null;
}

/** Unicast frames per batch before yielding to the event loop: paced, never a burst of thousands. */
const UNICAST_BATCH = 16;

export class ArpSchedule {
  private readonly status = new Map<string, ArpStatus>();
  private readonly timers = new Map<string, NodeJS.Timeout[]>();
  private refreshTimer: NodeJS.Timeout | null = null;

  constructor(
    private settings: ArpSettings,
    private readonly logger: Logger,
    /** Hosts other members know on their side, shared in their announces. */
    private readonly sharedNeighbours: () => Iterable<SharedNeighbour>,
    /** Whether an IPv4 host address lies in the address's Topology (unicast only to those). */
    private readonly sameSubnet: (vip: string, host: string) => boolean,
  ) {}

  setSettings(s: ArpSettings): void {
    this.settings = s;
    if (this.refreshTimer !== null) { clearInterval(this.refreshTimer); this.refreshTimer = null; }
    if (this.status.size > 0) this.startRefresh();
  }

  /**
   * Announces a newly taken address: now, then paced repeats, Arp_Count frames in all but at least
   * for `lingerMs`: a killed owner's kernel keeps the address (and answers ARP for it) until its
   * lifetime runs out, and a client that asks meanwhile may take that answer; the next frame
   * corrects it within Arp_Interval.
   */
  start(address: string, ifname: string, lingerMs = 0): void {
    this.stop(address);
    const st: ArpStatus = { address, ifname, broadcasts: 0, unicasts: 0, lastSent: null, note: null };
    this.status.set(address, st);
    this.round(st, true);
    const ts: NodeJS.Timeout[] = [];
    const frames = Math.max(this.settings.count, Math.ceil(lingerMs / this.settings.intervalMs) + 1);
    for (let i = 1; i < frames; i++) {
      const t = setTimeout(() => this.round(st, false), i * this.settings.intervalMs);
      t.unref();
      ts.push(t);
    }
    this.timers.set(address, ts);
    this.startRefresh();
  }

  stop(address: string): void {
    for (const t of this.timers.get(address) ?? []) clearTimeout(t);
    this.timers.delete(address);
    this.status.delete(address);
    if (this.status.size === 0 && this.refreshTimer !== null) { clearInterval(this.refreshTimer); this.refreshTimer = null; }
  }

  stopAll(): void {
    for (const a of [...this.status.keys()]) this.stop(a);
  }

  list(): ArpStatus[] {
    return [...this.status.values()];
  }

  /** Hosts to unicast to: IPv4 neighbours with a MAC in the address's subnet, local and shared. */
  knownHosts(vip: string, ifname: string): Map<string, string> {
    const hosts = new Map<string, string>();
    try {
      for (const n of listNeighbours(ifname)) {
        if (n.mac !== null && n.state !== 'failed' && n.state !== 'incomplete' && this.sameSubnet(vip, n.address)) hosts.set(n.address, n.mac);
      }
    } catch {
      // ENODEV: the interface went away; the broadcast reports that.
    }
    for (const [a, mac] of this.sharedNeighbours()) if (!hosts.has(a) && this.sameSubnet(vip, a)) hosts.set(a, mac);
    hosts.delete(vip);
    return hosts;
  }

  private startRefresh(): void {
    if (this.refreshTimer !== null) return;
    this.refreshTimer = setInterval(() => {
      for (const st of this.status.values()) this.round(st, true);
    }, this.settings.refreshMs);
    this.refreshTimer.unref();
  }

  /**
   * One broadcast frame (IPv6: one advertisement to all nodes), then (first round and refreshes,
   * IPv4) unicast to every known host. IPv6 has no unicast round: the all-nodes advertisement
   * already reaches every host on the link, and an advertisement, unicast or not, never creates
   * an entry where there was none (RFC 4861 7.2.5), so Arp_All_Hosts and Arp_Mode are IPv4 only.
   */
  private round(st: ArpStatus, withUnicast: boolean): void {
    if (this.status.get(st.address) !== st) return;
    const v6 = st.address.includes(':');
    try {
      const sent = v6 ? sendNeighbourAdvertisement(st.ifname, st.address) : sendArp(st.ifname, st.address, { op: this.settings.mode });
      if (!sent) {
        st.note = `${st.ifname} has IFF_NOARP: no ${v6 ? 'Neighbour Advertisement' : 'ARP'} sent`;
        return;
      }
      st.broadcasts++;
      st.lastSent = Date.now();
      st.note = null;
    } catch (err) {
      // EADDRNOTAVAIL for IPv6: the address is gone, or tentative or dadfailed (not usable).
      const e = err as Error & { code?: string };
      // EPERM: the process lacks CAP_NET_RAW (packaging/vipmta.service grants it); say so.
      const note = `${e.code ?? 'error'}: ${e.message}${e.code === 'EPERM' ? ' (raw sockets need CAP_NET_RAW)' : ''}`;
      if (st.note !== note) this.logger.error({ address: st.address, ifname: st.ifname, error: note, err }, v6 ? 'DuraVIP: unsolicited Neighbour Advertisement failed' : 'DuraVIP: gratuitous ARP failed');
      st.note = note;
      return;
    }
    if (v6 || !withUnicast || !this.settings.allHosts) return;
    const hosts = [...this.knownHosts(st.address, st.ifname)];
    const batch = (from: number): void => {
      if (this.status.get(st.address) !== st) return;
      for (const [host, mac] of hosts.slice(from, from + UNICAST_BATCH)) {
        try {
          // A request for the host's own address, unicast to it: RFC 826 makes it learn (or update)
          // our MAC for the VIP even when it had no entry, which a gratuitous frame would not create.
          if (sendArp(st.ifname, st.address, { op: 'request', destMac: mac, targetAddress: host })) st.unicasts++;
        } catch (err) {
          this.logger.warn({ address: st.address, host, err }, 'DuraVIP: unicast ARP failed');
        }
      }
      if (from + UNICAST_BATCH < hosts.length) setImmediate(() => batch(from + UNICAST_BATCH));
    };
    batch(0);
  }
}
