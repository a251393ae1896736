// The main thread's check of listening addresses before the workers share them (src/node/
// listen-check.ts): IP_FREEBIND only for DuraVIP addresses, which errors a probe turns into and how
// they name the holder, our own running listeners counting as ours, and the real probe against real
// sockets on loopback (holders found in /proc).
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { claimListenAddresses, listenAddresses, listenRefusals, systemProbe, type ListenAddress, type ListenProbe, type PortHolder } from '../../../src/node/listen-check.js';
import { listenerSpecs } from '../../../src/node/worker-settings.js';
import { closeFd, listenTcp, probeBind, socketLocalAddress } from '../../../src/native/index.js';
import { config } from './helpers.js';

const CLUSTER = 'Cluster { Cluster_Secret = "s" Topology "198.51.100.0/24" { Interface = "eth1" } }';

const esmtp = (name: string, freeBind = false): ListenAddress => {
  const i = name.lastIndexOf(':');
  return { kind: 'ESMTP_Listener', name, host: name.slice(0, i), port: Number(name.slice(i + 1)), freeBind };
};

/** A scripted system: `fails` maps "host:port" to the errno its probe throws; holders by port. */
function fake(fails: Record<string, string>, holders: Record<number, PortHolder[]> = {}, cmdlines: Record<number, string> = {}): ListenProbe & { probed: string[]; guards: string[] } {
  const probed: string[] = [];
  const guards: string[] = [];
  let fd = 10;
  return {
    probed,
    guards,
    hold: (a) => (guards.push(`hold ${a.name} ${fd}`), a.name === 'nohold:1' ? null : fd++),
    release: (n) => void guards.push(`release ${n}`),
    probe: (a) => {
      probed.push(`${a.name}${a.freeBind ? ' freebind' : ''}`);
      const code = fails[a.name];
      if (code !== undefined) throw Object.assign(new Error(`bind ${a.host} port ${a.port}: ${code}`), { code });
    },
    holders: (_host, port) => holders[port] ?? [],
    pid: 100,
    cmdline: (pid) => cmdlines[pid] ?? '',
  };
}

describe('which addresses are bound with IP_FREEBIND', () => {
  it('only DuraVIP addresses (Enable_Duravip, Duravip_Follow, or the address of a DuraVIP binding), ECCluster_Listener too', () => {
    const cfg = config(`${CLUSTER}
ESMTP_Listener {
  Listen "198.51.100.10:25" { Enable_Duravip = true }
  Listen "198.51.100.11:25" { Duravip_Follow = "b1" }
  Listen "198.51.100.12:25" { }
  Listen "127.0.0.1:25" { }
}
ECCluster_Listener { Listen "198.51.100.12:4802" { } Listen "198.51.100.13:4802" { } }
Binding_Group "g" { Binding "b1" { Bind_Address = "198.51.100.12" Enable_Duravip = true } }
`);
    expect(listenAddresses(cfg).map((a) => `${a.kind} ${a.name} ${a.freeBind}`)).toEqual([
      'ESMTP_Listener 198.51.100.10:25 true',
      'ESMTP_Listener 198.51.100.11:25 true',
      'ESMTP_Listener 198.51.100.12:25 true',
      'ESMTP_Listener 127.0.0.1:25 false',
      'ECCluster_Listener 198.51.100.12:4802 true',
      'ECCluster_Listener 198.51.100.13:4802 false',
    ]);
    expect(listenerSpecs(cfg).map((s) => s.freeBind)).toEqual([true, true, true, false]);
  });
});

