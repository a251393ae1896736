// `cluster drain` in the cluster manager's terms: what the console checks before the drain message
// goes out, where a drained node's mail of non-DuraVIP bindings goes (pure, the same on every
// member), and the persisted word: the spool directory's drain.json, written whole to a temporary
// name, fsynced and renamed (shaping.json's way), so a drained node stays drained across a
// restart. Main thread; one small synchronous file read at start and one write per drain or
// undrain (an operator's command, rare).
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Route } from '../queue/routes.js';
import { isDrained } from './election.js';
import { compareStrings, type MemberState } from './state.js';

/**
 * Where a drained node sends the mail of bindings that are not DuraVIPs (its own addresses, or no
 * Bind_Address): the first member in node-name order, other than `self`, that can own addresses
 * (quorate, not leaving, not drained) and announces a #mmove address; 'wait' while there is none.
 * Every member sees the same states, so the choice does not depend on who computes it.
 */
export function drainTarget(states: readonly MemberState[], drains: ReadonlyMap<string, boolean>, self: string): Route {
  let best: string | null = null;
  for (const m of states) {
    if (m.node === self || !m.quorate || m.leaving || m.mmove === null || isDrained(m, drains)) continue;
    if (best === null || compareStrings(m.node, best) < 0) best = m.node;
  }
  return best === null ? { to: 'wait' } : { to: 'node', node: best };
}

/** `cluster drain|undrain NODE` against the view's states: refused (why), or the answer and
 *  whether the message must go out (not when NODE is already in that state). */
export function checkDrain(states: readonly MemberState[], drains: ReadonlyMap<string, boolean>, node: string, drained: boolean): { refused?: string; send: boolean; answer: string } {
  const target = states.find((m) => m.node === node);
  if (target === undefined) return { refused: `${node} is not a member of this view (members: ${states.map((m) => m.node).sort(compareStrings).join(', ')})`, send: false, answer: '' };
  if (isDrained(target, drains) === drained) return { send: false, answer: `${node} is ${drained ? 'already drained' : 'not drained'}\n` };
  if (drained && !states.some((m) => m.node !== node && m.quorate && !m.leaving && !isDrained(m, drains))) {
    return { refused: `${node} is the last member that is not drained: nobody would take its addresses and mail`, send: false, answer: '' };
  }
  return { send: true, answer: drained ? `draining ${node}: its DuraVIPs go to the others, its listeners answer 421, its queue moves\n` : `undraining ${node}\n` };
}

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

/** This node's drain as the cluster manager keeps it: the persisted word, when it began, and the
 *  queue's count of what is still here (the drain's progress). */
export class NodeDrain {
  drained: boolean;
  private since: number;
  private left: (() => number) | null = null;

  constructor(private readonly file: string | null, private readonly logger: Logger) {
    const d = loadDrain(file, logger);
    this.drained = d.drained;
    this.since = d.since;
    if (d.drained) logger.warn('cluster: this node is drained (drain.json): it owns no DuraVIP and takes no mail until `cluster undrain`');
  }

  track(left: () => number): void {
    this.left = left;
  }

  /** Drained or undrained by an agreed message: persisted and logged; false when nothing changed. */
  set(drained: boolean): boolean {
    if (drained === this.drained) return false;
    this.drained = drained;
    this.since = drained ? Date.now() : 0;
    saveDrain(this.file, { drained, since: this.since }, this.logger);
    this.logger.warn(drained ? 'cluster: this node is drained: handing over its DuraVIPs and moving its queue to the others' : 'cluster: this node is undrained: it takes addresses and mail again');
    return true;
  }

  snapshot(): { drained: boolean; drainedSince: number; queueLeft: number | null } {
    return { drained: this.drained, drainedSince: this.since, queueLeft: this.left === null ? null : this.left() };
  }
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
