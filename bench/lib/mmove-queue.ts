// #mmove as users meet it, for bench/mmove.ts: two real vipmta nodes in a corosync cluster, both
// spools durable. Node A (lab host 1) starts alone and owns binding b1's DuraVIP; N messages for
// b1 are injected into it with smtp-source and stay queued (Suspend_Delivery = true, not timed).
// Then node B starts with Duravip_Preference for b1's address: once the view is mature the address
// moves to B, A's queue manager re-places all N messages in default/#mmove for B, and its workers
// move them. Timed from A's "bindings changed owner" log record to its N-th "mmove" record (both A's
// clock), so the figure includes what the transport-only run leaves out: the queue manager, the
// worker RPCs, per-message log records and done-marks on A, reception and queueing on B.
// Main thread of the bench; blocks only on `ip netns exec` calls; every process it starts is
// stopped before it returns (the lab removes the namespaces).
import fs from 'node:fs';
import path from 'node:path';
import { waitFor, type ClusterLab, type LabHost, type LabProcess } from '../../test/cluster/harness.js';
import { treeCpuSeconds } from './proc.js';

const VIP = '198.51.100.201';
const SMTP_PORT = 2526;
const MMOVE_PORT = 4802;

export interface QueueMoveRun {
  messages: number;
  seconds: number;
  perSecond: number;
  gbps: number;
  fillSeconds: number;
  senderCpuSeconds: number;
  receiverCpuSeconds: number;
  /** Messages A still had queued at the end (0 when every move got its 250). */
  leftOnSender: number;
}

function nodeConfig(h: LabHost, name: string, dir: string, secret: string, connections: number, tls: boolean): string {
  // Log_Level info: an operator's setting (the per-message records are part of the cost).
  return `Nodename = "${name}"
Hostname = "${name}.bench.invalid"
Worker_Threads = 2
Log_Level = "info"
Spool { Directory = "${path.join(dir, 'spool')}" }
Control_Listener { Listen "${path.join(dir, 'ctl.sock')}" { } }
Resolver_Servers = ( "127.0.0.1:9" )
# Nobody delivers: the benchmark measures the move. Moves are not held by this.
Suspend_Delivery = true
ESMTP_Listener {
  Relay_Hosts = ( "198.51.100.0/24" )
  Max_Message_Size = 1M
  Listen "${h.address}:${SMTP_PORT}" { Binding = "b1" }
}
Binding "b1" { Bind_Address = ${VIP} Enable_Duravip = true Duravip_Preference = "n2" }
ECCluster_Listener { Listen "${h.address}:${MMOVE_PORT}" { } }
Cluster {
  Cluster_Secret = "${secret}"
  Mmove_Connections = ${connections}
  Mmove_TLS = ${tls}
  View_Mature_Time = 1s
  If_Check_Interval = 2s
  Topology "198.51.100.0/24" { Interface = "${h.ifname}" Cidrmask = 32 }
}
`;
}

/** Log records of one kind from a node's log file (pino JSON lines). */
function records(file: string, pred: (line: string) => boolean): Array<{ time: string } & Record<string, unknown>> {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  return text.split('\n').filter((l) => l.startsWith('{') && pred(l)).map((l) => JSON.parse(l) as { time: string });
}

/**
 * Counts a needle in a growing log file, reading only what was appended since the last call: the
 * poll runs every 500 ms during the timed window, and re-reading a 40 MB log each time would take
 * CPU from the two nodes being measured.
 */
class LogCounter {
  private offset = 0;
  private carry = '';
  private n = 0;
  constructor(private readonly file: string, private readonly needle: string) {}

  count(): number {
    if (!fs.existsSync(this.file)) return this.n;
    const fd = fs.openSync(this.file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= this.offset) return this.n;
      const buf = Buffer.alloc(size - this.offset);
      const got = fs.readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += got;
      // Keep the tail that could be the start of a needle cut by the end of this read.
      const text = this.carry + buf.toString('latin1', 0, got);
      let last = -1;
      for (let i = text.indexOf(this.needle); i >= 0; i = text.indexOf(this.needle, i + this.needle.length)) {
        this.n++;
        last = i + this.needle.length;
      }
      this.carry = text.slice(Math.max(last, text.length - this.needle.length + 1));
      return this.n;
    } finally {
      fs.closeSync(fd);
    }
  }
}

async function consoleCmd(lab: ClusterLab, h: LabHost, cli: string, sock: string, ...argv: string[]): Promise<string> {
  const r = await lab.execAsync(h, [process.execPath, cli, 'console', '-s', sock, ...argv]);
  return r.stdout;
}

