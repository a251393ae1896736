// The corosync.conf that `vipmta cluster corosync-conf` writes brings up a real cluster: three lab
// hosts, one vipmta config each (the same Node list, the lab's addresses as Cluster_Address), the
// authkey made on the first and copied to the others, corosync started from the generated file
// (plus the lab's private state directory and logs) in each host's namespace, and votequorum
// quorate with all three. The --ipc-user may use corosync's IPC and another user may not; a host
// with another key is kept out (the crypto is in use).
// Main test thread; waits on the CLI, corosync-quorumtool and corosync-cmapctl child processes.
import { copyFileSync, chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, runCli } from '../helpers/node-process.js';
import { ClusterLab, waitFor, type LabHost } from './harness.js';

let lab: ClusterLab;
let hosts: [LabHost, LabHost, LabHost];

beforeAll(async () => {
  lab = await ClusterLab.create({ nodes: 3 });
  hosts = lab.hosts as [LabHost, LabHost, LabHost];
}, 60_000);

afterAll(async () => {
  await lab?.destroy();
});

/** One node's vipmta config: the same Node list everywhere, its own Nodename. */
function vipmtaConfig(me: LabHost): string {
  return `Nodename = "${me.name}"
Cluster {
  Cluster_Name = "lab-${lab.id}"
  # ANCHORS.md: below 500 ms these shared machines see spurious view changes.
  Corosync_Token = 500ms
${hosts.map((h) => `  Node "${h.name}" { Cluster_Address = ${h.address} }`).join('\n')}
}
`;
}

/** What the lab changes in a generated file: the per-host state directory, logs on stderr, no blackbox (harness.ts). */
function labOverrides(h: LabHost): string {
  return `
# Lab only: corosync reads the later value of a key, so these replace the generated logging.
system {
  state_dir: ${path.join(h.dir, 'state')}
  sched_rr: no
}
logging {
  to_syslog: no
  to_logfile: no
  to_stderr: yes
  blackbox: off
}
`;
}

/** Runs `vipmta cluster corosync-conf` on a host's config, as an operator on that node would. */
async function generate(h: LabHost, authkey: string, ipcUser = 'nobody'): Promise<{ text: string; stderr: string }> {
  writeFileSync(path.join(h.dir, 'vipmta.conf'), vipmtaConfig(h));
  const out = path.join(h.dir, 'corosync.generated.conf');
  const r = await runCli([cliPath, 'cluster', 'corosync-conf', '-c', 'vipmta.conf', '--authkey', authkey, '--output', out, '--ipc-user', ipcUser], h.dir);
  expect(r.status, r.stderr).toBe(0);
  return { text: readFileSync(out, 'utf8'), stderr: r.stderr };
}

function cmap(h: LabHost, key: string): string {
  // "totem.crypto_cipher (str) = aes256"
  const line = lab.exec(h, ['corosync-cmapctl', '-g', key]).trim();
  return line.replace(/^[^=]*= /, '');
}

describe('vipmta cluster corosync-conf in the lab', () => {
  it('brings up a quorate three-node corosync with knet crypto from one vipmta config per node', async () => {
    const texts: string[] = [];
    for (const [i, h] of hosts.entries()) {
      const key = path.join(h.dir, 'authkey');
      if (i > 0) {
        // The operator copies the first node's key before running the command on the others.
        copyFileSync(path.join(hosts[0].dir, 'authkey'), key);
        chmodSync(key, 0o400);
      }
      const g = await generate(h, key);
      expect(g.stderr).toMatch(i === 0 ? /created authkey/ : /using the existing authkey/);
      texts.push(g.text);
    }
    // Only the keyfile's path (a per-host directory here) differs between the nodes' files.
    const norm = (t: string): string => t.replace(/keyfile: .*/, 'keyfile: K').replace(/ from .*vipmta\.conf\./, '');
    expect(norm(texts[1]!)).toBe(norm(texts[0]!));
    expect(norm(texts[2]!)).toBe(norm(texts[0]!));

    for (const [i, h] of hosts.entries()) lab.startCorosync(h, texts[i]! + labOverrides(h));
    await lab.waitQuorate(hosts, true, { members: [1, 2, 3], timeoutMs: 30_000 });

    for (const h of hosts) {
      const s = await lab.quorumStatus(h);
      expect(s).toEqual({ quorate: true, members: [1, 2, 3] });
    }
    const [n1] = hosts;
    expect(cmap(n1, 'totem.crypto_cipher')).toBe('aes256');
    expect(cmap(n1, 'totem.crypto_hash')).toBe('sha256');
    expect(cmap(n1, 'totem.keyfile')).toBe(path.join(n1.dir, 'authkey'));
    expect(cmap(n1, 'totem.cluster_name')).toBe(`lab-${lab.id}`);
    expect(cmap(n1, 'runtime.config.totem.token')).toBe('500'); // token_coefficient 0: no addition for the third node
    expect(cmap(n1, 'logging.to_logfile')).toBe('no'); // the lab's override took, nothing went to /var/log
    expect(lab.exec(n1, ['corosync-quorumtool', '-s'])).toMatch(/Quorate:\s+Yes/);
  }, 90_000);

  it('lets the --ipc-user (as packaging/vipmta.service runs vipmta) use corosync\'s IPC, and no other user', async () => {
    const [n1] = hosts;
    // `nobody` stands in for the unit's `vipmta` user, which this machine does not have.
    const as = (user: string, group: string): Promise<{ stdout: string; code: number }> =>
      lab.execAsync(n1, ['setpriv', `--reuid=${user}`, `--regid=${group}`, '--clear-groups', 'corosync-quorumtool', '-s']);
    const allowed = await as('nobody', 'nogroup');
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/Quorate:\s+Yes/);
    const refused = await as('daemon', 'daemon');
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).not.toMatch(/Quorate:/);
  }, 30_000);

  it('keeps a node with another authkey out of the membership', async () => {
    const [n1, n2, n3] = hosts;
    await lab.killCorosync(n3);
    await lab.waitQuorate([n1, n2], true, { members: [1, 2], timeoutMs: 30_000 });
    const other = path.join(n3.dir, 'other-authkey');
    const g = await generate(n3, other);
    expect(g.stderr).toMatch(/created authkey/);
    const n1Log = path.join(n1.dir, 'corosync.log');
    const before = readFileSync(n1Log, 'utf8').length;
    lab.startCorosync(n3, g.text + labOverrides(n3));
    // Proof that n3's packets reach n1 and are refused there (knet: "nsscrypto: Digest does not
    // match", "rx: Unable to decrypt packet from ADDRESS"), not merely that n3 is slow to join.
    await waitFor('n1 refusing packets from n3', () => readFileSync(n1Log, 'utf8').slice(before).includes(`Unable to decrypt packet from ${n3.address}:`), { timeoutMs: 20_000 });
    await waitFor('n3 corosync answering', async () => (await lab.quorumStatus(n3)) !== null, { timeoutMs: 20_000 });
    expect(await lab.quorumStatus(n3)).toEqual({ quorate: false, members: [3] });
    expect(await lab.quorumStatus(n1)).toEqual({ quorate: true, members: [1, 2] });
    expect(await lab.quorumStatus(n2)).toEqual({ quorate: true, members: [1, 2] });
  }, 90_000);
});
