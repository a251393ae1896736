// Response-driven shaping on one real node: a receiver that answers Yahoo's 421 [TSS04] to RCPT
// fires a Shaping_Rule; the suspension shows on the console, holds the destination's mail (also
// across a restart: it is persisted), and `shaping resume` lets the mail go. Loopback sink, no DNS
// (the domain has Routes). The same operations on the HTTP admin API, and the /metrics series.
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startSink } from './delivery-sink.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('shaping rules on one node', () => {
  it('suspends a destination on a rule\'s reply, keeps it across a restart, and resumes on the console', async () => {
    let deferrals = 1;
    const sink = await startSink({
      rcpt: () => (deferrals-- > 0 ? { code: 421, text: '[TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume or user complaints' } : null),
    });
    cleanup.push(() => sink.close());
    const smtp = await freePort();
    const http = await freePort();
    const config = `Worker_Threads = 1
Nodename = "n1"
Hostname = "mta.vipmta.test"
Resolver_Servers = ( "127.0.0.1:9" )
Retry_Interval = 1s
Shaping_Default_Rules = false
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Http_Listener { Listen "127.0.0.1:${http}" { } }
Domain "dest.test" { Routes = ( "127.0.0.1:${sink.port}" ) Max_Outbound_Connections = 3 Cluster_Max_Outbound_Connections = 4 }
Domain "also.test" { Routes = ( "127.0.0.1:${sink.port}" ) }
Shaping_Rule "tss04" { Match = "\\\\[TSS04\\\\]" Action = suspend Duration = 1h }
`;
    const node = startVipmta(config);
    await node.waitStarted();
    // Both domains are served by the sink: with Mx_Rollup (the default) they are one destination.
    const dest = `mx:127.0.0.1:${sink.port}`;
    const send = async (tag: string, domain = 'dest.test'): Promise<void> => {
      const { client } = await SmtpTestClient.connect(smtp);
      expect((await client.send('alice@sender.test', [`bob@${domain}`], wireMessage(tag, ['hello']))).code).toBe(250);
      await client.quit();
    };
    await send('first');
    const fired = await node.waitForLog((r) => r.msg === 'shaping: rule fired');
    expect(fired).toMatchObject({ rule: 'tss04', action: 'suspend', binding: 'default', destination: dest });
    await node.waitForLog((r) => r.msg === 'shaping: restriction in force');
    const listed = await node.console('shaping', 'suspensions');
    expect(listed.stdout).toMatch(/^suspend\s+default\s+mx:127\.0\.0\.1:\d+\s+\S+\s+(59m|1h)\S*\s+n1\s+tss04\s+421 /m);
    await send('second');
    await send('third', 'also.test'); // another domain on the same MX: held by the same suspension
    const shown = (await node.console('shaping', 'show', 'dest.test')).stdout;
    expect(shown).toMatch(/^destination: mx:127\.0\.0\.1:\d+ \(MX rollup of dest\.test/);
    const also = (await node.console('shaping', 'show', 'also.test')).stdout;
    expect(also).toMatch(/^destination: mx:127\.0\.0\.1:\d+ \(MX rollup of also\.test/);
    expect(also).toMatch(/^  now: 0 of 20 connection\(s\) open \(0 idle\); ready 1, in flight 0, deferred 0, held 0; SUSPENDED$/m);
    expect(also).not.toMatch(/^cluster-wide/m);
    expect(shown).toMatch(/^binding default \(group default\)$/m);
    expect(shown).toMatch(/^  Max_Outbound_Connections\s+3\s+Domain "dest\.test" at \S+:\d+:\d+$/m);
    expect(shown).toMatch(/^  Outbound_Throttle_Messages\s+unlimited\s+the default$/m);
    // Two queued for dest.test: the first deferred by its 421 until Retry_Interval (1 s) has passed, then ready.
    const now = /^  now: 0 of 3 connection\(s\) open \(0 idle\); ready (\d+), in flight 0, deferred (\d+), held 0; SUSPENDED$/m.exec(shown);
    expect(now, shown).not.toBeNull();
    expect(Number(now![1]) + Number(now![2])).toBe(2);
    expect(Number(now![2])).toBeLessThanOrEqual(1);
    // A single node: its share of a cluster-wide limit is the whole limit.
    expect(shown).toMatch(/^cluster-wide \(every binding of every node to this destination\)\n  Cluster_Max_Outbound_Connections\s+4\s+Domain "dest\.test" at \S+:\d+:\d+$/m);
    expect(shown).toMatch(/^  connections open: this node uses 0, its share 4 \(fair share 4\); cluster: 0 in use, leases 4 of 4$/m);
    expect(shown).toMatch(/^  restriction: suspend until \S+ \(binding default; rule tss04 from n1: 421 /m);
    expect((await node.console('shaping', 'show', 'dest.test', '--binding', 'nope')).stderr).toMatch(/no binding "nope" is configured/);

    // The same on the HTTP admin API, and in /metrics.
    const api = (method: string, path: string): Promise<Response> => fetch(`http://127.0.0.1:${http}${path}`, { method });
    const listedJson = (await (await api('GET', '/shaping/suspensions')).json()) as { restrictions: Array<{ rule: string; destination: string; binding: string | null }> };
    expect(listedJson.restrictions).toMatchObject([{ rule: 'tss04', destination: dest, binding: 'default' }]);
    const made = await api('POST', '/shaping/suspend?domain=other.test&duration=2h&reason=maintenance');
    expect(made.status).toBe(200);
    expect(await made.json()).toMatchObject({ domain: 'other.test', binding: null });
    const bad = await api('POST', '/shaping/suspend?domain=other.test&duration=soon');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/^DURATION must be like/);
    expect((await api('GET', '/shaping/suspend')).status).toBe(405);
    await waitFor('the API\'s suspension in force', async () => (await node.console('shaping', 'suspensions')).stdout.includes('other.test'));
    const leases = (await (await api('GET', '/shaping/leases')).json()) as { status: string; keys: Array<{ key: string; allowance: number; cap: number }> };
    expect(leases.status).toMatch(/^single node/);
    expect(leases.keys).toContainEqual(expect.objectContaining({ key: `${dest}#conn`, allowance: 4, cap: 4 }));
    const metrics = await (await api('GET', '/metrics')).text();
    expect(metrics).toContain('vipmta_shaping_rule_fired_total{rule="tss04"} 1\n');
    expect(metrics).toContain('vipmta_shaping_restrictions{action="suspend"} 2\n');
    // The cluster-wide limit on dest.test's destination: a single node's share is all of it.
    expect(metrics).toContain(`vipmta_cluster_limit_allowance{key="${dest}#conn"} 4\n`);
    expect(metrics).toContain(`vipmta_cluster_limit_cap{key="${dest}#conn"} 4\n`);
    expect(metrics).toMatch(/^vipmta_outbound_connections\{state="open"\} \d+$/m);
    expect(metrics).toMatch(/^vipmta_outbound_idle_closed_total \d+$/m);
    expect((await (await api('POST', '/shaping/resume?domain=other.test')).json())).toMatchObject({ lifted: 1 });
    // Each restriction that came into force here or ended is an event record (the log is the
    // default sink until the journal is wired).
    const records = await waitFor('the suspension records', () => {
      const r = node.logs.filter((l) => l.event === 'suspension');
      return r.length >= 3 ? r : undefined;
    });
    expect(records.map((r) => [r.state, r.action, r.destination])).toEqual([['start', 'suspend', dest], ['start', 'suspend', 'other.test'], ['end', 'suspend', 'other.test']]);
    expect(records[0]).toMatchObject({ binding: 'default', rule: 'tss04', origin: 'n1' });

    // Restarted, the node still holds dest.test: with Retry_Interval = 1s both messages would have
    // gone in the seconds a restart takes.
    const connections = sink.connections.length;
    node.signal('SIGTERM');
    await node.exited;
    const again = startVipmta(config, { cwd: node.cwd });
    await again.waitStarted();
    await again.waitForLog((r) => r.msg === 'shaping: restrictions restored');
    expect((await again.console('shaping', 'suspensions')).stdout).toMatch(/tss04/);
    expect((await again.console('mailq')).stdout).toMatch(/Total: 3 message/);
    expect(sink.connections.length).toBe(connections);
    expect(sink.transactions).toEqual([]);

    expect((await again.console('shaping', 'resume', 'dest.test')).stdout).toBe('resuming dest.test (every binding): 1 restriction(s) lifted on every node\n');
    await waitFor('the three messages delivered after the resume', () => sink.transactions.length === 3, { timeoutMs: 20_000 });
    expect((await again.console('shaping', 'suspensions')).stdout).toBe('no restriction in force\n');
    expect(again.logs.filter((l) => l.level === 'error')).toEqual([]);
  });
});
