// HTTP injection against SMTP injection of the same messages, one vipmta, one run (issue 17):
// Postfix's smtp-source against the ESMTP listener (one recipient per message), then requests of
// 1, 100 and 1,000 recipients to POST /api/inject/v1 (Node's fetch, undici, from this process),
// each recipient a message of the same size. Recipients per second and the server's CPU per
// recipient. Mail is held (Suspend_Delivery), so the spool's fdatasync is the durable anchor.
//
// Build and run (from the repository root; needs `npx tsc -p tsconfig.json` first):
//   npx tsc --strict --target es2022 --module nodenext --moduleResolution nodenext --types node \
//     --skipLibCheck --rootDir bench --outDir node_modules/.cache/vipmta-bench bench/http-inject.ts \
//     && node node_modules/.cache/vipmta-bench/http-inject.js [options]
// Options: --recipients N (per case, default 4,000)  --size BYTES (default 4096)  --sessions N
//   (smtp-source sessions, default 16)  --per-request 1,100,1000  --concurrency 16,4,2 (requests in
//   flight for each --per-request)  --warmup N (recipients first, unmeasured, default 500)
//   --worker-threads 2
// Runs on the main thread; the HTTP client shares it (its CPU is reported apart).
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import { list, repoRoot } from './lib/repo.js';
import { treeCpuSeconds } from './lib/proc.js';
import { freePort, startVipmta } from './lib/servers.js';
import { runSmtpSource } from './lib/smtp-source.js';
import { f0, f2, machineLine } from './lib/report.js';

const { values: opt } = parseArgs({
  options: {
    recipients: { type: 'string', default: '4000' },
    size: { type: 'string', default: '4096' },
    sessions: { type: 'string', default: '16' },
    'per-request': { type: 'string', default: '1,100,1000' },
    concurrency: { type: 'string', default: '16,4,2' },
    warmup: { type: 'string', default: '500' },
    'worker-threads': { type: 'string', default: '2' },
  },
  strict: true,
});

const total = Number(opt.recipients);
const size = Number(opt.size);
const sessions = Number(opt.sessions);
const perRequest = list(opt['per-request'], 'per-request');
const concurrency = list(opt.concurrency, 'concurrency');
const warmup = Number(opt.warmup);
const SECRET = crypto.randomBytes(18).toString('base64url');

/** config/password.ts's PHC format, made here (the bench is compiled apart from src/). */
async function scryptHash(pw: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const hash = await new Promise<Buffer>((resolve, reject) => crypto.scrypt(pw, salt, 32, { N: 2 ** 10, r: 8, p: 1 }, (err, h) => (err === null ? resolve(h) : reject(err))));
  return `$scrypt$ln=10,r=8,p=1$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** About `size` bytes, like smtp-source's -l payload, with a substitution so each differs. */
function content(): string {
  const line = `${'x'.repeat(78)}\r\n`;
  return `From: <bench@client.invalid>\r\nTo: <{{email}}>\r\nSubject: bench {{n}}\r\n\r\n${line.repeat(Math.max(1, Math.round(size / line.length)))}`;
}

interface Row { what: string; recipients: number; seconds: number; rate: number; serverMs: number; clientMs: number; error: string }

async function httpCase(port: number, per: number, inFlight: number, count: number, rootPid: number): Promise<Row> {
  const body = content();
  const requests = Math.ceil(count / per);
  let next = 0;
  let sent = 0;
  let error = '';
  let k = 0;
  const one = async (): Promise<void> => {
    while (next < requests && error === '') {
      const i = next++;
      const n = Math.min(per, count - i * per);
      const recipients = Array.from({ length: n }, () => ({ email: `r${k}@example.com`, substitutions: { n: String(k++) } }));
      const r = await fetch(`http://127.0.0.1:${port}/api/inject/v1`, {
        method: 'POST',
        headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify({ envelope_sender: 'bench@client.invalid', content: body, recipients }),
      });
      const j = (await r.json()) as { success_count?: number; error?: string };
      if (r.status !== 200 || j.success_count !== n) error = `HTTP ${r.status}: ${JSON.stringify(j).slice(0, 200)}`;
      sent += j.success_count ?? 0;
    }
  };
  const cpu0 = treeCpuSeconds(rootPid);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, one));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu1 = treeCpuSeconds(rootPid);
  const c = process.cpuUsage(c0);
  return {
    what: `HTTP, ${per} per request, ${inFlight} in flight`, recipients: sent, seconds, rate: sent / seconds,
    serverMs: ((cpu1 - cpu0) * 1000) / sent, clientMs: (c.user + c.system) / 1000 / sent, error,
  };
}

async function main(): Promise<void> {
  const http = await freePort();
  const hash = await scryptHash(SECRET);
  const server = await startVipmta({
    name: 'vipmta', repoRoot: repoRoot(), workerThreads: Number(opt['worker-threads']), nodeFlags: [], logToFile: true,
    extraConfig: `Http_Injection {\n  Listen "127.0.0.1:${http}" { }\n  Max_Recipients = 10000\n  Max_Body_Size = 64M\n  Token "bench" { Secret = "${hash}" }\n}\n`,
  });
  const rows: Row[] = [];
  try {
    // Warm both paths (V8's JIT, the token's scrypt once per worker), unmeasured.
    await runSmtpSource({ port: server.port, messages: warmup, sessions, size, reuseConnections: true });
    await httpCase(http, 100, 2, warmup, server.rootPid);
    const cpu0 = treeCpuSeconds(server.rootPid);
    const load = await runSmtpSource({ port: server.port, messages: total, sessions, size, reuseConnections: true });
    const cpu1 = treeCpuSeconds(server.rootPid);
    rows.push({
      what: `SMTP (smtp-source -s ${sessions} -d, 1 recipient per message)`, recipients: total, seconds: load.wallSeconds, rate: total / load.wallSeconds,
      serverMs: ((cpu1 - cpu0) * 1000) / total, clientMs: (load.clientCpuSeconds * 1000) / total, error: load.ok ? '' : load.error.slice(-200),
    });
    for (const [i, per] of perRequest.entries()) rows.push(await httpCase(http, per, concurrency[i] ?? 2, total, server.rootPid));
    // Every acknowledged recipient is a message held in the queue: the run measured durable mail.
    const held = await server.count();
    const expected = warmup * 2 + rows.reduce((a, r) => a + r.recipients, 0);
    if (held !== expected) rows[0]!.error = `the queue holds ${held} messages, ${expected} were acknowledged`;
  } finally {
    await server.stop();
  }
  const smtp = rows[0]!;
  console.log(`${machineLine()}; ${total} recipients per case, ${size}-byte messages, Worker_Threads ${opt['worker-threads']}\n`);
  console.log('| injection | recipients/s | vs SMTP | server CPU ms/recipient | client CPU ms/recipient |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) {
    const rate = r.error === '' ? f0(r.rate) : `failed: ${r.error.replaceAll('|', '/')}`;
    console.log(`| ${r.what} | ${rate} | ${(r.rate / smtp.rate).toFixed(2)}x | ${f2(r.serverMs)} | ${f2(r.clientMs)} |`);
  }
}

await main();
