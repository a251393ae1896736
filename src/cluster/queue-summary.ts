// The cluster-wide queue summary (issue 14): each node multicasts, on the console group, the sizes
// of its queue per binding (the largest SUMMARY_ROWS, the rest as one "other bindings" aggregate,
// so the message is bounded whatever the number of bindings), and keeps the latest one of every
// member; the status page and `cluster membership` show them. The model, its validation, the
// per-member store and the pacer that decides when to send. Main thread, pure but for the pacer's timer.

import { isNodeName } from './state.js';

/** Bindings a summary names one by one; the others are summed in `other`. */
export const SUMMARY_ROWS = 100;
/** A changed summary goes out at most this often (plus once after every view change). */
export const SUMMARY_PACE_MS = 2000;
/** A binding group's or binding's name in a summary (config names are far shorter). */
const MAX_NAME = 256;

export interface QueueCounts {
  active: number;
  deferred: number;
  hold: number;
}

export interface SummaryRow extends QueueCounts {
  bindingGroup: string;
  binding: string;
}

/** One node's queue as it multicasts it. */
export interface QueueSummary extends QueueCounts {
  node: string;
  /** ms since the epoch, the sender's clock: when it read these sizes. */
  at: number;
  /** The node is drained (`cluster drain`): its queue is what it still has to move. */
  drained: boolean;
  /** The largest bindings with mail (by active + deferred + hold), in bindingGroup/binding order. */
  bindings: SummaryRow[];
  /** The other bindings with mail: how many, and their sum. */
  other: QueueCounts & { bindings: number };
}

const total = (c: QueueCounts): number => c.active + c.deferred + c.hold;
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The summary of `sizes` (node/metrics.ts queueSizes: every binding, idle ones at 0). */
export function buildQueueSummary(
  node: string, at: number, drained: boolean, sizes: readonly (QueueCounts & { bindingGroup: string; binding: string })[], cap = SUMMARY_ROWS,
): QueueSummary {
  const s: QueueSummary = { node, at, drained, active: 0, deferred: 0, hold: 0, bindings: [], other: { bindings: 0, active: 0, deferred: 0, hold: 0 } };
  const busy: SummaryRow[] = [];
  for (const q of sizes) {
    if (total(q) === 0) continue;
    s.active += q.active;
    s.deferred += q.deferred;
    s.hold += q.hold;
    busy.push({ bindingGroup: q.bindingGroup, binding: q.binding, active: q.active, deferred: q.deferred, hold: q.hold });
  }
  if (busy.length > cap) {
    // Largest first, ties by name: the same sizes always give the same rows (change detection).
    busy.sort((a, b) => total(b) - total(a) || cmp(a.bindingGroup, b.bindingGroup) || cmp(a.binding, b.binding));
    for (let i = cap; i < busy.length; i++) {
      const r = busy[i]!;
      s.other.bindings++;
      s.other.active += r.active;
      s.other.deferred += r.deferred;
      s.other.hold += r.hold;
    }
    busy.length = cap;
  }
  s.bindings = busy.sort((a, b) => cmp(a.bindingGroup, b.bindingGroup) || cmp(a.binding, b.binding));
  return s;
}

