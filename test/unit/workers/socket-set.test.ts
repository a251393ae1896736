// The reloadable listening-socket set: which listeners a reload keeps, opens and retires, in what
// order (new socket first), all-or-nothing on a socket that cannot be made, one grace for retired
// listeners and a drain that shortens it. Engines and sockets are fakes that record what happens.
import { describe, expect, it } from 'vitest';
import { closeFd, listenTcp, socketLocalAddress } from '../../../src/native/index.js';
import { DRAIN_GRACE_MS, SocketSet, type ServedSocket, type SocketSpec } from '../../../src/workers/socket-set.js';

interface Spec extends SocketSpec {
  options: Record<string, unknown>;
}

const spec = (name: string, options: Record<string, unknown> = {}): Spec => {
  const [host, port] = name.split(':');
  return { name, host: host!, port: Number(port), options };
};

/** A listener that records its calls; close() settles when the test says so. */
class FakeListener implements ServedSocket {
  activeSessions = 0;
  readonly graces: number[] = [];
  fd = -1;
  private settle: ((cutOff: number) => void) | null = null;
  private closed: Promise<number> | null = null;

  constructor(readonly spec: Spec, private readonly log: string[], private readonly failListen = false) {}

  listenFd(fd: number): Promise<void> {
    this.fd = fd;
    this.log.push(`listen ${this.spec.name} ${JSON.stringify(this.spec.options)}`);
    return this.failListen ? Promise.reject(Object.assign(new Error('listen failed'), { code: 'EBADF' })) : Promise.resolve();
  }

  close(graceMs: number): Promise<number> {
    this.graces.push(graceMs);
    this.log.push(`close ${this.spec.name} ${JSON.stringify(this.spec.options)} ${graceMs}`);
    this.closed ??= new Promise((resolve) => (this.settle = resolve));
    return this.closed;
  }

  finish(cutOff: number): void {
    this.settle!(cutOff);
  }
}

function harness(opts: { failOpen?: string; failListen?: string; retireGraceMs?: number } = {}) {
  const log: string[] = [];
  const made: FakeListener[] = [];
  const openFds = new Set<number>();
  const retired: [string, number][] = [];
  let nextFd = 100;
  const set = new SocketSet<Spec, FakeListener>({
    create: (s) => {
      const l = new FakeListener(s, log, s.name === opts.failListen);
      made.push(l);
      return l;
    },
    ...(opts.retireGraceMs !== undefined ? { retireGraceMs: opts.retireGraceMs } : {}),
    onRetired: (name, cutOff) => retired.push([name, cutOff]),
    socket: {
      open: (s) => {
        if (s.name === opts.failOpen) throw Object.assign(new Error(`bind ${s.name}: Address already in use`), { code: 'EADDRINUSE' });
        const fd = nextFd++;
        openFds.add(fd);
        log.push(`socket ${s.name}`);
        return fd;
      },
      close: (fd) => void openFds.delete(fd),
    },
  });
  const live = (name: string): FakeListener => set.listeners().find(([n]) => n === name)![1];
  return { set, log, made, openFds, retired, live };
}

