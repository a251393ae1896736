// Unsolicited Neighbour Advertisements (native/ndisc.cc), the IPv6 side of a DuraVIP takeover, seen
// the way a peer on the wire sees them: host n1 of a lab (test/cluster/harness.ts, with IPv6) sends,
// a packet capture on n2 reads the frame field by field, and the neighbour tables of n2 and the
// client show what the kernel made of it. Sends run in a child process inside n1's namespace (a
// namespace is per thread); the capture is a small Python AF_PACKET reader (no tcpdump here).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendNeighbourAdvertisement } from '../../src/native/index.js';
import { ClusterLab, SUBNET6_PREFIX, waitFor, type LabHost, type LabProcess } from '../cluster/harness.js';
import { hasCommand } from '../helpers/preconditions.js';
import { buildFacade, inNetns } from './worker-harness.js';

const VIP = `${SUBNET6_PREFIX}200`;
const FAKE_MAC = '02:00:5e:00:00:99';

// Prints "ready" once bound, then the first ICMPv6 Neighbour Advertisement for the target given as
// argv[2] seen on eth1, as JSON, and exits; "timeout" after 10 s. The ICMPv6 checksum is verified
// over the RFC 8200 8.1 pseudo-header.
const CAPTURE = String.raw`
import json, socket, struct, sys
target = socket.inet_pton(socket.AF_INET6, sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
s.bind(('eth1', 0x86dd))
s.settimeout(10)
print('ready', flush=True)
mac = lambda b: ':'.join('%02x' % x for x in b)
ip6 = lambda b: socket.inet_ntop(socket.AF_INET6, b)
while True:
    try:
        f = s.recv(2048)
    except socket.timeout:
        print('timeout', flush=True)
        sys.exit(0)
    if len(f) < 78 or f[20] != 58 or f[54] != 136 or f[62:78] != target:
        continue
    plen = struct.unpack('!H', f[18:20])[0]
    icmp = f[54:54 + plen]
    pseudo = f[22:54] + struct.pack('!I', plen) + b'\0\0\0' + bytes([58])
    data = pseudo + icmp + (b'\0' if len(icmp) % 2 else b'')
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    flags = struct.unpack('!I', icmp[4:8])[0]
    opts, o = [], icmp[24:]
    while len(o) >= 8 and o[1] > 0:
        opts.append({'type': o[0], 'len': o[1], 'data': mac(o[2:8]) if o[0] == 2 and o[1] == 1 else o[2:o[1] * 8].hex()})
        o = o[o[1] * 8:]
    print(json.dumps({'ethDst': mac(f[0:6]), 'ethSrc': mac(f[6:12]), 'hopLimit': f[21], 'src': ip6(f[22:38]),
        'dst': ip6(f[38:54]), 'type': icmp[0], 'code': icmp[1], 'checksumOk': total == 0xffff,
        'router': bool(flags & 0x80000000), 'solicited': bool(flags & 0x40000000), 'override': bool(flags & 0x20000000),
        'reserved': flags & 0x1fffffff, 'target': ip6(icmp[8:24]), 'options': opts}), flush=True)
    sys.exit(0)
`;

interface Captured {
  ethDst: string; ethSrc: string; hopLimit: number; src: string; dst: string; type: number; code: number;
  checksumOk: boolean; router: boolean; solicited: boolean; override: boolean; reserved: number; target: string;
  options: Array<{ type: number; len: number; data: string }>;
}

let lab: ClusterLab;
let n1: LabHost;
let n2: LabHost;

beforeAll(async () => {
  if (!hasCommand('python3')) throw new Error('precondition: this test captures frames with python3: install python3');
  buildFacade();
  lab = await ClusterLab.create({ nodes: 2, ipv6: true });
  [n1, n2] = lab.hosts as [LabHost, LabHost];
  // An IFF_NOARP link and an Ethernet link that is down, on n1 (veth pairs: no dummy driver here).
  lab.exec(n1, ['ip', 'link', 'add', 'noarp0', 'type', 'veth', 'peer', 'name', 'noarp1']);
  lab.exec(n1, ['ip', 'link', 'set', 'noarp0', 'arp', 'off', 'up']);
  lab.exec(n1, ['ip', 'link', 'add', 'down0', 'type', 'veth', 'peer', 'name', 'down1']);
}, 30_000);

