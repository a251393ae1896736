// The node's metric set on prom-client: the exact text exposition (format 0.0.4) of every series the
// docs and dashboards name, scrape-time values from the host's callbacks, label escaping, and that
// the spool latency histogram's buckets match the native spool's.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildMetrics, EXPOSITION_CONTENT_TYPE, FAILOVER_BOUNDS_S, SPOOL_LATENCY_BOUNDS_S, type ClusterValues, type MetricSources } from '../../../src/control/metrics.js';
import { Spool } from '../../../src/spool/index.js';
import { VERSION } from '../../../src/version.js';
import { tempDir } from '../../helpers/tmp.js';

/** Sources with nothing queued, no spool and no duplicates, overridden per test. */
function sources(over: Partial<MetricSources> = {}): MetricSources {
  return { queues: () => [], spool: () => null, mmoveDuplicates: () => 0, spoolFull: () => false, ...over };
}

/** One sample's value from the exposition text, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const latency = (counts: number[], sumUs: number) => ({ boundsUs: [...SPOOL_LATENCY_BOUNDS_S.map((s) => s * 1e6), Infinity], counts, sumUs });

describe('node metrics', () => {
  it('exposes every series with its HELP and TYPE: counters, queue sizes per binding and state, spool size, commit latency, #mmove', async () => {
    const m = buildMetrics(
      sources({
        queues: () => [
          { bindingGroup: 'default', binding: 'default', active: 2, deferred: 1, hold: 0 },
          { bindingGroup: 'news', binding: 'news-a', active: 0, deferred: 0, hold: 4 },
        ],
        spool: () => ({ messages: 7, bytes: 28672, corrupt: 1, tornTails: 0, fullErrors: 3, latency: latency([3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 1_250_450) }),
        mmoveDuplicates: () => 2,
        spoolFull: () => true,
      }),
    );
    m.received.inc(5);
    m.delivered.inc();
    m.transientFailures.inc(3);
    m.permanentFailures.inc(0);
    m.failures.inc('transient', 70, 2);
    m.failures.inc('transient', 22);
    m.failures.inc('permanent', 10);
    m.failures.inc('transient', 70);
    m.mmoveMoved.inc(6);
    expect(await m.render()).toBe(
      [
        '# HELP vipmta_build_info Always 1; labels name the vipmta and Node.js versions.',
        '# TYPE vipmta_build_info gauge',
        `vipmta_build_info{version="${VERSION}",node="${process.version}"} 1`,
        '',
        '# HELP vipmta_messages_received_total Messages accepted (250 after DATA) and committed to the spool.',
        '# TYPE vipmta_messages_received_total counter',
        'vipmta_messages_received_total 5',
        '',
        '# HELP vipmta_messages_delivered_total Deliveries that succeeded (2xx from the remote host), counted per recipient.',
        '# TYPE vipmta_messages_delivered_total counter',
        'vipmta_messages_delivered_total 1',
        '',
        '# HELP vipmta_delivery_transient_failures_total Delivery attempts deferred for a retry (4xx or no connection), counted per recipient.',
        '# TYPE vipmta_delivery_transient_failures_total counter',
        'vipmta_delivery_transient_failures_total 3',
        '',
        '# HELP vipmta_delivery_permanent_failures_total Deliveries that failed for good (5xx or expiry), counted per recipient.',
        '# TYPE vipmta_delivery_permanent_failures_total counter',
        'vipmta_delivery_permanent_failures_total 0',
        '',
        "# HELP vipmta_delivery_failures_total Recipient failures of delivery attempts by bounce class (Momentum's codes: 10 invalid recipient, 21 DNS failure, 22 mailbox full, 24 timeout/expired, 50 mail block, 51 spam block, 70 transient, ...): kind=\"transient\" (deferred for a retry) or \"permanent\" (bounced, expired).",
        '# TYPE vipmta_delivery_failures_total counter',
        'vipmta_delivery_failures_total{class="70",kind="transient"} 3',
        'vipmta_delivery_failures_total{class="22",kind="transient"} 1',
        'vipmta_delivery_failures_total{class="10",kind="permanent"} 1',
        '',
        '# HELP vipmta_queue_messages Queued messages per binding and queue state, counted per destination domain (a message to two domains counts twice).',
        '# TYPE vipmta_queue_messages gauge',
        'vipmta_queue_messages{binding_group="default",binding="default",state="active"} 2',
        'vipmta_queue_messages{binding_group="default",binding="default",state="deferred"} 1',
        'vipmta_queue_messages{binding_group="default",binding="default",state="hold"} 0',
        'vipmta_queue_messages{binding_group="news",binding="news-a",state="active"} 0',
        'vipmta_queue_messages{binding_group="news",binding="news-a",state="deferred"} 0',
        'vipmta_queue_messages{binding_group="news",binding="news-a",state="hold"} 4',
        '',
        '# HELP vipmta_spool_messages Messages in the spool (committed, not yet done).',
        '# TYPE vipmta_spool_messages gauge',
        'vipmta_spool_messages 7',
        '',
        '# HELP vipmta_spool_bytes Body bytes of the messages in the spool.',
        '# TYPE vipmta_spool_bytes gauge',
        'vipmta_spool_bytes 28672',
        '',
        '# HELP vipmta_spool_commit_latency_seconds Time from a spool commit to its data being durable.',
        '# TYPE vipmta_spool_commit_latency_seconds histogram',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.0001"} 3',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.00025"} 4',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.0005"} 4',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.001"} 4',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.0025"} 4',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.005"} 4',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.01"} 4',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.025"} 4',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.05"} 4',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.1"} 4',
        'vipmta_spool_commit_latency_seconds_bucket{le="0.25"} 4',
        'vipmta_spool_commit_latency_seconds_bucket{le="+Inf"} 5',
        'vipmta_spool_commit_latency_seconds_sum 1.25045',
        'vipmta_spool_commit_latency_seconds_count 5',
        '',
        '# HELP vipmta_spool_full 1 while the spool refuses commits for lack of space (new mail gets 452 4.3.1), else 0.',
        '# TYPE vipmta_spool_full gauge',
        'vipmta_spool_full 1',
        '',
        '# HELP vipmta_spool_full_errors_total Commits the spool refused for lack of space (ENOSPC, EDQUOT): a 452 4.3.1, a DSN or a #mmove receipt not written.',
        '# TYPE vipmta_spool_full_errors_total counter',
        'vipmta_spool_full_errors_total 3',
        '',
        '# HELP vipmta_spool_recovery_events_total Spool records found damaged at open: kind="corrupt" (moved to corrupt/, an acknowledged message lost), kind="torn_tail" (an unacknowledged write cut off).',
        '# TYPE vipmta_spool_recovery_events_total counter',
        'vipmta_spool_recovery_events_total{kind="corrupt"} 1',
        'vipmta_spool_recovery_events_total{kind="torn_tail"} 0',
        '',
        '# HELP vipmta_mmove_moved_total Recipients handed to the node that owns their binding (#mmove), each after its 250.',
        '# TYPE vipmta_mmove_moved_total counter',
        'vipmta_mmove_moved_total 6',
        '',
        '# HELP vipmta_mmove_duplicates_total Messages received over #mmove that were already spooled here (answered 250, not spooled again).',
        '# TYPE vipmta_mmove_duplicates_total counter',
        'vipmta_mmove_duplicates_total 2',
        '',
      ].join('\n'),
    );
  });

  it('has no process or runtime default metrics: every sample line is a vipmta_ series', async () => {
    const text = await buildMetrics(sources()).render();
    const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(samples.length).toBeGreaterThan(0);
    expect(samples.filter((l) => !l.startsWith('vipmta_'))).toEqual([]);
  });

  it('drops a binding\'s queue series once it is no longer reported', async () => {
    let rows = [{ bindingGroup: 'g', binding: 'gone', active: 1, deferred: 0, hold: 0 }];
    const m = buildMetrics(sources({ queues: () => rows }));
    expect(await m.render()).toContain('binding="gone"');
    rows = [];
    expect(await m.render()).not.toContain('binding="gone"');
  });

  it('escapes backslash, quote and line feed in label values (binding names come from the config)', async () => {
    const m = buildMetrics(sources({ queues: () => [{ bindingGroup: 'g\n1', binding: 'a"b\\c', active: 1, deferred: 0, hold: 0 }] }));
    expect(sample(await m.render(), 'vipmta_queue_messages{binding_group="g\\n1",binding="a\\"b\\\\c",state="active"}')).toBe(1);
  });

  it('follows the #mmove duplicate total supplied by the host, never going down', async () => {
    let dups = 3;
    const m = buildMetrics(sources({ mmoveDuplicates: () => dups }));
    expect(sample(await m.render(), 'vipmta_mmove_duplicates_total')).toBe(3);
    dups = 10;
    expect(sample(await m.render(), 'vipmta_mmove_duplicates_total')).toBe(10);
    dups = 4;
    expect(sample(await m.render(), 'vipmta_mmove_duplicates_total')).toBe(10);
  });

  it('keeps the spool series\' last values while the spool is closed; no latency series before the first', async () => {
    let open = false;
    const m = buildMetrics(sources({ spool: () => (open ? { messages: 2, bytes: 100, corrupt: 0, tornTails: 0, fullErrors: 0, latency: latency([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 50) } : null) }));
    let text = await m.render();
    expect(sample(text, 'vipmta_spool_messages')).toBe(0);
    expect(text).toContain('# TYPE vipmta_spool_commit_latency_seconds histogram');
    expect(text).not.toContain('vipmta_spool_commit_latency_seconds_count');
    open = true;
    await m.render();
    open = false;
    text = await m.render();
    expect(sample(text, 'vipmta_spool_messages')).toBe(2);
    expect(sample(text, 'vipmta_spool_bytes')).toBe(100);
    expect(sample(text, 'vipmta_spool_commit_latency_seconds_count')).toBe(1);
    expect(sample(text, 'vipmta_spool_commit_latency_seconds_sum')).toBe(0.00005);
  });

  it('treats a counter going down and a latency histogram of the wrong shape as programmer errors', async () => {
    const m = buildMetrics(sources({ spool: () => ({ messages: 0, bytes: 0, corrupt: 0, tornTails: 0, fullErrors: 0, latency: latency([1, 2], 0) }) }));
    expect(() => m.received.inc(-1)).toThrow(/decrease/);
    await expect(m.render()).rejects.toThrow(/expected 12 bucket counts, got 2/);
  });

  it('announces format 0.0.4', () => {
    expect(EXPOSITION_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('uses the native spool\'s latency bucket bounds', () => {
    const dir = tempDir('vipmta-metrics-');
    const spool = Spool.open({ directory: dir, nodeId: 'n1', sync: 'none' });
    try {
      const { boundsUs, counts } = spool.stats().latency;
      expect(boundsUs.slice(0, -1).map((us) => us / 1e6)).toEqual(SPOOL_LATENCY_BOUNDS_S);
      expect(boundsUs.at(-1)).toBe(Infinity);
      expect(counts).toHaveLength(SPOOL_LATENCY_BOUNDS_S.length + 1);
    } finally {
      void spool.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shows the cluster-wide limits, the shaping group\'s messages, outbound connections and inbound networks from the host\'s values at scrape time', async () => {
    let refused = 2;
    let claims = 5;
    const m = buildMetrics(sources({
      shaping: () => ({
        fired: new Map(), restrictions: [],
        groupMessages: { claims, release: 1 },
        limits: [{ key: 'mx:mx.example.net#conn', allowance: 2, target: 3, use: 1, cap: 5, clusterUse: 4 }],
        outbound: { open: 7, idle: 3, closeIdleCalls: 2 },
        inbound: [{ cidr: '203.0.113.0/24', open: 4, limit: 6, refused }],
      }),
    }));
    let text = await m.render();
    expect(sample(text, 'vipmta_cluster_limit_allowance{key="mx:mx.example.net#conn"}')).toBe(2);
    expect(sample(text, 'vipmta_cluster_limit_target{key="mx:mx.example.net#conn"}')).toBe(3);
    expect(sample(text, 'vipmta_cluster_limit_use{key="mx:mx.example.net#conn"}')).toBe(1);
    expect(sample(text, 'vipmta_cluster_limit_cap{key="mx:mx.example.net#conn"}')).toBe(5);
    expect(sample(text, 'vipmta_cluster_limit_cluster_use{key="mx:mx.example.net#conn"}')).toBe(4);
    expect(sample(text, 'vipmta_shaping_group_messages_sent_total{type="claims"}')).toBe(5);
    expect(sample(text, 'vipmta_outbound_connections{state="open"}')).toBe(7);
    expect(sample(text, 'vipmta_outbound_connections{state="idle"}')).toBe(3);
    expect(sample(text, 'vipmta_outbound_idle_closed_total')).toBe(2);
    expect(sample(text, 'vipmta_inbound_cidr_connections{cidr="203.0.113.0/24"}')).toBe(4);
    expect(sample(text, 'vipmta_inbound_cidr_limit{cidr="203.0.113.0/24"}')).toBe(6);
    expect(sample(text, 'vipmta_inbound_cidr_refused_total{cidr="203.0.113.0/24"}')).toBe(2);
    refused = 9;
    claims = 8;
    text = await m.render();
    expect(sample(text, 'vipmta_inbound_cidr_refused_total{cidr="203.0.113.0/24"}')).toBe(9);
    expect(sample(text, 'vipmta_shaping_group_messages_sent_total{type="claims"}')).toBe(8);
  });

  it('has no cluster series without a cluster source, and only HELP and TYPE before the manager is there', async () => {
    const text = await buildMetrics(sources()).render();
    expect(text).not.toMatch(/vipmta_cluster_view_id|vipmta_duravip_|vipmta_mmove_messages_total/);
    const early = await buildMetrics(sources({ cluster: () => null })).render();
    expect(early).toContain('# TYPE vipmta_duravip_address_state gauge');
    expect(early).not.toContain('vipmta_duravip_address_state{');
    expect(early).not.toContain('vipmta_duravip_failover_seconds_count');
  });

  it('shows the cluster from the host\'s values at scrape time: view, members, quorum, addresses held and their states, elections, moves, failovers, #mmove per peer', async () => {
    const counts = FAILOVER_BOUNDS_S.map(() => 0).concat(0);
    counts[2] = 1; // one failover of 0.03 s
    counts[6] = 1; // one of 0.7 s
    let v: ClusterValues = {
      viewId: 4, members: ['n01', 'n02', '3:1002'], quorate: true, corosyncUp: true,
      held: [{ node: 'n01', addresses: 2 }, { node: 'n02', addresses: 1 }],
      addresses: [{ address: '10.0.0.1', state: 'owned' }, { address: '10.0.0.2', state: 'unsafe' }, { address: '10.0.0.3', state: 'orphan' }],
      elections: 7, moves: 3, failovers: { counts, sum: 0.73 },
      mmove: [{ peer: 'n02', sentMessages: 5, receivedMessages: 2, receivedBytes: 3000 }],
    };
    const m = buildMetrics(sources({ cluster: () => v }));
    const text = await m.render();
    const block = (name: string) => text.slice(text.indexOf(`# HELP ${name} `)).split('\n\n')[0]!.trimEnd();
    expect(block('vipmta_cluster_view_id')).toBe([
      "# HELP vipmta_cluster_view_id This node's CPG view counter: a new value at every view change (members joined or left); 0 while it has no view.",
      '# TYPE vipmta_cluster_view_id gauge',
      'vipmta_cluster_view_id 4',
    ].join('\n'));
    expect(block('vipmta_cluster_member')).toBe([
      '# HELP vipmta_cluster_member Always 1, one series per member of the view, by node name (nodeid:pid until it has announced).',
      '# TYPE vipmta_cluster_member gauge',
      'vipmta_cluster_member{node="n01"} 1',
      'vipmta_cluster_member{node="n02"} 1',
      'vipmta_cluster_member{node="3:1002"} 1',
    ].join('\n'));
    expect(block('vipmta_duravip_address_state')).toBe([
      '# HELP vipmta_duravip_address_state Always 1, one series per DuraVIP of the last election, labelled with its state, the first that applies: broken (BROKEN, not managed), orphan (no owner), conflict (preferences in conflict), unsafe (UNSAFE: services differ), owned.',
      '# TYPE vipmta_duravip_address_state gauge',
      'vipmta_duravip_address_state{address="10.0.0.1",state="owned"} 1',
      'vipmta_duravip_address_state{address="10.0.0.2",state="unsafe"} 1',
      'vipmta_duravip_address_state{address="10.0.0.3",state="orphan"} 1',
    ].join('\n'));
    expect(block('vipmta_duravip_failover_seconds').split('\n').slice(1)).toEqual([
      '# TYPE vipmta_duravip_failover_seconds histogram',
      'vipmta_duravip_failover_seconds_bucket{le="0.01"} 0',
      'vipmta_duravip_failover_seconds_bucket{le="0.025"} 0',
      'vipmta_duravip_failover_seconds_bucket{le="0.05"} 1',
      'vipmta_duravip_failover_seconds_bucket{le="0.1"} 1',
      'vipmta_duravip_failover_seconds_bucket{le="0.25"} 1',
      'vipmta_duravip_failover_seconds_bucket{le="0.5"} 1',
      'vipmta_duravip_failover_seconds_bucket{le="1"} 2',
      'vipmta_duravip_failover_seconds_bucket{le="2.5"} 2',
      'vipmta_duravip_failover_seconds_bucket{le="5"} 2',
      'vipmta_duravip_failover_seconds_bucket{le="10"} 2',
      'vipmta_duravip_failover_seconds_bucket{le="30"} 2',
      'vipmta_duravip_failover_seconds_bucket{le="60"} 2',
      'vipmta_duravip_failover_seconds_bucket{le="300"} 2',
      'vipmta_duravip_failover_seconds_bucket{le="+Inf"} 2',
      'vipmta_duravip_failover_seconds_sum 0.73',
      'vipmta_duravip_failover_seconds_count 2',
    ]);
    expect(block('vipmta_mmove_bytes_total')).toBe([
      '# HELP vipmta_mmove_bytes_total Message bytes this node received over #mmove and spooled, per peer (direction="received" only: the size of what this node sends is not counted).',
      '# TYPE vipmta_mmove_bytes_total counter',
      'vipmta_mmove_bytes_total{peer="n02",direction="received"} 3000',
    ].join('\n'));
    expect(sample(text, 'vipmta_cluster_members')).toBe(3);
    expect(sample(text, 'vipmta_cluster_quorate')).toBe(1);
    expect(sample(text, 'vipmta_cluster_corosync_up')).toBe(1);
    expect(sample(text, 'vipmta_duravip_addresses_held{node="n01"}')).toBe(2);
    expect(sample(text, 'vipmta_duravip_addresses_held{node="n02"}')).toBe(1);
    expect(sample(text, 'vipmta_cluster_elections_total')).toBe(7);
    expect(sample(text, 'vipmta_duravip_moves_total')).toBe(3);
    expect(sample(text, 'vipmta_duravip_failovers_total')).toBe(2);
    expect(sample(text, 'vipmta_mmove_messages_total{peer="n02",direction="sent"}')).toBe(5);
    expect(sample(text, 'vipmta_mmove_messages_total{peer="n02",direction="received"}')).toBe(2);
    expect(text).toContain('# TYPE vipmta_cluster_elections_total counter');

    // The next view: n02 left, its address moved; a new peer; the states and members follow, the totals only go up.
    v = {
      ...v, viewId: 5, members: ['n01'], quorate: false, corosyncUp: false,
      held: [{ node: 'n01', addresses: 3 }],
      addresses: [{ address: '10.0.0.1', state: 'owned' }, { address: '10.0.0.2', state: 'broken' }, { address: '10.0.0.3', state: 'owned' }],
      elections: 9, moves: 4,
      mmove: [{ peer: 'n02', sentMessages: 5, receivedMessages: 2, receivedBytes: 3000 }, { peer: 'n03', sentMessages: 0, receivedMessages: 1, receivedBytes: 10 }],
    };
    const after = await m.render();
    expect(sample(after, 'vipmta_cluster_view_id')).toBe(5);
    expect(after).not.toContain('vipmta_cluster_member{node="n02"}');
    expect(after).not.toContain('vipmta_duravip_addresses_held{node="n02"}');
    expect(sample(after, 'vipmta_cluster_quorate')).toBe(0);
    expect(sample(after, 'vipmta_cluster_corosync_up')).toBe(0);
    expect(after.split('\n').filter((l) => l.startsWith('vipmta_duravip_address_state{'))).toEqual([
      'vipmta_duravip_address_state{address="10.0.0.1",state="owned"} 1',
      'vipmta_duravip_address_state{address="10.0.0.2",state="broken"} 1',
      'vipmta_duravip_address_state{address="10.0.0.3",state="owned"} 1',
    ]);
    expect(sample(after, 'vipmta_cluster_elections_total')).toBe(9);
    expect(sample(after, 'vipmta_duravip_moves_total')).toBe(4);
    expect(sample(after, 'vipmta_mmove_messages_total{peer="n03",direction="sent"}')).toBe(0);
    expect(sample(after, 'vipmta_mmove_messages_total{peer="n03",direction="received"}')).toBe(1);
    expect(sample(after, 'vipmta_mmove_bytes_total{peer="n02",direction="received"}')).toBe(3000);
  });
});
