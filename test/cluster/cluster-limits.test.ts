// Cluster-wide outbound limits on a real cluster (issue 13): three vipmta nodes with real corosync in
// network namespaces, six DuraVIP bindings (two preferred on each node), one destination. A sink in
// the client namespace records every connection's open and close and every message, so the test
// sees what a receiving provider sees: with Cluster_Max_Outbound_Connections = 5, never more than 5
// connections from the cluster at any instant, the budget used while mail waits, also across the
// death of a node; with Cluster_Outbound_Throttle_Messages = "600/60s", no sliding 60 s window
// above 600 and about 600 per minute. Test main thread; waits on lab processes and the console.
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCommand } from '../helpers/preconditions.js';
import { ClusterLab, waitFor, type LabHost, type LabProcess } from './harness.js';
import { consoleCmd, owners, startNode, waitStarted, type NodeRun } from './vipmta-node.js';

const SINK = { host: '198.51.100.100', port: 2525 };
const BINDINGS = [1, 2, 3, 4, 5, 6].map((i) => ({ name: `b${i}`, address: `198.51.100.${200 + i}`, preference: `n${1 + ((i - 1) % 3)}` }));

/**
 * The counting sink: smtp-server (resolved from this checkout; the script runs from `node -e` in the
 * client namespace) that holds each DATA reply for slow.test `delayMs` (so connections stay busy
 * while mail waits) and prints one JSON line per event with its own clock: open/close with the number of
 * connections open after it, and tx per message.
 */
