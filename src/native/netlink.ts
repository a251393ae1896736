// Typed wrappers of native/netlink_*.cc: interfaces and their addresses over rtnetlink, adding and
// removing addresses tagged as vipmta's. Main thread (the cluster manager) or tests; each call is
// a short synchronous netlink round trip on a fresh socket.
import { release as osRelease } from 'node:os';
import { VipError } from '../errors.js';
import { binding } from './addon.js';

/** One address on an interface, from an RTM_GETADDR dump (rtnetlink(7)). */
export interface InterfaceAddress {
  family: 4 | 6;
  address: string;
  prefixLength: number;
  /** rt_scope_t by name; any other value as its number. */
  scope: 'global' | 'site' | 'link' | 'host' | 'nowhere' | number;
  /** IPv4 label (IFA_LABEL, e.g. "eth0:vip"); null for IPv6, which has none. */
  label: string | null;
  flags: { permanent: boolean; secondary: boolean; tentative: boolean; deprecated: boolean };
  /** IFA_PROTO (Linux >= 5.18): who added it; {@link VIPMTA_ADDR_PROTO} marks ours. Null when absent. */
  protocol: number | null;
  /** Seconds left (IFA_CACHEINFO); null means forever. */
  validLifetime: number | null;
  preferredLifetime: number | null;
}

/** One network interface with its addresses. */
export interface NetInterface {
  index: number;
  name: string;
  mtu: number;
  /** Link-layer address as "aa:bb:..." (all zeros for `lo`); null when the link has none. */
  mac: string | null;
  flags: { up: boolean; running: boolean; loopback: boolean; noarp: boolean; broadcast: boolean; multicast: boolean };
  addresses: InterfaceAddress[];
}

/**
 * Every interface with its IPv4 and IPv6 addresses: an RTM_GETLINK and an RTM_GETADDR dump over a
 * fresh netlink socket. Synchronous and short (microseconds to a millisecond). The result is a
 * plain snapshot the caller owns; it does not update.
 */
export function listInterfaces(): NetInterface[] {
  return binding.listInterfaces() as NetInterface[];
}

/**
 * One interface by name. Throws `code: 'ENODEV'` (`syscall: 'if_nametoindex'`) when there is no such
 * interface, which callers treat as an operational condition (an interface can come and go).
 */
export function getInterface(name: string): NetInterface {
  return binding.getInterface(name) as NetInterface;
}

/**
 * The IFA_PROTO value that tags addresses vipmta plumbs ('V'). The kernel reserves 0-3
 * (include/uapi/linux/if_addr.h IFAPROT_*); the rest are free for user space.
 */
export const VIPMTA_ADDR_PROTO = 0x56;

/** Label suffix that tags our IPv4 addresses on kernels without IFA_PROTO (before 5.18). */
export const VIPMTA_LABEL_SUFFIX = ':vip';

/** Whether this kernel stores IFA_PROTO (Linux 5.18); older ones silently ignore the attribute. */
export function kernelSupportsAddrProto(release: string = osRelease()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (m === null) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 5 || (major === 5 && minor >= 18);
}

/** Options of {@link addAddress}. */
export interface AddAddressOptions {
  /** Seconds until the kernel removes the address by itself; null/absent = forever. Renew with `replace`. */
  validLifetime?: number | null;
  /** Seconds until it is deprecated as a source; defaults to validLifetime. */
  preferredLifetime?: number | null;
  /** IFA_PROTO tag, default {@link VIPMTA_ADDR_PROTO}; null sends none. */
  protocol?: number | null;
  /** IPv4 label; default `<ifname>:vip` where IFA_PROTO is unsupported, else the kernel's default. */
  label?: string | null;
  /** IPv6: skip duplicate address detection (IFA_F_NODAD), default true. */
  noDad?: boolean;
  /** Update an existing address (lifetime renewal) instead of failing on it. Default false. */
  replace?: boolean;
}

/**
 * Adds an address to interface `ifindex` over rtnetlink, tagged as ours. Synchronous and short.
 * Returns true when it was added (or replaced), false when it was already there (EEXIST, expected
 * after a crash or a racing renewal: the caller's goal holds). Needs CAP_NET_ADMIN (else `EPERM`).
 * Adding sends no ARP: announce the address separately.
 */
export function addAddress(ifindex: number, address: string, prefixLength: number, opts: AddAddressOptions = {}): boolean {
  const protocol = opts.protocol === undefined ? VIPMTA_ADDR_PROTO : opts.protocol;
  let label = opts.label;
  if (label === undefined && !address.includes(':') && !kernelSupportsAddrProto()) {
    label = `${interfaceName(ifindex)}${VIPMTA_LABEL_SUFFIX}`;
  }
  const validLifetime = opts.validLifetime ?? null;
  return binding.addAddress(ifindex, address, prefixLength, {
    validLifetime,
    preferredLifetime: opts.preferredLifetime ?? validLifetime,
    protocol,
    label: label ?? null,
    noDad: opts.noDad ?? true,
    replace: opts.replace ?? false,
  }) as boolean;
}

/**
 * Removes an address from interface `ifindex`. Returns true when it was removed, false when it was
 * not there (EADDRNOTAVAIL: expired or removed by someone else; ENODEV: the interface is gone).
 * Removes whatever matches: check {@link isOurAddress} on a listing first to remove only ours.
 */
export function deleteAddress(ifindex: number, address: string, prefixLength: number): boolean {
  return binding.deleteAddress(ifindex, address, prefixLength) as boolean;
}

/** Whether vipmta plumbed this address: IFA_PROTO tag, or the label suffix on older kernels. */
export function isOurAddress(a: InterfaceAddress): boolean {
  return a.protocol === VIPMTA_ADDR_PROTO || (a.label !== null && a.label.endsWith(VIPMTA_LABEL_SUFFIX));
}

function interfaceName(ifindex: number): string {
  const found = listInterfaces().find((i) => i.index === ifindex);
  if (found === undefined) {
    throw new VipError('ENODEV', `no interface with index ${ifindex}`, { syscall: 'if_indextoname' });
  }
  return found.name;
}
