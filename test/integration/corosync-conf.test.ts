// `vipmta cluster corosync-conf` as an operator runs it: the corosync.conf on stdout or in --output,
// the authkey created once (256 random bytes, mode 0400) and never overwritten, and the failures
// (config errors, no Node list, a bad key, usage) with their exit status and stable codes.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliPath, runCli } from '../helpers/node-process.js';
import { tempDir } from '../helpers/tmp.js';

const CONFIG = `Nodename = "mta2"
Cluster {
  Node "mta1" { Cluster_Address = 198.51.100.11 }
  Node "mta2" { Cluster_Address = 198.51.100.12 }
  Node "mta3" { Cluster_Address = 198.51.100.13 }
}
`;

function setup(config = CONFIG): string {
  const dir = tempDir('vipmta-corosync-conf-');
  fs.writeFileSync(path.join(dir, 'vipmta.conf'), config);
  return dir;
}

describe('vipmta cluster corosync-conf', () => {
  it('creates the authkey once, writes --output, and prints the same text without it', async () => {
    const dir = setup();
    const key = path.join(dir, 'authkey');
    const r = await runCli([cliPath, 'cluster', 'corosync-conf', '-c', 'vipmta.conf', '--authkey', 'authkey', '--output', 'corosync.conf'], dir);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`vipmta: created authkey ${key} (256 random bytes, mode 0400): copy it to every other node (the same key everywhere) before starting corosync there\nvipmta: wrote corosync.conf\n`);
    const st = fs.statSync(key);
    expect(st.size).toBe(256);
    expect(st.mode & 0o777).toBe(0o400);
    const written = fs.readFileSync(path.join(dir, 'corosync.conf'), 'utf8');
    expect(written).toContain(`  keyfile: ${key}\n`);
    expect(written).toContain('  node {\n    name: mta3\n    nodeid: 3\n    ring0_addr: 198.51.100.13\n  }');
    expect(written).toContain(`written by \`vipmta cluster corosync-conf\` from ${path.join(dir, 'vipmta.conf')}.`);
    const keyBytes = fs.readFileSync(key);

    const again = await runCli([cliPath, 'cluster', 'corosync-conf', '-c', 'vipmta.conf', '--authkey', key], dir);
    expect(again.status).toBe(0);
    expect(again.stderr).toBe(`vipmta: using the existing authkey ${key}\n`);
    expect(again.stdout).toBe(written);
    expect(fs.readFileSync(key).equals(keyBytes)).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(['authkey', 'corosync.conf', 'vipmta.conf']);
  });

  it('two runs make different keys (random, not derived from the config)', async () => {
    const a = setup();
    const b = setup();
    for (const dir of [a, b]) expect((await runCli([cliPath, 'cluster', 'corosync-conf', '-c', 'vipmta.conf', '--authkey', 'k'], dir)).status).toBe(0);
    expect(fs.readFileSync(path.join(a, 'k')).equals(fs.readFileSync(path.join(b, 'k')))).toBe(false);
  });

  it('leaves a key of the wrong size alone and fails with ERR_AUTHKEY', async () => {
    const dir = setup();
    fs.writeFileSync(path.join(dir, 'authkey'), 'short');
    const r = await runCli([cliPath, 'cluster', 'corosync-conf', '-c', 'vipmta.conf', '--authkey', 'authkey', '-o', 'corosync.conf'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`vipmta: ERR_AUTHKEY: authkey ${path.join(dir, 'authkey')} has 5 bytes; corosync takes 128 to 4096 (corosync-keygen writes 256); it is left as it is\n`);
    expect(fs.readFileSync(path.join(dir, 'authkey'), 'utf8')).toBe('short');
    expect(fs.existsSync(path.join(dir, 'corosync.conf'))).toBe(false);
  });

  it('says when the key\'s directory is missing (corosync not installed)', async () => {
    const dir = setup();
    const r = await runCli([cliPath, 'cluster', 'corosync-conf', '-c', 'vipmta.conf', '--authkey', 'nodir/authkey'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vipmta: ERR_AUTHKEY: cannot create authkey .*nodir\/authkey: ENOENT.* \(its directory .*nodir does not exist: is corosync installed\?\)\n$/);
    expect(r.stdout).toBe('');
  });

  it('reports config errors with file:line:column and creates no key', async () => {
    const dir = setup(CONFIG.replace('Node "mta3" { Cluster_Address = 198.51.100.13 }', 'Node "mta3" { Cluster_Address = 198.51.100.12 }'));
    const r = await runCli([cliPath, 'cluster', 'corosync-conf', '-c', 'vipmta.conf', '--authkey', 'authkey'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('vipmta.conf:5:17: Node "mta3" has Cluster_Address 198.51.100.12, which Node "mta2" (at 4:3) has already; each node needs its own\n1 error(s)\n');
    expect(fs.existsSync(path.join(dir, 'authkey'))).toBe(false);
  });

  it('needs a Node list: ERR_COROSYNC_CONF, no key', async () => {
    const dir = setup('Nodename = "mta1"\nCluster { }\n');
    const r = await runCli([cliPath, 'cluster', 'corosync-conf', '-c', 'vipmta.conf', '--authkey', 'authkey'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vipmta: ERR_COROSYNC_CONF: the Cluster stanza lists no Node; /);
    expect(fs.existsSync(path.join(dir, 'authkey'))).toBe(false);
  });

  it('usage errors exit 2: no -c, an unknown option or cluster command', async () => {
    const dir = setup();
    const noConfig = await runCli([cliPath, 'cluster', 'corosync-conf'], dir);
    expect(noConfig.status).toBe(2);
    expect(noConfig.stderr).toMatch(/^vipmta: cluster corosync-conf needs -c FILE/);
    expect((await runCli([cliPath, 'cluster', 'corosync-conf', '-c', 'vipmta.conf', '--authky', 'x'], dir)).status).toBe(2);
    const unknown = await runCli([cliPath, 'cluster', 'membership'], dir);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^vipmta: unknown cluster command "membership" \(a running node's cluster commands are `vipmta console cluster \.\.\.`\)\nusage:/);
    expect(fs.readdirSync(dir)).toEqual(['vipmta.conf']);
  });
});
