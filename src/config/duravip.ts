// What this node's configuration says about DuraVIPs: the entries it announces to the cluster, the
// Topology each address is plumbed on, and the semantic checks the config loader (index.ts) runs on
// the assembled config and reports with file:line:column. The cluster reads these; the config never
// reads the cluster. Pure (no I/O); main thread, at load and reload.
//
// "An address managed for one service is managed for all" (Momentum): once any Listen or Binding
// enables DuraVIP on an address, every Listen and Binding on that address is announced with it,
// so a node that configures only part of them is seen as UNSAFE by the election.

import { canonicalAddress } from '../net/address.js';
import { cidrContains, cidrLength } from '../net/cidr.js';
import type { Config, TopologyConfig } from './types.js';
import type { ConfigError, SourceLocation } from './errors.js';

/** The Topology an address is plumbed on: the most specific one containing it, or null. */
export function topologyFor(topologies: readonly TopologyConfig[], address: string): TopologyConfig | null {
  let best: TopologyConfig | null = null;
  let bestLen = -1;
  for (const t of topologies) {
    const len = cidrLength(t.cidr);
    if (len > bestLen && cidrContains(t.cidr, address)) { best = t; bestLen = len; }
  }
  return best;
}

/** The services a config puts on a DuraVIP (the cluster link adds 'eccluster' itself). */
export type ConfiguredService = 'esmtp_listener' | 'binding';

/**
 * One DuraVIP as this config sets it up, with where it was configured (for error messages). It is a
 * cluster DuravipEntry (src/cluster/state.ts) as it stands, without the config importing the cluster.
 */
export interface LocatedEntry {
  /** Canonical address (src/net/address.ts). */
  readonly address: string;
  readonly services: readonly ConfiguredService[];
  /** Binding whose Bind_Address this is; null for a listener. */
  readonly binding: string | null;
  /** Duravip_Preference: the node that should own it; null when not configured. */
  readonly preference: string | null;
  /** Duravip_Follow: binding whose owner this listener address follows; null when not configured. */
  readonly follow: string | null;
  readonly where: SourceLocation | null;
  readonly what: string;
}

type ConfigView = Pick<Config, 'esmtpListeners' | 'bindings' | 'lookup'>;

/**
 * Every DuraVIP entry this config announces, in configuration order; addresses canonical. A Listen
 * with Duravip_Follow is announced as a follower of that binding (the election then places it).
 */
export function duravipEntries(config: ConfigView): LocatedEntry[] {
  const managed = new Set<string>();
  for (const l of config.esmtpListeners) {
    const a = canonicalAddress(l.host);
    if (a !== null && (l.options.Enable_Duravip === true || l.options.Duravip_Follow !== undefined)) managed.add(a);
  }
  for (const b of config.bindings.values()) {
    const addr = b.options.Bind_Address;
    if (addr === undefined) continue;
    const a = canonicalAddress(addr);
    if (a !== null && config.lookup('Enable_Duravip', { binding: b.name }) === true) managed.add(a);
  }
  const out: LocatedEntry[] = [];
  const add = (address: string, service: ConfiguredService, binding: string | null, preference: string | null, follow: string | null, where: SourceLocation | null, what: string): void => {
    out.push({ address, services: [service], binding, preference, follow, where, what });
  };
  for (const l of config.esmtpListeners) {
    const a = canonicalAddress(l.host);
    if (a === null || !managed.has(a)) continue;
    const follow = l.options.Enable_Duravip === true ? null : l.options.Duravip_Follow ?? null;
    add(a, 'esmtp_listener', null, l.options.Duravip_Preference ?? null, follow, l.where, `Listen "${l.name}"`);
  }
  for (const b of config.bindings.values()) {
    const addr = b.options.Bind_Address;
    const a = addr === undefined ? null : canonicalAddress(addr);
    if (a === null || !managed.has(a)) continue;
    const pref = config.lookup('Duravip_Preference', { binding: b.name }) as string | undefined;
    add(a, 'binding', b.name, pref ?? null, null, b.where, `Binding "${b.name}"`);
  }
  return out;
}

/**
 * Semantic checks of the DuraVIP configuration that need the whole config: a DuraVIP needs a
 * Cluster stanza and must lie inside a Topology (else we would not know where to plumb it), a
 * wildcard listener cannot be one, and a node that moves DuraVIP mail over an ECCluster_Listener
 * needs Cluster_Secret (without it every #mmove is refused with 454 4.7.0, forever).
 */
export function duravipConfigErrors(config: ConfigView & Pick<Config, 'cluster' | 'ecclusterListeners'>): ConfigError[] {
  const errors: ConfigError[] = [];
  const at = (w: SourceLocation | null, message: string): void => {
    const where = w ?? { file: '<config>', line: 1, column: 1 };
    errors.push({ ...where, message });
  };
  for (const l of config.esmtpListeners) {
    if (l.options.Enable_Duravip === true && (l.host === '0.0.0.0' || l.host === '::')) {
      at(l.where, `Listen "${l.name}" sets Enable_Duravip on a wildcard address; a DuraVIP is one address`);
    }
  }
  const entries = duravipEntries(config).filter((e) => e.address !== '0.0.0.0' && e.address !== '::');
  const reported = new Set<string>();
  for (const e of entries) {
    if (reported.has(e.address)) continue;
    if (config.cluster === null) {
      reported.add(e.address);
      at(e.where, `${e.what} makes ${e.address} a DuraVIP, which needs a Cluster stanza with a Topology containing it`);
      continue;
    }
    if (topologyFor(config.cluster.topologies, e.address) === null) {
      reported.add(e.address);
      const known = config.cluster.topologies.map((t) => t.cidr).join(', ');
      at(e.where, `${e.what} makes ${e.address} a DuraVIP, but no Cluster Topology contains it (expected an address inside ${known === '' ? 'a Topology "cidr" { Interface = ... }' : `one of: ${known}`})`);
    }
  }
  const link = config.ecclusterListeners[0];
  const moved = entries.find((e) => e.binding !== null);
  if (config.cluster !== null && config.cluster.options.Cluster_Secret === undefined && link !== undefined && moved !== undefined) {
    at(
      config.cluster.where,
      `Cluster has no Cluster_Secret, but ECCluster_Listener "${link.name}" and ${moved.what} (a DuraVIP) move mail between nodes over #mmove, ` +
        'which every node refuses (454 4.7.0) without it; expected Cluster_Secret = "..." here, the same on every node',
    );
  }
  return errors;
}
