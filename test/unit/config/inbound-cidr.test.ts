// Inbound_Cidr in ESMTP_Listener (Cluster_Max_Inbound_Connections): what it reads to, and each
// mistake reported at file:line:column. Pure: config text only.
import { describe, expect, it } from 'vitest';
import { formatConfigError, loadConfigText, type Config, type LoadResult } from '../../../src/config/index.js';

const text = (t: string): LoadResult => loadConfigText(t, 'test.conf', { cwd: '/srv/mta' });
function ok(r: LoadResult): Config {
  if (!r.ok) throw new Error(r.errors.map(formatConfigError).join('\n'));
  return r.config;
}
function errorsOf(r: LoadResult): string[] {
  if (r.ok) throw new Error('expected errors, the config loaded');
  return r.errors.map(formatConfigError);
}

describe('Inbound_Cidr', () => {
  it('reads several networks, IPv4 and IPv6, in canonical form, and shows them re-parseably', () => {
    const c = ok(text([
      'ESMTP_Listener {',
      '  Inbound_Cidr "203.0.113.0/24" { Cluster_Max_Inbound_Connections = 50 }',
      '  Inbound_Cidr "2001:DB8::/32" {',
      '    cluster_max_inbound_connections = 0',
      '  }',
      '  Listen "127.0.0.1:2525" { }',
      '}',
    ].join('\n')));
    expect(c.inboundCidrs.map(({ cidr, limit }) => ({ cidr, limit }))).toEqual([
      { cidr: '203.0.113.0/24', limit: 50 },
      { cidr: '2001:db8::/32', limit: 0 },
    ]);
    expect(c.inboundCidrs[1]!.where).toMatchObject({ file: 'test.conf', line: 3, column: 3 });
    const again = ok(text(c.show()));
    expect(again.inboundCidrs.map(({ cidr, limit }) => ({ cidr, limit }))).toEqual(c.inboundCidrs.map(({ cidr, limit }) => ({ cidr, limit })));
  });

  it('is empty without Inbound_Cidr', () => {
    expect(ok(text('ESMTP_Listener { Listen "127.0.0.1:2525" { } }')).inboundCidrs).toEqual([]);
  });

  it('reports a bad network, host bits, a duplicate and a missing limit where written', () => {
    const errs = errorsOf(text([
      'ESMTP_Listener {',
      '  Inbound_Cidr "203.0.113.0/33" { Cluster_Max_Inbound_Connections = 5 }',
      '  Inbound_Cidr "203.0.113.9/24" { Cluster_Max_Inbound_Connections = 5 }',
      '  Inbound_Cidr "2001:db8::/32" { Cluster_Max_Inbound_Connections = 5 }',
      '  Inbound_Cidr "2001:DB8:0::/32" { Cluster_Max_Inbound_Connections = 6 }',
      '  Inbound_Cidr "198.51.100.0/24" { }',
      '  Inbound_Cidr "192.0.2.0/24" { Cluster_Max_Inbound_Connections = -1 }',
      '  Listen "127.0.0.1:2525" { Inbound_Cidr "192.0.2.0/24" { Cluster_Max_Inbound_Connections = 1 } }',
      '}',
      'Inbound_Cidr "192.0.2.0/24" { Cluster_Max_Inbound_Connections = 1 }',
      'Cluster_Max_Inbound_Connections = 3',
    ].join('\n')));
    expect(errs).toEqual([
      expect.stringMatching(/^test\.conf:2:16: .*Inbound_Cidr name must be a CIDR network "addr\/len", got "203\.0\.113\.0\/33"/),
      expect.stringMatching(/^test\.conf:3:16: .*Inbound_Cidr "203\.0\.113\.9\/24" has host bits set; the network is "203\.0\.113\.0\/24"/),
      expect.stringMatching(/^test\.conf:5:16: .*duplicate Inbound_Cidr "2001:DB8:0::\/32" in ESMTP_Listener: the network 2001:db8::\/32 is already limited \(first at 4:16\)/),
      expect.stringMatching(/^test\.conf:6:3: .*Inbound_Cidr "198\.51\.100\.0\/24" needs Cluster_Max_Inbound_Connections = N/),
      expect.stringMatching(/^test\.conf:7:67: .*invalid value for "Cluster_Max_Inbound_Connections"/),
      expect.stringMatching(/^test\.conf:8:29: .*stanza "Inbound_Cidr" is not allowed in Listen "127\.0\.0\.1:2525"; it belongs in ESMTP_Listener/),
      expect.stringMatching(/^test\.conf:10:1: .*stanza "Inbound_Cidr" is not allowed at global scope; it belongs in ESMTP_Listener/),
      expect.stringMatching(/^test\.conf:11:1: .*option "Cluster_Max_Inbound_Connections" is not allowed at global scope; it belongs in ESMTP_Listener\/Inbound_Cidr/),
    ]);
  });
});
