// Log_Aggregator end to end with real mail (issue 15): three real vipmta nodes with real corosync in
// network namespaces, n1 running the Log_Aggregator for n1, n2 and n3 (reached at the
// ECCluster_Listener each announces in the view), mail injected into all three by a small SMTP
// client in the client namespace that prints each recipient it got a 250 for, delivered to the lab
// sink. During the run n1's vipmta (the aggregator) and n3's are killed with SIGKILL mid-injection
// and restarted, and n2 is cut off the bridge and healed. At the end the aggregated files hold every
// record of every member's journal exactly once (by node and seq), every acknowledged message has
// its one reception record and every message the sink got a delivery record. Test main thread.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterLab, waitFor, type LabHost, type LabProcess } from './harness.js';
import { consoleCmd, restartNode, startNode, waitStarted, type NodeRun } from './vipmta-node.js';

const SINK = { host: '198.51.100.100', port: 2525 };
const NAMES = ['n1', 'n2', 'n3'] as const;
const here = path.dirname(fileURLToPath(import.meta.url));

function body(h: LabHost): string {
  return `Resolver_Servers = ( "127.0.0.1:9" )
Event_Log_Lines = false
Retry_Interval = 1s
Connect_Timeout = 3s
Command_Timeout = 5s
Data_Timeout = 5s
Domain "dest.example" { Routes = ( "${SINK.host}:${SINK.port}" ) }
ESMTP_Listener {
  Relay_Hosts = ( "198.51.100.0/24" )
  Listen "${h.address}:25" { }
}
ECCluster_Listener { Listen "${h.address}:4802" { } }
Cluster {
  Cluster_Secret = "lab-secret"
  View_Mature_Time = 1s
  If_Check_Interval = 2s
}
${h.name === 'n1' ? `Log_Aggregator {
  Directory = "${aggDir(h)}"
  Members = ( "n1" "n2" "n3" )
}` : ''}
`;
}
const aggDir = (h: LabHost): string => path.join(h.dir, 'aggregated');

/**
 * One SMTP session, one message per transaction, nothing pipelined: prints "ok RCPT" for each
 * message answered 250 after its data, and ends (exit 0) when the server goes away. Arguments:
 * ADDRESS TAG COUNT; recipients are "<i><TAG>@dest.example".
 */
const INJECTOR = `
const net = require('node:net');
const [addr, tag, count] = process.argv.slice(1);
const s = net.connect(25, addr);
let buf = '';
const replies = [];
const waiters = [];
s.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\r\\n')) >= 0) {
    const l = buf.slice(0, i);
    buf = buf.slice(i + 2);
    if (!/^\\d{3} /.test(l)) continue;
    const w = waiters.shift();
    if (w) w(l); else replies.push(l);
  }
});
s.on('error', () => {});
s.on('close', () => { console.log('closed'); process.exit(0); });
const reply = () => new Promise((r) => (replies.length > 0 ? r(replies.shift()) : waiters.push(r)));
(async () => {
  await reply();
  s.write('EHLO client.lab.example\\r\\n');
  await reply();
  for (let i = 0; i < Number(count); i++) {
    const rcpt = i + tag + '@dest.example';
    s.write('MAIL FROM:<sender@lab.example>\\r\\n');
    if (!(await reply()).startsWith('250')) continue;
    s.write('RCPT TO:<' + rcpt + '>\\r\\n');
    if (!(await reply()).startsWith('250')) { s.write('RSET\\r\\n'); await reply(); continue; }
    s.write('DATA\\r\\n');
    if (!(await reply()).startsWith('354')) continue;
    s.write('Subject: ' + rcpt + '\\r\\nMessage-ID: <' + rcpt + '>\\r\\n\\r\\n' + ('x'.repeat(98) + '\\r\\n').repeat(10) + '.\\r\\n');
    const r = await reply();
    console.log(r.startsWith('250') ? 'ok ' + rcpt : 'no ' + rcpt + ' ' + r);
  }
  s.write('QUIT\\r\\n');
  await reply();
  console.log('done');
  process.exit(0);
})();
`;

let lab: ClusterLab;
let sink: LabProcess;
const injectors: LabProcess[] = [];
const nodes = new Map<string, NodeRun>();
const node = (name: string): NodeRun => nodes.get(name)!;

