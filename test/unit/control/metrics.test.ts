// The Prometheus registry and the node's metric set: the exact text exposition (format 0.0.4) for
// counters, gauges and histograms, escaping, and that the histogram buckets match the native spool's.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildMetrics, EXPOSITION_CONTENT_TYPE, formatValue, Registry, SPOOL_LATENCY_BOUNDS_S } from '../../../src/control/metrics.js';
import { Spool } from '../../../src/spool/index.js';
import { VERSION } from '../../../src/version.js';
import { tempDir } from '../../helpers/tmp.js';

describe('Prometheus registry', () => {
  it('renders counters and gauges with HELP and TYPE, an unlabelled one at 0 before its first use', () => {
    const r = new Registry();
    const c = r.counter('t_requests_total', 'Requests served.');
    const g = r.gauge('t_temperature', 'Degrees.', ['room']);
    const idle = r.counter('t_idle_total', 'Never incremented.');
    c.inc();
    c.inc(undefined, 2);
    g.set({ room: 'a' }, 21.5);
    g.set({ room: 'b' }, -3);
    expect(idle.get()).toBe(0);
    expect(r.render()).toBe(
      [
        '# HELP t_requests_total Requests served.',
        '# TYPE t_requests_total counter',
        't_requests_total 3',
        '# HELP t_temperature Degrees.',
        '# TYPE t_temperature gauge',
        't_temperature{room="a"} 21.5',
        't_temperature{room="b"} -3',
        '# HELP t_idle_total Never incremented.',
        '# TYPE t_idle_total counter',
        't_idle_total 0',
        '',
      ].join('\n'),
    );
  });

  it('escapes backslash, quote and line feed in label values, backslash and line feed in HELP', () => {
    const r = new Registry();
    r.gauge('t_g', 'Line one\nback\\slash "quoted"', ['path']).set({ path: 'C:\\dir\n"x"' }, 1);
    expect(r.render()).toBe(
      ['# HELP t_g Line one\\nback\\\\slash "quoted"', '# TYPE t_g gauge', 't_g{path="C:\\\\dir\\n\\"x\\""} 1', ''].join('\n'),
    );
  });

  it('renders a histogram as cumulative _bucket lines with le, a +Inf bucket, _sum and _count', () => {
    const r = new Registry();
    const h = r.histogram('t_latency_seconds', 'Latency.', [0.005, 0.01, 0.25], ['op']);
    for (const v of [0.001, 0.005, 0.007, 0.3, 2]) h.observe({ op: 'read' }, v);
    expect(r.render()).toBe(
      [
        '# HELP t_latency_seconds Latency.',
        '# TYPE t_latency_seconds histogram',
        't_latency_seconds_bucket{op="read",le="0.005"} 2',
        't_latency_seconds_bucket{op="read",le="0.01"} 3',
        't_latency_seconds_bucket{op="read",le="0.25"} 3',
        't_latency_seconds_bucket{op="read",le="+Inf"} 5',
        't_latency_seconds_sum{op="read"} 2.313',
        't_latency_seconds_count{op="read"} 5',
        '',
      ].join('\n'),
    );
  });

  it('loads a histogram from per-bucket counts kept elsewhere, a trailing Infinity bound being the +Inf bucket', () => {
    const r = new Registry();
    const h = r.histogram('t_h', 'Loaded.', [0.0001, 0.00025, Infinity]);
    h.load(undefined, [4, 0, 1], 0.5);
    expect(r.render()).toBe(
      ['# HELP t_h Loaded.', '# TYPE t_h histogram', 't_h_bucket{le="0.0001"} 4', 't_h_bucket{le="0.00025"} 4', 't_h_bucket{le="+Inf"} 5', 't_h_sum 0.5', 't_h_count 5', ''].join('\n'),
    );
    expect(() => h.load(undefined, [1, 2], 0)).toThrow(/expected 3 bucket counts/);
  });

  it('writes special values as Go reads them', () => {
    expect([Infinity, -Infinity, NaN, 0, 1e21, 0.0001].map(formatValue)).toEqual(['+Inf', '-Inf', 'NaN', '0', '1e+21', '0.0001']);
  });

  it('treats wrong names and labels as programmer errors', () => {
    const r = new Registry();
    expect(() => r.counter('bad-name', 'x')).toThrow(/invalid metric name/);
    expect(() => r.gauge('t_x', 'x', ['__reserved'])).toThrow(/invalid label name/);
    expect(() => r.histogram('t_h', 'x', [1], ['le'])).toThrow(/reserved/);
    expect(() => r.histogram('t_h2', 'x', [2, 1])).toThrow(/ascending/);
    const g = r.gauge('t_g', 'x', ['a']);
    expect(() => g.set({ b: '1' }, 1)).toThrow(/missing label "a"/);
    expect(() => g.set({ a: '1', b: '2' }, 1)).toThrow(/exactly/);
    expect(() => r.counter('t_c', 'x').inc(undefined, -1)).toThrow(/only goes up/);
    expect(() => r.gauge('t_g', 'again')).toThrow(/registered twice/);
  });

  it('announces format 0.0.4', () => {
    expect(EXPOSITION_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });
});

describe('node metrics', () => {
  it('exposes received, delivery counters, queue sizes per binding and state, spool size and commit latency', () => {
    const counts = [3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const m = buildMetrics({
      queues: () => [
        { bindingGroup: 'default', binding: 'default', active: 2, deferred: 1, hold: 0 },
        { bindingGroup: 'news', binding: 'news-a', active: 0, deferred: 0, hold: 4 },
      ],
      spool: () => ({ messages: 7, bytes: 28672, latency: { boundsUs: [...SPOOL_LATENCY_BOUNDS_S.map((s) => s * 1e6), Infinity], counts, sumUs: 1_250_450 } }),
    });
    m.received.inc(undefined, 5);
    expect(m.registry.render()).toBe(
      [
        '# HELP vipmta_build_info Always 1; labels name the vipmta and Node.js versions.',
        '# TYPE vipmta_build_info gauge',
        `vipmta_build_info{version="${VERSION}",node="${process.version}"} 1`,
        '# HELP vipmta_messages_received_total Messages accepted (250 after DATA) and committed to the spool.',
        '# TYPE vipmta_messages_received_total counter',
        'vipmta_messages_received_total 5',
        '# HELP vipmta_messages_delivered_total Deliveries that succeeded (2xx from the remote host), counted per recipient.',
        '# TYPE vipmta_messages_delivered_total counter',
        'vipmta_messages_delivered_total 0',
        '# HELP vipmta_delivery_transient_failures_total Delivery attempts deferred for a retry (4xx or no connection), counted per recipient.',
        '# TYPE vipmta_delivery_transient_failures_total counter',
        'vipmta_delivery_transient_failures_total 0',
        '# HELP vipmta_delivery_permanent_failures_total Deliveries that failed for good (5xx or expiry), counted per recipient.',
        '# TYPE vipmta_delivery_permanent_failures_total counter',
        'vipmta_delivery_permanent_failures_total 0',
        '# HELP vipmta_queue_messages Queued messages per binding and queue state, counted per destination domain (a message to two domains counts twice).',
        '# TYPE vipmta_queue_messages gauge',
        'vipmta_queue_messages{binding_group="default",binding="default",state="active"} 2',
        'vipmta_queue_messages{binding_group="default",binding="default",state="deferred"} 1',
        'vipmta_queue_messages{binding_group="default",binding="default",state="hold"} 0',
        'vipmta_queue_messages{binding_group="news",binding="news-a",state="active"} 0',
        'vipmta_queue_messages{binding_group="news",binding="news-a",state="deferred"} 0',
        'vipmta_queue_messages{binding_group="news",binding="news-a",state="hold"} 4',
        '# HELP vipmta_spool_messages Messages in the spool (committed, not yet done).',
        '# TYPE vipmta_spool_messages gauge',
        'vipmta_spool_messages 7',
        '# HELP vipmta_spool_bytes Body bytes of the messages in the spool.',
        '# TYPE vipmta_spool_bytes gauge',
        'vipmta_spool_bytes 28672',
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
      ].join('\n'),
    );
  });

  it('drops a binding\'s queue series once it is no longer reported', () => {
    let rows = [{ bindingGroup: 'g', binding: 'gone', active: 1, deferred: 0, hold: 0 }];
    const m = buildMetrics({ queues: () => rows, spool: () => null });
    expect(m.registry.render()).toContain('binding="gone"');
    rows = [];
    expect(m.registry.render()).not.toContain('binding="gone"');
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
});
