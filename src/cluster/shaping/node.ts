// This node's member of the shaping group: the CPG group (its own, "vipmta-shaping", apart from the
// DuraVIP election's) over which the cluster agrees on restrictions (suspensions, throttles,
// connection reductions) and on the leases of cluster-wide limits (`allowances`, allowances.ts). A restriction is
// multicast and applied when it comes back in agreed order, the same moment on every member; it
// is persisted (the spool directory's shaping.json, written whole and renamed) so a restarted node
// keeps it, and it ends on its own at its `until`. Without corosync (a single node) the same calls
// apply at once. After a view change every member says all it knows ('sync'), so a node that joins
// learns what is in force. Main thread; a small file write per change of restrictions.

import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { CorosyncGroup, CpgConfChange } from '../../native/index.js';
import { GroupLink } from '../group-link.js';
import { memberKey } from '../view.js';
import { ClusterAllowances, type Timers } from './allowances.js';
import type { LeaseEntry } from './leases.js';
import { decodeShapingMessage, encodeShapingMessage, restrictionsOf, type Restriction, type ShapingMessage } from './messages.js';
import { ShapingState, type InForce } from './state.js';

export const SHAPING_GROUP = 'vipmta-shaping';

export interface ShapingNodeOptions {
  /** This node's name (Nodename). */
  readonly node: string;
  readonly logger: Logger;
  /** Where restrictions persist (the spool directory's shaping.json); null: not persisted. */
  readonly file: string | null;
  /** Join the shaping group (a clustered node); false: single node, changes apply at once. */
  readonly clustered: boolean;
  readonly now?: () => number;
  /** Whether this node's partition is quorate now (the DuraVIP manager's); later changes come
   *  through `allowances.quorumChanged`. Default: quorate. */
  readonly quorate?: () => boolean;
  /** Tests inject a fake join. */
  readonly join?: (name: string) => Promise<CorosyncGroup>;
  /** Tests inject the lease ticks' timers. */
  readonly timers?: Timers;
}

/**
 * Events: 'changed' () whenever the restrictions in force change (a new one, a lift, an expiry):
 * the scheduler looks again at what it holds back.
 */
export class ShapingNode extends EventEmitter {
  readonly state = new ShapingState();
  /** The cluster-wide limits' allowances (the queue's and listeners' Allowances). */
  readonly allowances: ClusterAllowances;
  private readonly now: () => number;
  private readonly link: GroupLink | null;
  private group: CorosyncGroup | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private sendFailing = false;
  private stopped = false;

  constructor(private readonly o: ShapingNodeOptions) {
    super();
    this.now = o.now ?? Date.now;
    this.allowances = new ClusterAllowances({
      node: o.node, logger: o.logger, clustered: o.clustered, now: this.now,
      ...(o.quorate ? { quorate: o.quorate } : {}), ...(o.timers ? { timers: o.timers } : {}),
    });
    this.link = o.clustered
      ? new GroupLink({
        name: SHAPING_GROUP, logger: o.logger, prefix: 'shaping: ', without: 'restrictions apply on this node only and cluster-wide limits allow it nothing',
        joined: (g) => this.joined(g),
        lost: () => {
          this.group = null;
          this.allowances.detach();
        },
        ...(o.join ? { join: o.join } : {}),
      })
      : null;
  }

  /** Loads what was persisted (expired restrictions are dropped), then joins the group. */
  start(): void {
    const saved = this.load();
    if (saved.length > 0) {
      this.state.load(saved, this.now());
      this.o.logger.info({ restrictions: this.state.restrictions(this.now()).length }, 'shaping: restrictions restored');
    }
    this.scheduleExpiry();
    this.allowances.start();
    this.link?.start();
  }

  stop(): void {
    this.stopped = true;
    this.allowances.stop();
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.link?.stop();
    this.group = null;
  }

  /** What is in force for (binding, destination) now. */
  inForce(binding: string, destination: string): InForce {
    return this.state.inForce(binding, destination, this.now());
  }

  restrictions(): Restriction[] {
    return this.state.restrictions(this.now());
  }

  /** The lease table of cluster-wide limits (`shaping leases`), and its state in a line. */
  leaseEntries(): { status: string; entries: LeaseEntry[] } {
    return { status: this.allowances.status(), entries: this.allowances.entries() };
  }

  /** Starts a restriction cluster-wide (a rule fired here, or an operator). */
  restrict(r: Omit<Restriction, 'origin'>): void {
    this.publish({ type: 'restrict', node: this.o.node, now: this.now(), restriction: { ...r, origin: this.o.node } });
  }

  /** Ends the restrictions on destination (of one binding, or all of them when binding is null). */
  lift(binding: string | null, destination: string): void {
    this.publish({ type: 'lift', node: this.o.node, now: this.now(), binding, destination });
  }