function inject(name: string, tag: string, count: number): LabProcess {
  const p = lab.spawn(lab.client, [process.execPath, '-e', INJECTOR, lab.host(name).address, tag, String(count)]);
  injectors.push(p);
  return p;
}
const oks = (p: LabProcess): string[] => p.lines.filter((l) => l.startsWith('ok ')).map((l) => l.slice(3));

/** Every recipient the sink was given, once per delivery. */
function sinkRcpts(): string[] {
  return sink.lines.flatMap((l) => {
    const o = JSON.parse(l) as { ev: string; rcpt?: string[] };
    return o.ev === 'tx' ? o.rcpt! : [];
  });
}

interface AggRow { node: string; mark: number; last: number | null; lag: number | null; state: string }
async function aggregatorRows(): Promise<Map<string, AggRow>> {
  const out = new Map<string, AggRow>();
  const text = await consoleCmd(node('n1'), 'log', 'aggregator');
  for (const m of text.matchAll(/^(n\d)\s+(\d+)\s+(\d+|-)\s+(\d+|-)\s+(\d+|-)\s+(.*)$/gm)) {
    out.set(m[1]!, { node: m[1]!, mark: Number(m[2]), last: m[3] === '-' ? null : Number(m[3]), lag: m[4] === '-' ? null : Number(m[4]), state: m[6]! });
  }
  return out;
}

interface JournalLine { seq: number; type: string; id?: string; rcpt?: string | string[]; missing?: unknown; error?: unknown }
/** A member's whole journal, through its console (every record decoded, with its seq). */
async function journalOf(name: string): Promise<JournalLine[]> {
  const text = await consoleCmd(node(name), 'log', 'tail', '--after', '0', '-n', '10000', '--json');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as JournalLine);
}

interface AggLine { node: string; seq: number; id?: string; record: { type: string; rcpt?: string | string[] } }
function aggregatedLines(dir: string): AggLine[] {
  const files = (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => !f.startsWith('.marks') && fs.statSync(path.join(dir, f)).isFile());
  return files.flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AggLine));
}

async function viewOfThree(on: string[]): Promise<void> {
  await waitFor(`3 members in the view of ${on.join(', ')}`, async () => {
    const seen = await Promise.all(on.map((n) => consoleCmd(node(n), 'cluster', 'membership')));
    return seen.every((s) => s.includes('3 member(s)'));
  }, { timeoutMs: 30_000, intervalMs: 200 });
}

async function killAndRestart(name: string): Promise<void> {
  await node(name).proc.kill('SIGKILL');
  restartNode(lab, node(name));
  await waitStarted(node(name));
}

beforeAll(async () => {
  lab = await ClusterLab.create({ nodes: 3, corosync: true });
  sink = lab.spawn(lab.client, [process.execPath, path.join(here, 'lab-sink.mjs'), SINK.host, String(SINK.port)]);
  await sink.waitLine((l) => l.includes('"ev":"listening"'), { timeoutMs: 15_000 });
  for (const h of lab.hosts) nodes.set(h.name, startNode(lab, h, body(h)));
  await Promise.all([...nodes.values()].map(waitStarted));
  await viewOfThree([...NAMES]);
  // A subscriber of the test's own on each member from the first record: the journal keeps
  // everything (the aggregator's acks would let it trim), so the end can compare the whole of it.
  for (const n of NAMES) await consoleCmd(node(n), 'log', 'subscribe', 'check', '--from', 'start');
}, 90_000);

afterAll(async () => {
  await lab?.destroy();
});

