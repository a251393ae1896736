// CPU per thread of a running process over an interval, from /proc/<pid>/task/*/stat (utime and
// stime, in clock ticks of 1/100 s), as % of one core: which thread bounds a benchmark run
// (docs/performance.md, "Issue 18: closing figures"). Runs on a plain node's main thread; sleeps
// for the interval and reads /proc synchronously.
//
// Run: node bench/thread-cpu.mjs PID [SECONDS]   (e.g. during a bench/inject.ts run, PID of vipmta)
import fs from 'node:fs';

const [pid, seconds = '3'] = process.argv.slice(2);
if (pid === undefined || !/^\d+$/.test(pid)) {
  process.stderr.write('usage: node bench/thread-cpu.mjs PID [SECONDS]\n');
  process.exit(2);
}
const TICKS = 100;

/** thread id -> [name, user ticks, system ticks]; a thread that ended meanwhile is left out. */
function sample() {
  const out = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    } catch {
      continue;
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(tid, [name, Number(f[11]), Number(f[12])]);
  }
  return out;
}

const a = sample();
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
const b = sample();
let user = 0;
let sys = 0;
for (const [tid, [name, u, s]] of b) {
  const before = a.get(tid);
  if (before === undefined) continue;
  const du = ((u - before[1]) * 100) / TICKS / Number(seconds);
  const ds = ((s - before[2]) * 100) / TICKS / Number(seconds);
  user += du;
  sys += ds;
  if (du + ds > 0) console.log(`${tid.padStart(8)} ${name.padEnd(16)} user ${du.toFixed(1).padStart(5)}%  system ${ds.toFixed(1).padStart(5)}%`);
}
console.log(`total user ${user.toFixed(1)}%  system ${sys.toFixed(1)}%`);
