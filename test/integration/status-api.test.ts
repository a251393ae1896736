// The status page and its API on a real vipmta process (one node, no Cluster stanza): GET / is a
// self-contained page, GET /api/cluster/v1/state the versioned document, and the event stream sends
// the whole document, then a delta when mail is queued. Loopback only, kernel-chosen ports.
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusDelta, StatusState } from '../../src/control/status.js';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';

afterEach(killAll);

async function start(): Promise<{ base: string; smtp: number }> {
  const smtp = await freePort();
  const http = await freePort();
  const node = startVipmta(`Worker_Threads = 1
Nodename = "n1"
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Suspend_Delivery = true
Spool { Directory = "./spool" }
Http_Listener { Listen "127.0.0.1:${http}" { } }
Binding_Group "news" { Binding "news-a" { } }
`);
  await node.waitStarted();
  return { base: `http://127.0.0.1:${http}`, smtp };
}

/** Reads server-sent events from a fetch body until `done` says enough. */
async function events(body: ReadableStream<Uint8Array>, done: (evs: { event: string; data: unknown }[]) => boolean): Promise<{ event: string; data: unknown }[]> {
  const reader = body.getReader();
  const dec = new TextDecoder();
  const out: { event: string; data: unknown }[] = [];
  let buf = '';
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) throw new Error(`stream ended after ${out.length} event(s)`);
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (ev !== undefined && data !== undefined) out.push({ event: ev, data: JSON.parse(data) });
    }
    if (done(out)) {
      await reader.cancel();
      return out;
    }
  }
}

describe('status page and API', () => {
  it('serves a self-contained page at /', async () => {
    const { base } = await start();
    const r = await fetch(`${base}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await r.text();
    expect(html).toContain('<title>vipmta status</title>');
    expect(html).toContain("new EventSource('api/cluster/v1/stream')");
    // No external asset: nothing loaded from another origin.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect((await fetch(`${base}/api/cluster/v1/state`, { method: 'POST' })).status).toBe(405);
  });

  it('answers the state document and streams the whole document, then deltas', async () => {
    const { base, smtp } = await start();
    const r = await fetch(`${base}/api/cluster/v1/state`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    const s = (await r.json()) as StatusState;
    expect(s.version).toBe(1);
    expect(s.node.name).toBe('n1');
    expect(s.cluster).toBeNull();
    expect(s.addresses).toEqual([]);
    // Idle bindings are left out.
    expect(s.queues).toEqual([]);

    const ac = new AbortController();
    const st = await fetch(`${base}/api/cluster/v1/stream`, { signal: ac.signal });
    expect(st.status).toBe(200);
    expect(st.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const got = events(st.body!, (evs) => evs.some((e) => e.event === 'delta' && (e.data as StatusDelta).upsert?.queues !== undefined));
    // The first event must be the whole document before we inject.
    const { client } = await SmtpTestClient.connect(smtp);
    expect((await client.send('s@client.test', ['r1@dest.test'], wireMessage('one', ['x']))).code).toBe(250);
    await client.quit();
    const evs = await got;
    ac.abort();
    expect(evs[0]!.event).toBe('state');
    const first = evs[0]!.data as StatusState;
    expect(first.version).toBe(1);
    const d = evs.find((e) => e.event === 'delta')!.data as StatusDelta;
    expect(d.seq).toBeGreaterThan(first.seq);
    expect(d.upsert!.queues).toEqual([{ bindingGroup: 'default', binding: 'default', active: 1, deferred: 0, hold: 0 }]);
    // The node still serves after the client went away.
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });
});
