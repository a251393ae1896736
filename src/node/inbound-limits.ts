// Cluster_Max_Inbound_Connections on this node: one shared counter per Inbound_Cidr network (the
// listeners count in it across workers and Listen addresses), the node's share of each network's
// cap asked from the cluster (Allowances, key `in:CIDR`) and written into the counter's limit word,
// and the `shaping inbound` console view. Main thread; nothing here blocks (Atomics reads, a timer).

import type { Config } from '../config/index.js';
import type { InboundCidrConfig } from '../config/types.js';
import type { CommandTable } from '../control/commands.js';
import { inboundState, newInboundCount, resetInboundSlot, setInboundLimit } from '../listener/inbound-count.js';
import type { InboundSpec } from '../listener/spec.js';
import { inboundKey, type AllowanceUse, type Allowances, type LimitKey } from '../queue/allowances.js';

// --- the counters (one per network for the life of the process) ----------------------------------

/** By canonical CIDR: a reload or a replaced worker counts on the same buffer. */
const counters = new Map<string, SharedArrayBuffer>();
/** Each network's cap as the config in force says. */
const caps = new Map<string, number>();
/** Whoever writes the limit words; until one exists (tests, a daemon not wired yet), the cap. */
let governor: InboundLimits | null = null;

/** The Inbound_Cidr networks as every ESMTP ListenerSpec carries them (start and every reload). */
export function inboundSpecs(cfg: Config): InboundSpec[] {
  caps.clear();
  return cfg.inboundCidrs.map((n) => {
    caps.set(n.cidr, n.limit);
    let count = counters.get(n.cidr);
    if (count === undefined) counters.set(n.cidr, (count = newInboundCount(governor === null ? n.limit : 0)));
    else if (governor === null) setInboundLimit(count, n.limit);
    return { cidr: n.cidr, count };
  });
}

/** Before a worker in `slot` starts (first or replacement): its predecessor's connections left. */
export function resetInboundSlots(slot: number): void {
  for (const b of counters.values()) resetInboundSlot(b, slot);
}

/** For /metrics: refusals since start and connections open now, per configured network. */
export function inboundCounts(): { cidr: string; open: number; limit: number; refused: number }[] {
  return [...caps.keys()].map((cidr) => ({ cidr, ...inboundState(counters.get(cidr)!) }));
}

// --- the node's share of each cap ------------------------------------------------------------------

/** One member's claim on a key, as the cluster's lease table knows it (for the console). */
export interface InboundShare {
  node: string;
  lease: number;
  demand?: number;
  use?: number;
}

export interface InboundLimitsOptions {
  /** The cluster's shares (the shaping group's leases); without it this node may use each whole
   *  cap, which is right on a single node only. */
  allowances?: Allowances;
  config: () => Config;
  /** Every member's share of `key`, from the provider's lease table; without it the view shows
   *  this node only. */
  shares?: (key: LimitKey) => readonly InboundShare[];
  /** Free places each node asks for beyond what it uses (default 1): see `demandOf`. */
  headroom?: number;
  /** How often demand is looked at again (default 1 s: the window of "refused recently"). */
  intervalMs?: number;
}

/**
 * The demand this node declares on `in:CIDR`: connections open now, plus connections refused in
 * the last interval (clients that would be here with a larger share), plus `headroom` free places,
 * never above the cap. The headroom is what lets an idle node accept the first connection from a
 * network without waiting for a lease round (the lease comes only after the demand is seen); its
 * cost is that each node holding no connections still keeps `headroom` of the cap, so with
 * N nodes a busy one can use at most cap - (N - 1) x headroom until the others' leases shrink. The
 * refusals make a node that turns clients away ask for more at once, instead of waiting for its
 * open count (which refusals keep low) to show the need.
 */
export function demandOf(open: number, refusedRecently: number, headroom: number, cap: number): number {
  return Math.min(cap, open + refusedRecently + headroom);
}

/** A single node's allowances: each key's whole cap, always. */
class WholeCaps implements Allowances {
  private readonly caps = new Map<LimitKey, number>();
  declare(key: LimitKey, cap: number): void { this.caps.set(key, cap); }
  forget(key: LimitKey): void { this.caps.delete(key); }
  allowance(key: LimitKey): number { return this.caps.get(key) ?? 0; }
  target(key: LimitKey): number { return this.allowance(key); }
  setUse(): void {}
  onChange(): void {}
}

