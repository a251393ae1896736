// strace -c -f attached to a running server for one measured phase: syscall counts per message for
// docs/performance.md. Runs on a benchmark's main thread; awaits the strace child process.
import { spawn } from 'node:child_process';

/** Attaches strace -c -f to every thread of pid; the returned function detaches it (SIGINT) and waits for its summary in out. */
export async function startStrace(pid: number, out: string): Promise<() => Promise<void>> {
  const child = spawn('strace', ['-c', '-f', '-p', String(pid), '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // strace says "Process N attached" per thread on stderr once it is in place.
  for (let i = 0; i < 100 && !err.includes('attached'); i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  return async () => {
    child.kill('SIGINT');
    await exited;
  };
}
