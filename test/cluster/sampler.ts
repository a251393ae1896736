// A sampler of plumbed addresses (issue 12: "an address is never plumbed on two nodes"): reads every
// lab host's addresses over and over (sampler.py: one rtnetlink dump per host, back to back, a
// sample every few ms plus a pause) and finds addresses on two hosts at once. Reads of different hosts are not one
// instant apart, so a duplicate counts only when two consecutive samples both show it on the same
// hosts (the skew of one read cannot fake it twice). Test main thread; blocks on `ip` (a few ms).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ClusterLab, LabHost, LabProcess } from './harness.js';

const execFileAsync = promisify(execFile);

export interface Sample {
  /** When the sample's reads started (Date.now()). */
  readonly at: number;
  /** The step of the test it belongs to (the last mark). */
  readonly step: string;
  /** address -> hosts that had it plumbed, sorted. */
  readonly holders: ReadonlyMap<string, readonly string[]>;
}

export interface Duplicate {
  readonly address: string;
  readonly hosts: readonly string[];
  readonly step: string;
  /** The two consecutive samples that both showed it. */
  readonly at: readonly [number, number];
}

/** Addresses on the host's lab interface other than its own and link-local ones. */
export async function plumbedOn(host: LabHost): Promise<string[]> {
  const { stdout } = await execFileAsync('ip', ['-n', host.ns, '-j', 'addr', 'show', 'dev', host.ifname], { encoding: 'utf8' });
  const j = JSON.parse(stdout) as Array<{ addr_info: Array<{ local: string; scope: string }> }>;
  return j.flatMap((i) => i.addr_info)
    .filter((a) => a.local !== host.address && a.scope !== 'link')
    .map((a) => a.local)
    .sort();
}

/**
 * sampler.py reads every host back to back and prints a sample at a time (a child process per read
 * would cost ~40 ms each on a loaded machine); this side parses the samples and finds duplicates.
 */
export class AddressSampler {
  readonly samples: Sample[] = [];
  private step = 'start';
  private proc: LabProcess | null = null;
  private waiters: Array<() => void> = [];

  private readonly hosts: readonly LabHost[];

  /**
   * `pauseMs`: the loop's sleep between samples (the reads themselves take a few ms more);
   * `script`: sampler.py (compiled copies of this file, such as the benches', are not next to it).
   */
  constructor(
    private readonly lab: ClusterLab,
    private readonly pauseMs = 20,
    private readonly script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sampler.py'),
  ) {
    this.hosts = lab.hosts;
  }

  start(): void {
    if (this.proc !== null) return;
    const ifname = this.hosts[0]!.ifname;
    // Started through the lab (in the client's namespace; it opens its sockets in the others): it
    // is killed with the lab even if a test fails before stop().
    const p = this.lab.spawn(this.lab.client, ['python3', '-u', this.script, (this.pauseMs / 1000).toFixed(3), ifname, ...this.hosts.map((h) => h.ns)]);
    // Every line in order, as it comes; the wait itself never ends (it is for its predicate).
    p.waitLine((l) => { this.onLine(l); return false; }, { timeoutMs: 2 ** 31 - 1 }).catch(() => undefined);
    this.proc = p;
  }

  /** Labels the samples from now on (a scenario of the test). */
  mark(step: string): void {
    this.step = step;
  }

  /** Waits for two more samples after this call (so what just happened is seen, twice if it lasts). */
  async next(): Promise<void> {
    const n = this.samples.length;
    while (this.proc !== null && this.samples.length <= n + 1) await new Promise<void>((r) => this.waiters.push(r));
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p === null) return;
    await p.kill('SIGKILL');
    for (const w of this.waiters.splice(0)) w();
  }

  /** "S <ms> <ns>=<a>,<a> <ns>=..." */
  private onLine(line: string): void {
    const [tag, at, ...parts] = line.split(' ');
    if (tag !== 'S') return;
    const holders = new Map<string, string[]>();
    for (const part of parts) {
      const [ns, list] = part.split('=');
      const host = this.hosts.find((h) => h.ns === ns);
      if (host === undefined || list === undefined || list === '') continue;
      for (const a of list.split(',')) {
        if (a === host.address) continue;
        const l = holders.get(a);
        if (l === undefined) holders.set(a, [host.name]);
        else l.push(host.name);
      }
    }
    for (const l of holders.values()) l.sort();
    this.samples.push({ at: Number(at), step: this.step, holders });
    for (const w of this.waiters.splice(0)) w();
  }

  /** Addresses on two or more hosts in two consecutive samples (the same hosts both times). */
  duplicates(): Duplicate[] {
    return findDuplicates(this.samples);
  }

  /** Median time between samples (ms), for the report. */
  medianPeriod(): number {
    const d = this.samples.slice(1).map((s, i) => s.at - this.samples[i]!.at).sort((a, b) => a - b);
    return d.length === 0 ? 0 : d[Math.floor(d.length / 2)]!;
  }
}

export function findDuplicates(samples: readonly Sample[]): Duplicate[] {
  const out: Duplicate[] = [];
  for (let i = 1; i < samples.length; i++) {
    const prev = samples[i - 1]!;
    const cur = samples[i]!;
    for (const [address, hosts] of cur.holders) {
      if (hosts.length < 2) continue;
      const before = prev.holders.get(address);
      if (before === undefined || before.join(',') !== hosts.join(',')) continue;
      out.push({ address, hosts, step: cur.step, at: [prev.at, cur.at] });
    }
  }
  return out;
}