function sinkScript(delayMs: number): string {
  const smtpServer = createRequire(import.meta.url).resolve('smtp-server');
  return `const { SMTPServer } = require(${JSON.stringify(smtpServer)});
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
let open = 0;
const server = new SMTPServer({
  logger: false, disableReverseLookup: true, authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'],
  onConnect(session, cb) { open++; out({ ev: 'open', t: Date.now(), remote: session.remoteAddress, n: open }); cb(); },
  onClose(session) { open--; out({ ev: 'close', t: Date.now(), remote: session.remoteAddress, n: open }); },
  onData(stream, session, cb) {
    stream.on('data', () => undefined);
    const rcpt = session.envelope.rcptTo.map((r) => r.address);
    stream.on('end', () => setTimeout(() => {
      out({ ev: 'tx', t: Date.now(), remote: session.remoteAddress, rcpt });
      cb(null, 'Ok');
    }, rcpt.some((r) => r.endsWith('@slow.test')) ? ${delayMs} : 0));
  },
});
server.on('error', (err) => out({ ev: 'error', message: String(err && err.message || err) }));
server.listen(${SINK.port}, ${JSON.stringify(SINK.host)}, () => out({ ev: 'listening' }));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;
}

function body(h: LabHost): string {
  return `Resolver_Servers = ( "127.0.0.1:9" )
Retry_Interval = 1s
Connect_Timeout = 3s
Command_Timeout = 5s
Data_Timeout = 5s
Shaping_Default_Rules = false
# Both domains go to the one sink: with MX rollup they would share one destination key, and the
# rate test's 600/60s (its window still full when the connection test starts) would throttle the
# connection test's mail too (the strictest limit under a key applies).
Mx_Rollup = false
Domain "slow.test" {
  Routes = ( "${SINK.host}:${SINK.port}" )
  Max_Deliveries_Per_Connection = 10
  Cluster_Max_Outbound_Connections = 5
}
Domain "rate.test" {
  Routes = ( "${SINK.host}:${SINK.port}" )
  Cluster_Outbound_Throttle_Messages = "600/60s"
}
ESMTP_Listener {
  Relay_Hosts = ( "198.51.100.0/24" )
  Listen "${h.address}:25" { Binding_Group = "all" }
}
Binding_Group "all" {
${BINDINGS.map((b) => `  Binding "${b.name}" { Bind_Address = ${b.address} Enable_Duravip = true Duravip_Preference = "${b.preference}" }`).join('\n')}
}
ECCluster_Listener { Listen "${h.address}:4802" { } }
Cluster {
  Cluster_Secret = "lab-secret"
  View_Mature_Time = 1s
  If_Check_Interval = 2s
  Arp_Count = 3
  Arp_Interval = 100ms
  Topology "198.51.100.0/24" { Interface = "eth1" Cidrmask = 32 }
}
`;
}

interface SinkEvent { ev: string; t: number; remote?: string; n?: number; rcpt?: string[] }

class Run {
  lab!: ClusterLab;
  sink!: LabProcess;
  readonly nodes = new Map<string, NodeRun>();

  async start(delayMs: number): Promise<void> {
    requireCommand('smtp-source');
    this.lab = await ClusterLab.create({ nodes: 3, corosync: true });
    this.sink = this.lab.spawn(this.lab.client, [process.execPath, '-e', sinkScript(delayMs)]);
    await this.sink.waitLine((l) => l.includes('"ev":"listening"'), { timeoutMs: 15_000 });
    for (const h of this.lab.hosts) this.nodes.set(h.name, startNode(this.lab, h, body(h), { workerThreads: 2 }));
    await Promise.all([...this.nodes.values()].map(waitStarted));
    // Every binding owned by its preferred node, as every node sees it.
    for (const n of this.nodes.values()) {
      await waitFor(`${n.host.name} sees the preferred owners`, async () => {
        const o = await owners(n);
        return BINDINGS.every((b) => o.get(b.address)?.owner === b.preference);
      }, { timeoutMs: 30_000, intervalMs: 200 });
    }
  }

  node(name: string): NodeRun {
    return this.nodes.get(name)!;
  }

  events(ev?: string): SinkEvent[] {
    return this.sink.lines.map((l) => JSON.parse(l) as SinkEvent).filter((e) => ev === undefined || e.ev === ev);
  }

  /** smtp-source in the client namespace: `count` messages to numbered recipients `N<tag>@domain`. */
  async inject(h: LabHost, count: number, tag: string, domain: string): Promise<void> {
    const r = await this.lab.execAsync(this.lab.client, ['smtp-source', '-s', '8', '-m', String(count), '-N', '-l', '1024',
      '-f', 'sender@lab.test', '-t', `${tag}@${domain}`, `${h.address}:25`]);
    if (r.code !== 0) throw new Error(`smtp-source to ${h.address} exited ${r.code}: ${r.stdout}`);
  }

  /** Delivery times (sink clock) of the messages to `N<tag>@domain`. */
  delivered(tag: string, domain: string): number[] {
    return this.events('tx').flatMap((e) => (e.rcpt ?? []).filter((r) => r.endsWith(`${tag}@${domain}`)).map(() => e.t));
  }

  /** No node logged an ERROR (a dead node's last lines included). */
  errors(): string[] {
    return [...this.nodes.values()].flatMap((n) => n.proc.lines.filter((l) => l.startsWith('{') && ['error', 'fatal'].includes(String((JSON.parse(l) as { level?: unknown }).level))));
  }

  async destroy(): Promise<void> {
    await this.lab?.destroy();
  }
}

/** The number of connections open at the sink after each open/close, in the sink's order. */
function concurrency(events: SinkEvent[]): { max: number; at: number } {
  let max = 0;
  let at = 0;
  for (const e of events) {
    if ((e.ev === 'open' || e.ev === 'close') && e.n! > max) {
      max = e.n!;
      at = e.t;
    }
  }
  return { max, at };
}

/** Time-weighted mean of the connections open between `from` and `to` (sink clock). */
function meanOpen(events: SinkEvent[], from: number, to: number): number {
  let n = 0;
  let last = from;
  let area = 0;
  for (const e of events) {
    if (e.ev !== 'open' && e.ev !== 'close') continue;
    const t = Math.min(Math.max(e.t, from), to);
    area += n * (t - last);
    last = t;
    n = e.n!;
  }
  area += n * (to - Math.max(last, from));
  return area / (to - from);
}

describe('cluster-wide outbound limits on three nodes, six bindings', () => {
  const run = new Run();
  beforeAll(async () => {
    await run.start(100);
  }, 120_000);
  afterAll(async () => {
    await run.destroy();
  });

  it('Cluster_Outbound_Throttle_Messages = "600/60s": about 600 a minute, no 60 s window above it', async () => {
    // Two minutes' worth: the second 600 may go only once the first have left every 60 s window.
    await Promise.all(['n1', 'n2', 'n3'].map((n) => run.inject(run.node(n).host, 400, 'r', 'rate.test')));
    await waitFor('1200 delivered', () => run.delivered('r', 'rate.test').length >= 1200, { timeoutMs: 180_000, intervalMs: 500 });
    const times = run.delivered('r', 'rate.test').sort((a, b) => a - b);
    const t0 = times[0]!;
    const minute = (k: number): number => times.filter((t) => t >= t0 + k * 60_000 && t < t0 + (k + 1) * 60_000).length;
    // The busiest sliding 60 s window: for each delivery, the deliveries in the 60 s ending at it.
    let busiest = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[j]! <= times[i]! - 60_000) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    console.log(`Cluster_Outbound_Throttle_Messages = "600/60s" on three nodes: ${minute(0)} in the first minute, ${minute(1)} in the second; busiest 60 s window ${busiest}`);
    expect(busiest).toBeLessThanOrEqual(600);
    expect(Math.abs(minute(0) - 600)).toBeLessThanOrEqual(30);
    expect(Math.abs(minute(1) - 600)).toBeLessThanOrEqual(30);
  }, 300_000);

  it('Cluster_Max_Outbound_Connections = 5: never more than 5 at the sink, the budget used, also across a node\'s death', async () => {
    const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((n) => run.node(n));
    // The rate test's idle connections are gone (their idle timeout) before this one counts.
    await waitFor('no connection open at the sink', () => {
      const oc = run.events().filter((e) => e.ev === 'open' || e.ev === 'close');
      return oc.length === 0 || oc[oc.length - 1]!.n === 0;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    const start = run.sink.lines.length;
    const since = (): SinkEvent[] => run.sink.lines.slice(start).map((l) => JSON.parse(l) as SinkEvent);
    // Enough mail on every node to keep 5 connections busy for several seconds (100 ms per message).
    await Promise.all([n1!, n2!, n3!].map((n) => run.inject(n.host, 400, 'a', 'slow.test')));
    await waitFor('300 delivered', () => run.delivered('a', 'slow.test').length >= 300, { timeoutMs: 120_000, intervalMs: 100 });

    // The death of n3 (vipmta and its corosync): its connections end with it.
    const mark = n1!.proc.lines.length;
    const killedAt = Date.now();
    await Promise.all([n3!.proc.kill('SIGKILL'), run.lab.killCorosync(n3!.host)]);
    const view = await n1!.proc.waitLine((l) => l.includes('"msg":"cluster: new view"'), { from: mark, timeoutMs: 15_000 });
    const viewAt = Date.parse(String((JSON.parse(view.line) as { time?: unknown }).time));
    // The survivors take n3's share: 5 open again after the view.
    const back = await waitFor('5 connections open again after the view', () => since().find((e) => e.t > viewAt && e.ev === 'open' && e.n === 5) ?? null,
      { timeoutMs: 60_000, intervalMs: 100 }).catch(async (err: unknown) => {
      // What the survivors hold, for the failure's message.
      const leases = await Promise.all([n1!, n2!].map(async (n) => `${n.host.name}:\n${await consoleCmd(n, 'shaping', 'leases').catch((e: unknown) => String(e))}`));
      const last = since().filter((e) => e.ev === 'open' || e.ev === 'close').slice(-5).map((e) => `${e.ev} ${e.t - viewAt} ms n=${e.n}`);
      throw new Error(`${(err as Error).message}\n${leases.join('\n')}\nlast sink events: ${last.join(', ')}`);
    });
    // Everything n1 and n2 queued goes (n3's waits on its disk for its restart).
    await waitFor('n1 and n2 empty', async () => {
      for (const n of [n1!, n2!]) if (!(await consoleCmd(n, 'mailq')).includes('Total: 0 message(s)')) return false;
      return true;
    }, { timeoutMs: 240_000, intervalMs: 500 });

    const ev = since();
    const c = concurrency(ev);
    const opens = ev.filter((e) => e.ev === 'open');
    const beforeKill = meanOpen(ev, opens[0]!.t, killedAt);
    // Before n3's death: what 5 connections carried (the sink holds each message 100 ms: 50/s at most).
    const early = run.delivered('a', 'slow.test').filter((t) => t >= opens[0]!.t && t < killedAt).length;
    const rate = early / ((killedAt - opens[0]!.t) / 1000);
    console.log(`Cluster_Max_Outbound_Connections = 5: max ${c.max} open at the sink; mean ${beforeKill.toFixed(2)} open from the first connection to n3's death, ${rate.toFixed(1)} messages/s (50/s at most); ${opens.length} connections for ${run.delivered('a', 'slow.test').length} messages; n3's share back in use ${back.t - viewAt} ms after n1's view`);
    expect(c.max).toBeLessThanOrEqual(5);
    expect(c.max).toBe(5);
    // The budget is used while mail waits (the rest is lease hand-over between nodes).
    expect(beforeKill).toBeGreaterThan(3.5);
  }, 420_000);

  it('logged no error on any node', () => {
    expect(run.errors()).toEqual([]);
  });
});
