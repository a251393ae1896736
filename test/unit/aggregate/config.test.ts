// The Log_Aggregator stanza: Directory required and resolved, Logfile and Members checked at load,
// the canonical text parses back, and the members the host derives (every Cluster Node by default;
// "name=ip:port" pins an address, a name alone waits for the view's).
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/config/index.js';
import { aggregatorMembers } from '../../../src/node/log-aggregator.js';

const load = (text: string) => loadConfigText(text, 'test.conf', { cwd: '/srv/mta' });

describe('Log_Aggregator config', () => {
  it('takes Directory, Logfile and Members, and shows them back', () => {
    const r = load('Nodename = "n1"\nLog_Aggregator { Directory = "agg" Members = ( "n2=127.0.0.1:2526" "n3" ) }\n');
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.logAggregator?.options).toEqual({ Directory: '/srv/mta/agg', Logfile: '%Y/%m/%d/%{l}/%{n}', Members: ['n2=127.0.0.1:2526', 'n3'] });
    expect([...aggregatorMembers(r.config)]).toEqual([['n2', { host: '127.0.0.1', port: 2526 }], ['n3', null]]);
    const again = load(r.config.show());
    expect(again.ok && again.config.logAggregator?.options).toEqual(r.config.logAggregator?.options);
    expect(load('Nodename = "n1"\n').ok && load('Nodename = "n1"\n')).toMatchObject({ config: { logAggregator: null } });
  });

  it('pulls every Node of the Cluster when Members is empty', () => {
    const r = load('Nodename = "n1"\nCluster { Cluster_Secret = "s" Node "n1" { Cluster_Address = 10.0.0.1 } Node "n2" { Cluster_Address = 10.0.0.2 } }\nLog_Aggregator { Directory = "/var/log/vipmta" }\n');
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect([...aggregatorMembers(r.config)]).toEqual([['n1', null], ['n2', null]]);
  });

  it('refuses a missing Directory, a Logfile without %{n} or %{l}, and a malformed member', () => {
    const msgs = (text: string): string[] => {
      const r = load(text);
      return r.ok ? [] : r.errors.map((e) => e.message);
    };
    expect(msgs('Log_Aggregator { }\n').join('\n')).toMatch(/Log_Aggregator needs Directory/);
    expect(msgs('Log_Aggregator { Directory = "a" Logfile = "%Y/%{l}" }\n').join('\n')).toMatch(/Logfile/);
    expect(msgs('Log_Aggregator { Directory = "a" Logfile = "/abs/%{l}/%{n}" }\n').join('\n')).toMatch(/Logfile/);
    expect(msgs('Log_Aggregator { Directory = "a" Members = ( "n2=host.example:25" ) }\n').join('\n')).toMatch(/Members/);
  });
});
