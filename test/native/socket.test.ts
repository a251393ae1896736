// Listening sockets made by native/socket.cc through the facade: options (exclusive by default,
// SO_REUSEPORT and IP_FREEBIND only when asked), the bind-only probe that tells whether another
// program holds a port, every error path, use by net.Server, and calls from worker threads (which
// import the compiled facade: see worker-harness.ts).
import net from 'node:net';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFd, holdPort, listInterfaces, listenTcp, probeBind, socketLocalAddress } from '../../src/native/index.js';
import { buildFacade, FacadeWorker } from './worker-harness.js';

// TEST-NET-3 (RFC 5737): documentation space, never configured on a real host.
const FOREIGN = '203.0.113.77';

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Catches a synchronous throw and returns it, failing the test when nothing was thrown. */
function thrown(fn: () => unknown): Error & { code?: string; syscall?: string; errno?: number } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

describe('listenTcp', () => {
  const fds: number[] = [];
  const open = (opts: Parameters<typeof listenTcp>[0]): number => {
    const fd = listenTcp(opts);
    fds.push(fd);
    return fd;
  };
  const release = (fd: number): void => {
    fds.splice(fds.indexOf(fd), 1);
    closeFd(fd);
  };
  afterAll(() => {
    for (const fd of fds) closeFd(fd);
  });

  it('returns a non-blocking close-on-exec fd and reports the port the kernel chose', () => {
    const fd = open({ host: '127.0.0.1', port: 0 });
    const flags = parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
    expect(flags & 0o4000).toBe(0o4000); // O_NONBLOCK
    expect(flags & 0o2000000).toBe(0o2000000); // O_CLOEXEC
    const local = socketLocalAddress(fd);
    expect(local).toMatchObject({ address: '127.0.0.1', family: 4 });
    expect(local.port).toBeGreaterThan(0);
    release(fd);
  });

  it('listens on IPv6 addresses, including a scoped link-local one', () => {
    const fd = open({ host: '::1', port: 0 });
    expect(socketLocalAddress(fd)).toMatchObject({ address: '::1', family: 6 });
    release(fd);
    // fe80::1 is not on lo: freeBind, as for a DuraVIP; the point is the zone.
    const scoped = open({ host: 'fe80::1%lo', port: 0, freeBind: true });
    expect(socketLocalAddress(scoped)).toMatchObject({ address: 'fe80::1%lo', family: 6 });
    release(scoped);
  });

  it('is exclusive by default: a second socket on the same ip:port fails with EADDRINUSE', () => {
    const a = open({ host: '127.0.0.1', port: 0 });
    const { port } = socketLocalAddress(a);
    expect(thrown(() => listenTcp({ host: '127.0.0.1', port }))).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    expect(thrown(() => listenTcp({ host: '127.0.0.1', port, reusePort: true }))).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    release(a);
  });

  it('lets two sockets listen on the same ip:port when both set reusePort', () => {
    const a = open({ host: '127.0.0.1', port: 0, reusePort: true });
    const { port } = socketLocalAddress(a);
    const b = open({ host: '127.0.0.1', port, reusePort: true });
    expect(socketLocalAddress(b).port).toBe(port);
    release(a);
    release(b);
  });

  it('hands an fd that net.Server.listen({ fd }) accepts connections on', async () => {
    const fd = listenTcp({ host: '127.0.0.1', port: 0 });
    const { port } = socketLocalAddress(fd);
    // From here the server owns the fd: server.close() closes it.
    const server = net.createServer((c) => c.end('220 ready\r\n'));
    server.listen({ fd });
    await once(server, 'listening');
    try {
      const client = net.connect({ host: '127.0.0.1', port });
      let got = '';
      client.on('data', (d: Buffer) => (got += d.toString()));
      await once(client, 'end');
      expect(got).toBe('220 ready\r\n');
    } finally {
      server.close();
      await once(server, 'close');
    }
  });

  it('listens on an address the machine does not have with freeBind', () => {
    const present = listInterfaces().flatMap((i) => i.addresses.map((a) => a.address));
    expect(present).not.toContain(FOREIGN);
    const fd = open({ host: FOREIGN, port: 0, freeBind: true });
    expect(socketLocalAddress(fd).address).toBe(FOREIGN);
    release(fd);
  });

  it('fails with EADDRNOTAVAIL from bind on a non-local address without freeBind (the default), leaking no fd', () => {
    const before = openFds();
    const e = thrown(() => listenTcp({ host: FOREIGN, port: 0 }));
    expect(e).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
    expect(typeof e.errno).toBe('number');
    expect(openFds()).toBe(before);
  });

  it('fails with EADDRINUSE when the port is held by a socket without reusePort, leaking no fd', () => {
    const holder = open({ host: '127.0.0.1', port: 0, reusePort: false });
    const { port } = socketLocalAddress(holder);
    const before = openFds();
    expect(thrown(() => listenTcp({ host: '127.0.0.1', port, reusePort: true }))).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    expect(openFds()).toBe(before);
    release(holder);
  });

  it('fails with EADDRINUSE for a socket without reusePort on a port held by reusePort sockets', () => {
    const holder = open({ host: '127.0.0.1', port: 0, reusePort: true });
    const { port } = socketLocalAddress(holder);
    expect(thrown(() => listenTcp({ host: '127.0.0.1', port, reusePort: false }))).toMatchObject({ code: 'EADDRINUSE' });
    release(holder);
  });

  it.each(['localhost', '1.2.3', '256.1.1.1', '::g', '', '127.0.0.1 ', '[::1]', 'fe80::1%'])(
    'rejects %j with ERR_INVALID_ADDRESS before any syscall',
    (host) => {
      const before = openFds();
      const e = thrown(() => listenTcp({ host, port: 25 }));
      expect(e.code).toBe('ERR_INVALID_ADDRESS');
      expect(e.syscall).toBeUndefined();
      expect(openFds()).toBe(before);
    },
  );

  it('rejects an IPv6 zone naming no interface with ENODEV', () => {
    expect(thrown(() => listenTcp({ host: 'fe80::1%no-such-if0', port: 0 }))).toMatchObject({
      code: 'ENODEV',
      syscall: 'if_nametoindex',
    });
  });

  it.each([-1, 65536, 1.5, Number.NaN, Infinity])('rejects port %s with a TypeError', (port) => {
    expect(thrown(() => listenTcp({ host: '127.0.0.1', port }))).toBeInstanceOf(TypeError);
  });

  it('rejects options of the wrong type with a TypeError', () => {
    expect(thrown(() => listenTcp({ host: 127 as unknown as string, port: 0 }))).toBeInstanceOf(TypeError);
    expect(thrown(() => listenTcp({ host: '127.0.0.1', port: 0, reusePort: 'yes' as unknown as boolean }))).toBeInstanceOf(TypeError);
    expect(thrown(() => listenTcp({ host: '127.0.0.1', port: 0, backlog: -1 }))).toBeInstanceOf(TypeError);
  });
});