  /** Clustered: multicast, applied when it comes back in agreed order. Single node: applied now.
   *  A clustered node cut off from corosync applies it locally too (it is safe: it only holds back). */
  private publish(m: ShapingMessage): void {
    if (this.group !== null) {
      try {
        this.group.send(encodeShapingMessage(m));
        return;
      } catch (err) {
        this.o.logger.warn({ err }, 'shaping: cannot multicast; applying on this node only');
      }
    } else if (this.link !== null) {
      this.o.logger.warn({ type: m.type }, 'shaping: not in the shaping group; applying on this node only');
    }
    this.take(m);
  }

  private joined(g: CorosyncGroup): void {
    this.group = g;
    this.allowances.attach((m) => this.publishRaw(m));
    g.on('confchg', (c: CpgConfChange) => this.onConfchg(c));
    g.on('message', (nodeId: number, pid: number, data: Buffer) => {
      const d = decodeShapingMessage(data);
      if (!d.ok) {
        this.o.logger.warn({ nodeId, error: d.error }, 'shaping: ignored a message that does not decode');
        return;
      }
      const m = d.message;
      if (m.type === 'claims' || m.type === 'sync' || m.type === 'release') this.allowances.deliver(memberKey(nodeId, pid), m);
      if (m.type !== 'claims' && m.type !== 'release') this.take(m);
    });
    this.o.logger.info({ group: SHAPING_GROUP }, 'shaping: joined the shaping group');
  }

  /** A view change: everyone says what it knows (its leases, the departed members' it knows, the
   *  restrictions), so a member that joins learns it and the leases are agreed again. */
  private onConfchg(c: CpgConfChange): void {
    if (this.group === null) return;
    const leases = this.allowances.viewChanged(c.members.map((m) => memberKey(m.nodeId, m.pid)));
    const now = this.now();
    this.publishRaw({ type: 'sync', node: this.o.node, now, ...leases, restrictions: this.state.restrictions(now) });
  }

  /** Multicasts; false when corosync does not take it (said once until a send works again: the
   *  leases send every 100 ms). */
  private publishRaw(m: ShapingMessage): boolean {
    if (this.group === null) return false;
    try {
      this.group.send(encodeShapingMessage(m));
      this.sendFailing = false;
      return true;
    } catch (err) {
      if (!this.sendFailing) this.o.logger.warn({ err }, 'shaping: cannot multicast');
      this.sendFailing = true;
      return false;
    }
  }

  /** Applies one message (agreed order, or local); persists and says so when restrictions changed. */
  private take(m: ShapingMessage): void {
    if (this.stopped) return;
    const now = this.now();
    if (!this.state.apply(m, now)) return;
    if (m.type === 'restrict') {
      const r = m.restriction;
      this.o.logger.info({ action: r.action, binding: r.binding, destination: r.destination, until: new Date(r.until).toISOString(), origin: r.origin, rule: r.rule, reason: r.reason }, 'shaping: restriction in force');
    } else if (m.type === 'lift') {
      this.o.logger.info({ binding: m.binding, destination: m.destination, by: m.node }, 'shaping: restrictions lifted');
    }
    this.save(this.state.restrictions(now));
    this.scheduleExpiry();
    this.emit('changed');
  }

  private scheduleExpiry(): void {
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    const next = this.state.restrictions(this.now())[0];
    if (next === undefined || this.stopped) return;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = null;
      const ended = this.state.expire(this.now());
      for (const r of ended) this.o.logger.info({ action: r.action, binding: r.binding, destination: r.destination, rule: r.rule }, 'shaping: restriction ended');
      if (ended.length > 0) {
        this.save(this.state.restrictions(this.now()));
        this.emit('changed');
      }
      this.scheduleExpiry();
    }, Math.min(Math.max(0, next.until - this.now()), 3_600_000));
    this.expiryTimer.unref();
  }

  private load(): Restriction[] {
    if (this.o.file === null) return [];
    try {
      const raw: unknown = JSON.parse(fs.readFileSync(this.o.file, 'utf8'));
      const rs = restrictionsOf((raw as { restrictions?: unknown } | null)?.restrictions);
      if (rs !== null) return rs;
      this.o.logger.error({ file: this.o.file, error: 'invalid restrictions' }, 'shaping: persisted restrictions unreadable; starting without them');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      this.o.logger.error({ err, file: this.o.file }, 'shaping: persisted restrictions unreadable; starting without them');
    }
    return [];
  }

  /** Whole file to a temporary name, fsync, rename: a crash leaves the old or the new, never half. */
  private save(rs: readonly Restriction[]): void {
    if (this.o.file === null) return;
    const tmp = `${this.o.file}.tmp`;
    try {
      fs.mkdirSync(path.dirname(this.o.file), { recursive: true });
      const fd = fs.openSync(tmp, 'w', 0o640);
      try {
        fs.writeSync(fd, `${JSON.stringify({ version: 1, restrictions: rs })}\n`);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.o.file);
    } catch (err) {
      this.o.logger.error({ err, file: this.o.file }, 'shaping: cannot persist restrictions (they hold until a restart)');
    }
  }
}
