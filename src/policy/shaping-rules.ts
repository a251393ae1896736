// Response-driven shaping (Momentum's Adaptive Delivery): the Shaping_Rule stanzas read every
// delivery failure that carries the receiver's own reply, count matches per rule and scope in a
// sliding window, and say when a rule fires and what it does (suspend, throttle, reduce
// connections, bounce) until when. Deciding is all this does: the cluster announces and applies a
// firing, the scheduler obeys it. Pure; the caller passes the clock. Main thread.

import type { ShapingRuleConfig } from '../config/types.js';
import type { Rate } from '../config/schema.js';
import type { BounceClass } from './bounce-class.js';
import { SlidingWindow } from './window.js';

/** One recipient's failure as delivery reports it. */
export interface ReplyEvent {
  readonly binding: string;
  /** The recipient's domain. */
  readonly domain: string;
  /** The destination key the limits count (the domain, or its MX set with Mx_Rollup). */
  readonly destination: string;
  /** The MX or route host that answered, when there was one. */
  readonly mx: string | null;
  /** The receiver's whole reply line ("421 4.7.0 ..."); null when vipmta decided without a reply. */
  readonly reply: string | null;
  readonly cls: BounceClass;
}

export type ShapingAction = 'suspend' | 'throttle' | 'reduce_connections' | 'bounce';

/** A rule that fired: what to do, to what, until when. */
export interface Firing {
  readonly rule: string;
  readonly action: ShapingAction;
  /** null: every binding (Scope = domain). */
  readonly binding: string | null;
  readonly destination: string;
  /** Wall-clock ms when it ends (equal to `at` for bounce, which acts on the one failure). */
  readonly until: number;
  readonly at: number;
  readonly rate: Rate | null;
  readonly connections: number | null;
  /** The reply that made it fire. */
  readonly reason: string;
}

/** A glob ("yahoo.*", "*.outlook.com") as a whole-string, case-insensitive test. */
export function globTest(patterns: readonly string[]): (s: string) => boolean {
  if (patterns.length === 0) return () => true;
  const res = patterns.map((p) => new RegExp(`^${p.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i'));
  return (s) => res.some((r) => r.test(s));
}

interface Compiled {
  readonly cfg: ShapingRuleConfig;
  readonly domains: (s: string) => boolean;
  readonly mx: (s: string) => boolean;
  readonly classes: ReadonlySet<number>;
  /** Matches per scope key, and when each scope's last firing ends (no re-firing before). */
  readonly windows: Map<string, SlidingWindow>;
  readonly activeUntil: Map<string, number>;
}

export class RuleBook {
  private readonly rules: Compiled[];

  constructor(rules: readonly ShapingRuleConfig[]) {
    this.rules = rules.map((cfg) => ({
      cfg,
      domains: globTest(cfg.options.Domains),
      mx: globTest(cfg.options.Mx),
      classes: new Set(cfg.options.Classes),
      windows: new Map(),
      activeUntil: new Map(),
    }));
  }

  /**
   * Reads one failure at `now`; returns the rules that fire on it (usually none). Failures vipmta
   * generated itself (no reply) never match: a rule is about what the receiver said.
   */
  observe(ev: ReplyEvent, now: number): Firing[] {
    if (ev.reply === null) return [];
    const out: Firing[] = [];
    for (const r of this.rules) {
      const o = r.cfg.options;
      if (r.cfg.match !== null && !r.cfg.match.test(ev.reply)) continue;
      if (r.classes.size > 0 && !r.classes.has(ev.cls)) continue;
      if (!r.domains(ev.domain)) continue;
      if (o.Mx.length > 0 && (ev.mx === null || !r.mx(ev.mx))) continue;
      const binding = o.Scope === 'domain' ? null : ev.binding;
      const key = `${binding ?? '*'}\0${ev.destination}`;
      if (o.Action !== 'bounce' && (r.activeUntil.get(key) ?? -Infinity) > now) continue;
      const t = o.Threshold ?? { count: 1, periodMs: 60_000 };
      let w = r.windows.get(key);
      if (w === undefined) {
        w = new SlidingWindow(t.count, t.periodMs);
        r.windows.set(key, w);
      }
      w.take(now);
      if (w.count(now) < t.count) continue;
      r.windows.delete(key); // counting starts again after a firing
      const until = o.Action === 'bounce' ? now : now + o.Duration;
      if (o.Action !== 'bounce') r.activeUntil.set(key, until);
      out.push({
        rule: r.cfg.name, action: o.Action!, binding, destination: ev.destination, at: now, until,
        rate: o.Action === 'throttle' ? o.Rate : null,
        connections: o.Action === 'reduce_connections' ? o.Connections ?? null : null,
        reason: ev.reply,
      });
    }
    return out;
  }

  /** Forgets windows and firings that can no longer matter (call now and then). */
  prune(now: number): void {
    for (const r of this.rules) {
      for (const [k, until] of r.activeUntil) if (until <= now) r.activeUntil.delete(k);
      for (const [k, w] of r.windows) if (w.count(now) === 0) r.windows.delete(k);
    }
  }
}
