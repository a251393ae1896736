// Holdings (src/cluster/holdings.ts), the break-before-make rules of issue 12 with the plumbing, ARP
// and guardian replaced by recorders: what we no longer own goes before anything new is plumbed,
// nothing is plumbed while another member announces holding it or before a departed member's guard
// time, and nothing new while taking is not allowed. Pure (injected clock).
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ClusterConfig } from '../../../src/config/types.js';
import type { HoldPlan } from '../../../src/cluster/holdings.js';

const log: string[] = [];

vi.mock('../../../src/cluster/plumbing.js', () => ({
  Plumbing: class {
    readonly lifetimeSec = 3;
    readonly errors = new Map<string, string>();
    add(a: string): boolean { log.push(`plumb ${a}`); return true; }
    remove(a: string): boolean { log.push(`delete ${a}`); return true; }
    placement(): { ifname: string; prefixLength: number } { return { ifname: 'eth1', prefixLength: 32 }; }
    removeLeftovers(): string[] { return []; }
    check(): { readded: string[]; removed: string[] } { return { readded: [], removed: [] }; }
    setTopologies(): void {}
  },
}));
vi.mock('../../../src/cluster/arp-schedule.js', () => ({
  ArpSchedule: class {
    start(a: string): void { log.push(`arp ${a}`); }
    stop(a: string): void { log.push(`arp stop ${a}`); }
    stopAll(): void {}
    setSettings(): void {}
    list(): unknown[] { return []; }
    knownHosts(): Map<string, string> { return new Map(); }
  },
}));
vi.mock('../../../src/cluster/guardian.js', () => ({
  GuardianLink: class {
    start(): void {}
    stop(): void {}
    declare(): void {}
    forget(): void {}
  },
}));

const { Holdings, DEPARTED_GUARD_MS } = await import('../../../src/cluster/holdings.js');

const cluster = {
  options: { If_Check_Interval: 1000, Arp_Count: 1, Arp_Interval: 100, Arp_Refresh: 0, Arp_Mode: 'reply', Arp_All_Hosts: false },
  topologies: [],
} as unknown as ClusterConfig;

function plan(want: string[], over: Partial<HoldPlan> = {}): HoldPlan {
  return { want: new Set(want), mayTake: true, heldElsewhere: () => false, ...over };
}

let reapplied = 0;
function holdings(): InstanceType<typeof Holdings> {
  return new Holdings(cluster, pino({ level: 'silent' }), () => [], () => { reapplied++; }, (a) => log.push(`released ${a}`));
}

beforeEach(() => {
  log.length = 0;
  reapplied = 0;
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('holdings: break before make', () => {
  it('deletes what it no longer owns before it plumbs anything new, in one apply', () => {
    const h = holdings();
    h.apply(plan(['198.51.100.1']));
    log.length = 0;
    h.apply(plan(['198.51.100.2']));
    expect(log).toEqual(['arp stop 198.51.100.1', 'delete 198.51.100.1', 'released 198.51.100.1', 'plumb 198.51.100.2', 'arp 198.51.100.2']);
    expect(h.held()).toEqual(['198.51.100.2']);
  });

  it('waits while another member announces holding the address, and takes it once it does not', () => {
    const h = holdings();
    let elsewhere = true;
    const p = (): HoldPlan => plan(['198.51.100.1'], { heldElsewhere: () => elsewhere });
    h.apply(p());
    expect(log).toEqual([]);
    expect(h.owns('198.51.100.1')).toBe(false);
    expect(h.snapshot().releasing).toEqual(['198.51.100.1']);
    elsewhere = false; // the old owner's announce without it arrived
    h.apply(p());
    expect(log).toEqual(['plumb 198.51.100.1', 'arp 198.51.100.1']);
    expect(h.owns('198.51.100.1')).toBe(true);
    expect(h.snapshot().releasing).toEqual([]);
  });

  it('plumbs what a departed member held only when its guard time is over, and wakes itself for it', () => {
    const h = holdings();
    h.memberHolds('2:200', ['198.51.100.1']);
    h.memberHolds('3:300', ['198.51.100.2']);
    h.memberHolds('3:300', []); // it released .2 before leaving: no guard for that
    h.memberLeft('2:200');
    h.memberLeft('3:300');
    const p = (): HoldPlan => plan(['198.51.100.1', '198.51.100.2']);
    h.apply(p());
    expect(log).toEqual(['plumb 198.51.100.2', 'arp 198.51.100.2']);
    expect(reapplied).toBe(0);
    vi.advanceTimersByTime(DEPARTED_GUARD_MS - 1);
    expect(reapplied).toBe(0);
    vi.advanceTimersByTime(2);
    expect(reapplied).toBe(1);
    h.apply(p());
    expect(log.slice(2)).toEqual(['plumb 198.51.100.1', 'arp 198.51.100.1']);
  });

  it('still releases, but takes nothing, while taking is not allowed (stale quorum, incomplete view)', () => {
    const h = holdings();
    h.apply(plan(['198.51.100.1']));
    log.length = 0;
    h.apply(plan(['198.51.100.2'], { mayTake: false }));
    expect(log).toEqual(['arp stop 198.51.100.1', 'delete 198.51.100.1', 'released 198.51.100.1']);
    expect(h.held()).toEqual([]);
  });

  it('says released for every address it takes off the wire, whatever the reason, so deliveries from it are cut', () => {
    const h = holdings();
    h.apply(plan(['198.51.100.1', '198.51.100.2']));
    log.length = 0;
    h.apply(plan([])); // a stalled corosync or lost quorum: nothing wanted, no election involved
    expect(log.filter((l) => l.startsWith('released'))).toEqual(['released 198.51.100.1', 'released 198.51.100.2']);
    h.apply(plan(['198.51.100.3']));
    log.length = 0;
    h.releaseAll();
    expect(log.filter((l) => l.startsWith('released'))).toEqual(['released 198.51.100.3']);
  });
});