export class InboundLimits implements AllowanceUse {
  private readonly allowances: Allowances;
  private readonly headroom: number;
  /** Per network: refusals counted at the last look, the demand last declared. */
  private readonly seen = new Map<string, { refused: number; demand: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: InboundLimitsOptions) {
    this.allowances = o.allowances ?? new WholeCaps();
    this.headroom = o.headroom ?? 1;
    // From now on the lease, not the cap, is the limit of every counter.
    governor = this;
    this.allowances.onChange(() => this.write());
    this.apply(o.config());
  }

  /** Start and every reload: declares each configured network, forgets those a reload removed,
   *  and writes the limits in force. */
  apply(cfg: Config): void {
    inboundSpecs(cfg);
    for (const cidr of [...this.seen.keys()]) {
      if (cfg.inboundCidrs.some((n) => n.cidr === cidr)) continue;
      this.seen.delete(cidr);
      this.allowances.forget(inboundKey(cidr));
    }
    for (const n of cfg.inboundCidrs) this.declare(n, true);
    this.write();
  }

  /** Looks at demand every intervalMs; unref'd, so it never keeps the process alive. */
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), this.o.intervalMs ?? 1_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look at every network's demand; declares those that changed. */
  tick(): void {
    for (const n of this.o.config().inboundCidrs) this.declare(n, false);
  }

  /** AllowanceUse: connections open on this node from the network of `key` (`in:CIDR`). */
  use(key: LimitKey): number {
    const b = counters.get(key.startsWith('in:') ? key.slice(3) : key);
    return b === undefined ? 0 : inboundState(b).open;
  }

  /** Whether `key` is one of the keys this class answers `use` for (for a provider that has
   *  several users: the queue's book and this). */
  static owns(key: LimitKey): boolean {
    return key.startsWith('in:');
  }

  private declare(n: InboundCidrConfig, force: boolean): void {
    const b = counters.get(n.cidr);
    if (b === undefined) return;
    const s = inboundState(b);
    const last = this.seen.get(n.cidr);
    const demand = demandOf(s.open, last === undefined ? 0 : Math.max(0, s.refused - last.refused), this.headroom, n.limit);
    this.seen.set(n.cidr, { refused: s.refused, demand });
    if (force || last === undefined || last.demand !== demand) this.allowances.declare(inboundKey(n.cidr), n.limit, demand);
  }

  /** The provider's allowances into the counters' limit words (every onChange). */
  private write(): void {
    for (const n of this.o.config().inboundCidrs) {
      const b = counters.get(n.cidr);
      if (b !== undefined) setInboundLimit(b, Math.min(n.limit, this.allowances.allowance(inboundKey(n.cidr))));
    }
  }

  /** `shaping inbound`: per network its cap, this node's open connections, allowance and
   *  refusals, and every node's share when the provider tells them. */
  view(): string {
    const cfg = this.o.config();
    if (cfg.inboundCidrs.length === 0) return 'no Inbound_Cidr configured in ESMTP_Listener\n';
    const node = cfg.global.Nodename;
    const out: string[] = [];
    for (const n of cfg.inboundCidrs) {
      const key = inboundKey(n.cidr);
      const s = inboundState(counters.get(n.cidr) ?? newInboundCount(0));
      out.push(`network ${n.cidr} (Cluster_Max_Inbound_Connections = ${n.limit}, every Listen of ESMTP_Listener)`);
      out.push(`  ${node} (this node): ${s.open} open, allowance ${s.limit}, target ${this.allowances.target(key)}, refused ${s.refused} since start`);
      for (const sh of this.o.shares?.(key) ?? []) {
        if (sh.node === node) continue;
        const extra = [sh.use !== undefined ? `${sh.use} in use` : '', sh.demand !== undefined ? `demand ${sh.demand}` : ''].filter((x) => x !== '').join(', ');
        out.push(`  ${sh.node}: share ${sh.lease}${extra === '' ? '' : `, ${extra}`}`);
      }
    }
    return out.join('\n') + '\n';
  }

  addCommands(t: CommandTable): void {
    t.add('shaping inbound', 'connections per Inbound_Cidr network: this node\'s count and allowance, each node\'s share of Cluster_Max_Inbound_Connections', () => this.view());
  }
}