afterAll(async () => {
  await lab?.destroy();
});

/** The IPv6 flags `ip` shows for the address on the host ('tentative', 'dadfailed', 'nodad', ...), or null if absent. */
function addrFlags(host: LabHost, address: string): string[] | null {
  const j = JSON.parse(lab.exec(host, ['ip', '-j', '-6', 'addr', 'show', 'dev', host.ifname])) as
    Array<{ addr_info: Array<Record<string, unknown> & { local: string }> }>;
  const a = j.flatMap((i) => i.addr_info).find((x) => x.local === address);
  if (a === undefined) return null;
  return Object.keys(a).filter((k) => a[k] === true);
}

/** Plumbs `address` on the host with the facade's addAddress (IPv6: IFA_F_NODAD unless told otherwise). */
function plumb(host: LabHost, address: string, opts: Record<string, unknown> = {}): Promise<boolean> {
  return inNetns(host.ns, `const i = n.listInterfaces().find((x) => x.name === ${JSON.stringify(host.ifname)});
    return n.addAddress(i.index, ${JSON.stringify(address)}, 128, ${JSON.stringify(opts)});`);
}

function unplumb(host: LabHost, address: string): void {
  lab.exec(host, ['ip', 'addr', 'del', `${address}/128`, 'dev', host.ifname]);
}

function seedEntry(host: LabHost, address = VIP): void {
  lab.exec(host, ['ip', 'neigh', 'replace', address, 'lladdr', FAKE_MAC, 'dev', host.ifname, 'nud', 'stale']);
}

function entryMac(host: LabHost, address = VIP): string | null {
  const list = JSON.parse(lab.exec(host, ['ip', '-j', '-6', 'neigh', 'show', address, 'dev', host.ifname])) as Array<{ lladdr?: string }>;
  return list[0]?.lladdr ?? null;
}

function sendFrom(host: LabHost, args: unknown[]): Promise<unknown> {
  return inNetns(host.ns, `return n.sendNeighbourAdvertisement(...${JSON.stringify(args)});`);
}

async function capture(on: LabHost, target: string): Promise<LabProcess> {
  const p = lab.spawn(on, ['python3', '-c', CAPTURE, target]);
  await p.waitLine((l) => l === 'ready');
  return p;
}

async function captured(p: LabProcess): Promise<Captured> {
  const { line } = await p.waitLine((l) => l !== 'ready', { timeoutMs: 15_000 });
  if (line === 'timeout') throw new Error('no Neighbour Advertisement captured');
  return JSON.parse(line) as Captured;
}

describe('addAddress (IPv6)', () => {
  it('plumbs an address usable at once, even while another host still holds it (no DAD)', async () => {
    // The crash case: the dead owner's kernel keeps the address for its lifetime. With DAD the new
    // owner's copy would answer nothing for a second and then be 'dadfailed' for good.
    lab.exec(n2, ['ip', 'addr', 'add', `${VIP}/128`, 'dev', n2.ifname, 'nodad']);
    try {
      expect(await plumb(n1, VIP)).toBe(true);
      const flags = addrFlags(n1, VIP);
      // IFA_F_NODAD: never tentative (DAD would hold it so for a second at least), so never
      // 'dadfailed' either; the test below shows the same add without it does fail against n2.
      expect(flags).toContain('nodad');
      expect(flags).not.toContain('tentative');
      expect(flags).not.toContain('dadfailed');
      // Usable as a source at once: the advertisement binds to it.
      await expect(sendFrom(n1, [n1.ifname, VIP])).resolves.toBe(true);
    } finally {
      unplumb(n2, VIP);
    }
  });
});

