// Response-driven shaping across a real cluster (issue 13): three vipmta nodes with real corosync in
// network namespaces, each in the shaping CPG group "vipmta-shaping". A sink in the client namespace
// answers Yahoo's 421 [TSS04] to the first RCPT; the domain-scope rule that fires on n1 becomes a
// suspension listed on every node's console, holds mail injected on another node, survives a
// restart of one node, is lifted everywhere by a resume on a third; a short console suspension
// ends on its own everywhere. Test main thread; waits on lab processes and console commands.
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCommand } from '../helpers/preconditions.js';
import { ClusterLab, waitFor, type LabHost, type LabProcess } from './harness.js';
import { consoleCmd, restartNode, startNode, waitStarted, type NodeRun } from './vipmta-node.js';

const SINK = { host: '198.51.100.100', port: 2525 };
const TSS04 = '[TSS04] Messages from 198.51.100.11 temporarily deferred due to unexpected volume or user complaints';

/**
 * The deferring sink: smtp-server (resolved from this checkout, the script runs from `node -e` in
 * the client namespace) that answers 421 4.7.0 [TSS04] to the first `defer` RCPTs and accepts the
 * rest. One JSON line per event: listening, connect, rcpt (with the code answered), tx.
 */
function sinkScript(defer: number): string {
  const smtpServer = createRequire(import.meta.url).resolve('smtp-server');
  return `const { SMTPServer } = require(${JSON.stringify(smtpServer)});
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
let defer = ${defer};
const server = new SMTPServer({
  logger: false, disableReverseLookup: true, authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'],
  onConnect(session, cb) { out({ ev: 'connect', remote: session.remoteAddress }); cb(); },
  onRcptTo(address, session, cb) {
    if (defer-- > 0) {
      out({ ev: 'rcpt', rcpt: address.address, code: 421 });
      return cb(Object.assign(new Error(${JSON.stringify(`4.7.0 ${TSS04}`)}), { responseCode: 421 }));
    }
    out({ ev: 'rcpt', rcpt: address.address, code: 250 });
    cb();
  },
  onData(stream, session, cb) {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      out({ ev: 'tx', remote: session.remoteAddress, rcpt: session.envelope.rcptTo.map((r) => r.address) });
      cb(null, 'Ok');
    });
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
# Both domains use the one sink; this test is about agreement across nodes, so each is its own
# destination (MX rollup is tested in test/integration/shaping.test.ts).
Mx_Rollup = false
Domain "dest.test" { Routes = ( "${SINK.host}:${SINK.port}" ) }
Domain "other.test" { Routes = ( "${SINK.host}:${SINK.port}" ) }
ESMTP_Listener {
  Relay_Hosts = ( "198.51.100.0/24" )
  Listen "${h.address}:25" { }
}
Shaping_Rule "tss04" { Match = "\\\\[TSS04\\\\]" Action = suspend Duration = 1h Scope = domain }
Cluster {
  View_Mature_Time = 1s
  If_Check_Interval = 2s
}
`;
}

let lab: ClusterLab;
let sink: LabProcess;
const nodes = new Map<string, NodeRun>();
const node = (name: string): NodeRun => nodes.get(name)!;
/** Every vipmta process started (a restart adds one): all their logs are checked for errors. */
const procs: LabProcess[] = [];

interface SinkEvent { ev: string; remote?: string; rcpt?: string | string[]; code?: number }
function sinkEvents(ev: string): SinkEvent[] {
  return sink.lines.map((l) => JSON.parse(l) as SinkEvent).filter((e) => e.ev === ev);
}
const delivered = (): string[] => sinkEvents('tx').flatMap((t) => t.rcpt as string[]);

/** smtp-source in the client namespace: `count` messages to `rcpt`, injected at the node's address. */
async function inject(h: LabHost, count: number, rcpt: string): Promise<void> {
  const r = await lab.execAsync(lab.client, ['smtp-source', '-s', '1', '-m', String(count), '-l', '512',
    '-f', 'sender@lab.example', '-t', rcpt, `${h.address}:25`]);
  if (r.code !== 0) throw new Error(`smtp-source to ${h.address} exited ${r.code}: ${r.stdout}`);
}

