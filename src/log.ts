// Structured logging: pino, JSON lines on stdout, one record per event. Used by the main thread
// and by each worker (a worker writes to fd 1 itself, tagged with its workerId). Info and debug
// lines are written in batches (at most 50 ms late, at most 4 KiB per write()); a warning or
// worse is written at once with everything before it, so the last words before a crash are there.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino(
    {
      level: level as LevelWithSilent,
      base: { pid: process.pid, ...bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stdout(),
  );
}

/** Longest batch in one write(): a pipe writes up to PIPE_BUF bytes atomically, so the lines of
 *  the main thread and the workers, each writing fd 1 itself, never interleave inside a line. */
const BATCH_BYTES = 4096;
const BATCH_MS = 50;

/**
 * One per thread. pino's own sonic-boom does the write()s (sync: EAGAIN and partial writes are its
 * business); this only groups lines. Why: with every reception and delivery logged, the main
 * thread's one synchronous write() per line was a fifth of its time in delivery (issue 18 profile).
 */
export class LineBatcher implements DestinationStream {
  private lines: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly out: DestinationStream) {
    process.on('exit', () => this.writeOut());
  }

  write(line: string): void {
    // pino's lines start {"level":"<label>" (formatters.level above): only info and below wait.
    const urgent = !(line.startsWith('{"level":"info"') || line.startsWith('{"level":"debug"') || line.startsWith('{"level":"trace"'));
    const n = Buffer.byteLength(line);
    if (this.bytes + n > BATCH_BYTES) this.writeOut();
    this.lines.push(line);
    this.bytes += n;
    if (urgent) this.writeOut();
    else this.timer ??= setTimeout(() => this.writeOut(), BATCH_MS).unref();
  }

  /** Also pino's `logger.flush(cb)`. */
  flush(cb?: (err?: Error) => void): void {
    this.writeOut();
    cb?.();
  }

  private writeOut(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.lines.length === 0) return;
    const text = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.bytes = 0;
    this.out.write(text);
  }
}

let batcher: LineBatcher | null = null;
function stdout(): LineBatcher {
  batcher ??= new LineBatcher(pino.destination({ fd: 1, sync: true }));
  return batcher;
}
