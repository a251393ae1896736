// Bodies in flight (issue 12 section 4): N relaying clients each send one large message at once to a
// fresh vipmta (the issue: 30 clients x 45 MB took the process from 82 MB to 1.4 GB), and we report
// the process's memory before, at its peak (VmHWM, plus VmRSS sampled every 100 ms) and the replies.
// Run it against two builds to compare: --vipmta-root DIR (default: this checkout).
//
//   npm run bench:body-memory -- [--clients 30] [--size-mib 45] [--worker-threads 2] [--vipmta-root DIR]
//
// Runs on the benchmark's main thread; it blocks on nothing but its sockets and the child process.
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { repoRoot } from './lib/repo.js';
import { startVipmta } from './lib/servers.js';
import { f0, machineLine } from './lib/report.js';

const { values: opt } = parseArgs({
  options: {
    clients: { type: 'string', default: '30' },
    'size-mib': { type: 'string', default: '45' },
    'worker-threads': { type: 'string', default: '2' },
    'vipmta-root': { type: 'string' },
    'extra-config': { type: 'string', default: '' },
  },
  strict: true,
});
const clients = Number(opt.clients);
const sizeMiB = Number(opt['size-mib']);
const root = path.resolve(opt['vipmta-root'] ?? repoRoot());

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m === null ? 0 : Number(m[1]);
}

/** One SMTP reply (the line with a space after the code), or an error line if the server closed. */
function reply(sock: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const m = /(^|\r\n)(\d{3} [^\r]*)\r\n/.exec(buf);
      if (m !== null) done(m[2]!);
    };
    const onClose = (): void => done(`closed: ${buf.trim()}`);
    function done(r: string): void {
      sock.off('data', onData);
      sock.off('close', onClose);
      resolve(r);
    }
    sock.on('data', onData);
    sock.on('close', onClose);
  });
}

async function command(sock: net.Socket, line: string): Promise<string> {
  const r = reply(sock);
  sock.write(line + '\r\n');
  return r;
}

/** One client: the dialogue up to 354, then the body as fast as the server reads it, then the dot. */
async function relay(port: number, body: Buffer, pieces: number): Promise<string> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  const greeting = await reply(sock);
  if (!greeting.startsWith('220')) return greeting;
  for (const line of ['EHLO bench.client', 'MAIL FROM:<bench@client.invalid>', 'RCPT TO:<sink@dest.invalid>', 'DATA']) {
    const r = await command(sock, line);
    if (!/^(250|354)/.test(r)) return `${line}: ${r}`;
  }
  sock.write('Subject: body-memory bench\r\n\r\n');
  for (let i = 0; i < pieces; i++) {
    if (!sock.write(body)) await new Promise((r) => sock.once('drain', r));
  }
  const end = await command(sock, '.');
  sock.end('QUIT\r\n');
  return end;
}

async function main(): Promise<void> {
  const server = await startVipmta({
    name: 'vipmta',
    repoRoot: root,
    workerThreads: Number(opt['worker-threads']),
    nodeFlags: [],
    extraConfig: opt['extra-config'],
  });
  try {
    const before = statusKiB(server.rootPid, 'VmRSS');
    let sampledPeak = before;
    const sampler = setInterval(() => (sampledPeak = Math.max(sampledPeak, statusKiB(server.rootPid, 'VmRSS'))), 100);
    const line = Buffer.from('x'.repeat(998) + '\r\n');
    const piece = Buffer.concat(Array.from({ length: 1024 }, () => line)); // 1,000 KiB of 1,000-byte lines
    const pieces = Math.floor((sizeMiB * 1024 * 1024) / piece.length);
    const t0 = process.hrtime.bigint();
    const replies = await Promise.all(Array.from({ length: clients }, () => relay(server.port, piece, pieces)));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    clearInterval(sampler);
    const hwm = statusKiB(server.rootPid, 'VmHWM');
    const ok = replies.filter((r) => r.startsWith('250 ')).length;
    const bad = replies.filter((r) => !r.startsWith('250 '));
    const mib = (k: number): string => f0(k / 1024);
    process.stdout.write(`${machineLine()}\n`);
    process.stdout.write(`build: ${root}\n`);
    process.stdout.write(`| clients | body | accepted | RSS before (MiB) | peak RSS, VmHWM (MiB) | peak VmRSS sampled (MiB) | wall (s) |\n|---|---|---|---|---|---|---|\n`);
    process.stdout.write(`| ${clients} | ${f0((pieces * piece.length) / 1024 / 1024)} MiB | ${ok}/${clients} | ${mib(before)} | ${mib(hwm)} | ${mib(sampledPeak)} | ${seconds.toFixed(1)} |\n`);
    if (bad.length > 0) process.stdout.write(`not accepted: ${[...new Set(bad)].join('; ')}\n`);
  } finally {
    await server.stop();
  }
}

await main();
