// Gratuitous and unicast ARP (native/arp.cc) and the neighbour table, observed the way a peer on the
// wire sees them: frames are sent from host n1 of a lab (test/cluster/harness.ts) and the kernel
// neighbour tables of n2 and the client show the result. The sender runs in a child process inside
// n1's namespace (a namespace is per thread). Not tested: EPERM without CAP_NET_RAW, since tests run
// as root and dropping the capability needs a helper binary (capsh is not installed here).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listNeighbours, sendArp } from '../../src/native/index.js';
import { ClusterLab, SUBNET_PREFIX, waitFor, type LabHost } from '../cluster/harness.js';
import { buildFacade, inNetns } from './worker-harness.js';

const VIP = `${SUBNET_PREFIX}200`;
const FAKE_MAC = '02:00:5e:00:00:99';

let lab: ClusterLab;
let n1: LabHost;
let n2: LabHost;

beforeAll(async () => {
  buildFacade();
  lab = await ClusterLab.create({ nodes: 2 });
  [n1, n2] = lab.hosts as [LabHost, LabHost];
  // An IFF_NOARP link, an Ethernet link that is down, on n1 (veth pairs: this kernel has no dummy driver).
  lab.exec(n1, ['ip', 'link', 'add', 'noarp0', 'type', 'veth', 'peer', 'name', 'noarp1']);
  lab.exec(n1, ['ip', 'link', 'set', 'noarp0', 'arp', 'off', 'up']);
  lab.exec(n1, ['ip', 'link', 'add', 'down0', 'type', 'veth', 'peer', 'name', 'down1']);
});

afterAll(async () => {
  await lab?.destroy();
});

/** Gives `host` a STALE entry for VIP pointing elsewhere: with arp_accept=0 (the default) a
 *  gratuitous ARP updates an existing entry but never creates one (ANCHORS.md). */
function seedEntry(host: LabHost): void {
  lab.exec(host, ['ip', 'neigh', 'replace', VIP, 'lladdr', FAKE_MAC, 'dev', host.ifname, 'nud', 'stale']);
}

function entryMac(host: LabHost): string | null {
  const list = JSON.parse(lab.exec(host, ['ip', '-j', '-4', 'neigh', 'show', VIP, 'dev', host.ifname])) as Array<{ lladdr?: string }>;
  return list[0]?.lladdr ?? null;
}

function sendFrom(host: LabHost, args: unknown[]): Promise<unknown> {
  return inNetns(host.ns, `return n.sendArp(...${JSON.stringify(args)});`);
}

