// Where one connection's time goes: a vipmta of this checkout (defaults, mail held, log at info)
// on a free loopback port, then one client connection at a time (connect, EHLO, MAIL, RCPT, DATA,
// a 4 KiB body, QUIT), each step timed from the client's last write to the server's reply.
// Usage (repository root, after `npx tsc -p tsconfig.json`):
//   node bench/connection-steps.mjs [--connections 300] [--warmup 50]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({ options: { connections: { type: 'string', default: '300' }, warmup: { type: 'string', default: '50' } } });
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vipmta-steps-'));
const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
fs.writeFileSync(path.join(dir, 'vipmta.conf'), `Log_Level = "info"\nHostname = "bench.invalid"\nNodename = "bench"\nSuspend_Delivery = true\nESMTP_Listener { Listen "127.0.0.1:${port}" { } }\nControl_Listener { Listen "${dir}/control.sock" { } }\nSpool { Directory = "${dir}/spool" }\n`);
const log = fs.openSync(path.join(dir, 'vipmta.log'), 'w');
const server = spawn(process.execPath, [path.join(root, 'bin', 'vipmta.js'), 'start', '-c', path.join(dir, 'vipmta.conf')], { stdio: ['ignore', log, log] });

// A message the listener accepts (lines under 998 characters, the headers it wants).
const body = `From: a@example.com\r\nTo: b@example.net\r\nSubject: steps\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <steps@example.com>\r\n\r\n${`${'y'.repeat(78)}\r\n`.repeat(50)}.\r\n`;
const send = ['EHLO client.invalid\r\n', 'MAIL FROM:<a@example.com>\r\n', 'RCPT TO:<b@example.net>\r\n', 'DATA\r\n', body, 'QUIT\r\n'];
const steps = ['greeting', 'EHLO', 'MAIL', 'RCPT', 'DATA', 'body (250)', 'QUIT', 'close'];
const expect = [220, 250, 250, 250, 354, 250, 221];

function one(total) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    let i = 0;
    let t = process.hrtime.bigint();
    let buf = '';
    s.on('error', reject);
    s.on('data', (d) => {
      buf += d;
      if (!/(^|\n)\d{3} [^\n]*\r\n$/.test(buf)) return; // the last line of a reply
      const code = Number(buf.slice(buf.lastIndexOf('\n', buf.length - 3) + 1, buf.lastIndexOf('\n', buf.length - 3) + 4));
      if (code !== expect[i]) reject(new Error(`${steps[i]}: expected ${expect[i]}, got ${buf.trim()}`));
      buf = '';
      const now = process.hrtime.bigint();
      total[i] += Number(now - t);
      t = now;
      if (i < send.length) s.write(send[i]);
      i++;
    });
    s.on('close', () => {
      total[7] += Number(process.hrtime.bigint() - t);
      resolve();
    });
  });
}

try {
  for (let tries = 0; ; tries++) {
    try {
      await one(new Array(8).fill(0));
      break;
    } catch (e) {
      if (tries > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const warm = new Array(8).fill(0);
  for (let k = 0; k < Number(opt.warmup); k++) await one(warm);
  const total = new Array(8).fill(0);
  const n = Number(opt.connections);
  for (let k = 0; k < n; k++) await one(total);
  console.log(`${n} connections one at a time, after ${opt.warmup} of warm-up; µs per step (client side):`);
  console.log(steps.map((s, i) => `${s} ${Math.round(total[i] / n / 1000)}`).join(' | '));
  console.log(`whole connection ${Math.round(total.reduce((a, b) => a + b, 0) / n / 1000)} µs`);
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  fs.rmSync(dir, { recursive: true, force: true });
}