describe('listenRefusals', () => {
  it('probes every address with its own IP_FREEBIND and refuses nothing when all are free', () => {
    const sys = fake({});
    expect(listenRefusals([esmtp('127.0.0.1:25'), esmtp('198.51.100.10:25', true)], [], sys)).toEqual([]);
    expect(sys.probed).toEqual(['127.0.0.1:25', '198.51.100.10:25 freebind']);
  });

  it('names another vipmta, another program, or one it may not look at', () => {
    const sys = fake(
      { '127.0.0.1:25': 'EADDRINUSE', '127.0.0.1:26': 'EADDRINUSE', '127.0.0.1:27': 'EADDRINUSE', '127.0.0.1:28': 'EADDRINUSE' },
      {
        25: [{ address: '127.0.0.1', uid: 0, pids: [200] }],
        26: [{ address: '0.0.0.0', uid: 0, pids: [300] }],
        27: [{ address: '127.0.0.1', uid: 5, pids: [] }],
      },
      { 200: '/usr/bin/node /opt/vipmta/bin/vipmta.js start -c /etc/vipmta.conf', 300: 'nc -l 26' },
    );
    const msgs = listenRefusals([esmtp('127.0.0.1:25'), esmtp('127.0.0.1:26'), esmtp('127.0.0.1:27'), esmtp('127.0.0.1:28')], [], sys).map((e) => [e.code, e.message]);
    expect(msgs).toEqual([
      ['EADDRINUSE', 'ESMTP_Listener "127.0.0.1:25" cannot listen on 127.0.0.1:25: the port is in use by another vipmta (pid 200) (EADDRINUSE)'],
      ['EADDRINUSE', 'ESMTP_Listener "127.0.0.1:26" cannot listen on 127.0.0.1:26: the port is in use by another program (pid 300: nc -l 26) (EADDRINUSE)'],
      ['EADDRINUSE', 'ESMTP_Listener "127.0.0.1:27" cannot listen on 127.0.0.1:27: the port is in use by another program (of another user: run as root to see which) (EADDRINUSE)'],
      ['EADDRINUSE', 'ESMTP_Listener "127.0.0.1:28" cannot listen on 127.0.0.1:28: the port is in use by another program (bound, not listening yet: a vipmta starting?) (EADDRINUSE)'],
    ]);
  });

  it('refuses an address not on the host that is not a DuraVIP, and a port below 1024 without the privilege', () => {
    const sys = fake({ '192.0.2.1:25': 'EADDRNOTAVAIL', '[::1]:25': 'EACCES' });
    const a6: ListenAddress = { kind: 'ECCluster_Listener', name: '[::1]:25', host: '::1', port: 25, freeBind: false };
    expect(listenRefusals([esmtp('192.0.2.1:25'), a6], [], sys).map((e) => [e.code, e.message])).toEqual([
      ['EADDRNOTAVAIL', 'ESMTP_Listener "192.0.2.1:25" cannot listen on 192.0.2.1:25: the address is not on this host and not a DuraVIP (only Enable_Duravip or Duravip_Follow addresses are bound before they are plumbed) (EADDRNOTAVAIL)'],
      ['EACCES', 'ECCluster_Listener "[::1]:25" cannot listen on [::1]:25: a port below 1024 needs privileges (CAP_NET_BIND_SERVICE) (EACCES)'],
    ]);
  });

  it('takes a port held by our own running listeners, or by our sockets only, as ours to share', () => {
    const sys = fake(
      { '127.0.0.1:25': 'EADDRINUSE', '0.0.0.0:25': 'EADDRINUSE', '0.0.0.0:26': 'EADDRINUSE' },
      { 25: [{ address: '127.0.0.1', uid: 0, pids: [100] }], 26: [{ address: '127.0.0.1', uid: 0, pids: [100, 300] }] },
    );
    const refused = listenRefusals([esmtp('127.0.0.1:25'), esmtp('0.0.0.0:25'), esmtp('0.0.0.0:26')], [esmtp('127.0.0.1:25')], sys);
    expect(refused.map((e) => e.message)).toEqual(['ESMTP_Listener "0.0.0.0:26" cannot listen on 0.0.0.0:26: the port is in use by another program (pid 300) (EADDRINUSE)']);
  });

  it('refuses an ESMTP_Listener and an ECCluster_Listener on one address: one SO_REUSEPORT group would mix them', () => {
    const link: ListenAddress = { kind: 'ECCluster_Listener', name: '127.0.0.1:25', host: '127.0.0.1', port: 25, freeBind: false };
    expect(listenRefusals([esmtp('127.0.0.1:25'), link], [], fake({})).map((e) => e.message)).toEqual([
      'ECCluster_Listener "127.0.0.1:25" cannot listen on 127.0.0.1:25: ESMTP_Listener "127.0.0.1:25" listens there (EADDRINUSE)',
    ]);
  });
});