describe('socket set', () => {
  it('opens each listener on its own socket and keeps an unchanged one across a reload', async () => {
    const h = harness();
    expect(await h.set.set([spec('127.0.0.1:25'), spec('127.0.0.1:587')])).toEqual(['127.0.0.1:25', '127.0.0.1:587']);
    expect(h.made.map((l) => l.fd)).toEqual([100, 101]);
    const before = h.live('127.0.0.1:25');
    expect(await h.set.set([spec('127.0.0.1:25'), spec('127.0.0.1:587')])).toEqual(['127.0.0.1:25', '127.0.0.1:587']);
    expect(h.made).toHaveLength(2);
    expect(h.live('127.0.0.1:25')).toBe(before);
    expect(h.log.filter((l) => l.startsWith('close'))).toEqual([]);
  });

  it('replaces a changed listener: the new one listens before the old one is retired with the grace', async () => {
    const h = harness();
    await h.set.set([spec('127.0.0.1:25', { Max_Recipients: 3 })]);
    h.log.length = 0;
    await h.set.set([spec('127.0.0.1:25', { Max_Recipients: 5 })]);
    expect(h.log).toEqual([
      'socket 127.0.0.1:25',
      'listen 127.0.0.1:25 {"Max_Recipients":5}',
      `close 127.0.0.1:25 {"Max_Recipients":3} ${DRAIN_GRACE_MS}`,
    ]);
    expect(h.live('127.0.0.1:25').spec.options).toEqual({ Max_Recipients: 5 });
  });

  it('retires a removed listener, counts its sessions until they finish, and reports what it cut', async () => {
    const h = harness({ retireGraceMs: 5_000 });
    await h.set.set([spec('127.0.0.1:25'), spec('127.0.0.1:587')]);
    const old = h.live('127.0.0.1:587');
    old.activeSessions = 2;
    h.live('127.0.0.1:25').activeSessions = 1;
    expect(await h.set.set([spec('127.0.0.1:25')])).toEqual(['127.0.0.1:25']);
    expect(h.set.names).toEqual(['127.0.0.1:25']);
    expect(old.graces).toEqual([5_000]);
    // Its sessions are still open and still counted until the listener has closed.
    expect(h.set.activeSessions).toBe(3);
    expect(h.retired).toEqual([]);
    old.activeSessions = 0;
    old.finish(0);
    await flush();
    expect(h.retired).toEqual([['127.0.0.1:587', 0]]);
    expect(h.set.activeSessions).toBe(1);
  });

  it('keeps the running set when a reload cannot open one socket, and retires what that reload opened', async () => {
    const h = harness({ failOpen: '127.0.0.1:2526' });
    await h.set.set([spec('127.0.0.1:25', { v: 1 })]);
    const running = h.live('127.0.0.1:25');
    await expect(h.set.set([spec('127.0.0.1:25', { v: 2 }), spec('127.0.0.1:2526')])).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(h.set.names).toEqual(['127.0.0.1:25']);
    expect(h.live('127.0.0.1:25')).toBe(running);
    expect(running.graces).toEqual([]);
    // The replacement made before the failure may have taken connections: it is retired, not cut.
    const replacement = h.made[1]!;
    expect(replacement.spec.options).toEqual({ v: 2 });
    expect(replacement.graces).toEqual([DRAIN_GRACE_MS]);
  });

  it('closes the socket of a listener that cannot listen on it, and keeps the running set', async () => {
    const h = harness({ failListen: '127.0.0.1:587' });
    await h.set.set([spec('127.0.0.1:25')]);
    await expect(h.set.set([spec('127.0.0.1:25'), spec('127.0.0.1:587')])).rejects.toMatchObject({ code: 'EBADF' });
    expect(h.set.names).toEqual(['127.0.0.1:25']);
    expect([...h.openFds]).toEqual([100]);
  });

  it('opens real sockets with SO_REUSEPORT, and with IP_FREEBIND only for a spec that asks (a DuraVIP)', async () => {
    const made: FakeListener[] = [];
    const log: string[] = [];
    const set = new SocketSet<Spec, FakeListener>({
      create: (s) => {
        const l = new FakeListener(s, log);
        made.push(l);
        return l;
      },
    });
    try {
      // TEST-NET-3: never on a real host.
      await expect(set.set([{ ...spec('203.0.113.9:2525') }])).rejects.toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
      await set.set([{ ...spec('203.0.113.9:2525'), freeBind: true }, spec('127.0.0.1:0')]);
      // The refused spec's listener was made first (the set makes the listener before its socket) and never got an fd.
      const listening = made.filter((l) => l.fd >= 0);
      expect(listening.map((l) => socketLocalAddress(l.fd).address)).toEqual(['203.0.113.9', '127.0.0.1']);
      // SO_REUSEPORT: a second socket of ours joins the first; one without it is refused.
      const { port } = socketLocalAddress(listening[1]!.fd);
      closeFd(listenTcp({ host: '127.0.0.1', port, reusePort: true }));
      expect(() => listenTcp({ host: '127.0.0.1', port })).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    } finally {
      for (const l of made) if (l.fd >= 0) closeFd(l.fd);
    }
  });

  it('runs overlapping reloads one after the other', async () => {
    const h = harness();
    const [a, b] = await Promise.all([h.set.set([spec('127.0.0.1:25')]), h.set.set([spec('127.0.0.1:25')])]);
    expect(a).toEqual(['127.0.0.1:25']);
    expect(b).toEqual(['127.0.0.1:25']);
    expect(h.made).toHaveLength(1);
  });

  it('drains every listener, retiring ones too with the shorter grace, sums what was cut, then opens nothing', async () => {
    const h = harness();
    await h.set.set([spec('127.0.0.1:25', { v: 1 }), spec('127.0.0.1:587')]);
    const retiring = h.live('127.0.0.1:25');
    await h.set.set([spec('127.0.0.1:25', { v: 2 }), spec('127.0.0.1:587')]);
    const drained = h.set.drain(1_000);
    await flush();
    expect(retiring.graces).toEqual([DRAIN_GRACE_MS, 1_000]);
    for (const l of h.made) expect(l.graces.at(-1)).toBe(1_000);
    h.made[0]!.finish(1);
    h.made[1]!.finish(0);
    h.made[2]!.finish(2);
    expect(await drained).toBe(3);
    expect(h.set.names).toEqual([]);
    expect(await h.set.set([spec('127.0.0.1:2525')])).toEqual([]);
    expect(h.made).toHaveLength(3);
  });
});

/** Lets promise callbacks that are already due run. */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
