// What a test needs beyond an unprivileged loopback (root's capabilities, a program on PATH), checked
// one way everywhere: a missing precondition FAILS the test with what is missing and how to get it;
// nothing is skipped silently, so a green run means the test ran. Test main thread; blocks only on
// reading /proc/self/status and on `sh -c 'command -v ...'` (a few ms each).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Bit numbers from include/uapi/linux/capability.h. */
const CAPABILITY_BITS = { CAP_SYS_ADMIN: 21n, CAP_NET_ADMIN: 12n, CAP_NET_RAW: 13n } as const;
export type Capability = keyof typeof CAPABILITY_BITS;

/** Where each program the tests use comes from (Debian/Ubuntu package names). */
const PACKAGE_OF: Record<string, string> = {
  corosync: 'corosync',
  'corosync-quorumtool': 'corosync',
  'corosync-cmapctl': 'corosync',
  'smtp-source': 'postfix',
  'smtp-sink': 'postfix',
  iperf3: 'iperf3',
  ip: 'iproute2',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  chromium: 'chromium',
};

/** The capabilities in `caps` this process does not have in effect (`status`: /proc/self/status's text). */
export function missingCapabilities(caps: readonly Capability[], status = readFileSync('/proc/self/status', 'utf8')): Capability[] {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  const eff = m === null ? 0n : BigInt(`0x${m[1]}`);
  return caps.filter((c) => (eff & (1n << CAPABILITY_BITS[c])) === 0n);
}

/** Throws unless this process holds every capability in `caps`; `why` says what the test does with them. */
export function requireCapabilities(why: string, ...caps: Capability[]): void {
  const missing = missingCapabilities(caps);
  if (missing.length > 0) {
    throw new Error(`precondition: this test ${why}, which needs ${missing.join(', ')}: ` +
      'run the tests as root (or in a container granted those capabilities)');
  }
}

/** Throws unless this process runs as root (uid 0); `why` says what the test does as root. */
export function requireRoot(why: string): void {
  if (process.geteuid?.() !== 0) {
    throw new Error(`precondition: this test ${why}, which needs root: run the tests as root`);
  }
}

/** Whether `command` is found on PATH (the shell's own lookup). */
export function hasCommand(command: string): boolean {
  if (!/^[A-Za-z0-9._+-]+$/.test(command)) throw new TypeError(`not a plain command name: ${command}`);
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Throws unless every command is on PATH, naming the package each comes from. */
export function requireCommand(...commands: string[]): void {
  const missing = commands.filter((c) => !hasCommand(c));
  if (missing.length > 0) {
    const how = missing.map((c) => `"${c}" (apt-get install ${PACKAGE_OF[c] ?? c})`).join(', ');
    const sbin = (process.env.PATH ?? '').split(':').includes('/usr/sbin') ? '' : ' (several live in /usr/sbin, which PATH lacks)';
    throw new Error(`precondition: this test needs ${how} on PATH${sbin}`);
  }
}

/** Network namespaces, veths, raw ARP sockets and mount namespaces (test/cluster/harness.ts and its users). */
export function requireNetworkNamespaces(why = 'builds network namespaces with veths, raw ARP sockets and private mounts'): void {
  requireCapabilities(why, 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_ADMIN');
  requireCommand('ip', 'unshare', 'mount');
}
