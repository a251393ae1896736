// A listening port is never shared with another program by accident (issue 12, section 3): a second
// vipmta, or any program holding the port (with or without SO_REUSEPORT), makes the start fail with
// a clear error; a reload that adds such a port, or an address that is neither on the host nor a
// DuraVIP, is refused whole and the running listeners keep serving. Real processes from dist/,
// loopback only, kernel-chosen ports.
import fs from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeFd, holdPort, listenTcp, socketLocalAddress } from '../../src/native/index.js';
import { freePort, killAll, smtpConnect, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';

afterEach(killAll);

function configFor(hostname: string, listens: string[], extra = ''): string {
  return `Worker_Threads = 2
Nodename = "${hostname}"
Hostname = "${hostname}.test"
ESMTP_Listener {
${listens.map((l) => `  Listen "${l}" { }`).join('\n')}
}
Suspend_Delivery = true
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
${extra}`;
}

/** Whether the node started or exited first; its exit code when it exited. */
async function outcome(n: VipmtaProcess): Promise<{ started: true } | { started: false; code: number | null }> {
  return Promise.race([
    n.waitStarted().then(() => ({ started: true as const }), () => new Promise<never>(() => undefined)),
    n.exited.then(({ code }) => ({ started: false as const, code })),
  ]);
}

/** The greeting of a new connection to port: which process took it. */
async function greetingOn(port: number): Promise<string> {
  const { sock, greeting } = await smtpConnect(port);
  sock.destroy();
  return greeting;
}

/** A plain program holding host:port (a net.Server, which sets SO_REUSEADDR but not SO_REUSEPORT). */
async function plainHolder(host = '127.0.0.1'): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((c) => c.end('220 holder.test not vipmta\r\n'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

async function reload(n: VipmtaProcess, config: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  fs.writeFileSync(n.configFile!, config);
  return n.console('config', 'reload');
}

describe('a port held by someone else', () => {
  it('a second vipmta on the same listener (or its wildcard) fails to start, and the first keeps every connection', async () => {
    const port = await freePort();
    const first = startVipmta(configFor('first', [`127.0.0.1:${port}`]));
    await first.waitStarted();
    for (const listen of [`127.0.0.1:${port}`, `0.0.0.0:${port}`]) {
      const second = startVipmta(configFor('second', [listen]));
      expect(await outcome(second)).toEqual({ started: false, code: 1 });
      expect(second.stderr).toContain(
        `ESMTP_Listener "${listen}" cannot listen on ${listen}: the port is in use by another vipmta (pid ${first.pid})`,
      );
    }
    // The kernel would have spread these over both processes' sockets had the second one joined.
    for (let i = 0; i < 16; i++) expect(await greetingOn(port)).toMatch(/^220 first\.test /);
  });

  it('a vipmta still starting (holding the port for its workers, not listening yet) makes a second one fail', async () => {
    // What a starting vipmta holds from its check until its workers listen: holdPort's guard.
    const port = await freePort();
    const guard = holdPort({ host: '127.0.0.1', port });
    try {
      const n = startVipmta(configFor('second', [`127.0.0.1:${port}`]));
      expect(await outcome(n)).toEqual({ started: false, code: 1 });
      expect(n.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use by another program (bound, not listening yet: a vipmta starting?) (EADDRINUSE)`);
    } finally {
      closeFd(guard);
    }
  });

  it('a plain program holding the port makes the start fail, naming it', async () => {
    const holder = await plainHolder();
    try {
      const n = startVipmta(configFor('n1', [`127.0.0.1:${holder.port}`]));
      expect(await outcome(n)).toEqual({ started: false, code: 1 });
      expect(n.stderr).toContain(`ESMTP_Listener "127.0.0.1:${holder.port}" cannot listen on 127.0.0.1:${holder.port}: the port is in use by another program (pid ${process.pid}`);
      expect(await greetingOn(holder.port)).toMatch(/^220 holder\.test/);
    } finally {
      await holder.close();
    }
  });

  it('a program holding the port with SO_REUSEPORT (which vipmta could silently join) makes the start fail', async () => {
    const fd = listenTcp({ host: '0.0.0.0', port: 0, reusePort: true });
    const { port } = socketLocalAddress(fd);
    try {
      const n = startVipmta(configFor('n1', [`127.0.0.1:${port}`]));
      expect(await outcome(n)).toEqual({ started: false, code: 1 });
      expect(n.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use by another program (pid ${process.pid}`);
    } finally {
      closeFd(fd);
    }
  });

  it('an ECCluster_Listener on a held port makes the start fail too', async () => {
    const holder = await plainHolder();
    try {
      const n = startVipmta(configFor('n1', [`127.0.0.1:${await freePort()}`], `ECCluster_Listener { Listen "127.0.0.1:${holder.port}" { } }\n`));
      expect(await outcome(n)).toEqual({ started: false, code: 1 });
      expect(n.stderr).toContain(`ECCluster_Listener "127.0.0.1:${holder.port}" cannot listen on 127.0.0.1:${holder.port}: the port is in use by another program`);
    } finally {
      await holder.close();
    }
  });

  it('an address that is not on this host and not a DuraVIP makes the start fail', async () => {
    const n = startVipmta(configFor('n1', [`192.0.2.1:${await freePort()}`]));
    expect(await outcome(n)).toEqual({ started: false, code: 1 });
    expect(n.stderr).toMatch(/ESMTP_Listener "192\.0\.2\.1:\d+" cannot listen on 192\.0\.2\.1:\d+: the address is not on this host and not a DuraVIP/);
  });
});

describe('a reload adding a port held by someone else, or an address not on the host', () => {
  it('is refused whole with the error in the reply and the log, and the running listener still serves', async () => {
    const port = await freePort();
    const running = configFor('n1', [`127.0.0.1:${port}`]);
    const n = startVipmta(running);
    await n.waitStarted();
    const holder = await plainHolder();
    try {
      const free = await freePort();
      const cases: [string, string][] = [
        [configFor('n1', [`127.0.0.1:${port}`, `127.0.0.1:${free}`, `127.0.0.1:${holder.port}`]), `ESMTP_Listener "127.0.0.1:${holder.port}" cannot listen on 127.0.0.1:${holder.port}: the port is in use by another program (pid ${process.pid}`],
        [configFor('n1', [`127.0.0.1:${port}`, `192.0.2.1:${port}`]), `ESMTP_Listener "192.0.2.1:${port}" cannot listen on 192.0.2.1:${port}: the address is not on this host and not a DuraVIP`],
        [configFor('n1', [`127.0.0.1:${port}`], `ECCluster_Listener { Listen "127.0.0.1:${holder.port}" { } }\n`), `ECCluster_Listener "127.0.0.1:${holder.port}" cannot listen on 127.0.0.1:${holder.port}: the port is in use by another program`],
      ];
      for (const [config, why] of cases) {
        const r = await reload(n, config);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain('config reload failed; keeping the running config');
        expect(r.stderr).toContain(why);
        await n.waitForLog((l) => l.level === 'error' && l.msg === 'config reload failed; keeping the running config' && JSON.stringify(l).includes(why.replace(/"/g, '\\"')));
        expect(await greetingOn(port)).toMatch(/^220 n1\.test /);
        // Nothing of the refused config was opened: not the free port that came with it either.
        await expect(greetingOn(free)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
        expect(await greetingOn(holder.port)).toMatch(/^220 holder\.test/);
      }
      // A wildcard next to our own specific listener is ours to share, and the reload still works.
      const r = await reload(n, configFor('n1', [`127.0.0.1:${port}`, `0.0.0.0:${free}`]));
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(await greetingOn(free)).toMatch(/^220 n1\.test /);
      const both = await reload(n, configFor('n1', [`127.0.0.1:${port}`, `0.0.0.0:${port}`]));
      expect(both.stderr).toBe('');
      expect(both.status).toBe(0);
    } finally {
      await holder.close();
    }
  });
});
