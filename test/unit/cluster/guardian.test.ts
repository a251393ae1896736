// The address guardian (src/cluster/guardian.ts): its pipe protocol, its cleanup (only declared,
// tagged addresses on their own interface), and the parent's end with a stand-in guardian process
// that records what it is told (the real one needs CAP_NET_ADMIN: test/cluster/never-twice covers it).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { encodeGuardLine, GuardBook, GuardianLink, removeGuarded, type GuardNetlink } from '../../../src/cluster/guardian.js';
import type { InterfaceAddress, NetInterface } from '../../../src/native/netlink.js';
import { waitFor } from '../../helpers/wait.js';
import { tempDir } from '../../helpers/tmp.js';

function addr(address: string, opts: Partial<InterfaceAddress> = {}): InterfaceAddress {
  return {
    family: address.includes(':') ? 6 : 4, address, prefixLength: 32, scope: 'global', label: null,
    flags: { permanent: false, secondary: false, tentative: false, deprecated: false },
    protocol: 0x56, validLifetime: 6, preferredLifetime: 6, ...opts,
  };
}

function itf(index: number, name: string, addresses: InterfaceAddress[]): NetInterface {
  return { index, name, mtu: 1500, mac: null, flags: { up: true, running: true, loopback: false, noarp: false, broadcast: true, multicast: true }, addresses };
}

function fakeNetlink(ifs: NetInterface[]): GuardNetlink & { deleted: string[] } {
  const deleted: string[] = [];
  return {
    deleted,
    listInterfaces: () => ifs,
    deleteAddress: (index, address, prefixLength) => {
      if (address === '198.51.100.66') throw new Error('EPERM: not allowed');
      deleted.push(`${index} ${address}/${prefixLength}`);
      return true;
    },
    isOurAddress: (a) => a.protocol === 0x56 || (a.label?.endsWith(':vip') ?? false),
  };
}

describe('guardian book', () => {
  it('keeps what was declared and not removed, across chunk boundaries, canonical', () => {
    const b = new GuardBook();
    const text = encodeGuardLine('+', { ifname: 'eth1', address: '198.51.100.201', prefixLength: 32 }) +
      encodeGuardLine('+', { ifname: 'eth1', address: '2001:DB8:0::1', prefixLength: 128 }) +
      encodeGuardLine('+', { ifname: 'eth1', address: '198.51.100.202', prefixLength: 32 }) +
      encodeGuardLine('-', { ifname: 'eth1', address: '198.51.100.201', prefixLength: 32 });
    for (let i = 0; i < text.length; i += 7) b.feed(text.slice(i, i + 7));
    expect(b.list()).toEqual([
      { ifname: 'eth1', address: '2001:db8::1', prefixLength: 128 },
      { ifname: 'eth1', address: '198.51.100.202', prefixLength: 32 },
    ]);
  });

  it('ignores malformed lines', () => {
    const b = new GuardBook();
    b.feed('+ eth1 not-an-ip 32\n+ eth1 198.51.100.9 33\n* eth1 198.51.100.9 32\n+ an-interface-name-too-long 198.51.100.9 32\n+ eth1 198.51.100.9\n');
    expect(b.list()).toEqual([]);
  });
});

describe('guardian cleanup', () => {
  it('removes the declared addresses that are on their interface and tagged as ours, nothing else', () => {
    const nl = fakeNetlink([
      itf(2, 'eth1', [
        addr('198.51.100.11', { protocol: null, prefixLength: 24 }), // the host's own
        addr('198.51.100.201'),
        addr('198.51.100.202', { protocol: null, label: 'eth1:vip' }), // tagged by label (old kernels)
        addr('198.51.100.203', { protocol: null }), // someone else's, untagged
      ]),
      itf(3, 'eth2', [addr('198.51.100.204')]), // tagged, but declared on eth1
    ]);
    const book = ['198.51.100.201', '198.51.100.202', '198.51.100.203', '198.51.100.204', '198.51.100.205']
      .map((address) => ({ ifname: 'eth1', address, prefixLength: 32 }));
    const r = removeGuarded(book, nl);
    expect(r).toEqual({ removed: ['198.51.100.201', '198.51.100.202'], failed: [] });
    expect(nl.deleted).toEqual(['2 198.51.100.201/32', '2 198.51.100.202/32']);
  });

  it('reports an address it cannot remove and goes on with the others', () => {
    const nl = fakeNetlink([itf(2, 'eth1', [addr('198.51.100.66'), addr('198.51.100.67')])]);
    const r = removeGuarded([
      { ifname: 'eth1', address: '198.51.100.66', prefixLength: 32 },
      { ifname: 'eth1', address: '198.51.100.67', prefixLength: 32 },
    ], nl);
    expect(r.removed).toEqual(['198.51.100.67']);
    expect(r.failed).toEqual([{ address: '198.51.100.66', error: 'EPERM: not allowed' }]);
  });

  it('does not even list interfaces when nothing is declared (a planned exit)', () => {
    const nl = fakeNetlink([]);
    nl.listInterfaces = () => { throw new Error('must not be called'); };
    expect(removeGuarded([], nl)).toEqual({ removed: [], failed: [] });
  });
});

