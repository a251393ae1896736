// The vipmta command line as an operator uses it: check-config, console errors, usage, exit codes.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliPath, runCli } from '../helpers/node-process.js';
import { tempDir } from '../helpers/tmp.js';

function tmp(): string {
  return tempDir('vipmta-cli-');
}

describe('vipmta check-config', () => {
  it('accepts a valid multi-file config, exit 0, and creates nothing', async () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, 'conf.d'));
    fs.writeFileSync(path.join(dir, 'conf.d', 'b.conf'), 'Binding "b" { Bind_Address = 198.51.100.7 }\n');
    fs.writeFileSync(path.join(dir, 'main.conf'), 'ESMTP_Listener { Listen "198.51.100.9:25" { } }\nSpool { Directory = "./spool" }\ninclude "conf.d"\n');
    const r = await runCli([cliPath, 'check-config', '-c', 'main.conf'], dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/configuration is valid \(2 file\(s\) and the shipped shaping rules\)/);
    expect(fs.readdirSync(dir).sort()).toEqual(['conf.d', 'main.conf']);
  });

  it('lists every error with file:line:column and suggests the misspelled option, exit 1', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'main.conf'), 'Log_Levle = "debug"\nSpool {\n  Segment_Size = lots\n}\n');
    const r = await runCli([cliPath, 'check-config', '-c', 'main.conf'], dir);
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^main\.conf:1:1: unknown option "Log_Levle".*did you mean "Log_Level"\?/);
    expect(lines[1]).toMatch(/^main\.conf:3:18: /);
    expect(lines.at(-1)).toBe('2 error(s)');
  });

  it('prints what a valid config exposes as located warnings on stderr, still exit 0', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'main.conf'), 'ESMTP_Listener {\n  Relay_Hosts = ( "0.0.0.0/0" )\n  Listen "127.0.0.1:2525" { }\n}\nHttp_Listener {\n  Listen "0.0.0.0:2081" { }\n}\n');
    const r = await runCli([cliPath, 'check-config', '-c', 'main.conf'], dir);
    expect(r.status).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^main\.conf:2:3: warning: Relay_Hosts .* "0\.0\.0\.0\/0": an open relay/);
    expect(lines[1]).toMatch(/^main\.conf:6:3: warning: Http_Listener Listen "0\.0\.0\.0:2081" serves the admin API on every interface/);
    expect(r.stdout).toMatch(/configuration is valid \(1 file\(s\) and the shipped shaping rules, 2 warning\(s\)\)/);
  });

  it('checks the built-in default without -c', async () => {
    const r = await runCli([cliPath, 'check-config'], tmp());
    expect(r.status).toBe(0);
  });
});

describe('vipmta console', () => {
  it('without -s or -c, says which default socket paths it tried', async () => {
    const dir = tmp();
    const r = await runCli([cliPath, 'console', 'version'], dir);
    expect(r.status).toBe(1);
    const packageDir = path.resolve(path.dirname(cliPath), '..'); // bin/vipmta.js's checkout
    expect(r.stderr).toBe(`vipmta: no control socket found; tried ${path.join(dir, 'var/run/vipmta.sock')}, ${path.join(packageDir, 'var/run/vipmta.sock')}; pass -s SOCKET or -c FILE\n`);
  });

  it('without -s or -c, uses the built-in default socket under the working directory', async () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, 'var', 'run'), { recursive: true });
    // A stand-in node: answers one console command as the control socket does.
    const server = net.createServer((c) => {
      c.once('data', (d) => c.end(JSON.stringify({ ok: true, output: `got ${JSON.parse(d.toString()).argv.join(' ')}\n` })));
    });
    await new Promise<void>((r) => server.listen(path.join(dir, 'var', 'run', 'vipmta.sock'), r));
    try {
      const r = await runCli([cliPath, 'console', 'version'], dir);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('got version\n');
    } finally {
      server.close();
    }
  });

  it('exits 1 with a clear message when no node answers', async () => {
    const r = await runCli([cliPath, 'console', '-s', path.join(tmp(), 'none.sock'), 'version'], tmp());
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot reach the control socket .*none\.sock/);
  });
});

describe('vipmta usage', () => {
  it('exits 2 on an unknown command or flag', async () => {
    expect((await runCli([cliPath, 'frobnicate'], tmp())).status).toBe(2);
    expect((await runCli([cliPath, 'start', '--bogus'], tmp())).status).toBe(2);
  });
});