/** The same summary but for its time: nothing to send. */
export function sameSummary(a: QueueSummary, b: QueueSummary): boolean {
  if (a.node !== b.node || a.drained !== b.drained || a.active !== b.active || a.deferred !== b.deferred || a.hold !== b.hold) return false;
  if (a.other.bindings !== b.other.bindings || a.other.active !== b.other.active || a.other.deferred !== b.other.deferred || a.other.hold !== b.other.hold) return false;
  if (a.bindings.length !== b.bindings.length) return false;
  for (let i = 0; i < a.bindings.length; i++) {
    const x = a.bindings[i]!;
    const y = b.bindings[i]!;
    if (x.bindingGroup !== y.bindingGroup || x.binding !== y.binding || x.active !== y.active || x.deferred !== y.deferred || x.hold !== y.hold) return false;
  }
  return true;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_NAME;
const counts = (v: Record<string, unknown>): boolean => isCount(v.active) && isCount(v.deferred) && isCount(v.hold);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A summary from a peer's JSON (it is untrusted): the fields and their types, at most SUMMARY_ROWS
 * rows of bindings with mail, no binding twice, and totals that are the sum of the rows and
 * `other`. Null when anything is off.
 */
export function decodeQueueSummary(v: unknown): QueueSummary | null {
  if (!isObject(v) || !isNodeName(v.node) || !isCount(v.at) || typeof v.drained !== 'boolean' || !counts(v)) return null;
  const o = v.other;
  if (!isObject(o) || !counts(o) || !isCount(o.bindings)) return null;
  if (!Array.isArray(v.bindings) || v.bindings.length > SUMMARY_ROWS) return null;
  const sum = { active: o.active as number, deferred: o.deferred as number, hold: o.hold as number };
  const seen = new Set<string>();
  const rows: SummaryRow[] = [];
  for (const r of v.bindings as unknown[]) {
    if (!isObject(r) || !isName(r.bindingGroup) || !isName(r.binding) || !counts(r)) return null;
    const row = { bindingGroup: r.bindingGroup, binding: r.binding, active: r.active as number, deferred: r.deferred as number, hold: r.hold as number };
    if (total(row) === 0) return null;
    const key = `${row.bindingGroup}\0${row.binding}`;
    if (seen.has(key)) return null;
    seen.add(key);
    sum.active += row.active;
    sum.deferred += row.deferred;
    sum.hold += row.hold;
    rows.push(row);
  }
  if (sum.active !== v.active || sum.deferred !== v.deferred || sum.hold !== v.hold) return null;
  if ((o.bindings === 0) !== (total(o as unknown as QueueCounts) === 0)) return null;
  return {
    node: v.node, at: v.at, drained: v.drained, active: v.active as number, deferred: v.deferred as number, hold: v.hold as number,
    bindings: rows, other: { bindings: o.bindings, active: o.active as number, deferred: o.deferred as number, hold: o.hold as number },
  };
}

/** The latest summary of every member of the view, by CPG member key ("nodeId:pid"). */
export class QueueSummaryStore {
  private readonly byMember = new Map<string, QueueSummary>();

  set(member: string, s: QueueSummary): void {
    this.byMember.set(member, s);
  }

  /** After a view change: members not in `current` are forgotten (their queue is not known any more). */
  retain(current: ReadonlySet<string>): void {
    for (const k of this.byMember.keys()) if (!current.has(k)) this.byMember.delete(k);
  }

  clear(): void {
    this.byMember.clear();
  }

  get size(): number {
    return this.byMember.size;
  }

  /** Every member's latest, in node-name order (a name announced by two processes: the newer). */
  list(): QueueSummary[] {
    const byNode = new Map<string, QueueSummary>();
    for (const s of this.byMember.values()) {
      const had = byNode.get(s.node);
      if (had === undefined || s.at >= had.at) byNode.set(s.node, s);
    }
    return [...byNode.values()].sort((a, b) => cmp(a.node, b.node));
  }
}

export interface SummaryPacerOptions {
  /** This node's summary now (cheap: one pass over its bindings). */
  build: () => QueueSummary;
  /** Multicasts it; false when it could not (not in the group): it is tried again at the next turn. */
  send: (s: QueueSummary) => boolean;
  /** Whether a send can succeed now (in the group, with a secret): no summary is built otherwise. */
  ready?: () => boolean;
  now?: () => number;
  /** Tests: a repeating timer; returns its cancel. */
  every?: (fn: () => void, ms: number) => () => void;
  paceMs?: number;
}

const defaultEvery = (fn: () => void, ms: number): (() => void) => {
  const t = setInterval(fn, ms);
  t.unref();
  return () => clearInterval(t);
};

/**
 * When this node sends its summary: after every view change (a joiner learns everyone's), and
 * otherwise only when it changed, at most once per paceMs; a quiet queue sends nothing.
 */
export class SummaryPacer {
  private last: QueueSummary | null = null;
  private lastAt = -Infinity;
  private cancel: (() => void) | null = null;
  private readonly now: () => number;
  private readonly pace: number;

  constructor(private readonly o: SummaryPacerOptions) {
    this.now = o.now ?? Date.now;
    this.pace = o.paceMs ?? SUMMARY_PACE_MS;
  }

  start(): void {
    this.cancel ??= (this.o.every ?? defaultEvery)(() => this.tick(), this.pace);
  }

  stop(): void {
    this.cancel?.();
    this.cancel = null;
  }

  /** The timer's turn: sends when the summary changed and the last send is paceMs old. */
  tick(): void {
    if (this.now() - this.lastAt < this.pace || this.o.ready?.() === false) return;
    const s = this.o.build();
    if (this.last !== null && sameSummary(this.last, s)) return;
    this.send(s);
  }

  /** A view change: send now, whatever was sent before. */
  viewChanged(): void {
    if (this.o.ready?.() === false) return;
    this.send(this.o.build());
  }

  private send(s: QueueSummary): void {
    if (!this.o.send(s)) return;
    this.last = s;
    this.lastAt = this.now();
  }
}
