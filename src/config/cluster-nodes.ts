// The cluster's member list (Cluster / Node "name" { Cluster_Address = IP }): each Node's effective
// corosync nodeid and canonical ring address, and the checks the config loader (index.ts) runs on it,
// each located at file:line:column. `vipmta cluster corosync-conf` writes corosync's nodelist from
// clusterMembers(). Pure (no I/O); main thread, at load and reload.

import { addressBits, canonicalAddress } from '../net/address.js';
import type { ClusterConfig, ClusterNodeConfig, Config } from './types.js';
import { at, type ConfigError } from './errors.js';
import { OPTIONS } from './schema.js';

/** One member as corosync's nodelist takes it. */
export interface ClusterMember {
  readonly name: string;
  /** Node_Id, else the Node's 1-based position in the list. */
  readonly nodeId: number;
  /** Cluster_Address in canonical form (RFC 5952 for IPv6). */
  readonly address: string;
  readonly family: 4 | 6;
}

/** The members in configuration order; a Node without a usable address is left out (an error says why). */
export function clusterMembers(cluster: Pick<ClusterConfig, 'nodes'>): ClusterMember[] {
  const out: ClusterMember[] = [];
  cluster.nodes.forEach((n, i) => {
    const a = usableAddress(n);
    if (a !== null) out.push({ name: n.name, nodeId: n.options.Node_Id ?? i + 1, address: a.address, family: a.family });
  });
  return out;
}

/** A specific unicast address (no wildcard, multicast or zone id: corosync binds and sends to it). */
function usableAddress(n: ClusterNodeConfig): { address: string; family: 4 | 6 } | null {
  const written = n.options.Cluster_Address;
  if (written === undefined) return null;
  const address = canonicalAddress(written);
  const bits = address === null ? null : addressBits(address);
  if (address === null || bits === null) return null;
  if (bits.n === 0n) return null;
  if (bits.family === 4 && bits.n >> 28n === 0xen) return null;
  if (bits.family === 6 && bits.n >> 120n === 0xffn) return null;
  return { address, family: bits.family };
}

const NODENAME = OPTIONS.Nodename.type.pattern;

/**
 * Errors in the Node list: a name that is not a node name, a missing or unusable Cluster_Address,
 * two Nodes with one address (or names differing only in case, or one nodeid), addresses of both
 * families (a corosync link carries one), and a Nodename that is not in the list (this node would
 * not be a member of the corosync.conf written from it). No Node stanza: no check (the list is
 * needed only for `vipmta cluster corosync-conf`).
 */
export function clusterNodeErrors(config: Pick<Config, 'cluster' | 'global'>): ConfigError[] {
  const cluster = config.cluster;
  if (cluster === null || cluster.nodes.length === 0) return [];
  const errors: ConfigError[] = [];
  const byName = new Map<string, ClusterNodeConfig>();
  const byAddress = new Map<string, ClusterNodeConfig>();
  const byId = new Map<number, ClusterNodeConfig>();
  let firstFamily: { family: 4 | 6; node: ClusterNodeConfig } | null = null;
  const place = (n: ClusterNodeConfig, w = n.where): string => (w.file === n.where.file ? `${w.line}:${w.column}` : `${w.file}:${w.line}:${w.column}`);
  cluster.nodes.forEach((n, i) => {
    if (!NODENAME.test(n.name)) {
      errors.push(at(n.where, `Node name must be a node name (letters, digits, ".", "_", "-"; at most 63), got "${n.name}"`));
    }
    const same = byName.get(n.name.toLowerCase());
    // Exact duplicates are reported by the config builder; names differing only in case are two
    // nodes to the election but look like one to an operator reading logs.
    if (same !== undefined && same.name !== n.name) {
      errors.push(at(n.where, `Node "${n.name}" differs from Node "${same.name}" (at ${place(n, same.where)}) only in case; node names must differ`));
    }
    byName.set(n.name.toLowerCase(), n);

    const written = n.options.Cluster_Address;
    if (written === undefined) {
      errors.push(at(n.where, `Node "${n.name}" needs Cluster_Address = IP (its address on the cluster link, corosync's ring0_addr)`));
    } else {
      const a = usableAddress(n);
      if (a === null) {
        errors.push(at(n.addressWhere, `invalid value for "Cluster_Address": expected a unicast address of the node (no wildcard, multicast or zone id), got "${written}"`));
      } else {
        const other = byAddress.get(a.address);
        if (other !== undefined) {
          errors.push(at(n.addressWhere, `Node "${n.name}" has Cluster_Address ${a.address}, which Node "${other.name}" (at ${place(n, other.where)}) has already; each node needs its own`));
        } else {
          byAddress.set(a.address, n);
        }
        if (firstFamily === null) {
          firstFamily = { family: a.family, node: n };
        } else if (firstFamily.family !== a.family) {
          errors.push(at(n.addressWhere, `Node "${n.name}" has an IPv${a.family} Cluster_Address but Node "${firstFamily.node.name}" an IPv${firstFamily.family} one; corosync's link needs one address family on every node`));
        }
      }
    }

    const id = n.options.Node_Id ?? i + 1;
    const clash = byId.get(id);
    if (clash !== undefined) {
      const why = n.options.Node_Id === undefined ? ` (its position in the list; give it a Node_Id)` : '';
      errors.push(at(n.idWhere, `Node "${n.name}" has corosync nodeid ${id}${why}, which Node "${clash.name}" (at ${place(n, clash.where)}) has already; nodeids must differ`));
    } else {
      byId.set(id, n);
    }
  });

  const me = config.global.Nodename;
  if (!cluster.nodes.some((n) => n.name === me)) {
    errors.push(at(cluster.where, `Nodename "${me}" is not one of the Cluster's Nodes (${cluster.nodes.map((n) => n.name).join(', ')}); ` +
      'the Node list is the same on every node and must name this one'));
  }
  return errors;
}
