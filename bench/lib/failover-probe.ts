// The client of bench/failover.ts, run inside the lab's client namespace: a non-blocking TCP connect to
// ADDRESS:PORT every INTERVAL ms, whatever earlier attempts are doing, and one JSON line per attempt on
// stdout when it ends (see ProbeRecord). The server's first line names the node that answered (vipmta's
// SMTP greeting "220 n2 ESMTP vipmta", the keepalived case's responder "220 n2 responder").
// Times are process.hrtime (CLOCK_MONOTONIC, one clock for every process on the machine), so the bench
// compares them with the instant it injected a fault. Single thread; runs until killed or stdin closes.
//   node failover-probe.js ADDRESS PORT [INTERVAL_MS=10] [TIMEOUT_MS=3000]
import net from 'node:net';
import { nowMs, type ProbeRecord } from './failover-analysis.js';

const [address, portArg, intervalArg, timeoutArg] = process.argv.slice(2);
if (address === undefined || portArg === undefined) {
  process.stderr.write('usage: failover-probe ADDRESS PORT [INTERVAL_MS] [TIMEOUT_MS]\n');
  process.exit(2);
}
const port = Number(portArg);
const intervalMs = Number(intervalArg ?? 10);
const timeoutMs = Number(timeoutArg ?? 3000);

let seq = 0;

function attempt(): void {
  const rec: ProbeRecord = { i: seq++, t0: nowMs(), tc: null, te: 0, r: 'timeout', n: null };
  let buf = '';
  let done = false;
  const s = net.connect({ host: address!, port, noDelay: true });
  const finish = (r: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    rec.te = nowMs();
    rec.r = r;
    s.destroy();
    process.stdout.write(JSON.stringify(rec) + '\n');
  };
  // One timer per attempt covers connect (SYN retransmits after 1 s) and the greeting.
  const timer = setTimeout(() => finish(rec.tc === null ? 'timeout' : 'no-greeting'), timeoutMs);
  s.on('connect', () => {
    rec.tc = nowMs();
  });
  s.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    const eol = buf.indexOf('\n');
    if (eol < 0) return;
    const m = /^220[ -]([^\s.]+)/.exec(buf.slice(0, eol)); // "220 n2.lab.example ESMTP" names n2
    rec.n = m === null ? null : m[1]!;
    finish(m === null ? 'bad-greeting' : 'ok');
  });
  s.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
  s.on('close', () => finish(rec.tc === null ? 'closed' : 'closed-before-greeting'));
}

// Paced against a schedule, not against the previous tick, so timer lateness does not accumulate; after
// a stall longer than one interval (a VM pause) the schedule restarts instead of firing a burst.
let slot = nowMs();
function tick(): void {
  attempt();
  slot += intervalMs;
  const now = nowMs();
  if (slot < now - intervalMs) slot = now;
  setTimeout(tick, Math.max(0, slot - now));
}
tick();
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