describe('sendArp', () => {
  it('moves a peer\'s neighbour entry to our MAC with a broadcast gratuitous request', async () => {
    seedEntry(n2);
    seedEntry(lab.client);
    expect(await sendFrom(n1, [n1.ifname, VIP])).toBe(true);
    await waitFor('n2 to learn n1\'s MAC', () => entryMac(n2) === n1.mac, { timeoutMs: 2000 });
    expect(entryMac(lab.client)).toBe(n1.mac);
  });

  it('moves it with the reply form too (arp_is_garp() wants tha == sha for replies)', async () => {
    seedEntry(n2);
    expect(await sendFrom(n1, [n1.ifname, VIP, { op: 'reply' }])).toBe(true);
    await waitFor('n2 to learn n1\'s MAC from a reply', () => entryMac(n2) === n1.mac, { timeoutMs: 2000 });
  });

  it('reaches only the addressed host when unicast to its MAC', async () => {
    seedEntry(n2);
    seedEntry(lab.client);
    expect(await sendFrom(n1, [n1.ifname, VIP, { destMac: n2.mac }])).toBe(true);
    await waitFor('n2 to learn n1\'s MAC from a unicast frame', () => entryMac(n2) === n1.mac, { timeoutMs: 2000 });
    // The bridge may flood a frame for a MAC it has not learnt, but arp_rcv() drops PACKET_OTHERHOST.
    expect(entryMac(lab.client)).toBe(FAKE_MAC);
  });

  it('makes a host without an entry learn us when unicast as a request for its own address', async () => {
    lab.exec(lab.client, ['ip', 'neigh', 'flush', 'dev', lab.client.ifname]);
    expect(entryMac(lab.client)).toBeNull();
    // RFC 826: the target of a request adds the sender's pair to its table (and answers).
    expect(await sendFrom(n1, [n1.ifname, VIP, { destMac: lab.client.mac, targetAddress: lab.client.address }])).toBe(true);
    await waitFor('the client to create an entry for VIP', () => entryMac(lab.client) === n1.mac, { timeoutMs: 2000 });
  });

  it('does not create an entry from a gratuitous ARP where none existed (arp_accept=0)', async () => {
    lab.exec(n2, ['ip', 'neigh', 'flush', 'dev', n2.ifname]);
    const marker = `${SUBNET_PREFIX}202`;
    // A negative needs a positive behind it: right after the gratuitous frame, on the same path, a
    // request for n2's own address from `marker`, which n2 must learn (RFC 826). Once n2 has the
    // marker it has also processed the frame before it.
    await inNetns(n1.ns, `
      n.sendArp(${JSON.stringify(n1.ifname)}, ${JSON.stringify(VIP)});
      n.sendArp(${JSON.stringify(n1.ifname)}, ${JSON.stringify(marker)}, { destMac: ${JSON.stringify(n2.mac)}, targetAddress: ${JSON.stringify(n2.address)} });`);
    await waitFor('n2 to learn the marker address', () =>
      lab.exec(n2, ['ip', '-4', 'neigh', 'show', marker]).includes(n1.mac), { timeoutMs: 2000 });
    expect(entryMac(n2)).toBeNull();
  });

  it('skips an IFF_NOARP interface: returns false and sends nothing', async () => {
    expect(await sendFrom(n1, ['noarp0', VIP])).toBe(false);
  });

  it('passes ENETDOWN through from sendto when the link is down', async () => {
    await expect(sendFrom(n1, ['down0', VIP])).rejects.toMatchObject({ code: 'ENETDOWN', syscall: 'sendto' });
  });

  it('refuses a link that is not Ethernet with ERR_ARP_UNSUPPORTED_LINK', async () => {
    await expect(sendFrom(n1, ['lo', VIP])).rejects.toMatchObject({ code: 'ERR_ARP_UNSUPPORTED_LINK' });
  });

  it('throws before any system call for a bad address, MAC or op, and ENODEV for an unknown interface', () => {
    expect(() => sendArp('lo', '2001:db8::1')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ADDRESS' }));
    expect(() => sendArp('lo', '198.51.100.1.2')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ADDRESS' }));
    expect(() => sendArp('lo', VIP, { destMac: '02:00:00:00:00' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_MAC' }));
    expect(() => sendArp('lo', VIP, { destMac: '02:00:00:00:00:0g' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_MAC' }));
    expect(() => sendArp('lo', VIP, { op: 'bogus' as 'request' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => sendArp('no-such-if0', VIP)).toThrow(expect.objectContaining({ code: 'ENODEV', syscall: 'if_nametoindex' }));
    expect(() => sendArp('x'.repeat(40), VIP)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
  });
});

describe('listNeighbours', () => {
  it('agrees with `ip -4 neigh` on address, MAC and state', async () => {
    seedEntry(n2);
    lab.exec(n2, ['ip', 'neigh', 'replace', `${SUBNET_PREFIX}201`, 'lladdr', '02:00:5e:00:00:01', 'dev', n2.ifname, 'nud', 'permanent']);
    const ours = await inNetns<Array<{ address: string; mac: string | null; state: unknown; interface: string }>>(
      n2.ns, `return n.listNeighbours(${JSON.stringify(n2.ifname)});`);
    const theirs = JSON.parse(lab.exec(n2, ['ip', '-j', '-4', 'neigh', 'show', 'dev', n2.ifname])) as
      Array<{ dst: string; lladdr?: string; state: string[] }>;
    expect(ours.map((e) => e.address).sort()).toEqual(theirs.map((e) => e.dst).sort());
    for (const t of theirs) {
      const o = ours.find((e) => e.address === t.dst)!;
      expect(o.interface).toBe(n2.ifname);
      expect(o.mac).toBe(t.lladdr ?? null);
      expect(String(o.state).toUpperCase()).toBe(t.state[0]);
    }
    expect(ours).toContainEqual(expect.objectContaining({ address: VIP, mac: FAKE_MAC, state: 'stale', router: false }));
    expect(ours).toContainEqual(expect.objectContaining({ address: `${SUBNET_PREFIX}201`, state: 'permanent' }));
  });

  it('lists every interface when given none, and throws ENODEV for an unknown one', async () => {
    const all = await inNetns<Array<{ interface: string }>>(n2.ns, 'return n.listNeighbours();');
    expect(all.every((e) => e.interface === n2.ifname)).toBe(true);
    expect(() => listNeighbours('no-such-if0')).toThrow(expect.objectContaining({ code: 'ENODEV' }));
  });
});
