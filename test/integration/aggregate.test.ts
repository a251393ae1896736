// Log_Aggregator between two real vipmta processes on loopback: a member serving its spool's event
// journal (EventJournal through SpoolJournalSource) on its ECCluster_Listener, and an aggregator
// pulling it over the authenticated cluster link. The member's journal is fed by a helper process
// that opens the member's spool while the member is stopped (test/helpers/spool-journal.ts; until
// the node journals its own mail), so the member restarts with each batch, and the aggregator is
// killed with SIGKILL while behind and restarted each time: the aggregated files end with every
// record exactly once, and the member's subscriber is acked through the last. Both nodes have a
// Cluster stanza (the Cluster_Secret), so they share a network namespace of their own (held by a
// sleeping process, as the member restarts), away from any corosync on the host.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { aggregatedSeqs } from '../helpers/file-journal.js';
import { freePort, killAll, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { requireCapabilities } from '../helpers/preconditions.js';
import { addressOf, appendJournal } from '../helpers/spool-journal.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'aggregation-integration-secret';
const N = 40_000;

let holder: ChildProcess | null = null;
afterEach(async () => {
  await killAll();
  if (holder !== null && holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
  holder = null;
});

/** A network namespace of its own that outlives the member's restarts: a sleeping process in it. */
async function namespace(): Promise<VipmtaProcess> {
  requireCapabilities('runs vipmta in a network namespace of its own (away from any corosync on the host)', 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN');
  const h = spawn('unshare', ['--net', '--', 'sh', '-c', 'ip link set lo up && exec sleep 600'], { stdio: 'ignore' });
  holder = h;
  // `ip link set lo up` has run once sh has exec'd sleep (the PID's command is sleep).
  await waitFor('the namespace holder', () => {
    try {
      return fs.readFileSync(`/proc/${h.pid}/comm`, 'utf8').trim() === 'sleep';
    } catch {
      return false;
    }
  });
  return { pid: h.pid! } as VipmtaProcess;
}

function memberConfig(port: number): string {
  return `Worker_Threads = 2
Nodename = "n2"
ECCluster_Listener { Listen "127.0.0.1:${port}" { } }
Cluster { Cluster_Secret = "${SECRET}" }
Suspend_Delivery = true
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
`;
}

function aggregatorConfig(port: number): string {
  return `Worker_Threads = 1
Nodename = "n1"
Cluster { Cluster_Secret = "${SECRET}" }
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Log_Aggregator {
  Directory = "./aggregated"
  Members = ( "n2=127.0.0.1:${port}" )
}
`;
}

/** Every aggregated file under dir (the marks aside), in path order: dates sort as they run. */
function aggregatedFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => !f.startsWith('.marks') && fs.statSync(path.join(dir, f)).isFile())
    .sort()
    .map((f) => path.join(dir, f));
}

function markSeq(dir: string): number {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, '.marks', 'n2.events.json'), 'utf8')) as { seq: number }).seq;
  } catch {
    return 0;
  }
}

describe('Log_Aggregator', () => {
  it('ends with every record exactly once after SIGKILLs of the aggregator and restarts of the member', async () => {
    const port = await freePort();
    const ns = await namespace();
    const memberCwd = tempDir('agg-member-');
    const spoolDir = path.join(memberCwd, 'spool');
    let written = 0;
    const write = async (upTo: number): Promise<void> => {
      await appendJournal(spoolDir, 'n2', written + 1, upTo);
      written = upTo;
    };
    const startMember = async (): Promise<VipmtaProcess> => {
      const m = startVipmta(memberConfig(port), { cwd: memberCwd, networkOf: ns });
      await m.waitStarted();
      return m;
    };
    const aggCwd = tempDir('agg-aggregator-');
    const dir = path.join(aggCwd, 'aggregated');
    const startAggregator = async (): Promise<VipmtaProcess> => {
      const a = startVipmta(aggregatorConfig(port), { cwd: aggCwd, networkOf: ns });
      await a.waitForLog((l) => l.msg === 'log aggregator started');
      return a;
    };

    await write(N / 4);
    let member = await startMember();
    let agg = await startAggregator();
    const cuts: unknown[] = [];
    // Three times while the aggregator is behind: kill -9 the aggregator, stop the member, append
    // more to its journal, start both again.
    for (const [killAt, more] of [[N / 8, N / 2], [N / 4 + 1000, (3 * N) / 4], [N / 2 + 2000, N]] as const) {
      await waitFor(`the mark past ${killAt}`, () => markSeq(dir) >= killAt, { timeoutMs: 60_000, intervalMs: 5 });
      agg.signal('SIGKILL'); // mid-pull: it was behind
      await agg.exited;
      member.signal('SIGTERM');
      await member.exited;
      await write(more);
      cuts.push(...agg.logs.filter((l) => l.msg.startsWith('log aggregator: cut')).map((l) => l.cut));
      expect(markSeq(dir)).toBeLessThan(more);
      member = await startMember();
      agg = await startAggregator();
    }
    await waitFor('every record aggregated', () => markSeq(dir) === N, { timeoutMs: 120_000 });

    const files = aggregatedFiles(dir);
    const seqs = aggregatedSeqs(files);
    expect(seqs.length).toBe(N);
    expect(seqs.every((s, i) => s === i + 1)).toBe(true);
    // Laid out by each record's UTC date (the journal stamps the time of writing: today, or two
    // days if the run crossed midnight), n2's file in each.
    const dates = new Set<string>();
    for (const f of files) {
      for (const l of fs.readFileSync(f, 'utf8').split('\n')) {
        if (l === '') continue;
        const line = JSON.parse(l) as { seq: number; time: number };
        const rel = `${new Date(line.time).toISOString().slice(0, 10).replace(/-/g, '/')}/events/n2`;
        expect(path.relative(dir, f)).toBe(rel);
        dates.add(rel);
      }
    }
    expect(files.map((f) => path.relative(dir, f))).toEqual([...dates].sort());
    const line = JSON.parse(fs.readFileSync(files[0]!, 'utf8').split('\n')[0]!) as { time: number } & Record<string, unknown>;
    expect(line).toEqual({ node: 'n2', seq: 1, time: line.time, id: 'ev-1', record: { v: 1, type: 'address_taken', time: expect.any(Number), node: 'n2', address: addressOf(1) } });
    // The member's own subscriber, acked through the last record: in its journal and its console.
    const checkpoint = (): number => {
      try {
        return (JSON.parse(fs.readFileSync(path.join(spoolDir, 'events', 'subscribers', 'aggregator-n1.json'), 'utf8')) as { seq: number }).seq;
      } catch {
        return 0;
      }
    };
    await waitFor('the member acked through the last record', () => checkpoint() === N);
    const subs = await member.console('log', 'subscribers');
    expect(subs.stdout).toMatch(new RegExp(`^aggregator-n1 +${N} +0 +0$`, 'm'));
    cuts.push(...agg.logs.filter((l) => l.msg.startsWith('log aggregator: cut')).map((l) => l.cut));
    // How many restarts found a batch written but not marked (it depends on where each kill fell).
    console.log(`aggregator restarts that cut an unmarked tail: ${cuts.length} (${cuts.join(', ')} bytes)`);
    const status = await agg.console('log', 'aggregator');
    expect(status.stdout).toMatch(new RegExp(`^n2 +${N} +${N} +0 +0 +connected$`, 'm'));
    expect(agg.logs.filter((l) => l.level === 'error' && String(l.msg).startsWith('log aggregator'))).toEqual([]);
  }, 240_000);
});
