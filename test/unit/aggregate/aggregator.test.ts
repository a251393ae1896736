// The aggregator's pull loop against a real ECCluster_Listener serving a real journal file: every
// record lands once in the dated files, the member's subscriber is acked only up to the mark, a
// stopped aggregator resumes from its mark, a cut link heals, a failure is logged once, and ERROR
// comes only for a member in the view that stays unreachable (injected clock).
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Aggregator, UNREACHABLE_ERROR_MS, type AggregatorOptions } from '../../../src/aggregate/aggregator.js';
import { DedupTable } from '../../../src/mmove/dedup.js';
import { MmoveReceiver } from '../../../src/mmove/receiver.js';
import { aggregatedSeqs, appendRecords, JsonlJournalSource } from '../../helpers/file-journal.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

const SECRET = 'aggregate secret';
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 3);
const receivers: MmoveReceiver[] = [];
const aggregators: Aggregator[] = [];

afterEach(async () => {
  for (const a of aggregators.splice(0)) await a.stop();
  for (const r of receivers.splice(0)) await r.close(200);
});

async function member(file: string, port = 0): Promise<{ port: number; receiver: MmoveReceiver }> {
  const receiver = new MmoveReceiver({
    name: '127.0.0.1:0', hostname: 'n2.test', secret: SECRET, maxHops: 3, maxMessageSize: 1024, idleTimeoutMs: 30_000, sink: null,
    dedup: new DedupTable({ entries: 64, windowMs: 60_000 }), logger: pino({ level: 'silent' }), onMessage: () => undefined, journal: new JsonlJournalSource(file),
  });
  receivers.push(receiver);
  return { port: await receiver.listen(port, '127.0.0.1'), receiver };
}

interface Logged { level: number; msg: string; member?: string }
function aggregator(dir: string, port: number, extra: Partial<AggregatorOptions> = {}): { agg: Aggregator; logs: Logged[] } {
  const logs: Logged[] = [];
  const agg = new Aggregator({
    nodeName: 'n1', directory: dir, logfile: '%Y/%m/%d/%{l}/%{n}', members: ['n2'],
    address: () => ({ host: '127.0.0.1', port }), inView: () => true, secret: SECRET, tls: false,
    logger: pino({ level: 'info' }, { write: (s: string) => logs.push(JSON.parse(s) as Logged) }),
    batch: 100, pollMs: 20, retryMs: [20, 100], ...extra,
  });
  aggregators.push(agg);
  agg.start();
  return { agg, logs };
}

const days = (dir: string, n: number): string[] => Array.from({ length: n }, (_, i) => path.join(dir, new Date(T0 + i * DAY).toISOString().slice(0, 10).replace(/-/g, '/'), 'events', 'n2'));
// The member's record of the ack. The mark (status().seq) moves first; the ack follows over the
// link, so a test waits for it rather than reading it the moment the mark moves (waitFor retries
// while the ack file does not exist yet).
const acked = (file: string): number => Number(fs.readFileSync(path.join(`${file}.acks`, 'aggregator-n1'), 'utf8'));
const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('Aggregator', () => {
  it('pulls every record once into files by date, acks through its mark, and resumes after a stop', async () => {
    const dir = tempDir('agg-');
    const file = path.join(tempDir('member-'), 'events.jsonl');
    // 600 records over two days, then 300 on a third.
    appendRecords(file, 1, 600, (s) => T0 + Math.floor((s - 1) / 300) * DAY + s);
    const { port } = await member(file);
    const first = aggregator(dir, port);
    await waitFor('600 aggregated', () => first.agg.status()[0]!.seq === 600);
    await waitFor('the member to record the ack of 600', () => acked(file) === 600);
    expect(first.agg.status()[0]).toMatchObject({ node: 'n2', seq: 600, last: 600, lagRecords: 0, lagSeconds: 0 });
    expect(first.agg.report()).toMatch(/^n2 +600 +600 +0 +0 +connected$/m);
    await first.agg.stop();
    appendRecords(file, 601, 900, (s) => T0 + 2 * DAY + s);
    const second = aggregator(dir, port);
    await waitFor('900 aggregated', () => second.agg.status()[0]!.seq === 900);
    expect(aggregatedSeqs(days(dir, 3))).toEqual(upTo(900));
    expect(days(dir, 3).map((f) => aggregatedSeqs([f]).length)).toEqual([300, 300, 300]);
    await waitFor('the member to record the ack of 900', () => acked(file) === 900);
  });

  it('heals a cut link: logs the failure once, resumes where it stopped', async () => {
    const dir = tempDir('agg-');
    const file = path.join(tempDir('member-'), 'events.jsonl');
    appendRecords(file, 1, 50, () => T0);
    const m = await member(file);
    const { agg, logs } = aggregator(dir, m.port);
    await waitFor('50 aggregated', () => agg.status()[0]!.seq === 50);
    await m.receiver.close(50);
    receivers.splice(receivers.indexOf(m.receiver), 1);
    appendRecords(file, 51, 120, () => T0);
    await waitFor('several failed retries', () => agg.status()[0]!.error !== null && logs.filter((l) => l.msg.includes('retrying')).length >= 1);
    await waitFor('the status to say retrying', () => /retrying: /.test(agg.report()));
    await member(file, m.port);
    await waitFor('120 aggregated', () => agg.status()[0]!.seq === 120);
    expect(aggregatedSeqs(days(dir, 1))).toEqual(upTo(120));
    // Each distinct failure once (a refused connect and a closed connection may both be seen), never ERROR.
    const warns = logs.filter((l) => l.level === 40).map((l) => (l as Logged & { err: string }).err);
    expect(new Set(warns).size).toBe(warns.length);
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
    expect(logs.some((l) => l.msg.startsWith('log aggregator: member reachable again'))).toBe(true);
  });

  it('logs ERROR once, only for a member in the view unreachable for long', async () => {
    const dir = tempDir('agg-');
    let now = 1_000_000;
    let inView = false;
    let attempts = 0;
    const { agg, logs } = aggregator(dir, 1, {
      now: () => now,
      inView: () => inView,
      retryMs: [1, 1],
      connect: () => {
        attempts++;
        now += 60_000;
        return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1'));
      },
    });
    await waitFor('retries past the error time out of the view', () => attempts * 60_000 > UNREACHABLE_ERROR_MS + 120_000);
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
    inView = true;
    await waitFor('the ERROR', () => logs.find((l) => l.level >= 50));
    const at = attempts;
    await waitFor('more retries', () => attempts > at + 5);
    expect(logs.filter((l) => l.level >= 50)).toHaveLength(1);
    expect(logs.filter((l) => l.level === 40)).toHaveLength(1);
    expect(agg.status()[0]).toMatchObject({ seq: 0, connected: false, error: 'connect ECONNREFUSED 127.0.0.1:1' });
  });
});
