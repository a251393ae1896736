// The DuraVIP view of a config (src/config/duravip.ts): which entries a node announces
// ("managed for one service is managed for all"), which Topology an address is plumbed on, and the
// semantic errors the loader reports with file:line:column. Pure: config text in, values out.
import { describe, expect, it } from 'vitest';
import { formatConfigError, loadConfigText, type Config, type LoadResult } from '../../../src/config/index.js';
import { duravipEntries, topologyFor } from '../../../src/config/duravip.js';

const load = (t: string): LoadResult => loadConfigText(t, 'c.conf', { cwd: '/srv' });
function ok(r: LoadResult): Config {
  if (!r.ok) throw new Error(r.errors.map(formatConfigError).join('\n'));
  return r.config;
}
function errors(r: LoadResult): string[] {
  if (r.ok) throw new Error('expected errors');
  return r.errors.map(formatConfigError);
}
const CLUSTER = 'Cluster { Topology "198.51.100.0/24" { Interface = "eth1" Cidrmask = 32 } Topology "198.51.100.128/25" { Interface = "eth2" } }';

describe('topologyFor', () => {
  it('picks the most specific Topology', () => {
    const c = ok(load(CLUSTER));
    expect(topologyFor(c.cluster!.topologies, '198.51.100.200')?.options.Interface).toBe('eth2');
    expect(topologyFor(c.cluster!.topologies, '198.51.100.20')?.options.Interface).toBe('eth1');
    expect(topologyFor(c.cluster!.topologies, '203.0.113.1')).toBeNull();
  });
});

describe('duravipEntries', () => {
  it('announces every service on an address once any of them enables DuraVIP, with binding and preference', () => {
    const c = ok(load(`${CLUSTER}
ESMTP_Listener {
  Listen "198.51.100.10:25" { }
  Listen "198.51.100.11:25" { Enable_Duravip = true Duravip_Preference = "n2" }
  Listen "198.51.100.12:25" { Duravip_Follow = "b10" }
  Listen "127.0.0.1:25" { }
}
Binding_Group "g" { Duravip_Preference = "n1"
  Binding "b10" { Bind_Address = 198.51.100.10 Enable_Duravip = true }
}
Binding "b20" { Bind_Address = 198.51.100.20 }`));
    const e = duravipEntries(c).map(({ where: _w, what, ...x }) => ({ what, ...x }));
    expect(e).toEqual([
      { what: 'Listen "198.51.100.10:25"', address: '198.51.100.10', services: ['esmtp_listener'], binding: null, preference: null, follow: null },
      { what: 'Listen "198.51.100.11:25"', address: '198.51.100.11', services: ['esmtp_listener'], binding: null, preference: 'n2', follow: null },
      { what: 'Listen "198.51.100.12:25"', address: '198.51.100.12', services: ['esmtp_listener'], binding: null, preference: null, follow: 'b10' },
      { what: 'Binding "b10"', address: '198.51.100.10', services: ['binding'], binding: 'b10', preference: 'n1', follow: null },
    ]);
  });
});

describe('DuraVIP config errors', () => {
  it('names the stanza of a DuraVIP outside every Topology, and one without any Cluster', () => {
    expect(errors(load(`${CLUSTER}
Binding "b1" {
  Bind_Address = 203.0.113.7
  Enable_Duravip = true
}`))).toEqual([
      'c.conf:2:1: Binding "b1" makes 203.0.113.7 a DuraVIP, but no Cluster Topology contains it (expected an address inside one of: 198.51.100.0/24, 198.51.100.128/25)',
    ]);
    expect(errors(load(`ESMTP_Listener {
  Listen "198.51.100.5:25" { Enable_Duravip = yes }
}`))).toEqual([
      'c.conf:2:3: Listen "198.51.100.5:25" makes 198.51.100.5 a DuraVIP, which needs a Cluster stanza with a Topology containing it',
    ]);
  });

  it('refuses a wildcard listener as a DuraVIP', () => {
    expect(errors(load(`${CLUSTER}
ESMTP_Listener { Listen "0.0.0.0:25" { Enable_Duravip = true } }`))).toEqual([
      'c.conf:2:18: Listen "0.0.0.0:25" sets Enable_Duravip on a wildcard address; a DuraVIP is one address',
    ]);
  });

  it('refuses an ECCluster_Listener with DuraVIP bindings and no Cluster_Secret: every #mmove would get 454', () => {
    const rest = `ECCluster_Listener { Listen "10.9.0.1:2424" { } }
Binding "b1" { Bind_Address = 198.51.100.7 Enable_Duravip = true }`;
    expect(errors(load(`# the cluster link
Cluster {
  Topology "198.51.100.0/24" { Interface = "eth1" }
}
${rest}`))).toEqual([
      'c.conf:2:1: Cluster has no Cluster_Secret, but ECCluster_Listener "10.9.0.1:2424" and Binding "b1" (a DuraVIP) move mail between nodes over #mmove, ' +
        'which every node refuses (454 4.7.0) without it; expected Cluster_Secret = "..." here, the same on every node',
    ]);
    // With the secret it loads; without an ECCluster_Listener, or without a DuraVIP binding, nothing moves over #mmove.
    ok(load(`Cluster { Cluster_Secret = "s" Topology "198.51.100.0/24" { Interface = "eth1" } }\n${rest}`));
    ok(load(`${CLUSTER}\nBinding "b1" { Bind_Address = 198.51.100.7 Enable_Duravip = true }`));
    ok(load(`${CLUSTER}\nECCluster_Listener { Listen "10.9.0.1:2424" { } }\nBinding "b1" { Bind_Address = 10.1.1.1 }`));
  });
});
