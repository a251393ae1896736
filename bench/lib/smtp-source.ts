// Runs Postfix's smtp-source (the load generator) once and measures it: wall time from spawn to exit and
// its own CPU time. Runs on the benchmark's main thread; awaits the child process.
import { spawn } from 'node:child_process';

export interface LoadOptions {
  port: number;
  messages: number;
  sessions: number;
  /** Payload bytes per message (smtp-source -l), not counting the few generated header lines. */
  size: number;
  /** smtp-source -d: keep each session's connection open for its next message. */
  reuseConnections: boolean;
  /** 'pinned' (the default): smtp-source runs with SOURCE_HEAP_TUNABLES; 'glibc': with glibc's own. */
  heap?: SourceHeap;
}

export type SourceHeap = 'pinned' | 'glibc';

/**
 * The load generator's heap, held still. smtp-source allocates (and Postfix's mymalloc fills) a read
 * and a write buffer per connection, each at least the TCP MSS (about 64 KiB on loopback), and frees
 * them at close. With glibc's defaults the freed top of the heap is trimmed and grown again, or larger
 * blocks are mmapped, depending on where the buffers happened to land: one connection per message then
 * cost smtp-source either about 0.2 or 0.4-0.6 ms of CPU, the same for a whole run (21,000-28,000
 * page faults and about 600 brk per 5,000 connections, against about 4,000 and 65 pinned;
 * docs/performance.md, "The load generator's heap"). The client shares the two cores with the
 * server, so that coin toss moved every server's rate. No trimming and no mmap below 32 MiB makes it
 * the cheap mode in every run, for every system.
 */
export const SOURCE_HEAP_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824';

/** The environment smtp-source runs with. */
export function sourceEnv(heap: SourceHeap = 'pinned'): NodeJS.ProcessEnv {
  if (heap === 'glibc') return process.env;
  const own = process.env.GLIBC_TUNABLES;
  return { ...process.env, GLIBC_TUNABLES: own === undefined || own === '' ? SOURCE_HEAP_TUNABLES : `${own}:${SOURCE_HEAP_TUNABLES}` };
}

export interface LoadResult {
  ok: boolean;
  wallSeconds: number;
  /** CPU seconds of smtp-source itself (it shares the machine's cores with the server). */
  clientCpuSeconds: number;
  /** smtp-source's complaint when it stopped early (e.g. a 451 from the server). */
  error: string;
}

export const SMTP_SOURCE = '/usr/sbin/smtp-source';

export function sourceArgs(o: LoadOptions): string[] {
  return [
    ...(o.reuseConnections ? ['-d'] : []),
    '-s', String(o.sessions),
    '-m', String(o.messages),
    '-l', String(o.size),
    '-r', '1',
    '-f', 'bench@client.invalid',
    '-t', 'rcpt@example.com',
    '-M', 'client.invalid',
    `127.0.0.1:${o.port}`,
  ];
}

/**
 * The shell waits for smtp-source and then prints its own /proc stat line, whose cutime/cstime
 * (fields 16, 17) now hold smtp-source's CPU time: Node has no getrusage(RUSAGE_CHILDREN).
 */
const WRAPPER = `"$@"; rc=$?; read -r s < /proc/$$/stat; echo "STAT $s" >&2; exit $rc`;

export function runSmtpSource(o: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/bin/sh', ['-c', WRAPPER, 'sh', SMTP_SOURCE, ...sourceArgs(o)], { stdio: ['ignore', 'pipe', 'pipe'], env: sourceEnv(o.heap) });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out = (out + d.toString('latin1')).slice(-4096)));
    child.stderr.on('data', (d: Buffer) => (out = (out + d.toString('latin1')).slice(-4096)));
    child.on('error', reject);
    child.on('exit', (code) => {
      const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /^STAT (.*)$/m.exec(out);
      let clientCpuSeconds = NaN;
      if (m !== null) {
        const s = m[1]!;
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        clientCpuSeconds = (Number(f[16 - 3]) + Number(f[17 - 3])) / 100;
      }
      const error = out.replace(/^STAT .*$/m, '').trim();
      resolve({ ok: code === 0, wallSeconds, clientCpuSeconds, error });
    });
  });
}
