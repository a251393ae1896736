// Delivery client micro benchmark (issue 4, item 3): does our own SMTP client (src/delivery, with
// PIPELINING and pre-stuffed wire-form bodies) beat nodemailer's smtp-connection, the well-kept
// client the issue names? Both deliver the same N messages of 4 KiB over one connection to the same
// smtp-server sink, which runs in a child process so it does not share the clients' event loop.
// Prints a markdown table: messages/s and the ratio against nodemailer measured in the same run.
//
// Build and run (from the repository root; needs dist/: `npm run build` first):
//   npx tsc --strict --target es2022 --module nodenext --moduleResolution nodenext --types node \
//     --skipLibCheck --rootDir bench --outDir node_modules/.cache/vipmta-bench bench/delivery-client.bench.ts \
//     && node node_modules/.cache/vipmta-bench/delivery-client.bench.js [--time MS] [--messages N]
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { Bench } from 'tinybench';

// The compiled engine (dist/), typed locally so this file compiles on its own.
interface Engine {
  deliver(b: object, t: object, tls: object, m: { id: string; from: string; rcpt: string[]; body: Buffer }[]): Promise<{ results: { status: string }[] }[]>;
  close(): Promise<void>;
}
interface DeliveryModule {
  DeliveryEngine: new (o: object) => Engine;
}

const { values: args } = parseArgs({
  options: { time: { type: 'string', default: '3000' }, messages: { type: 'string', default: '200' } },
});
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const mod = (await import(pathToFileURL(path.join(root, 'dist', 'delivery', 'index.js')).href)) as DeliveryModule;
const N = Number(args.messages);

// The sink: smtp-server that reads and discards every message, in its own process.
const SINK = `
import { SMTPServer } from 'smtp-server';
const s = new SMTPServer({ logger: false, authOptional: true, disableReverseLookup: true, disabledCommands: ['AUTH', 'STARTTLS'],
  size: 64 << 20, hideENHANCEDSTATUSCODES: false,
  onData(stream, _s, cb) { stream.on('data', () => {}); stream.on('end', () => cb()); } });
s.listen(0, '127.0.0.1', () => console.log(s.server.address().port));
`;
// A second sink that only answers: canned replies, the end of data found with indexOf. It costs
// next to nothing, so what remains is the clients' own cost and the round trips.
const RAW_SINK = `
import net from 'node:net';
const END = Buffer.from('\\r\\n.\\r\\n');
const srv = net.createServer((c) => {
  c.setNoDelay(true);
  let data = false, buf = Buffer.alloc(0);
  c.write('220 raw ESMTP\\r\\n');
  c.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    let out = '';
    for (;;) {
      if (data) {
        const e = buf.indexOf(END);
        if (e < 0) { if (buf.length > 4) buf = buf.subarray(buf.length - 4); break; }
        buf = buf.subarray(e + 5); data = false; out += '250 2.0.0 ok\\r\\n'; continue;
      }
      const nl = buf.indexOf(10);
      if (nl < 0) break;
      const cmd = buf.toString('latin1', 0, 4).toUpperCase();
      buf = buf.subarray(nl + 1);
      if (cmd === 'EHLO') out += '250-raw\\r\\n250-PIPELINING\\r\\n250 SIZE 67108864\\r\\n';
      else if (cmd === 'DATA') { out += '354 go\\r\\n'; data = true; }
      else if (cmd === 'QUIT') { out += '221 bye\\r\\n'; c.end(out); return; }
      else out += '250 2.0.0 ok\\r\\n';
    }
    if (out) c.write(out);
  });
  c.on('error', () => {});
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
`;

async function startSink(code: string): Promise<{ port: number; kill(): void }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const p = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  return { port: p, kill: () => child.kill('SIGTERM') };
}
const sinks = { 'smtp-server': await startSink(SINK), 'raw replies': await startSink(RAW_SINK) };
let port = 0;

/** A 4 KiB message: `unstuffed` for nodemailer (it stuffs), `wire` (dot-stuffed) for our client. */
function message(size: number): { unstuffed: Buffer; wire: Buffer } {
  const lines = ['From: <bench@src.test>', 'To: <rcpt@dest.test>', 'Subject: bench', ''];
  let n = lines.join('\r\n').length;
  for (let i = 0; n < size; i++) {
    const l = (i % 10 === 0 ? '.' : '') + 'x'.repeat(74);
    lines.push(l);
    n += l.length + 2;
  }
  const text = lines.join('\r\n') + '\r\n';
  const wire = lines.map((l) => (l.startsWith('.') ? '.' + l : l)).join('\r\n') + '\r\n';
  return { unstuffed: Buffer.from(text), wire: Buffer.from(wire) };
}
const body = message(4096);
const rcptSets = { '1 rcpt': ['a@dest.test'], '3 rcpts': ['a@dest.test', 'b@dest.test', 'c@dest.test'] };

function nodemailerRun(rcpt: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = new SMTPConnection({ host: '127.0.0.1', port, name: 'bench.test', ignoreTLS: true, logger: false });
    c.once('error', reject);
    c.connect(() => {
      let i = 0;
      const next = () => {
        if (i++ === N) {
          c.quit();
          return resolve();
        }
        c.send({ from: 'bench@src.test', to: rcpt }, body.unstuffed, (err) => (err ? reject(err) : next()));
      };
      next();
    });
  });
}

const engine = new mod.DeliveryEngine({
  connectTimeoutMs: 5000, commandTimeoutMs: 30000, maxDeliveriesPerConnection: N * 100, idleTimeoutMs: 0,
  logger: { debug() {}, warn() {} },
});
const binding = { name: 'bench', bindAddress: '127.0.0.1', ehloHostname: 'bench.test' };
async function vipmtaRun(rcpt: string[]): Promise<void> {
  const msgs = Array.from({ length: N }, (_, i) => ({ id: String(i), from: 'bench@src.test', rcpt, body: body.wire }));
  const res = await engine.deliver(binding, { domain: 'dest.test', routes: [{ host: '127.0.0.1', port }] }, { mode: 'opportunistic', verify: false }, msgs);
  if (res.some((m) => m.results.some((r) => r.status !== 'delivered'))) throw new Error('a message was not delivered');
}

const rows: string[] = [];
for (const [sinkName, sink] of Object.entries(sinks)) for (const [label, rcpt] of Object.entries(rcptSets)) {
  port = sink.port;
  const bench = new Bench({ time: Number(args.time), warmupIterations: 5, iterations: 30 });
  bench.add('nodemailer smtp-connection', () => nodemailerRun(rcpt));
  bench.add('vipmta delivery client', () => vipmtaRun(rcpt));
  await bench.run();
  const rate = (name: string) => {
    const t = bench.tasks.find((x) => x.name === name)!;
    const r = t.result as unknown as { latency?: { p50?: number; mean: number } } | undefined;
    if (r?.latency === undefined) throw new Error(`${name}: no result (${JSON.stringify(t.result)})`);
    // The median: on a 2 vCPU machine one descheduled iteration moves the mean a lot.
    return (N * 1000) / (r.latency.p50 ?? r.latency.mean);
  };
  const a = rate('nodemailer smtp-connection');
  const b = rate('vipmta delivery client');
  rows.push(`| ${sinkName} | 4 KiB, ${label} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(2)}x |`);
}
await engine.close();
for (const s of Object.values(sinks)) s.kill();

console.log(`\nmedian of the iterations; ${N} messages per connection, one connection at a time, sinks in child processes; Node ${process.version}\n`);
console.log('| sink | load | nodemailer msg/s | vipmta msg/s | ratio |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(r);
