// HTTP injection end to end (issue 17): a real vipmta with Http_Injection on loopback takes
// POST /api/inject/v1, and the recipients' messages (substituted, MIME built) reach a sink; every
// refusal has its status; a slow client does not hold the listener; kill -9 right after a 200
// loses nothing acknowledged; another program on the port fails the start.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/config/password.js';
import { decodeEvent } from '../../src/events/codec.js';
import { EventJournal, Spool } from '../../src/spool/index.js';
import { freePort, killAll, startVipmta, type VipmtaProcess } from '../helpers/node-process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { startSink, type Sink } from './delivery-sink.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanup.splice(0).reverse()) await c();
});

const SECRET = 'tok-secret-1';
const OTHER = 'tok-secret-2';

interface Extra { top?: string; injection?: string; spool?: string }

async function config(http: number, sink: Sink, x: Extra = {}): Promise<string> {
  // A cheap scrypt cost: the test checks the flow, not the cost.
  const [h1, h2] = await Promise.all([hashPassword(SECRET, { ln: 4, r: 8, p: 1 }), hashPassword(OTHER, { ln: 4, r: 8, p: 1 })]);
  return `Worker_Threads = 2
Nodename = "h1"
Hostname = "mta.vipmta.test"
Resolver_Servers = ( "127.0.0.1:9" )
Spool { Directory = "./spool" ${x.spool ?? ''} }
Control_Listener { Listen "./run/control.sock" { } }
Domain "example.net" { Routes = ( "127.0.0.1:${sink.port}" ) }
Binding "b1" { Bind_Address = "127.0.0.1" }
Binding "b2" { Bind_Address = "127.0.0.1" }
${x.top ?? ''}
Http_Injection {
  Listen "127.0.0.1:${http}" { }
  Max_Body_Size = 64K
  Max_Recipients = 50
  Request_Deadline = 1s
  ${x.injection ?? ''}
  Token "sender" { Secret = "${h1}" Bindings = ( "b1" ) }
  Token "other" { Secret = "${h2}" }
}
`;
}

async function sinkUp(): Promise<Sink> {
  const s = await startSink();
  cleanup.push(() => s.close());
  return s;
}

interface Reply { status: number; body: Record<string, unknown>; retryAfter: string | null }

