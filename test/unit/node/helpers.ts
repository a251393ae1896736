// Shared pieces of the src/node/ unit tests: a config from text, a logger whose records the test
// can read, and a real QueueManager whose worker and spool boundaries are inert (intake only adds).
import pino, { type Logger } from 'pino';
import { loadConfigText, type Config } from '../../../src/config/index.js';
import { QueueManager } from '../../../src/queue/manager.js';

export function config(text: string): Config {
  const r = loadConfigText(text, 'test.conf');
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  return r.config;
}

export interface LogRecord {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A pino logger at `level` that keeps every record it writes. */
export function recordingLogger(level = 'info'): { logger: Logger; records: LogRecord[]; warnings: () => LogRecord[] } {
  const records: LogRecord[] = [];
  const logger = pino({ level }, { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  return { logger, records, warnings: () => records.filter((r) => r.level === 40) };
}

/** A real queue manager that is never started: no batch goes out, nothing is written. `now` fixes its clock. */
export function idleQueue(cfg: Config, logger: Logger, now: number): QueueManager {
  const qm = new QueueManager({
    config: () => cfg,
    // Intake only adds: the spool and the workers are never reached.
    spool: {
      markDone: () => Promise.reject(new Error('spool not in this test')),
      update: () => Promise.reject(new Error('spool not in this test')),
    },
    deliver: () => Promise.reject(new Error('delivery not in this test')),
    bounce: () => Promise.reject(new Error('DSNs not in this test')),
    assign: () => ({ bindingGroup: 'default', binding: 'default' }),
    logger,
    now: () => now,
  });
  // Stopped before anything is queued, so the pump never hands out a batch.
  void qm.stop(0);
  return qm;
}
