// Structured logging: pino, JSON lines on stdout, one record per event. Used by the main thread
// and by each worker (a worker writes to fd 1 itself, tagged with its workerId). Writes are
// synchronous so the last records before an exit or a crash are not lost.
import { pino, type Logger, type LevelWithSilent } from 'pino';

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
    pino.destination({ fd: 1, sync: true }),
  );
}
