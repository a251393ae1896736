// The guardian process's entry (guardian.ts explains why it exists): reads vipmta's declarations on
// stdin and, when the pipe ends because vipmta is gone, removes the declared addresses still
// plumbed and tagged as ours, logs one JSON line (vipmta's log format) and exits. Its own process
// and main thread; blocks only in one netlink dump and one delete per address, after EOF.
import os from 'node:os';
import { deleteAddress, isOurAddress, listInterfaces } from '../native/index.js';
import { GuardBook, removeGuarded } from './guardian.js';

// systemd's stop signals every process of the unit, a terminal's Ctrl-C the foreground group:
// either way vipmta may still be handing its addresses over, so only the end of the pipe counts.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => undefined);

// Idle until vipmta dies, then in a race with the successor (which waits DEPARTED_GUARD_MS after
// corosync tells it): a higher scheduling weight makes its wake-up prompt on a busy machine.
// Needs CAP_SYS_NICE (root has it); without it, it runs at vipmta's priority.
try {
  os.setPriority(-10);
} catch {
  // EACCES: not privileged
}

const book = new GuardBook();
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => book.feed(chunk));
let done = false;
function finish(): void {
  if (done) return;
  done = true;
  const declared = book.list();
  let result: ReturnType<typeof removeGuarded>;
  try {
    result = removeGuarded(declared, { listInterfaces, deleteAddress, isOurAddress });
  } catch (err) {
    result = { removed: [], failed: declared.map((g) => ({ address: g.address, error: (err as Error).message })) };
  }
  if (result.removed.length > 0 || result.failed.length > 0) {
    const line = {
      level: result.failed.length > 0 ? 50 : 40, time: new Date().toISOString(), pid: process.pid, subsystem: 'guardian',
      removed: result.removed, failed: result.failed,
      msg: 'DuraVIP guardian: vipmta is gone without releasing its addresses; removed them',
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  process.exit(result.failed.length > 0 ? 1 : 0);
}
process.stdin.on('end', finish);
// A reset pipe means the same as its end: vipmta is gone.
process.stdin.on('error', finish);
