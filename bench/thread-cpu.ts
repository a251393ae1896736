// CPU per thread of a running process over an interval (/proc/<pid>/task/*/stat through
// lib/proc.ts threadTicks), as % of one core: which thread bounds a benchmark run
// (docs/performance.md, "Issue 18: closing figures"). Runs on the benchmark's main thread; sleeps
// for the interval and reads /proc synchronously.
//
// Build and run (repository root), e.g. during a bench/inject.ts run with vipmta's PID:
//   npx tsc --strict --target es2022 --module nodenext --moduleResolution nodenext --types node \
//     --skipLibCheck --rootDir bench --outDir /tmp/vbench bench/thread-cpu.ts && node /tmp/vbench/thread-cpu.js PID [SECONDS]
import { setTimeout as sleep } from 'node:timers/promises';
import { threadTicks } from './lib/proc.js';

const [pidArg, secondsArg = '3'] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (pidArg === undefined || !/^\d+$/.test(pidArg) || !(seconds > 0)) {
  process.stderr.write('usage: node thread-cpu.js PID [SECONDS]\n');
  process.exit(2);
}
const TICKS_PER_SECOND = 100; // USER_HZ

const before = threadTicks(Number(pidArg), 'pid');
await sleep(seconds * 1000);
const after = threadTicks(Number(pidArg), 'pid');
const pct = (ticks: number): number => (ticks * 100) / TICKS_PER_SECOND / seconds;
let user = 0;
let system = 0;
for (const [thread, [u, s]] of after) {
  const b = before.get(thread);
  if (b === undefined) continue; // started during the interval
  const du = pct(u - b[0]);
  const ds = pct(s - b[1]);
  user += du;
  system += ds;
  if (du + ds > 0) console.log(`${thread.slice('pid:'.length).padEnd(28)} user ${du.toFixed(1).padStart(5)}%  system ${ds.toFixed(1).padStart(5)}%`);
}
console.log(`total user ${user.toFixed(1)}%  system ${system.toFixed(1)}%`);
