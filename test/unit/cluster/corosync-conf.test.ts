// The corosync.conf written from a vipmta config (src/cluster/corosync-conf.ts): golden files for
// one, two and three nodes and for IPv6 (test/fixtures/corosync-conf/), the settings taken from the
// Cluster options, and the errors. Set UPDATE_GOLDEN=1 to rewrite the golden files after a
// deliberate change (and read the diff). Pure: config text in, text out.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { corosyncConf } from '../../../src/cluster/corosync-conf.js';
import { formatConfigError, loadConfigText, type Config } from '../../../src/config/index.js';
import { ErrorCode } from '../../../src/errors.js';

const GOLDEN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/corosync-conf');
const KEY = '/etc/corosync/authkey';

function config(text: string): Config {
  const r = loadConfigText(text, 'vipmta.conf', { cwd: '/srv' });
  if (!r.ok) throw new Error(r.errors.map(formatConfigError).join('\n'));
  return r.config;
}
function nodes(n: number, address = (i: number): string => `198.51.100.${10 + i}`): string {
  return Array.from({ length: n }, (_, i) => `  Node "mta${i + 1}" { Cluster_Address = ${address(i + 1)} }`).join('\n');
}
function golden(name: string, text: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
  expect(text).toBe(readFileSync(file, 'utf8'));
}

describe('corosyncConf golden files', () => {
  it('one node: quorate alone', () => {
    golden('one-node.conf', corosyncConf(config(`Nodename = "mta1"\nCluster {\n${nodes(1)}\n}`), { keyfile: KEY, source: '/etc/vipmta/vipmta.conf' }));
  });
  it('two nodes: two_node', () => {
    golden('two-nodes.conf', corosyncConf(config(`Nodename = "mta1"\nCluster {\n${nodes(2)}\n}`), { keyfile: KEY, source: '/etc/vipmta/vipmta.conf' }));
  });
  it('three nodes: majority, the IPC user of the systemd unit', () => {
    golden('three-nodes.conf', corosyncConf(config(`Nodename = "mta2"\nCluster {\n${nodes(3)}\n}`), { keyfile: KEY, source: '/etc/vipmta/vipmta.conf', ipcUser: 'vipmta' }));
  });
  it('IPv6, with the Cluster options (name, token, coefficient) and a Node_Id', () => {
    const text = corosyncConf(config(`Nodename = "mta1"
Cluster {
  Cluster_Name = "mail-eu1"
  Corosync_Token = 500ms
  Corosync_Token_Coefficient = 100ms
  Node "mta1" { Cluster_Address = 2001:DB8:5::11 }
  Node "mta2" { Cluster_Address = 2001:db8:5:0::12 }
  Node "mta3" { Cluster_Address = 2001:db8:5::13  Node_Id = 9 }
  Node "mta4" { Cluster_Address = 2001:db8:5::14 }
}`), { keyfile: '/etc/corosync/mail-eu1.key' });
    golden('ipv6.conf', text);
  });
});

describe('corosyncConf', () => {
  it('is the same text whichever node writes it (corosync finds its own entry by address)', () => {
    const on = (me: string): string => corosyncConf(config(`Nodename = "${me}"\nCluster {\n${nodes(3)}\n}`), { keyfile: KEY });
    expect(on('mta1')).toBe(on('mta3'));
  });

  it('says how long detection takes with the coefficient applied from three nodes on', () => {
    const c = (n: number): string => corosyncConf(config(`Nodename = "mta1"\nCluster {\n  Corosync_Token = 500ms\n  Corosync_Token_Coefficient = 250ms\n${nodes(n)}\n}`), { keyfile: KEY });
    expect(c(2)).toContain('about 1.1 s here');
    expect(c(4)).toContain('about 2.2 s here'); // (500 + 2 x 250) x 2.2
  });

  it('refuses a config without a Cluster or without Nodes, a relative key path, a bad IPC user', () => {
    const fails = (cfg: Config, opts: Parameters<typeof corosyncConf>[1]): { code: string; message: string } => {
      try {
        corosyncConf(cfg, opts);
      } catch (e) {
        return { code: (e as { code: string }).code, message: (e as Error).message };
      }
      throw new Error('expected an error');
    };
    expect(fails(config('Nodename = "a"'), { keyfile: KEY })).toEqual({
      code: ErrorCode.COROSYNC_CONF, message: 'the config has no Cluster stanza; expected Cluster { Node "name" { Cluster_Address = IP } ... } listing every node',
    });
    expect(fails(config('Nodename = "a"\nCluster { }'), { keyfile: KEY }).message).toBe(
      'the Cluster stanza lists no Node; expected Node "name" { Cluster_Address = IP } for every node of the cluster (the same list on every node)');
    const three = config(`Nodename = "mta1"\nCluster {\n${nodes(3)}\n}`);
    expect(fails(three, { keyfile: 'authkey' })).toEqual({
      code: ErrorCode.COROSYNC_CONF, message: 'the authkey path must be absolute (corosync reads it from its own working directory), got "authkey"',
    });
    expect(fails(three, { keyfile: KEY, ipcUser: 'vip mta' }).message).toBe('the IPC user must be a login name, got "vip mta"');
  });
});
