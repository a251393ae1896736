// The Cluster's Node list (src/config/cluster-nodes.ts): each Node's corosync nodeid and canonical
// ring address, and the errors the loader reports with file:line:column (names, addresses,
// nodeids, families, this node's Nodename). Pure: config text in, values out.
import { describe, expect, it } from 'vitest';
import { formatConfigError, loadConfigText, type Config, type LoadResult } from '../../../src/config/index.js';
import { clusterMembers } from '../../../src/config/cluster-nodes.js';

const load = (t: string): LoadResult => loadConfigText(t, 'c.conf', { cwd: '/srv' });
function ok(r: LoadResult): Config {
  if (!r.ok) throw new Error(r.errors.map(formatConfigError).join('\n'));
  return r.config;
}
function errors(r: LoadResult): string[] {
  if (r.ok) throw new Error('expected errors');
  return r.errors.map(formatConfigError);
}

describe('Cluster / Node', () => {
  it('gives nodeids by position unless Node_Id says otherwise, addresses in canonical form', () => {
    const c = ok(load(`Nodename = "b"
Cluster {
  Node "a" { Cluster_Address = 2001:DB8:5:0:0:0:0:11 }
  Node "b" { Cluster_Address = 2001:db8:5::12 Node_Id = 7 }
  Node "c" { Cluster_Address = 2001:db8:5::13 }
}`));
    expect(clusterMembers(c.cluster!)).toEqual([
      { name: 'a', nodeId: 1, address: '2001:db8:5::11', family: 6 },
      { name: 'b', nodeId: 7, address: '2001:db8:5::12', family: 6 },
      { name: 'c', nodeId: 3, address: '2001:db8:5::13', family: 6 },
    ]);
  });

  it('is optional: a Cluster without Nodes loads and lists no member', () => {
    const c = ok(load('Nodename = "x"\nCluster { }'));
    expect(c.cluster!.nodes).toEqual([]);
    expect(clusterMembers(c.cluster!)).toEqual([]);
  });

  it('is shown by config show, and what it shows loads again the same', () => {
    const c = ok(load('Nodename = "a"\nCluster {\n  Node "a" { Cluster_Address = 198.51.100.11 Node_Id = 4 }\n}'));
    const shown = c.show();
    expect(shown).toContain('  Node "a" {\n    Cluster_Address = "198.51.100.11"\n    Node_Id = 4\n  }');
    expect(clusterMembers(ok(load(shown)).cluster!)).toEqual(clusterMembers(c.cluster!));
  });

  it('reports a Node written twice (with the config builder\'s other errors, before any check of the list)', () => {
    expect(errors(load('Nodename = "a"\nCluster {\n  Node "a" { Cluster_Address = 198.51.100.11 }\n  Node "a" { Cluster_Address = 198.51.100.12 }\n  Node "b" { Cluster_Address = 198.51.100.300 }\n}'))).toEqual([
      'c.conf:4:3: duplicate Node "a" in Cluster (first at 3:3)',
      'c.conf:5:32: invalid value for "Cluster_Address": expected an IP address, got "198.51.100.300"',
    ]);
  });

  it('reports names differing in case, duplicate addresses, a missing address, and where the first one is', () => {
    expect(errors(load(`Nodename = "a"
Cluster {
  Node "a" { Cluster_Address = 198.51.100.11 }
  Node "A" { Cluster_Address = 198.51.100.13 }
  Node "b" { Cluster_Address = 198.51.100.11 }
  Node "c" { }
}`))).toEqual([
      'c.conf:4:3: Node "A" differs from Node "a" (at 3:3) only in case; node names must differ',
      'c.conf:5:14: Node "b" has Cluster_Address 198.51.100.11, which Node "a" (at 3:3) has already; each node needs its own',
      'c.conf:6:3: Node "c" needs Cluster_Address = IP (its address on the cluster link, corosync\'s ring0_addr)',
    ]);
  });

  it('compares addresses in canonical form', () => {
    expect(errors(load('Nodename = "a"\nCluster {\n  Node "a" { Cluster_Address = 2001:db8::1 }\n  Node "b" { Cluster_Address = 2001:DB8:0::0:1 }\n}'))).toEqual([
      'c.conf:4:14: Node "b" has Cluster_Address 2001:db8::1, which Node "a" (at 3:3) has already; each node needs its own',
    ]);
  });

  it('refuses wildcards, multicast, zone ids and mixed families', () => {
    expect(errors(load(`Nodename = "f"
Cluster {
  Node "b" { Cluster_Address = 0.0.0.0 }
  Node "c" { Cluster_Address = 239.1.1.1 }
  Node "d" { Cluster_Address = "fe80::1%eth0" }
  Node "e" { Cluster_Address = ff02::1 }
  Node "f" { Cluster_Address = 198.51.100.16 }
  Node "g" { Cluster_Address = 2001:db8::17 }
}`))).toEqual([
      'c.conf:3:14: invalid value for "Cluster_Address": expected a unicast address of the node (no wildcard, multicast or zone id), got "0.0.0.0"',
      'c.conf:4:14: invalid value for "Cluster_Address": expected a unicast address of the node (no wildcard, multicast or zone id), got "239.1.1.1"',
      'c.conf:5:14: invalid value for "Cluster_Address": expected a unicast address of the node (no wildcard, multicast or zone id), got "fe80::1%eth0"',
      'c.conf:6:14: invalid value for "Cluster_Address": expected a unicast address of the node (no wildcard, multicast or zone id), got "ff02::1"',
      'c.conf:8:14: Node "g" has an IPv6 Cluster_Address but Node "f" an IPv4 one; corosync\'s link needs one address family on every node',
    ]);
  });

  it('refuses two Nodes with one nodeid, explicit or by position', () => {
    expect(errors(load(`Nodename = "a"
Cluster {
  Node "a" { Cluster_Address = 198.51.100.11 Node_Id = 2 }
  Node "b" { Cluster_Address = 198.51.100.12 }
  Node "c" { Cluster_Address = 198.51.100.13 Node_Id = 2 }
}`))).toEqual([
      'c.conf:4:3: Node "b" has corosync nodeid 2 (its position in the list; give it a Node_Id), which Node "a" (at 3:3) has already; nodeids must differ',
      'c.conf:5:46: Node "c" has corosync nodeid 2, which Node "a" (at 3:3) has already; nodeids must differ',
    ]);
  });

  it('needs this node in the list (global or Cluster Nodename), and node names', () => {
    expect(errors(load('Nodename = "mta9"\nCluster {\n  Node "mta1" { Cluster_Address = 198.51.100.11 }\n  Node "mta2" { Cluster_Address = 198.51.100.12 }\n}'))).toEqual([
      'c.conf:2:1: Nodename "mta9" is not one of the Cluster\'s Nodes (mta1, mta2); the Node list is the same on every node and must name this one',
    ]);
    ok(load('Cluster {\n  Nodename = "mta2"\n  Node "mta1" { Cluster_Address = 198.51.100.11 }\n  Node "mta2" { Cluster_Address = 198.51.100.12 }\n}'));
    expect(errors(load('Nodename = "a"\nCluster {\n  Node "a" { Cluster_Address = 198.51.100.11 }\n  Node "b:c" { Cluster_Address = 198.51.100.12 }\n}'))).toEqual([
      'c.conf:4:3: Node name must be a node name (letters, digits, ".", "_", "-"; at most 63), got "b:c"',
    ]);
  });

  it('takes Cluster_Address only in a Node, and a Corosync_Token of 200ms to 60s', () => {
    expect(errors(load('Nodename = "a"\nCluster {\n  Cluster_Address = 198.51.100.11\n  Corosync_Token = 100ms\n}'))).toEqual([
      'c.conf:3:3: option "Cluster_Address" is not allowed in Cluster; it belongs in Cluster/Node',
      'c.conf:4:3: invalid value for "Corosync_Token": expected 200ms to 60s, got 100ms',
    ]);
  });
});
