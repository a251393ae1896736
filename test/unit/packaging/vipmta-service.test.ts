// packaging/vipmta.service: after corosync (wanted, not required), an unprivileged user with exactly
// the capabilities vipmta needs (CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE) and no way to
// gain more, and the ExecStopPost that removes leftover DuraVIPs. Reads the file; no systemd needed.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const text = readFileSync(path.join(root, 'packaging/vipmta.service'), 'utf8');

/** Every `Key=value` of the unit, in order, per key (systemd allows some keys several times). */
function entries(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m === null) continue;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}
const words = (key: string): string[] => (entries().get(key) ?? []).flatMap((v) => v.split(/\s+/)).filter(Boolean);
const one = (key: string): string | undefined => entries().get(key)?.at(-1);

const NEEDED = ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW'];

describe('packaging/vipmta.service', () => {
  it('starts after corosync, which it wants but does not require', () => {
    expect(words('After')).toContain('corosync.service');
    expect(words('Wants')).toContain('corosync.service');
    expect(words('Requires')).not.toContain('corosync.service');
    expect(words('BindsTo')).not.toContain('corosync.service');
  });

  it('runs as its own user with exactly the capabilities it needs, and cannot gain others', () => {
    expect(one('User')).toBe('vipmta');
    expect(words('CapabilityBoundingSet').sort()).toEqual(NEEDED);
    expect(words('AmbientCapabilities').sort()).toEqual(NEEDED);
    expect(one('NoNewPrivileges')).toBe('yes');
    // The families vipmta's sockets use: console and corosync IPC, TCP, rtnetlink, raw ARP frames.
    expect(words('RestrictAddressFamilies').sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET', 'AF_UNIX']);
  });

  it('gives the user its spool and console directories, and removes leftover DuraVIPs after a stop', () => {
    expect(one('StateDirectory')).toBe('vipmta');
    expect(one('RuntimeDirectory')).toBe('vipmta');
    const start = one('ExecStart')!;
    const config = /-c (\S+)/.exec(start)?.[1];
    expect(config).toBeDefined();
    expect(one('ExecStopPost')).toBe(start.replace(/ start -c /, ' release-addresses -c '));
    expect(one('KillMode')).toBe('control-group');
  });

  it('is the user docs/cluster.md lets use corosync\'s IPC', () => {
    const docs = readFileSync(path.join(root, 'docs/cluster.md'), 'utf8');
    expect(docs).toContain(`vipmta cluster corosync-conf -c /etc/vipmta/vipmta.conf --ipc-user ${one('User')!}`);
  });
});