describe('Log_Aggregator on three nodes with real mail', () => {
  it('ends with every record of every member exactly once across SIGKILLs of the aggregator and a member and a cut link', async () => {
    const t0 = Date.now();
    const step = (m: string): void => console.log(`[+${Date.now() - t0} ms] ${m}`);
    // Phase 1: mail into all three; the aggregator's node and n3 are killed in the middle of it.
    // n3's share starts once n1 is back, so that n3 is killed in the middle of it.
    // First a little mail, until the aggregator reads every member: the phase's injection starts
    // after that, so that the kill lands in the middle of it however long that took (under load,
    // waiting for the aggregator inside the injection let n1's 300 finish before the kill). The kill
    // ends an injector's session, so its count is only headroom: 1,000 leave room for a faster node.
    await Promise.all([inject('n1', 'p0n1', 10), inject('n2', 'p0n2', 10)].map((p) => p.exited));
    await waitFor('the aggregator reading every member', async () => {
      const rows = await aggregatorRows();
      return (rows.get('n1')?.mark ?? 0) > 0 && (rows.get('n2')?.mark ?? 0) > 0 && rows.get('n3')?.state === 'connected';
    }, { timeoutMs: 30_000, intervalMs: 100 });
    const p1 = [inject('n1', 'p1n1', 1000), inject('n2', 'p1n2', 150)];
    await waitFor('50 accepted by n1', () => oks(p1[0]!).length >= 50, { timeoutMs: 30_000, intervalMs: 20 })
      .catch((e: Error) => { throw new Error(`${e.message}; n1's injector said: ${[...p1[0]!.lines.slice(-5), ...p1[0]!.stderrLines.slice(-5)].join(' | ')}; n1: ${node('n1').proc.lines.slice(-5).join('\n')}`); });
    const atKill = [...(await aggregatorRows()).values()].map((r) => `${r.node} mark ${r.mark} of ${r.last ?? '-'}`).join(', ');
    await killAndRestart('n1');
    step(`n1 (the aggregator) killed (${atKill} just before) and restarted; n1's injector had ${oks(p1[0]!).length} acknowledged`);
    p1.push(inject('n3', 'p1n3', 1000));
    await waitFor('80 accepted by n3', () => oks(p1[2]!).length >= 80, { timeoutMs: 30_000, intervalMs: 20 });
    await killAndRestart('n3');
    step(`n3 killed and restarted; n3's injector had ${oks(p1[2]!).length} acknowledged`);
    // Both kills came in the middle of their node's injection (its session ended without QUIT).
    for (const i of [0, 2]) expect(p1[i]!.lines.filter((l) => l === 'closed' || l === 'done')[0]).toBe('closed');
    await Promise.all(p1.map((p) => p.exited));
    await viewOfThree([...NAMES]);

    // Phase 2: n2 cut off the bridge in the middle of its injection, while the others take more
    // mail; the aggregator loses n2, and n2 goes on writing records (its deliveries fail: the sink
    // is out of its reach too).
    const p2n2 = inject('n2', 'p2n2', 300);
    await waitFor('30 accepted by n2', () => oks(p2n2).length >= 30, { timeoutMs: 30_000, intervalMs: 20 });
    lab.isolate(lab.host('n2'));
    const n2Before = (await aggregatorRows()).get('n2')!.mark;
    try {
      const p2 = ['n1', 'n3'].map((n) => inject(n, `p2${n}`, 80));
      await waitFor('the aggregator failing to reach n2', async () => {
        const r = (await aggregatorRows()).get('n2');
        return r !== undefined && r.state.startsWith('retrying');
      }, { timeoutMs: 30_000, intervalMs: 200 });
      await Promise.all(p2.map((p) => p.exited));
      step(`n2 cut off after ${oks(p2n2).length} acknowledged: the aggregator retries it (its mark ${n2Before})`);
    } finally {
      lab.heal(lab.host('n2'));
    }
    await viewOfThree([...NAMES]);
    // The session cut in the middle ends when its side learns of it (a reset, or the server's
    // timeout); the test need not wait for TCP's retransmissions: what was acknowledged is printed.
    if (p2n2.running) await p2n2.kill('SIGKILL');
    step(`n2 healed, back in the view; ${oks(p2n2).length} acknowledged by n2 in phase 2`);

    // Phase 3: mail into all three again.
    const p3 = NAMES.map((n) => inject(n, `p3${n}`, 50));
    await Promise.all(p3.map((p) => p.exited));

    // Every acknowledged message is delivered, and the queues are empty.
    const acked = injectors.flatMap(oks);
    expect(new Set(acked).size).toBe(acked.length);
    await waitFor(`all ${acked.length} acknowledged messages at the sink`, () => {
      const got = new Set(sinkRcpts());
      return acked.every((r) => got.has(r));
    }, { timeoutMs: 90_000, intervalMs: 250 });
    await waitFor('every queue empty', async () => {
      const q = await Promise.all(NAMES.map((n) => consoleCmd(node(n), 'mailq')));
      return q.every((s) => s.includes('Total: 0 message(s)'));
    }, { timeoutMs: 60_000, intervalMs: 250 });

    // The aggregator catches up with each member's journal head.
    const journals = new Map<string, JournalLine[]>();
    await waitFor('the aggregator at every member\'s journal head (lag 0)', async () => {
      const rows = await aggregatorRows();
      for (const n of NAMES) {
        const j = await journalOf(n);
        journals.set(n, j);
        const head = j[j.length - 1]?.seq ?? 0;
        const r = rows.get(n);
        if (r === undefined || r.mark !== head || r.last !== head || r.lag !== 0) return false;
      }
      return true;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    step('aggregation caught up');

    // Every record of every member exactly once in the aggregated files.
    const agg = aggregatedLines(aggDir(lab.host('n1')));
    const counts: string[] = [];
    for (const n of NAMES) {
      const j = journals.get(n)!;
      expect(j.filter((l) => l.missing !== undefined || l.error !== undefined)).toEqual([]);
      const seqs = j.map((l) => l.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1)); // the whole journal, from seq 1
      const mine = agg.filter((l) => l.node === n);
      const aggSeqs = mine.map((l) => l.seq).sort((a, b) => a - b);
      const twice = aggSeqs.filter((s, i) => i > 0 && aggSeqs[i - 1] === s);
      const have = new Set(aggSeqs);
      const missing = seqs.filter((s) => !have.has(s));
      counts.push(`${n}: journal ${j.length}, aggregated ${mine.length}, missing ${missing.length}, twice ${twice.length}`);
      expect(twice).toEqual([]);
      expect(missing).toEqual([]);
      expect(aggSeqs).toEqual(seqs);
      // The same record under the same seq: its type and queue id.
      const bySeq = new Map(mine.map((l) => [l.seq, l]));
      for (const r of j) {
        const a = bySeq.get(r.seq)!;
        expect({ seq: r.seq, type: a.record.type, id: a.id }).toEqual({ seq: r.seq, type: r.type, id: r.id });
      }
    }
    expect(new Set(agg.map((l) => l.node))).toEqual(new Set(NAMES));

    // Against the mail: one reception record per acknowledged message, a delivery record for every
    // message the sink got.
    const receptions = agg.filter((l) => l.record.type === 'reception').flatMap((l) => l.record.rcpt as string[]);
    const deliveries = agg.filter((l) => l.record.type === 'delivery').map((l) => l.record.rcpt as string);
    const recCount = new Map<string, number>();
    for (const r of receptions) recCount.set(r, (recCount.get(r) ?? 0) + 1);
    expect(acked.filter((r) => recCount.get(r) !== 1)).toEqual([]);
    expect([...recCount].filter(([, c]) => c !== 1)).toEqual([]);
    const sunk = sinkRcpts();
    const sunkSet = new Set(sunk);
    const delivered = new Set(deliveries);
    expect([...sunkSet].filter((r) => !delivered.has(r))).toEqual([]);
    expect([...delivered].filter((r) => !sunkSet.has(r))).toEqual([]);
    // Every message with a reception record (acknowledged, or committed just before a kill) was delivered.
    expect([...recCount.keys()].filter((r) => !sunkSet.has(r))).toEqual([]);
    const types = new Map<string, number>();
    for (const l of agg) types.set(l.record.type, (types.get(l.record.type) ?? 0) + 1);
    const cuts = node('n1').proc.lines.filter((l) => l.includes('log aggregator: cut')).length;
    console.log(`aggregation with real mail: ${counts.join('; ')}; aggregated lines ${agg.length}; ` +
      `acknowledged ${acked.length}, reception records ${receptions.length}, delivery records ${deliveries.length}, ` +
      `sink deliveries ${sunk.length} (${sunk.length - sunkSet.size} duplicate(s)); files cut back at n1's restart: ${cuts}; ` +
      `records by type ${JSON.stringify(Object.fromEntries([...types].sort()))}`);
  }, 240_000);
});
