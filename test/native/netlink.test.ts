// Interfaces and addresses over rtnetlink (native/netlink_*.cc) through the facade. Listing runs on
// the host (read-only); adding and deleting run only inside a network namespace this file creates
// and always deletes, on a veth interface, with 198.51.100.0/24 (TEST-NET-2, RFC 5737).
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addAddress,
  deleteAddress,
  getInterface,
  isOurAddress,
  kernelSupportsAddrProto,
  listInterfaces,
  VIPMTA_ADDR_PROTO,
  type InterfaceAddress,
  type NetInterface,
} from '../../src/native/index.js';
import { buildFacade, FacadeWorker, inNetns, ip } from './worker-harness.js';
import { requireCapabilities } from '../helpers/preconditions.js';

function thrown(fn: () => unknown): Error & { code?: string; syscall?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

describe('listInterfaces', () => {
  it('lists lo as a loopback interface with 127.0.0.1/8 in host scope', () => {
    const lo = listInterfaces().find((i) => i.name === 'lo');
    expect(lo).toBeDefined();
    expect(lo!.flags).toMatchObject({ loopback: true, up: true });
    expect(lo!.addresses).toContainEqual(
      expect.objectContaining({ family: 4, address: '127.0.0.1', prefixLength: 8, scope: 'host', label: 'lo' }),
    );
    const v4 = lo!.addresses.find((a) => a.address === '127.0.0.1')!;
    expect(v4.flags.permanent).toBe(true);
    expect(v4.validLifetime).toBeNull();
  });

  it('agrees with os.networkInterfaces() on every address it reports', () => {
    const ours = new Map(listInterfaces().map((i) => [i.name, i] as const));
    const theirs = os.networkInterfaces();
    expect(Object.keys(theirs)).toContain('lo');
    for (const [name, addrs] of Object.entries(theirs)) {
      // Other tests may create or remove interfaces between the two snapshots: compare the common ones.
      const i = ours.get(name);
      if (i === undefined) continue;
      for (const a of addrs ?? []) {
        expect(i!.addresses.map((x) => x.address), `${name} ${a.address}`).toContain(a.address.replace(/%.*$/, ''));
        if (a.mac !== '00:00:00:00:00:00') expect(i!.mac).toBe(a.mac);
      }
    }
  });

  it('gives every interface a distinct index and name', () => {
    const list = listInterfaces();
    expect(new Set(list.map((i) => i.index)).size).toBe(list.length);
    expect(new Set(list.map((i) => i.name)).size).toBe(list.length);
  });
});

describe('getInterface', () => {
  it('returns the same interface as the listing', () => {
    const fromList = listInterfaces().find((i) => i.name === 'lo');
    expect(getInterface('lo')).toEqual(fromList);
  });

  it.each(['no-such-if0', 'x'.repeat(40), ''])('throws ENODEV from if_nametoindex for %j', (name) => {
    expect(thrown(() => getInterface(name))).toMatchObject({ code: 'ENODEV', syscall: 'if_nametoindex' });
  });
});

describe('kernelSupportsAddrProto', () => {
  it('is true from Linux 5.18 and false before', () => {
    expect(kernelSupportsAddrProto('5.17.15-1-amd64')).toBe(false);
    expect(kernelSupportsAddrProto('5.18.0')).toBe(true);
    expect(kernelSupportsAddrProto('6.1.0-18-amd64')).toBe(true);
    expect(kernelSupportsAddrProto('4.19.0')).toBe(false);
    expect(kernelSupportsAddrProto('garbage')).toBe(false);
  });
});

describe('netlink from worker threads', () => {
  let w: FacadeWorker;
  beforeAll(() => {
    buildFacade();
    w = new FacadeWorker();
  });
  afterAll(async () => {
    await w.terminate();
  });

  it('lists the same interfaces in a worker as on the main thread', async () => {
    // Compared on lo only: other tests may add interfaces between the two listings.
    const inWorker = (await w.call<NetInterface[]>('listInterfaces')).find((i) => i.name === 'lo');
    expect(inWorker).toEqual(listInterfaces().find((i) => i.name === 'lo'));
  });

  it('carries ENODEV and its syscall from a worker', async () => {
    await expect(w.call('getInterface', 'no-such-if0')).rejects.toMatchObject({ code: 'ENODEV', syscall: 'if_nametoindex' });
  });

  it('survives terminating a worker that is listing interfaces', async () => {
    for (let i = 0; i < 5; i++) {
      const spinner = new FacadeWorker();
      expect(await spinner.spin()).toBe('spinning');
      await spinner.terminate();
    }
    expect(getInterface('lo').flags.loopback).toBe(true);
  });
});

describe('argument checks of addAddress and deleteAddress', () => {
  // These throw before any netlink request, so they are safe on the host.
  it('rejects a malformed address with ERR_INVALID_ADDRESS', () => {
    expect(thrown(() => addAddress(1, '198.51.100.300', 24))).toMatchObject({ code: 'ERR_INVALID_ADDRESS' });
    expect(thrown(() => deleteAddress(1, 'nope', 24))).toMatchObject({ code: 'ERR_INVALID_ADDRESS' });
  });

  it('rejects a prefix length beyond the family with a TypeError', () => {
    expect(thrown(() => addAddress(1, '198.51.100.1', 33))).toBeInstanceOf(TypeError);
    expect(thrown(() => deleteAddress(1, '2001:db8::1', 129))).toBeInstanceOf(TypeError);
  });

  it('rejects a non-positive ifindex and a zero lifetime with a TypeError', () => {
    expect(thrown(() => addAddress(0, '198.51.100.1', 24))).toBeInstanceOf(TypeError);
    expect(thrown(() => addAddress(1, '198.51.100.1', 24, { validLifetime: 0 }))).toBeInstanceOf(TypeError);
  });
});

describe('addAddress and deleteAddress in a private network namespace', () => {
  const ns = `vt-${randomBytes(4).toString('hex')}`;
  let ifindex = 0;

  beforeAll(() => {
    requireCapabilities('adds addresses in a private network namespace', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN');
    buildFacade();
    ip('netns', 'add', ns);
    // A veth pair rather than a dummy: the dummy module is not available on every kernel build.
    ip('-n', ns, 'link', 'add', 'vt0', 'type', 'veth', 'peer', 'name', 'vt1');
    ip('-n', ns, 'link', 'set', 'vt1', 'up');
    ip('-n', ns, 'link', 'set', 'vt0', 'up');
    ifindex = Number(/^(\d+):/.exec(ip('-n', ns, '-o', 'link', 'show', 'vt0'))![1]);
  });
  afterAll(() => {
    // Runs even when beforeAll or a test failed; a namespace never outlives the run.
    try {
      ip('netns', 'del', ns);
    } catch {
      /* it was never created */
    }
  });

  const addrOf = (address: string): string =>
    `return n.getInterface('vt0').addresses.find((a) => a.address === ${JSON.stringify(address)}) ?? null;`;

  it('adds an address tagged with IFA_PROTO that the listing shows as ours', async () => {
    const added = await inNetns<boolean>(ns, `return n.addAddress(${ifindex}, '198.51.100.10', 24);`);
    expect(added).toBe(true);
    const a = await inNetns<InterfaceAddress | null>(ns, addrOf('198.51.100.10'));
    expect(a).toMatchObject({ family: 4, prefixLength: 24, scope: 'global', protocol: VIPMTA_ADDR_PROTO, validLifetime: null });
    expect(isOurAddress(a!)).toBe(true);
    // Cross-check with iproute2: the address really is on the interface.
    expect(ip('-n', ns, '-o', 'addr', 'show', 'dev', 'vt0')).toContain('198.51.100.10/24');
  });

  it('reports an address that is already there as not added (EEXIST is expected)', async () => {
    await inNetns(ns, `return n.addAddress(${ifindex}, '198.51.100.11', 24);`);
    expect(await inNetns<boolean>(ns, `return n.addAddress(${ifindex}, '198.51.100.11', 24);`)).toBe(false);
  });

  it('plumbs a finite lifetime and renews it with replace', async () => {
    await inNetns(ns, `return n.addAddress(${ifindex}, '198.51.100.12', 24, { validLifetime: 30 });`);
    const first = await inNetns<InterfaceAddress>(ns, addrOf('198.51.100.12'));
    expect(first.validLifetime).toBeGreaterThan(0);
    expect(first.validLifetime).toBeLessThanOrEqual(30);
    expect(first.preferredLifetime).toBeLessThanOrEqual(first.validLifetime!);
    expect(first.flags.permanent).toBe(false);
    const renewed = await inNetns<boolean>(
      ns,
      `return n.addAddress(${ifindex}, '198.51.100.12', 24, { validLifetime: 600, replace: true });`,
    );
    expect(renewed).toBe(true);
    const second = await inNetns<InterfaceAddress>(ns, addrOf('198.51.100.12'));
    expect(second.validLifetime).toBeGreaterThan(30);
  });

  it('lets the kernel remove an address whose valid lifetime ran out', async () => {
    // Polls the listing in the child until the address is gone: a condition, not a fixed sleep.
    const gone = await inNetns<boolean>(
      ns,
      `n.addAddress(${ifindex}, '198.51.100.13', 24, { validLifetime: 1 });
       const deadline = Date.now() + 20000;
       while (Date.now() < deadline) {
         if (!n.getInterface('vt0').addresses.some((a) => a.address === '198.51.100.13')) return true;
         await new Promise((r) => setTimeout(r, 50));
       }
       return false;`,
    );
    expect(gone).toBe(true);
  });

  it('keeps a label when asked, the tag used on kernels without IFA_PROTO', async () => {
    await inNetns(ns, `return n.addAddress(${ifindex}, '198.51.100.14', 24, { label: 'vt0:vip', protocol: null });`);
    const a = await inNetns<InterfaceAddress>(ns, addrOf('198.51.100.14'));
    expect(a.label).toBe('vt0:vip');
    expect(a.protocol).toBeNull();
    expect(isOurAddress(a)).toBe(true);
  });

  it('does not count an address someone else added as ours', async () => {
    ip('-n', ns, 'addr', 'add', '198.51.100.15/24', 'dev', 'vt0');
    const a = await inNetns<InterfaceAddress>(ns, addrOf('198.51.100.15'));
    expect(isOurAddress(a)).toBe(false);
  });

  it('deletes an address, then reports the absent one as not deleted (EADDRNOTAVAIL is expected)', async () => {
    await inNetns(ns, `return n.addAddress(${ifindex}, '198.51.100.16', 24);`);
    expect(await inNetns<boolean>(ns, `return n.deleteAddress(${ifindex}, '198.51.100.16', 24);`)).toBe(true);
    expect(await inNetns(ns, addrOf('198.51.100.16'))).toBeNull();
    expect(await inNetns<boolean>(ns, `return n.deleteAddress(${ifindex}, '198.51.100.16', 24);`)).toBe(false);
  });

  it('reports a delete on a vanished interface as not deleted (ENODEV is expected)', async () => {
    expect(await inNetns<boolean>(ns, `return n.deleteAddress(999999, '198.51.100.17', 24);`)).toBe(false);
  });

  it('throws ENODEV from RTM_NEWADDR when adding to an interface that does not exist', async () => {
    await expect(
      inNetns(ns, `return n.addAddress(999999, '198.51.100.18', 24, { label: null });`),
    ).rejects.toMatchObject({ code: 'ENODEV', syscall: 'RTM_NEWADDR' });
  });
});