function logRecords(p: LabProcess, msg: string, from = 0): Record<string, unknown>[] {
  return p.lines.slice(from).filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * The suspensions listing of a node, once it has a row matching `row`: when the console command
 * that first listed it was sent and when it answered (a console command is a CLI process, several
 * hundred ms on a loaded machine, so the delay is somewhere between the two).
 */
async function listed(n: NodeRun, row: RegExp, timeoutMs = 10_000, intervalMs = 25): Promise<{ sent: number; at: number }> {
  return waitFor(`${n.host.name} lists ${row}`, async () => {
    const sent = Date.now();
    const text = await consoleCmd(n, 'shaping', 'suspensions');
    return row.test(text) ? { sent, at: Date.now() } : null;
  }, { timeoutMs, intervalMs });
}

const TSS04_ROW = /^suspend\s+\*\s+dest\.test\s+\S+\s+\S+\s+n1\s+tss04\s+421 /m;

beforeAll(async () => {
  requireCommand('smtp-source');
  lab = await ClusterLab.create({ nodes: 3, corosync: true });
  sink = lab.spawn(lab.client, [process.execPath, '-e', sinkScript(1)]);
  await sink.waitLine((l) => l.includes('"ev":"listening"'), { timeoutMs: 15_000 });
  for (const h of lab.hosts) {
    const n = startNode(lab, h, body(h));
    nodes.set(h.name, n);
    procs.push(n.proc);
  }
  await Promise.all([...nodes.values()].map(waitStarted));
  for (const n of nodes.values()) {
    await n.proc.waitLine((l) => l.includes('"msg":"shaping: joined the shaping group"'), { timeoutMs: 20_000 });
  }
}, 90_000);

afterAll(async () => {
  await lab?.destroy();
});

describe('response-driven shaping on three nodes', () => {
  it('spreads a rule\'s suspension to every node, holds mail there across a restart, and resumes everywhere', async () => {
    const n1 = node('n1');
    const n2 = node('n2');
    const n3 = node('n3');
    const mark = { n2: n2.proc.lines.length, n3: n3.proc.lines.length };

    await inject(n1.host, 1, 'first@dest.test');
    const firedLine = await n1.proc.waitLine((l) => l.includes('"msg":"shaping: rule fired"'), { timeoutMs: 20_000 });
    const fired = JSON.parse(firedLine.line) as Record<string, unknown>;
    expect(fired).toMatchObject({ rule: 'tss04', action: 'suspend', binding: null, destination: 'dest.test' });
    expect(String(fired.reply)).toMatch(/^421 .*\[TSS04\]/);
    const firedAt = Date.parse(String(fired.time));
    expect(sinkEvents('rcpt').filter((e) => e.code === 421)).toHaveLength(1);

    // Polled on both nodes at once: the first listing on each is the upper bound of its delay.
    const [l2, l3] = await Promise.all([listed(n2, TSS04_ROW), listed(n3, TSS04_ROW)]);
    const inForce = (n: NodeRun, from: number): number =>
      Date.parse(String(logRecords(n.proc, 'shaping: restriction in force', from).find((r) => r.rule === 'tss04')?.time));
    const n1Applied = inForce(n1, 0);
    const figures = {
      n1AppliedMs: n1Applied - firedAt,
      n2AppliedMs: inForce(n2, mark.n2) - firedAt,
      n3AppliedMs: inForce(n3, mark.n3) - firedAt,
      n2ListedMs: [l2.sent - firedAt, l2.at - firedAt],
      n3ListedMs: [l3.sent - firedAt, l3.at - firedAt],
    };
    // *AppliedMs: each node's 'shaping: restriction in force' record; *ListedMs: the console command
    // that first listed it, [sent, answered].
    console.log(`suspension propagation from n1's 'shaping: rule fired' (ms): ${JSON.stringify(figures)}`);
    expect(await consoleCmd(n1, 'shaping', 'suspensions')).toMatch(TSS04_ROW);

    // Mail for dest.test injected on n3 is held: it is queued there, and the sink sees no new
    // connection while n2 restarts (seconds, with Retry_Interval = 1s).
    const connects = sinkEvents('connect').length;
    const n3Mark = n3.proc.lines.length;
    await inject(n3.host, 2, 'held@dest.test');
    await waitFor('n3 logged 2 receptions', () => n3.proc.lines.slice(n3Mark).filter((l) => l.includes('"event":"reception"')).length === 2);
    expect(await consoleCmd(n3, 'mailq')).toMatch(/Total: 2 message\(s\)/);

    await n2.proc.kill('SIGTERM');
    expect(n2.proc.exitCode).toBe(0);
    restartNode(lab, n2);
    procs.push(n2.proc);
    await waitStarted(n2);
    await n2.proc.waitLine((l) => l.includes('"msg":"shaping: restrictions restored"'), { timeoutMs: 10_000 });
    expect(await consoleCmd(n2, 'shaping', 'suspensions')).toMatch(TSS04_ROW);
    await n2.proc.waitLine((l) => l.includes('"msg":"shaping: joined the shaping group"'), { timeoutMs: 20_000 });
    expect(await consoleCmd(n2, 'shaping', 'suspensions')).toMatch(TSS04_ROW);
    expect(sinkEvents('connect')).toHaveLength(connects);
    expect(delivered()).toEqual([]);
    expect(await consoleCmd(n3, 'mailq')).toMatch(/Total: 2 message\(s\)/);
    expect(await consoleCmd(n1, 'mailq')).toMatch(/Total: 1 message\(s\)/);

    // Resumed on n3: lifted on every node, and the held mail (n1's and n3's) goes.
    expect(await consoleCmd(n3, 'shaping', 'resume', 'dest.test')).toBe('resuming dest.test (every binding): 1 restriction(s) lifted on every node\n');
    for (const n of [n1, n2, n3]) {
      await waitFor(`${n.host.name} lists nothing`, async () => (await consoleCmd(n, 'shaping', 'suspensions')) === 'no restriction in force\n');
    }
    await waitFor('the held mail delivered', () => {
      const d = delivered();
      return d.filter((r) => r === 'first@dest.test').length === 1 && d.filter((r) => r === 'held@dest.test').length === 2;
    }, { timeoutMs: 30_000 });
    for (const n of [n1, n3]) {
      await waitFor(`${n.host.name}'s queue empty`, async () => (await consoleCmd(n, 'mailq')).includes('Total: 0 message(s)'), { timeoutMs: 10_000 });
    }
  }, 120_000);

  it('spreads a short console suspension from n2, which ends on its own on every node', async () => {
    const all = ['n1', 'n2', 'n3'].map(node);
    const marks = all.map((n) => n.proc.lines.length);
    const row = /^suspend\s+\*\s+other\.test\s+\S+\s+\S+\s+n2\s+console\s+suspended by the operator/m;
    const said = await consoleCmd(node('n2'), 'shaping', 'suspend', 'other.test', '3s');
    const t0 = Date.now();
    const until = Date.parse(/until (\S+) on every node/.exec(said)![1]!);
    expect(said).toMatch(/^suspending other\.test \(every binding\) until \S+ on every node\n$/);
    // Seen everywhere before it ends (3 s): a node that never lists it fails here.
    const seen = await Promise.all(all.map(async (n) => {
      const l = await listed(n, row, 2_500);
      return `${l.sent - t0}..${l.at - t0}`;
    }));
    const ends: number[] = [];
    for (const [i, n] of all.entries()) {
      const { line } = await n.proc.waitLine((l) => l.includes('"msg":"shaping: restriction ended"') && l.includes('"destination":"other.test"'), { from: marks[i], timeoutMs: 10_000 });
      ends.push(Date.parse(String((JSON.parse(line) as Record<string, unknown>).time)) - until);
      expect(await consoleCmd(n, 'shaping', 'suspensions')).toBe('no restriction in force\n');
    }
    console.log(`console suspension from n2: listed on n1,n2,n3 by a console command sent..answered at ${seen.join(', ')} ms after the suspend answered; ended ${ends.join(', ')} ms after its until`);
  }, 60_000);

  it('logged no error on any node', () => {
    for (const p of procs) {
      const errors = p.lines.filter((l) => l.startsWith('{') && ['error', 'fatal'].includes(String((JSON.parse(l) as { level?: unknown }).level)));
      expect(errors, `${p.host.name}`).toEqual([]);
    }
  });
});