/**
 * Runs one size: fills A with `messages` of `size` bytes, moves them to B, returns the figures.
 * The lab must have two hosts with corosync running and quorate.
 */
export async function queueMove(lab: ClusterLab, cli: string, size: number, messages: number, opts: { secret: string; connections: number; tls?: boolean; log: (s: string) => void }): Promise<QueueMoveRun> {
  const [a, b] = [lab.hosts[0]!, lab.hosts[1]!];
  const dirs = [a, b].map((h) => fs.mkdtempSync(path.join(h.dir, `mmove-queue-${size}-`)));
  const [dirA, dirB] = [dirs[0]!, dirs[1]!];
  const logA = path.join(dirA, 'vipmta.log');
  const logB = path.join(dirB, 'vipmta.log');
  fs.writeFileSync(path.join(dirA, 'vipmta.conf'), nodeConfig(a, 'n1', dirA, opts.secret, opts.connections, opts.tls ?? false));
  fs.writeFileSync(path.join(dirB, 'vipmta.conf'), nodeConfig(b, 'n2', dirB, opts.secret, opts.connections, opts.tls ?? false));
  const sockA = path.join(dirA, 'ctl.sock');
  let nodeA: LabProcess | null = null;
  let nodeB: LabProcess | null = null;
  try {
    nodeA = lab.spawn(a, [process.execPath, cli, 'start', '-c', path.join(dirA, 'vipmta.conf')], { logFile: logA });
    await waitFor('A owns the binding address', async () => /owner n1/.test(await consoleCmd(lab, a, cli, sockA, 'cluster', 'duravip', 'show')), { timeoutMs: 60_000, intervalMs: 250 });
    opts.log(`queue path ${size} B: filling A with ${messages} messages (not timed)`);
    const f0 = process.hrtime.bigint();
    const fill = await lab.execAsync(a, ['/usr/sbin/smtp-source', '-d', '-s', '8', '-m', String(messages), '-l', String(size),
      '-f', 'bench@a.invalid', '-t', 'rcpt@b.invalid', '-M', 'a.invalid', `${a.address}:${SMTP_PORT}`]);
    if (fill.code !== 0) throw new Error(`smtp-source into A failed: ${fill.stdout.slice(0, 500)}`);
    await waitFor(`A has queued ${messages}`, async () => (await consoleCmd(lab, a, cli, sockA, 'mailq')).includes(`Total: ${messages} message(s)`), { timeoutMs: 120_000, intervalMs: 250 });
    const fillSeconds = Number(process.hrtime.bigint() - f0) / 1e9;
    const moves = new LogCounter(logA, '"event":"mmove"');
    if (moves.count() !== 0) throw new Error('A moved mail before B started');

    opts.log(`queue path ${size} B: starting B; the address moves to it and A moves its queue`);
    const cpuA0 = treeCpuSeconds(nodeA.pid);
    nodeB = lab.spawn(b, [process.execPath, cli, 'start', '-c', path.join(dirB, 'vipmta.conf')], { logFile: logB });
    await waitFor(`${messages} moves logged on A`, () => moves.count() >= messages || (nodeA!.running ? false : Promise.reject(new Error('A exited'))),
      { timeoutMs: 1_800_000, intervalMs: 500 });
    const senderCpuSeconds = treeCpuSeconds(nodeA.pid) - cpuA0;
    const receiverCpuSeconds = treeCpuSeconds(nodeB.pid);
    const start = records(logA, (l) => l.includes('bindings changed owner'))[0];
    const moved = records(logA, (l) => l.includes('"event":"mmove"'));
    if (start === undefined) throw new Error('no re-placement record on A');
    const t0 = Date.parse(start.time);
    const t1 = moved.reduce((m, r) => Math.max(m, Date.parse(r.time)), 0);
    const seconds = (t1 - t0) / 1000;
    const left = (await consoleCmd(lab, a, cli, sockA, 'mailq')).match(/Total: (\d+) message/);
    return {
      messages: moved.length,
      seconds,
      perSecond: moved.length / seconds,
      // smtp-source adds a few header lines to each -l payload; counted as the payload only.
      gbps: (moved.length * size * 8) / seconds / 1e9,
      fillSeconds,
      senderCpuSeconds,
      receiverCpuSeconds,
      leftOnSender: left === null ? -1 : Number(left[1]),
    };
  } finally {
    await nodeB?.kill('SIGTERM');
    await nodeA?.kill('SIGTERM');
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}
