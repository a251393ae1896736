// A drained node's persisted word (`cluster drain`): the spool directory's drain.json, written whole
// to a temporary name, fsynced and renamed (shaping.json's way), so a drained node that restarts
// stays drained until `cluster undrain`. Main thread; one small synchronous file read at start and
// one write per drain or undrain (an operator's command, rare).
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

export const DRAIN_FILE = 'drain.json';

interface DrainRecord {
  version: 1;
  drained: boolean;
  /** When it was drained (ms since the epoch), for the console; 0 when not drained. */
  since: number;
}

export interface DrainState {
  readonly drained: boolean;
  readonly since: number;
}

/** The persisted state; not drained when the file is missing. An unreadable file is logged and
 *  read as drained: a node that cannot tell must not take addresses and mail it was told to give up. */
export function loadDrain(file: string | null, logger: Logger): DrainState {
  if (file === null) return { drained: false, since: 0 };
  try {
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<DrainRecord> | null;
    if (raw !== null && typeof raw === 'object' && raw.version === 1 && typeof raw.drained === 'boolean') {
      return { drained: raw.drained, since: typeof raw.since === 'number' && raw.since >= 0 ? raw.since : 0 };
    }
    logger.error({ file }, 'cluster: drain.json is not valid; staying drained until `cluster undrain`');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { drained: false, since: 0 };
    logger.error({ err, file }, 'cluster: drain.json unreadable; staying drained until `cluster undrain`');
  }
  return { drained: true, since: 0 };
}

/** Writes the state atomically; false (logged) when it cannot be written. */
export function saveDrain(file: string | null, state: DrainState, logger: Logger): boolean {
  if (file === null) return true;
  const tmp = `${file}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(tmp, 'w', 0o640);
    try {
      const rec: DrainRecord = { version: 1, drained: state.drained, since: state.since };
      fs.writeSync(fd, `${JSON.stringify(rec)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    return true;
  } catch (err) {
    logger.error({ err, file }, 'cluster: cannot persist the drain state (it holds until a restart)');
    return false;
  }
}