describe('probeBind', () => {
  const fds: number[] = [];
  const hold = (opts: Parameters<typeof listenTcp>[0]): number => {
    const fd = listenTcp(opts);
    fds.push(fd);
    return fd;
  };
  afterAll(() => {
    for (const fd of fds.splice(0)) closeFd(fd);
  });

  it('binds a free port and lets it go: no fd left, and an exclusive listener can take the port after it', () => {
    const probe = listenTcp({ host: '127.0.0.1', port: 0 });
    const { port } = socketLocalAddress(probe);
    closeFd(probe);
    const before = openFds();
    expect(probeBind({ host: '127.0.0.1', port })).toBeUndefined();
    expect(openFds()).toBe(before);
    closeFd(listenTcp({ host: '127.0.0.1', port }));
  });

  it('fails with EADDRINUSE on a port held by a socket without reusePort, leaking no fd', () => {
    const { port } = socketLocalAddress(hold({ host: '127.0.0.1', port: 0 }));
    const before = openFds();
    expect(thrown(() => probeBind({ host: '127.0.0.1', port }))).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    expect(openFds()).toBe(before);
  });

  it('fails with EADDRINUSE on a port held by reusePort sockets, which any same-user socket with reusePort could join', () => {
    const { port } = socketLocalAddress(hold({ host: '127.0.0.1', port: 0, reusePort: true }));
    expect(thrown(() => probeBind({ host: '127.0.0.1', port }))).toMatchObject({ code: 'EADDRINUSE' });
  });

  it('sees a holder of a specific address from the wildcard, and a wildcard holder from a specific address', () => {
    const { port: p1 } = socketLocalAddress(hold({ host: '127.0.0.1', port: 0, reusePort: true }));
    expect(thrown(() => probeBind({ host: '0.0.0.0', port: p1 }))).toMatchObject({ code: 'EADDRINUSE' });
    const { port: p2 } = socketLocalAddress(hold({ host: '0.0.0.0', port: 0, reusePort: true }));
    expect(thrown(() => probeBind({ host: '127.0.0.1', port: p2 }))).toMatchObject({ code: 'EADDRINUSE' });
    const { port: p3 } = socketLocalAddress(hold({ host: '::', port: 0, reusePort: true }));
    expect(thrown(() => probeBind({ host: '::1', port: p3 }))).toMatchObject({ code: 'EADDRINUSE' });
  });

  it('is not stopped by connections of an earlier listener in TIME_WAIT (a restart)', async () => {
    const fd = listenTcp({ host: '127.0.0.1', port: 0 });
    const { port } = socketLocalAddress(fd);
    // The server closes first, so the TIME_WAIT end is the one on the listening port.
    const server = net.createServer((c) => c.end());
    server.listen({ fd });
    await once(server, 'listening');
    const client = net.connect({ host: '127.0.0.1', port });
    client.resume();
    await once(client, 'end');
    client.end();
    await once(client, 'close');
    server.close();
    await once(server, 'close');
    expect(readFileSync('/proc/net/tcp', 'utf8')).toMatch(new RegExp(`:${port.toString(16).toUpperCase().padStart(4, '0')} [0-9A-F]{8}:[0-9A-F]{4} 06 `));
    expect(probeBind({ host: '127.0.0.1', port })).toBeUndefined();
  });

  it('fails with EADDRNOTAVAIL on an address not on this host unless freeBind', () => {
    expect(thrown(() => probeBind({ host: FOREIGN, port: 2525 }))).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
    expect(probeBind({ host: FOREIGN, port: 2525, freeBind: true })).toBeUndefined();
  });

  it('validates its arguments as listenTcp does', () => {
    expect(thrown(() => probeBind({ host: 'localhost', port: 25 }))).toMatchObject({ code: 'ERR_INVALID_ADDRESS' });
    expect(thrown(() => probeBind({ host: '127.0.0.1', port: 65536 }))).toBeInstanceOf(TypeError);
  });
});

