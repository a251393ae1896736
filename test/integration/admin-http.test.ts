// The HTTP admin API of a real vipmta process: /health, /metrics rising after real SMTP injection,
// /stats/queues/mailq agreeing with the console's mailq, 404/405, and a port already taken failing
// the start with EADDRINUSE. Loopback only, kernel-chosen ports. Scrape latency is a benchmark:
// bench/admin-http.ts (npm run bench:admin-http).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { formatMailq, type MailqRow } from '../../src/queue/views.js';
import { freePort, killAll, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';

afterEach(killAll);

interface Node {
  node: VipmtaProcess;
  smtp: number;
  base: string;
}

async function start(): Promise<Node> {
  const smtp = await freePort();
  const http = await freePort();
  const node = startVipmta(`Worker_Threads = 2
Nodename = "n1"
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Suspend_Delivery = true
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Http_Listener { Listen "127.0.0.1:${http}" { } }
Binding_Group "news" { Binding "news-a" { } }
`);
  await node.waitStarted();
  return { node, smtp, base: `http://127.0.0.1:${http}` };
}

/** One sample's value from the exposition text, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function metrics(base: string): Promise<string> {
  const r = await fetch(`${base}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return r.text();
}

/** Polls /metrics until `pred` holds (the main thread learns of accepted mail asynchronously). */
async function metricsUntil(base: string, pred: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const text = await metrics(base);
    if (pred(text)) return text;
    if (Date.now() > until) throw new Error(`metrics never matched; last:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('HTTP admin API', () => {
  it('answers /health and exposes every metric, configured bindings at 0', async () => {
    const { base } = await start();
    const h = await fetch(`${base}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok' });
    const text = await metrics(base);
    expect(sample(text, 'vipmta_messages_received_total')).toBe(0);
    for (const n of ['vipmta_messages_delivered_total', 'vipmta_delivery_transient_failures_total', 'vipmta_delivery_permanent_failures_total', 'vipmta_mmove_moved_total', 'vipmta_mmove_duplicates_total']) {
      expect(sample(text, n), n).toBe(0);
    }
    expect(sample(text, 'vipmta_queue_messages{binding_group="news",binding="news-a",state="active"}')).toBe(0);
    expect(sample(text, 'vipmta_queue_messages{binding_group="default",binding="default",state="deferred"}')).toBe(0);
    expect(sample(text, 'vipmta_spool_bytes')).toBe(0);
    expect(sample(text, 'vipmta_spool_commit_latency_seconds_count')).toBe(0);
    expect(text).toContain('# TYPE vipmta_spool_commit_latency_seconds histogram');
  });

  it('counts received mail, queue sizes, spool bytes and commit latency after real injection', async () => {
    const { base, smtp } = await start();
    const { client } = await SmtpTestClient.connect(smtp);
    const a = await client.send('s@client.test', ['r1@dest.test', 'r2@other.test'], wireMessage('one', ['body']));
    const b = await client.send('s@client.test', ['r3@dest.test'], wireMessage('two', ['body']));
    expect([a.code, b.code]).toEqual([250, 250]);
    await client.quit();
    const text = await metricsUntil(base, (t) => sample(t, 'vipmta_messages_received_total') === 2);
    // Per destination domain: the first message has recipients in two domains.
    expect(sample(text, 'vipmta_queue_messages{binding_group="default",binding="default",state="active"}')).toBe(3);
    expect(sample(text, 'vipmta_queue_messages{binding_group="news",binding="news-a",state="active"}')).toBe(0);
    expect(sample(text, 'vipmta_spool_messages')).toBe(2);
    expect(sample(text, 'vipmta_spool_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'vipmta_spool_commit_latency_seconds_count')).toBe(2);
    expect(sample(text, 'vipmta_spool_commit_latency_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(sample(text, 'vipmta_spool_commit_latency_seconds_sum')).toBeGreaterThan(0);
  });

  it('serves the same queue data as the console mailq, filters included', async () => {
    const { node, base, smtp } = await start();
    const { client } = await SmtpTestClient.connect(smtp);
    expect((await client.send('s@client.test', ['r1@dest.test', 'r2@other.test'], wireMessage('one', ['x']))).code).toBe(250);
    expect((await client.send('s@client.test', ['r3@dest.test'], wireMessage('two', ['x']))).code).toBe(250);
    await client.quit();
    await metricsUntil(base, (t) => sample(t, 'vipmta_messages_received_total') === 2);
    const r = await fetch(`${base}/stats/queues/mailq`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    const q = (await r.json()) as { rows: MailqRow[]; totals: { messages: number; active: number; deferred: number; hold: number } };
    expect(q).toEqual({
      rows: [
        { bindingGroup: 'default', binding: 'default', domain: 'dest.test', active: 2, deferred: 0, hold: 0 },
        { bindingGroup: 'default', binding: 'default', domain: 'other.test', active: 1, deferred: 0, hold: 0 },
      ],
      totals: { messages: 2, active: 3, deferred: 0, hold: 0 },
    });
    expect(formatMailq(q.rows, q.totals)).toBe((await node.console('mailq')).stdout);
    const f = (await (await fetch(`${base}/stats/queues/mailq?domain=other.test`)).json()) as typeof q;
    // "--": `vipmta console` parses its own options strictly and would take -d for one of them.
    const filtered = await node.console('--', 'mailq', '-d', 'other.test');
    expect(filtered.stdout).toContain('other.test');
    expect(formatMailq(f.rows, f.totals)).toBe(filtered.stdout);
  });

  it('answers 404 for unknown paths and 405 for other methods', async () => {
    const { base } = await start();
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/stats/queues`)).status).toBe(404);
    const r = await fetch(`${base}/health`, { method: 'POST' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET');
    // Still serving after the errors.
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('fails the start with EADDRINUSE when its port is taken, and says which', async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const node = startVipmta(`Worker_Threads = 1
ESMTP_Listener { Listen "127.0.0.1:${await freePort()}" { } }
Suspend_Delivery = true
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Http_Listener { Listen "127.0.0.1:${port}" { } }
`);
      const { code } = await node.exited;
      expect(code).toBe(1);
      expect(node.stderr).toContain(`HTTP admin API cannot listen on 127.0.0.1:${port}: the port is in use`);
    } finally {
      holder.close();
    }
  });
});
