// Process-tree accounting from /proc for the whole-process benchmarks: CPU time and memory of a server
// and every process below it, and CPU per thread. Runs on the benchmark's main thread; reads /proc synchronously (a few
// hundred small files per scan), so sample no more often than every 250 ms.
import fs from 'node:fs';

const CLK_TCK = 100; // USER_HZ on Linux; /proc/<pid>/stat counts CPU time in these ticks.

interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime in ticks: own CPU plus that of reaped children. */
  cpuTicks: number;
}

function readStat(pid: number): Stat | null {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null; // exited between readdir and read
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  const num = (n: number): number => Number(f[n - 3]);
  return { pid, ppid: num(4), cpuTicks: num(14) + num(15) + num(16) + num(17) };
}

function allStats(): Stat[] {
  const out: Stat[] = [];
  for (const name of fs.readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = readStat(Number(name));
    if (st !== null) out.push(st);
  }
  return out;
}

/** The root and all its live descendants. */
export function processTree(root: number): Stat[] {
  const stats = allStats();
  const byParent = new Map<number, Stat[]>();
  let rootStat: Stat | undefined;
  for (const s of stats) {
    if (s.pid === root) rootStat = s;
    const l = byParent.get(s.ppid);
    if (l === undefined) byParent.set(s.ppid, [s]);
    else l.push(s);
  }
  if (rootStat === undefined) return [];
  const out: Stat[] = [];
  const todo: Stat[] = [rootStat];
  while (todo.length > 0) {
    const s = todo.pop()!;
    out.push(s);
    for (const c of byParent.get(s.pid) ?? []) todo.push(c);
  }
  return out;
}

/**
 * CPU seconds used so far by the tree under `root`, including children it has already reaped (their
 * time is in the parent's cutime/cstime). Monotonic as long as every process that exits is reaped by
 * a member of the tree, which holds for Postfix's master and its daemons; a process whose parent
 * does not wait for it loses its time, so call this on the process that forks (master, node).
 */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const s of processTree(root)) ticks += s.cpuTicks;
  return ticks / CLK_TCK;
}

function statusKiB(pid: number, field: string): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(s);
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

function pssKiB(pid: number): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
    const m = /^Pss:\s+(\d+) kB/m.exec(s);
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

export interface MemoryPeak {
  /** Largest sum of VmRSS over the tree seen in one sample, or the largest VmHWM of one process. */
  rssKiB: number;
  /** Largest sum of Pss over the tree seen in one sample (shared pages split between sharers). */
  pssKiB: number;
  /** Largest number of processes in the tree seen in one sample. */
  processes: number;
}

/** Samples the memory of the tree under `root` every `intervalMs` until stop() is called. */
export class MemorySampler {
  private readonly timer: NodeJS.Timeout;
  private readonly peak: MemoryPeak = { rssKiB: 0, pssKiB: 0, processes: 0 };

  constructor(
    private readonly root: number,
    intervalMs = 250,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    const tree = processTree(this.root);
    let rss = 0;
    let pss = 0;
    for (const s of tree) {
      rss += statusKiB(s.pid, 'VmRSS');
      pss += pssKiB(s.pid);
      // VmHWM catches a single process's peak between samples.
      this.peak.rssKiB = Math.max(this.peak.rssKiB, statusKiB(s.pid, 'VmHWM'));
    }
    this.peak.rssKiB = Math.max(this.peak.rssKiB, rss);
    this.peak.pssKiB = Math.max(this.peak.pssKiB, pss);
    this.peak.processes = Math.max(this.peak.processes, tree.length);
  }

  stop(): MemoryPeak {
    clearInterval(this.timer);
    this.sample();
    return { ...this.peak };
  }
}

/** Whether a process exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** CPU ticks (user, system) of every thread of `pid`, keyed "<who>:<comm>#<n>:<tid>". */
export function threadTicks(pid: number, who: string): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  const seen = new Map<string, number>();
  for (const tid of tids.sort((x, y) => Number(x) - Number(y))) {
    let st: string;
    try {
      st = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    } catch {
      continue;
    }
    const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    const n = seen.get(comm) ?? 0;
    seen.set(comm, n + 1);
    out.set(`${who}:${comm}#${n}:${tid}`, [Number(f[11]), Number(f[12])]);
  }
  return out;
}
