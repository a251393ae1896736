// The corosync.conf of a vipmta cluster, written from its vipmta config (`vipmta cluster
// corosync-conf`): knet with crypto keyed from the authkey, the nodelist from the Cluster's Node
// stanzas, votequorum, the token settings docs/cluster.md recommends, logging to syslog and a file.
// Pure: config in, text out (the CLI, src/cli/corosync-conf.ts, does the files); any thread.

import { clusterMembers, type ClusterMember } from '../config/cluster-nodes.js';
import type { Config } from '../config/index.js';
import { ErrorCode, VipError } from '../errors.js';

export interface CorosyncConfOptions {
  /** Absolute path of the shared key (totem.keyfile): corosync-keygen's format, the same on every node. */
  keyfile: string;
  /** The vipmta config it is written from, named in the header comment. */
  source?: string;
  /**
   * A local user that may use corosync's IPC besides root (a `uidgid` section): the user vipmta runs
   * as under packaging/vipmta.service. Corosync refuses to start when the user does not exist.
   */
  ipcUser?: string | null;
}

/** What `uidgid.uid` may name: a login name as useradd(8) takes it. */
const USER = /^[a-z_][a-z0-9_-]*\$?$/;

/**
 * corosync.conf(5) text for the cluster `config` describes. The same on every node for the same
 * Node list (nothing in it depends on the node it is written on: corosync finds its own entry by
 * address), so it may as well be copied. Throws VipError ERR_COROSYNC_CONF when the config has no
 * Cluster stanza or no Node in it. The config must have loaded (its Node list is checked then).
 */
export function corosyncConf(config: Pick<Config, 'cluster'>, opts: CorosyncConfOptions): string {
  const cluster = config.cluster;
  if (cluster === null) {
    throw new VipError(ErrorCode.COROSYNC_CONF, 'the config has no Cluster stanza; expected Cluster { Node "name" { Cluster_Address = IP } ... } listing every node');
  }
  const members = clusterMembers(cluster);
  if (members.length === 0) {
    throw new VipError(ErrorCode.COROSYNC_CONF, 'the Cluster stanza lists no Node; expected Node "name" { Cluster_Address = IP } for every node of the cluster (the same list on every node)');
  }
  if (!opts.keyfile.startsWith('/')) {
    throw new VipError(ErrorCode.COROSYNC_CONF, `the authkey path must be absolute (corosync reads it from its own working directory), got "${opts.keyfile}"`);
  }
  const ipcUser = opts.ipcUser ?? null;
  if (ipcUser !== null && !USER.test(ipcUser)) {
    throw new VipError(ErrorCode.COROSYNC_CONF, `the IPC user must be a login name, got "${ipcUser}"`);
  }
  const o = cluster.options;
  const token = o.Corosync_Token;
  const coefficient = o.Corosync_Token_Coefficient;
  // corosync.conf(5): token_coefficient applies from three nodes on; consensus defaults to 1.2 x token.
  const effective = token + (members.length >= 3 ? (members.length - 2) * coefficient : 0);
  const detect = (effective * 2.2) / 1000;
  const out: string[] = [
    `# corosync.conf for the vipmta cluster "${o.Cluster_Name}", written by \`vipmta cluster corosync-conf\`${opts.source === undefined ? '' : ` from ${opts.source}`}.`,
    '# The same on every node: write it on each from the same Node list (or copy it), and give every',
    '# node the same authkey. Edit the vipmta config and write it again rather than editing it here.',
    'totem {',
    '  version: 2',
    `  cluster_name: ${o.Cluster_Name}`,
    '  transport: knet',
    `  ip_version: ${members[0]!.family === 6 ? 'ipv6' : 'ipv4'}`,
    `  # A dead node is seen after the token timeout plus consensus (1.2 x token): about ${detect.toFixed(1)} s here.`,
    `  token: ${token}`,
    `  token_coefficient: ${coefficient}`,
    '  crypto_cipher: aes256',
    '  crypto_hash: sha256',
    `  keyfile: ${opts.keyfile}`,
    '}',
    '',
    'nodelist {',
    ...members.flatMap(node),
    '}',
    '',
    'quorum {',
    // Only a quorate partition owns DuraVIPs (docs/cluster.md).
    '  provider: corosync_votequorum',
    ...(members.length === 2
      ? ['  # Two nodes: one alone stays quorate, once both have been seen together (two_node implies wait_for_all).', '  two_node: 1']
      : []),
    '}',
    '',
    'logging {',
    '  to_syslog: yes',
    '  syslog_facility: daemon',
    '  to_logfile: yes',
    '  logfile: /var/log/corosync/corosync.log',
    // Debian's corosync.service sends stderr to /dev/null; by hand (`corosync -t`) errors show there.
    '  to_stderr: yes',
    '  timestamp: on',
    '}',
  ];
  if (ipcUser !== null) {
    out.push('', `# vipmta runs as ${ipcUser} (packaging/vipmta.service): let it use corosync's IPC (CPG, votequorum).`, 'uidgid {', `  uid: ${ipcUser}`, '}');
  }
  return out.join('\n') + '\n';
}

function node(m: ClusterMember): string[] {
  return ['  node {', `    name: ${m.name}`, `    nodeid: ${m.nodeId}`, `    ring0_addr: ${m.address}`, '  }'];
}