describe('claimListenAddresses', () => {
  it('holds each new address after the check, none of those we listen on already, and releases them once', () => {
    const sys = fake({});
    const claim = claimListenAddresses([esmtp('127.0.0.1:25'), esmtp('127.0.0.1:26'), esmtp('198.51.100.10:25', true)], [esmtp('127.0.0.1:25')], sys);
    expect(claim.refused).toEqual([]);
    expect(sys.guards).toEqual(['hold 127.0.0.1:26 10', 'hold 198.51.100.10:25 11']);
    claim.release();
    claim.release();
    expect(sys.guards.slice(2)).toEqual(['release 10', 'release 11']);
  });

  it('holds nothing when any address is refused', () => {
    const sys = fake({ '127.0.0.1:26': 'EADDRNOTAVAIL' });
    const claim = claimListenAddresses([esmtp('127.0.0.1:25'), esmtp('127.0.0.1:26')], [], sys);
    expect(claim.refused.map((e) => e.code)).toEqual(['EADDRNOTAVAIL']);
    expect(sys.guards).toEqual([]);
  });

  it('keeps another vipmta\'s check out while it holds an address, and lets it in after release', () => {
    const free = listenTcp({ host: '127.0.0.1', port: 0 });
    const { port } = socketLocalAddress(free);
    closeFd(free);
    const claim = claimListenAddresses([esmtp(`127.0.0.1:${port}`)], []);
    try {
      expect(() => probeBind({ host: '127.0.0.1', port })).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
      // Our workers get in.
      closeFd(listenTcp({ host: '127.0.0.1', port, reusePort: true }));
    } finally {
      claim.release();
    }
    expect(probeBind({ host: '127.0.0.1', port })).toBeUndefined();
  });
});

describe('the system probe', () => {
  const fds: number[] = [];
  const servers: net.Server[] = [];
  afterAll(async () => {
    for (const fd of fds) closeFd(fd);
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it('finds this process as the holder of a plain listener and of a SO_REUSEPORT one, through the wildcard too', async () => {
    const server = net.createServer();
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p1 = (server.address() as net.AddressInfo).port;
    const fd = listenTcp({ host: '::1', port: 0, reusePort: true });
    fds.push(fd);
    const p2 = socketLocalAddress(fd).port;
    for (const [host, port, held] of [['127.0.0.1', p1, '127.0.0.1'], ['0.0.0.0', p1, '127.0.0.1'], ['::1', p2, '::1'], ['::', p2, '::1']] as const) {
      expect(systemProbe.holders(host, port), `${host} ${port}`).toEqual([{ address: held, uid: process.getuid!(), pids: [process.pid] }]);
    }
    // Ours only: a reload may add the wildcard next to it.
    expect(listenRefusals([esmtp(`0.0.0.0:${p1}`)], [])).toEqual([]);
    const other = { ...systemProbe, pid: -1 };
    expect(listenRefusals([esmtp(`0.0.0.0:${p1}`)], [], other).map((e) => e.message)).toEqual([
      `ESMTP_Listener "0.0.0.0:${p1}" cannot listen on 0.0.0.0:${p1}: the port is in use by another program (pid ${process.pid}: ${systemProbe.cmdline(process.pid).slice(0, 77)}${systemProbe.cmdline(process.pid).length > 80 ? '...' : ''}) (EADDRINUSE)`,
    ]);
  });
});