describe('guardian link (vipmta\'s end)', () => {
  it('tells a guardian in its own session what it plumbs and removes, and ends its pipe on stop', async () => {
    const dir = tempDir('guardian');
    const out = path.join(dir, 'seen');
    // A stand-in guardian: records its session and everything it reads, and "EOF" at the end.
    const main = path.join(dir, 'stand-in.mjs');
    writeFileSync(main, `import fs from 'node:fs';
      const stat = fs.readFileSync('/proc/self/stat', 'latin1'); const sid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3];
      fs.writeFileSync(${JSON.stringify(out)}, 'sid ' + sid + '\\n');
      process.stdin.on('data', (d) => fs.appendFileSync(${JSON.stringify(out)}, d));
      process.stdin.on('end', () => { fs.appendFileSync(${JSON.stringify(out)}, 'EOF\\n'); process.exit(0); });`);
    const link = new GuardianLink(pino({ level: 'silent' }), main);
    link.start();
    const pid = link.pid!;
    link.declare({ ifname: 'eth1', address: '198.51.100.201', prefixLength: 32 });
    link.declare({ ifname: 'eth1', address: '198.51.100.201', prefixLength: 32 }); // a renewal: not sent again
    link.declare({ ifname: 'eth1', address: '198.51.100.202', prefixLength: 32 });
    link.forget('198.51.100.201');
    link.forget('198.51.100.209'); // never declared: nothing to say
    link.stop();
    const seen = await waitFor('the stand-in to see the end of its pipe', () => {
      try {
        const t = readFileSync(out, 'utf8');
        return t.endsWith('EOF\n') ? t : null;
      } catch {
        return null;
      }
    });
    const [sid, ...lines] = seen.trim().split('\n');
    // setsid(): its session is its own pid, not ours.
    expect(sid).toBe(`sid ${pid}`);
    expect(lines).toEqual(['+ eth1 198.51.100.201 32', '+ eth1 198.51.100.202 32', '- eth1 198.51.100.201 32', 'EOF']);
  });

  it('starts a new guardian when its guardian died, and tells it everything still held', async () => {
    const dir = tempDir('guardian');
    const main = path.join(dir, 'stand-in.mjs');
    writeFileSync(main, `import fs from 'node:fs';
      const out = ${JSON.stringify(dir)} + '/seen-' + process.pid; fs.writeFileSync(out, '');
      process.stdin.on('data', (d) => fs.appendFileSync(out, d));
      process.stdin.on('end', () => { fs.appendFileSync(out, 'EOF\\n'); process.exit(0); });`);
    const link = new GuardianLink(pino({ level: 'silent' }), main);
    link.start();
    const first = link.pid!;
    link.declare({ ifname: 'eth1', address: '198.51.100.201', prefixLength: 32 });
    await waitFor('the first stand-in to have read its line', () => {
      try {
        return readFileSync(path.join(dir, `seen-${first}`), 'utf8').includes('201');
      } catch {
        return false;
      }
    });
    process.kill(first, 'SIGKILL');
    await waitFor('the link to notice', () => link.pid === null);
    link.declare({ ifname: 'eth1', address: '198.51.100.202', prefixLength: 32 });
    const second = link.pid!;
    expect(second).not.toBe(first);
    link.stop();
    const seen = await waitFor('the second stand-in to see the end of its pipe', () => {
      try {
        const t = readFileSync(path.join(dir, `seen-${second}`), 'utf8');
        return t.endsWith('EOF\n') ? t : null;
      } catch {
        return null;
      }
    });
    expect(seen.trim().split('\n')).toEqual(['+ eth1 198.51.100.201 32', '+ eth1 198.51.100.202 32', 'EOF']);
  });
});
