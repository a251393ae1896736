// A real vipmta process: start on the built-in default and on a config file, the console, two
// workers serving one port through their own sockets, SIGTERM, SIGHUP and bad reloads.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cliPath, freePort, killAll, runCli, smtpConnect, startVipmta } from '../helpers/node-process.js';
import { tempDir } from '../helpers/tmp.js';

afterEach(killAll);

function configFor(port: number, extra = ''): string {
  return `# test node
Worker_Threads = 2
Log_Level = "info"
ESMTP_Listener {
  Listen "127.0.0.1:${port}" { }
}
Suspend_Delivery = true
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
${extra}`;
}

describe('vipmta start', () => {
  it('runs the built-in default: console on ./var/run, SMTP on 2525, HTTP admin API on 2081', async () => {
    // In a network namespace of its own: the fixed default ports (2525, 2081) cannot collide with
    // the host's services or another test run on the same machine.
    const node = startVipmta(null, { privateNetwork: true });
    await node.waitStarted();
    const v = await node.console('version');
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/^vipmta \d+\.\d+\.\d+ \(node v\d+/);
    const sock = path.join(node.cwd, 'var', 'run', 'vipmta.sock');
    const st = fs.statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    const { sock: s, greeting } = await smtpConnect(await node.forward(2525));
    expect(greeting).toMatch(/^220 /);
    s.destroy();
    // The HTTP admin API on loopback 2081.
    const h = await fetch(`http://127.0.0.1:${await node.forward(2081)}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok' });
  });

  it('serves one port from two workers, each through its own socket', async () => {
    const port = await freePort();
    const node = startVipmta(configFor(port));
    await node.waitStarted();
    // The kernel spreads connections over the SO_REUSEPORT sockets by a hash of the 4-tuple:
    // with 40 connections from distinct source ports, both workers are all but certain to get some.
    for (let i = 0; i < 40; i++) {
      const { sock, greeting } = await smtpConnect(port);
      expect(greeting).toMatch(/^220 /);
      sock.end('QUIT\r\n');
    }
    const w = await node.console('workers');
    expect(w.status).toBe(0);
    const rows = w.stdout.split('\n').filter((l) => /^\d+\s/.test(l));
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      const m = new RegExp(`127\\.0\\.0\\.1:${port}=(\\d+)`).exec(r);
      expect(m, `worker row without connections: ${r}`).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(0);
    }
  });

  it('exits 0 on SIGTERM and removes its control socket', async () => {
    const port = await freePort();
    const node = startVipmta(configFor(port));
    await node.waitStarted();
    node.signal('SIGTERM');
    const { code, signal } = await node.exited;
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(fs.existsSync(path.join(node.cwd, 'run', 'control.sock'))).toBe(false);
    expect(node.logs.some((r) => r.msg === 'vipmta stopped')).toBe(true);
  });

  it('tells an idle session 421 when it shuts down', async () => {
    const port = await freePort();
    const node = startVipmta(configFor(port));
    await node.waitStarted();
    const { sock } = await smtpConnect(port);
    const got = new Promise<string>((resolve) => {
      let buf = '';
      sock.on('data', (d) => (buf += d.toString()));
      sock.on('close', () => resolve(buf));
    });
    node.signal('SIGTERM');
    expect(await got).toMatch(/^421 4\.3\.2 /m);
    expect((await node.exited).code).toBe(0);
  });

  it('refuses to start with an invalid config and lists every error with file:line:column', async () => {
    const cwd = tempDir('vipmta-test-');
    const file = path.join(cwd, 'bad.conf');
    fs.writeFileSync(file, 'Worker_Thread = 2\nESMTP_Listener {\n  Listen "127.0.0.1:99999" { }\n}\n');
    const r = await runCli([cliPath, 'start', '-c', file], cwd);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("bad.conf:1:1:");
    expect(r.stderr).toContain('Worker_Threads');
    expect(r.stderr).toContain("bad.conf:3:10:");
  });

  it('fails to start, exit 1, when its port is taken by a socket without SO_REUSEPORT', async () => {
    const net = await import('node:net');
    const blocker = net.createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    try {
      const node = startVipmta(configFor(port));
      const { code } = await node.exited;
      expect(code).toBe(1);
      expect(node.stderr).toMatch(/EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });
});

describe('config reload', () => {
  it('keeps the running config when the new one is invalid, by console and by SIGHUP', async () => {
    const port = await freePort();
    const node = startVipmta(configFor(port));
    await node.waitStarted();
    const before = await node.console('config', 'show');
    expect(before.status).toBe(0);

    fs.writeFileSync(node.configFile!, configFor(port, 'Log_Levle = "debug"\n'));
    const r = await node.console('config', 'reload');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("vipmta.conf:10:1:");
    expect(r.stderr).toContain('keeping the running config');
    expect((await node.console('config', 'show')).stdout).toBe(before.stdout);

    node.signal('SIGHUP');
    await node.waitForLog((l) => l.msg === 'config reload failed; keeping the running config' && node.logs.filter((x) => x.msg === l.msg).length >= 2);
    const { greeting } = await smtpConnect(port);
    expect(greeting).toMatch(/^220 /);
    expect((await node.console('config', 'show')).stdout).toBe(before.stdout);
  });

  it('applies a valid reload: a new listener answers and a removed one stops', async () => {
    const port = await freePort();
    const port2 = await freePort();
    const node = startVipmta(configFor(port));
    await node.waitStarted();
    fs.writeFileSync(
      node.configFile!,
      configFor(port2).replace(`Listen "127.0.0.1:${port2}" { }`, `Listen "127.0.0.1:${port2}" { }`),
    );
    const r = await node.console('config', 'reload');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const { greeting, sock } = await smtpConnect(port2);
    expect(greeting).toMatch(/^220 /);
    sock.destroy();
    await expect(smtpConnect(port)).rejects.toThrow(/ECONNREFUSED/);
    expect((await node.console('config', 'show')).stdout).toContain(`127.0.0.1:${port2}`);
  });
});