describe('holdPort', () => {
  it('keeps out another probe and a plain listener, lets SO_REUSEPORT listeners of ours in, and never listens itself', async () => {
    const free = listenTcp({ host: '127.0.0.1', port: 0 });
    const { port } = socketLocalAddress(free);
    closeFd(free);
    const guard = holdPort({ host: '127.0.0.1', port });
    try {
      expect(thrown(() => probeBind({ host: '127.0.0.1', port }))).toMatchObject({ code: 'EADDRINUSE' });
      expect(thrown(() => probeBind({ host: '0.0.0.0', port }))).toMatchObject({ code: 'EADDRINUSE' });
      // What a plain net.Server does: SO_REUSEADDR, no SO_REUSEPORT.
      const plain = net.createServer();
      const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
        plain.once('error', resolve);
        plain.listen(port, '127.0.0.1', () => resolve(new Error('listened') as NodeJS.ErrnoException));
      });
      plain.close();
      expect(err.code).toBe('EADDRINUSE');
      // Nothing listens until a worker does: a connection is refused.
      const refused = net.connect(port, '127.0.0.1');
      expect((await once(refused, 'error'))[0]).toMatchObject({ code: 'ECONNREFUSED' });
      const worker = listenTcp({ host: '127.0.0.1', port, reusePort: true });
      closeFd(worker);
    } finally {
      closeFd(guard);
    }
    expect(probeBind({ host: '127.0.0.1', port })).toBeUndefined();
  });

  it('binds a DuraVIP with freeBind only, and throws as listenTcp does leaving no fd', () => {
    const before = openFds();
    expect(thrown(() => holdPort({ host: FOREIGN, port: 2525 }))).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
    expect(openFds()).toBe(before);
    closeFd(holdPort({ host: FOREIGN, port: 2525, freeBind: true }));
  });
});

describe('closeFd and socketLocalAddress', () => {
  it('reports EBADF from close for an fd that is not open', () => {
    // Not "close the same fd twice": vitest's own threads may reuse the number in between.
    expect(thrown(() => closeFd(2 ** 31 - 1))).toMatchObject({ code: 'EBADF', syscall: 'close' });
  });

  it('reports ENOTSOCK from getsockname for a file', () => {
    const fd = openSync('/proc/self/status', 'r');
    try {
      expect(thrown(() => socketLocalAddress(fd))).toMatchObject({ code: 'ENOTSOCK', syscall: 'getsockname' });
    } finally {
      closeSync(fd);
    }
  });
});

describe('listenTcp from worker threads', () => {
  const workers: FacadeWorker[] = [];
  beforeAll(() => {
    buildFacade();
    workers.push(new FacadeWorker(), new FacadeWorker());
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.terminate()));
  });

  it('lets two workers listen on the same ip:port, which then refuses a socket without reusePort', async () => {
    const [a, b] = workers as [FacadeWorker, FacadeWorker];
    const fdA = await a.call<number>('listenTcp', { host: '127.0.0.1', port: 0, reusePort: true });
    const { port } = await a.call<{ port: number }>('socketLocalAddress', fdA);
    const fdB = await b.call<number>('listenTcp', { host: '127.0.0.1', port, reusePort: true });
    expect(fdB).not.toBe(fdA);
    expect(await b.call<{ port: number }>('socketLocalAddress', fdB)).toMatchObject({ port });
    expect(thrown(() => listenTcp({ host: '127.0.0.1', port, reusePort: false }))).toMatchObject({ code: 'EADDRINUSE' });
    await a.call('closeFd', fdA);
    await b.call('closeFd', fdB);
  });

  it('carries code and syscall of an error raised in a worker', async () => {
    const [a] = workers as [FacadeWorker];
    await expect(a.call('listenTcp', { host: FOREIGN, port: 0 })).rejects.toMatchObject({
      code: 'EADDRNOTAVAIL',
      syscall: 'bind',
    });
    await expect(a.call('listenTcp', { host: 'not-an-ip', port: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ADDRESS' });
  });

  it('survives terminating a worker that is calling into the addon', async () => {
    for (let i = 0; i < 5; i++) {
      const w = new FacadeWorker();
      expect(await w.spin()).toBe('spinning');
      expect(await w.terminate()).toBe(1);
    }
    // The process and the addon in this thread still work.
    const fd = listenTcp({ host: '127.0.0.1', port: 0 });
    expect(socketLocalAddress(fd).port).toBeGreaterThan(0);
    closeFd(fd);
  });
});