async function post(port: number, body: unknown, token: string | null = SECRET): Promise<Reply> {
  const r = await fetch(`http://127.0.0.1:${port}/api/inject/v1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token !== null ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown>, retryAfter: r.headers.get('retry-after') };
}

async function started(x: Extra = {}): Promise<{ node: VipmtaProcess; http: number; sink: Sink }> {
  const sink = await sinkUp();
  const http = await freePort();
  const node = startVipmta(await config(http, sink, x));
  await node.waitStarted();
  return { node, http, sink };
}

describe('HTTP injection', () => {
  it('delivers one message per recipient with its substitutions, built as MIME', async () => {
    const { http, sink } = await started();
    const r = await post(http, {
      envelope_sender: 'bounces@sender.test',
      content: {
        from: { email: 'news@sender.test', name: 'News' },
        subject: 'Hello {{first}}',
        text_body: 'Dear {{first}}, your code is {{code}}. {{footer}}',
        html_body: '<p>Dear {{first}}</p><p>{{code}}</p>',
        headers: { 'X-Campaign': '{{campaign}}' },
        attachments: [{ data: 'aGVsbG8gYXR0YWNobWVudA==', base64: true, content_type: 'text/plain', file_name: 'a.txt' }],
      },
      substitutions: { campaign: 'spring', footer: 'Bye', code: 'none' },
      recipients: [
        { email: 'alice@example.net', name: 'Alice A', substitutions: { first: 'Alice', code: 'A-1' } },
        { email: 'bob@example.net', substitutions: { first: 'Bob <b>', code: 'B-2' } },
        { email: 'not an address' },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success_count: 2, fail_count: 1, failed_recipients: ['not an address'] });
    const ids = r.body.queue_ids as Record<string, string>;
    expect(Object.keys(ids).sort()).toEqual(['alice@example.net', 'bob@example.net']);
    await waitFor('two deliveries', () => sink.transactions.length >= 2, { timeoutMs: 30_000 });
    const byRcpt = new Map(sink.transactions.map((t) => [t.rcpt[0]!, t.body.toString('latin1')]));
    const alice = byRcpt.get('alice@example.net')!;
    const bob = byRcpt.get('bob@example.net')!;
    expect(sink.transactions.every((t) => t.from === 'bounces@sender.test')).toBe(true);
    expect(alice).toMatch(/^Received: from \[127\.0\.0\.1\]/);
    expect(alice).toMatch(/^Subject: Hello Alice\r$/m);
    expect(alice).toMatch(/^To: Alice A <alice@example\.net>\r$/m);
    expect(alice).toMatch(/^X-Campaign: spring\r$/m);
    expect(alice).toMatch(/^Content-Type: multipart\/mixed; boundary=/m);
    expect(alice).toMatch(/^Content-Type: multipart\/alternative;\s+boundary=/m);
    expect(alice).toContain('Dear Alice, your code is A-1. Bye');
    expect(alice).toContain('<p>Dear Alice</p><p>A-1</p>');
    expect(alice).toContain('aGVsbG8gYXR0YWNobWVudA==');
    // The HTML part escapes {{x}} (mustache's rule), the text part does not.
    expect(bob).toContain('Dear Bob <b>, your code is B-2');
    expect(bob).toContain('<p>Dear Bob &lt;b&gt;</p>');
    expect(bob).not.toContain('Alice');
  });

  it('answers each refusal with the status a client can act on', async () => {
    // The admin API's uWS on the main thread and the workers' in one process, each on its port.
    const admin = await freePort();
    const { node, http } = await started({ top: `Http_Listener { Listen "127.0.0.1:${admin}" { } }` });
    expect((await fetch(`http://127.0.0.1:${admin}/health`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${admin}/api/inject/v1`, { method: 'POST', body: '{}' })).status).toBe(404);
    const ok = { envelope_sender: 's@sender.test', content: 'Subject: x\r\n\r\nhi {{name}}\r\n', recipients: [{ email: 'r@example.net' }] };
    const empty = await post(http, '');
    expect([empty.status, empty.body.field]).toEqual([400, 'body']);
    const bad = await post(http, '{"envelope_sender": ');
    expect(bad.status).toBe(400);
    expect(bad.body.field).toBe('body');
    const missing = await post(http, { ...ok, content: undefined });
    expect(missing.status).toBe(400);
    expect(missing.body.field).toBe('content');
    const tpl = await post(http, { ...ok, content: 'Subject: {{#a}}\r\n\r\nx' });
    expect(tpl.status).toBe(400);
    expect(tpl.body.field).toBe('content');
    const big = await post(http, { ...ok, content: `Subject: x\r\n\r\n${'x'.repeat(70_000)}` });
    expect(big.status).toBe(413);
    const many = await post(http, { ...ok, recipients: Array.from({ length: 51 }, (_, i) => ({ email: `r${i}@example.net` })) });
    expect(many.status).toBe(413);
    expect(many.body.field).toBe('recipients');
    expect((await post(http, ok, null)).status).toBe(401);
    expect((await post(http, ok, 'wrong')).status).toBe(401);
    const unknown = await post(http, { ...ok, binding: 'nosuch' });
    expect(unknown.status).toBe(403);
    expect(unknown.body.field).toBe('binding');
    expect((await post(http, { ...ok, binding: 'b2' })).status).toBe(403);
    expect((await post(http, { ...ok, binding: 'b1' }, OTHER)).status).toBe(403);
    const allowed = await post(http, { ...ok, binding: 'b1' });
    expect(allowed.status).toBe(200);
    expect(allowed.body.success_count).toBe(1);
    const get = await fetch(`http://127.0.0.1:${http}/api/inject/v1`);
    expect(get.status).toBe(404);
    // Every answer counted, whichever worker gave it (an operator sees refusals on /metrics).
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    const count = (name: string, label: string): number => Number(new RegExp(`^${name}\\{${label}\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? NaN);
    expect([400, 401, 403, 404, 413, 200].map((st) => count('vipmta_http_injection_requests_total', `status="${st}"`))).toEqual([4, 2, 3, 1, 2, 1]);
    expect(count('vipmta_http_injection_recipients_total', 'result="accepted"')).toBe(1);
    // The workers' HTTP servers close with them: a clean stop, not a crash at exit.
    node.signal('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });

  it('does not let a slow client hold the listener: others are served, the slow one gets 408', async () => {
    const { http } = await started();
    const slow = net.connect(http, '127.0.0.1');
    let answer = '';
    slow.setEncoding('latin1').on('data', (d: string) => (answer += d));
    const closed = new Promise<void>((r) => slow.on('close', () => r()));
    await new Promise<void>((r) => slow.once('connect', () => r()));
    slow.write(`POST /api/inject/v1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"envelope_sender":`);
    const r = await post(http, { envelope_sender: 's@sender.test', content: 'Subject: x\r\n\r\nhi\r\n', recipients: [{ email: 'r@example.net' }] });
    expect(r.status).toBe(200);
    expect(answer).toBe('');
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('answers 429 with Retry-After past Max_Concurrent_Requests', async () => {
    const { http } = await started({ injection: 'Max_Concurrent_Requests = 1' });
    // A request whose body never ends holds the one place until its deadline.
    const slow = net.connect(http, '127.0.0.1');
    await new Promise<void>((r) => slow.once('connect', () => r()));
    slow.write(`POST /api/inject/v1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\nContent-Length: 100\r\n\r\n{`);
    const ok = { envelope_sender: 's@sender.test', content: 'Subject: x\r\n\r\nhi\r\n', recipients: [{ email: 'r@example.net' }] };
    const busy = await waitFor('a 429', async () => {
      const r = await post(http, ok);
      return r.status === 429 ? r : null;
    }, { timeoutMs: 10_000 });
    expect(busy.retryAfter).toBe('1');
    slow.destroy();
    await waitFor('the place freed', async () => (await post(http, ok)).status === 200, { timeoutMs: 10_000 });
  });

  it('answers 507 with Retry-After, never 200, when the spool refuses (event journal at its cap)', async () => {
    // Held mail, and a journal cap a few hundred reception records reach: the spool refuses them.
    const { http } = await started({ top: 'Suspend_Delivery = true', spool: 'Event_Journal_Max_Size = 64K Event_Journal_Retention = 16K Event_Journal_At_Cap = "refuse"' });
    const recipients = Array.from({ length: 50 }, (_, i) => ({ email: `f${i}@example.net` }));
    let accepted = 0;
    const full = await waitFor('a 507', async () => {
      const r = await post(http, { envelope_sender: 's@sender.test', content: 'Subject: x\r\n\r\nhi\r\n', recipients });
      expect([200, 507]).toContain(r.status);
      accepted += r.body.success_count as number;
      return r.status === 507 ? r : null;
    }, { timeoutMs: 60_000, intervalMs: 1 });
    expect(full.retryAfter).toBe('60');
    expect(accepted).toBeGreaterThan(0);
    // What was taken is named with its queue id; what was not is to be sent again.
    const b = full.body as { success_count: number; fail_count: number; failed_recipients: string[]; queue_ids: Record<string, string> };
    expect(b.fail_count).toBeGreaterThan(0);
    expect(b.success_count + b.fail_count).toBe(50);
    expect(Object.keys(b.queue_ids)).toHaveLength(b.success_count);
    expect(b.failed_recipients.every((r) => !(r in b.queue_ids))).toBe(true);
  });

  it('loses nothing it acknowledged when killed right after the 200', async () => {
    const sink = await sinkUp();
    const http = await freePort();
    const text = await config(http, sink);
    const node = startVipmta(`Suspend_Delivery = true\n${text}`);
    await node.waitStarted();
    const recipients = Array.from({ length: 40 }, (_, i) => ({ email: `k${i}@example.net`, substitutions: { n: String(i) } }));
    const r = await post(http, { envelope_sender: 's@sender.test', content: 'Subject: kill {{n}}\r\nMessage-ID: <{{n}}@kill.test>\r\n\r\nbody {{n}}\r\n', recipients });
    node.signal('SIGKILL');
    await node.exited;
    expect(r.status).toBe(200);
    const ids = r.body.queue_ids as Record<string, string>;
    expect(Object.keys(ids)).toHaveLength(40);
    const spool = Spool.open({ directory: path.join(node.cwd, 'spool'), nodeId: 'reader', sync: 'none' });
    try {
      spool.recover();
      for (const [rcpt, id] of Object.entries(ids)) {
        const n = /^k(\d+)@/.exec(rcpt)![1];
        expect(spool.read(id).toString('latin1')).toContain(`body ${n}\r\n`);
      }
    } finally {
      await spool.close();
    }
    // Each has its reception record, written in the same commit: the token as user, the HTTP listener.
    const journal = new EventJournal({ directory: path.join(node.cwd, 'spool') });
    const receptions = new Map<string, { listener?: string | null; user?: string }>();
    for (let from = 1; ;) {
      const r = journal.read(from, 10_000);
      for (const rec of r.records) {
        const e = decodeEvent(rec.data, { ...(rec.id !== null ? { id: rec.id } : {}), seq: rec.seq, time: rec.time, node: 'h1' });
        if (e.type === 'reception') receptions.set(e.id, e as { listener?: string | null; user?: string });
      }
      if (r.records.length === 0 || r.next <= from) break;
      from = r.next;
    }
    for (const id of Object.values(ids)) expect(receptions.get(id)).toMatchObject({ listener: `http:127.0.0.1:${http}`, user: 'sender' });
    const again = startVipmta(text, { cwd: node.cwd });
    await again.waitStarted();
    await waitFor('every acknowledged message delivered', () => sink.transactions.length >= 40, { timeoutMs: 60_000 });
    expect(new Set(sink.transactions.map((t) => t.rcpt[0])).size).toBe(40);
  });

  it('serves HTTPS from TLS_Certificate and TLS_Key, with Basic as the token\'s name and secret', async () => {
    const dir = tempDir('inject-tls-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=mta.vipmta.test',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const { http, sink } = await started({ injection: `TLS_Certificate = "${dir}/cert.pem"\n  TLS_Key = "${dir}/key.pem"` });
    const body = JSON.stringify({ envelope_sender: 's@sender.test', content: 'Subject: tls\r\n\r\nover tls\r\n', recipients: [{ email: 'tls@example.net' }] });
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port: http, path: '/api/inject/v1', method: 'POST', ca: fs.readFileSync(path.join(dir, 'cert.pem')), servername: 'mta.vipmta.test',
        headers: { authorization: `Basic ${Buffer.from(`sender:${SECRET}`).toString('base64')}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ success_count: 1 });
    await waitFor('the delivery', () => sink.transactions.find((t) => t.rcpt[0] === 'tls@example.net'), { timeoutMs: 30_000 });
    expect(sink.transactions.find((t) => t.rcpt[0] === 'tls@example.net')!.body.toString('latin1')).toMatch(/^Received: from \[127\.0\.0\.1\]\r\n\tby mta\.vipmta\.test \(vipmta\) with HTTPSA;/);
    // Plain HTTP on the TLS port gets no answer.
    await expect(post(http, JSON.parse(body))).rejects.toThrow();
  });

  it('moves to a new address on reload, and a reload to a port another program holds fails and changes nothing', async () => {
    const { node, http, sink } = await started();
    const ok = { envelope_sender: 's@sender.test', content: 'Subject: x\r\n\r\nhi\r\n', recipients: [{ email: 'r@example.net' }] };
    const moved = await freePort();
    fs.writeFileSync(node.configFile!, await config(moved, sink));
    const r1 = await node.console('config', 'reload');
    expect(r1.stdout).toContain('config reloaded');
    expect((await post(moved, ok)).status).toBe(200);
    await waitFor('the old address closed', async () => (await post(http, ok).catch(() => null)) === null, { timeoutMs: 40_000 });

    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise((r) => squatter.close(() => r())));
    const taken = (squatter.address() as net.AddressInfo).port;
    fs.writeFileSync(node.configFile!, await config(taken, sink));
    const r2 = await node.console('config', 'reload');
    expect(r2.stdout + r2.stderr).toMatch(/Http_Injection "127\.0\.0\.1:\d+" cannot listen .*EADDRINUSE/);
    expect((await post(moved, ok)).status).toBe(200);
  });

  it('fails the start when another program holds its port', async () => {
    const sink = await sinkUp();
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise((r) => squatter.close(() => r())));
    const port = (squatter.address() as net.AddressInfo).port;
    const node = startVipmta(await config(port, sink));
    const { code } = await node.exited;
    expect(code).not.toBe(0);
    expect(node.stdout + node.stderr).toMatch(/Http_Injection "127\.0\.0\.1:\d+" cannot listen .*EADDRINUSE/);
  });
});
