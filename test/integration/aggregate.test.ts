// Log_Aggregator between two real vipmta processes on loopback: a member serving its journal (the
// JSON-lines stand-in, VIPMTA_TEST_JOURNAL_FILE) on its ECCluster_Listener, and an aggregator
// pulling it over the authenticated cluster link. The aggregator is killed with SIGKILL several
// times while records stream in and is restarted each time: the aggregated files end with every
// record exactly once, and the member's subscriber is acked through the last. Both nodes have a
// Cluster stanza (the Cluster_Secret), so they share one network namespace of their own, away from
// any corosync on the host.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { aggregatedSeqs, appendRecords } from '../helpers/file-journal.js';
import { freePort, killAll, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'aggregation-integration-secret';
const T0 = Date.UTC(2026, 11, 3, 20);
/** Records 1..N are written over two UTC days (midnight at record N/2). */
const N = 40_000;
const time = (s: number): number => T0 + Math.floor((s * 8 * 3_600_000) / N);

afterEach(killAll);

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
  it('ends with every record exactly once after SIGKILLs of the aggregator mid-stream', async () => {
    const port = await freePort();
    const journal = path.join(tempDir('agg-member-'), 'events.jsonl');
    fs.writeFileSync(journal, '');
    const member = startVipmta(memberConfig(port), { privateNetwork: true, env: { VIPMTA_TEST_JOURNAL_FILE: journal } });
    await member.waitStarted();
    const aggCwd = tempDir('agg-aggregator-');
    const dir = path.join(aggCwd, 'aggregated');
    const start = async (): Promise<VipmtaProcess> => {
      const a = startVipmta(aggregatorConfig(port), { cwd: aggCwd, networkOf: member });
      await a.waitForLog((l) => l.msg === 'log aggregator started');
      return a;
    };

    let written = 0;
    const write = (upTo: number): void => {
      appendRecords(journal, written + 1, upTo, time);
      written = upTo;
    };
    write(N / 4);
    let agg = await start();
    const cuts: unknown[] = [];
    // Kill it three times while it is behind the journal, appending more each time.
    for (const [killAt, more] of [[N / 8, N / 2], [N / 4 + 1000, (3 * N) / 4], [N / 2 + 2000, N]] as const) {
      await waitFor(`the mark past ${killAt}`, () => markSeq(dir) >= killAt, { timeoutMs: 60_000, intervalMs: 5 });
      write(more);
      agg.signal('SIGKILL');
      await agg.exited;
      cuts.push(...agg.logs.filter((l) => l.msg.startsWith('log aggregator: cut')).map((l) => l.cut));
      expect(markSeq(dir)).toBeLessThan(more);
      agg = await start();
    }
    await waitFor('every record aggregated', () => markSeq(dir) === N, { timeoutMs: 120_000 });

    const seqs = aggregatedSeqs(aggregatedFiles(dir));
    expect(seqs.length).toBe(N);
    expect(seqs.every((s, i) => s === i + 1)).toBe(true);
    // Laid out by the record's UTC date: two days, n2's file in each.
    expect(aggregatedFiles(dir).map((f) => path.relative(dir, f))).toEqual(['2026/12/03/events/n2', '2026/12/04/events/n2']);
    const line = JSON.parse(fs.readFileSync(aggregatedFiles(dir)[0]!, 'utf8').split('\n')[0]!) as Record<string, unknown>;
    expect(line).toEqual({ node: 'n2', seq: 1, time: time(1), id: 'ev-1', record: { type: 'delivery', queueId: 'q1', n: 1 } });
    await waitFor('the member acked through the last record', () => {
      try {
        return Number(fs.readFileSync(`${journal}.acks/aggregator-n1`, 'utf8')) === N;
      } catch {
        return false;
      }
    });
    cuts.push(...agg.logs.filter((l) => l.msg.startsWith('log aggregator: cut')).map((l) => l.cut));
    // How many restarts found a batch written but not marked (it depends on where each kill fell).
    console.log(`aggregator restarts that cut an unmarked tail: ${cuts.length} (${cuts.join(', ')} bytes)`);
    const status = await agg.console('log', 'aggregator');
    expect(status.stdout).toMatch(new RegExp(`^n2 +${N} +${N} +0 +0 +connected$`, 'm'));
    expect(agg.logs.filter((l) => l.level === 'error' && String(l.msg).startsWith('log aggregator'))).toEqual([]);
  }, 240_000);
});
