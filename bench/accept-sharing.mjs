// How connections spread over two listener worker threads with (a) one SO_REUSEPORT socket each (what
// vipmta does) or (b) one exclusive socket both share (which no other program could join), both idle
// and with worker 0 busy 1 ms per connection. From the repository root, after `npx tsc -p tsconfig.json`:
//   node bench/accept-sharing.mjs [--connections 6000] [--concurrency 32] [--rounds 3]
// Main thread: the sockets and the client; worker threads: a net.Server on the fd they are given.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

if (isMainThread) {
  const { values } = parseArgs({ options: { connections: { type: 'string', default: '6000' }, concurrency: { type: 'string', default: '32' }, rounds: { type: 'string', default: '3' } } });
  const N = Number(values.connections);
  const C = Number(values.concurrency);
  const { listenTcp, socketLocalAddress } = await import(pathToFileURL(path.resolve('dist/native/index.js')).href);

  async function run(mode, busy) {
    let fds;
    if (mode === 'shared') {
      const fd = listenTcp({ host: '127.0.0.1', port: 0 });
      fds = [fd, fd];
    } else {
      const a = listenTcp({ host: '127.0.0.1', port: 0, reusePort: true });
      fds = [a, listenTcp({ host: '127.0.0.1', port: socketLocalAddress(a).port, reusePort: true })];
    }
    const port = socketLocalAddress(fds[0]).port;
    const ws = fds.map((fd, i) => new Worker(new URL(import.meta.url), { workerData: { fd, busy: busy && i === 0 } }));
    await Promise.all(ws.map((w) => new Promise((r) => w.once('message', r))));
    const lat = [];
    const t0 = process.hrtime.bigint();
    let started = 0;
    await new Promise((resolve) => {
      const one = () => {
        if (started >= N) return;
        started++;
        const s0 = process.hrtime.bigint();
        const c = net.connect(port, '127.0.0.1');
        c.on('error', () => undefined);
        c.once('data', () => {
          lat.push(Number(process.hrtime.bigint() - s0) / 1e6);
          c.destroy();
          if (lat.length === N) resolve();
          else one();
        });
      };
      for (let i = 0; i < C; i++) one();
    });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const perWorker = await Promise.all(ws.map((w) => new Promise((r) => { w.once('message', r); w.postMessage('count'); })));
    // Terminating a worker closes its server, and with it the fd.
    for (const w of ws) await w.terminate();
    lat.sort((a, b) => a - b);
    return { mode, busy, connPerSec: Math.round(N / secs), perWorker, p50ms: +lat[N >> 1].toFixed(1), p99ms: +lat[Math.floor(N * 0.99)].toFixed(1) };
  }

  for (let r = 0; r < Number(values.rounds); r++) {
    for (const busy of [false, true]) for (const mode of ['reuseport', 'shared']) console.log(JSON.stringify(await run(mode, busy)));
  }
} else {
  let n = 0;
  const server = net.createServer((c) => {
    n++;
    if (workerData.busy) for (const end = Date.now() + 1; Date.now() < end;);
    c.on('error', () => undefined);
    c.end('220 bench ESMTP\r\n');
  });
  // In mode "shared" both workers' servers take the same fd: fine for a measurement, not for a
  // product (the first close would close it for both; a real design would dup it per worker).
  server.listen({ fd: workerData.fd }, () => parentPort.postMessage('ready'));
  parentPort.on('message', () => parentPort.postMessage(n));
}