describe('sendNeighbourAdvertisement', () => {
  it('sends an unsolicited advertisement as RFC 4861 7.2.6 says: to all nodes, override set, our MAC as target link-layer address', async () => {
    const cap = await capture(n2, VIP);
    expect(await sendFrom(n1, [n1.ifname, VIP])).toBe(true);
    const na = await captured(cap);
    expect(na).toEqual({
      ethDst: '33:33:00:00:00:01', // RFC 2464 7: ff02::1 on Ethernet
      ethSrc: n1.mac,
      hopLimit: 255, // RFC 4861 7.1.2: receivers drop anything else
      src: VIP,
      dst: 'ff02::1',
      type: 136,
      code: 0,
      checksumOk: true,
      router: false, // n1 does not forward
      solicited: false,
      override: true,
      reserved: 0,
      target: VIP,
      options: [{ type: 2, len: 1, data: n1.mac }],
    });
  });

  it('moves every peer\'s neighbour entry to our MAC', async () => {
    seedEntry(n2);
    seedEntry(lab.client);
    expect(await sendFrom(n1, [n1.ifname, VIP])).toBe(true);
    await waitFor('n2 to learn n1\'s MAC for the address', () => entryMac(n2) === n1.mac, { timeoutMs: 2000 });
    await waitFor('the client to learn n1\'s MAC for the address', () => entryMac(lab.client) === n1.mac, { timeoutMs: 2000 });
  });

  it('sets the router flag when the interface forwards, as the kernel\'s own advertisements do', async () => {
    lab.exec(n1, ['sh', '-c', `echo 1 > /proc/sys/net/ipv6/conf/${n1.ifname}/forwarding`]);
    try {
      const cap = await capture(n2, VIP);
      expect(await sendFrom(n1, [n1.ifname, VIP])).toBe(true);
      expect(await captured(cap)).toMatchObject({ router: true, override: true, solicited: false });
    } finally {
      lab.exec(n1, ['sh', '-c', `echo 0 > /proc/sys/net/ipv6/conf/${n1.ifname}/forwarding`]);
    }
  });

  it('refuses an address that failed duplicate address detection with EADDRNOTAVAIL', async () => {
    const other = `${SUBNET6_PREFIX}201`;
    lab.exec(n2, ['ip', 'addr', 'add', `${other}/128`, 'dev', n2.ifname, 'nodad']);
    try {
      expect(await plumb(n1, other, { noDad: false })).toBe(true);
      await waitFor('n1\'s copy to fail DAD against n2\'s', () => addrFlags(n1, other)?.includes('dadfailed') === true, { timeoutMs: 10_000 });
      await expect(sendFrom(n1, [n1.ifname, other])).rejects.toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
    } finally {
      unplumb(n1, other);
      unplumb(n2, other);
    }
  });

  it('refuses an address this host does not have with EADDRNOTAVAIL', async () => {
    await expect(sendFrom(n1, [n1.ifname, `${SUBNET6_PREFIX}202`])).rejects.toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
  });

  it('skips an IFF_NOARP interface: returns false and sends nothing', async () => {
    expect(await sendFrom(n1, ['noarp0', VIP])).toBe(false);
  });

  it('passes the routing error through when the link is down (ENETUNREACH: no route to ff02::1 there)', async () => {
    await expect(sendFrom(n1, ['down0', VIP])).rejects.toMatchObject({ code: 'ENETUNREACH', syscall: 'sendto' });
  });

  it('refuses a link that is not Ethernet with ERR_NDISC_UNSUPPORTED_LINK', async () => {
    await expect(sendFrom(n1, ['lo', VIP])).rejects.toMatchObject({ code: 'ERR_NDISC_UNSUPPORTED_LINK' });
  });

  it('throws before any system call for a bad address, and ENODEV for an unknown interface', () => {
    expect(() => sendNeighbourAdvertisement('lo', '198.51.100.1')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ADDRESS' }));
    expect(() => sendNeighbourAdvertisement('lo', '2001:db8::g')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ADDRESS' }));
    expect(() => sendNeighbourAdvertisement('lo', 'ff02::1')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ADDRESS' }));
    expect(() => sendNeighbourAdvertisement('no-such-if0', VIP)).toThrow(expect.objectContaining({ code: 'ENODEV', syscall: 'if_nametoindex' }));
    expect(() => sendNeighbourAdvertisement('x'.repeat(40), VIP)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
  });
});
