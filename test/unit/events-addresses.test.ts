// DuraVIP address records: the holdings say when an address is plumbed here (taken, with its
// interface) and when it is taken off the wire (released); the node's cluster wiring turns the
// manager's 'taken' and 'released' into address_taken and address_released records. Plumbing,
// ARP and the guardian are recorders; the cluster manager is a bare EventEmitter.
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { ClusterConfig } from '../../src/config/types.js';
import type { EventEmit } from '../../src/events/emitter.js';
import type { NewEvent } from '../../src/events/records.js';

vi.mock('../../src/cluster/plumbing.js', () => ({
  Plumbing: class {
    readonly lifetimeSec = 3;
    readonly errors = new Map<string, string>();
    add(): boolean { return true; }
    remove(): boolean { return true; }
    placement(): { ifname: string; prefixLength: number } { return { ifname: 'eth1', prefixLength: 32 }; }
    removeLeftovers(): string[] { return []; }
    setTopologies(): void {}
  },
}));
vi.mock('../../src/cluster/arp-schedule.js', () => ({
  ArpSchedule: class {
    start(): void {}
    stop(): void {}
    stopAll(): void {}
    setSettings(): void {}
  },
}));
vi.mock('../../src/cluster/guardian.js', () => ({
  GuardianLink: class {
    start(): void {}
    stop(): void {}
    declare(): void {}
    forget(): void {}
  },
}));

const { Holdings } = await import('../../src/cluster/holdings.js');
const { startCluster } = await import('../../src/node/cluster.js');

const cluster = {
  options: { If_Check_Interval: 1000, Arp_Count: 1, Arp_Interval: 100, Arp_Refresh: 0, Arp_Mode: 'reply', Arp_All_Hosts: false },
  topologies: [],
} as unknown as ClusterConfig;

describe('address records', () => {
  it('hears of every address the holdings plumb and take off the wire', () => {
    const heard: string[] = [];
    const h = new Holdings(cluster, pino({ level: 'silent' }), () => [], () => {}, (a) => heard.push(`released ${a}`), (a, ifname) => heard.push(`taken ${a} ${ifname}`));
    h.apply({ want: new Set(['198.51.100.1']), mayTake: true, heldElsewhere: () => false });
    h.apply({ want: new Set(['198.51.100.2']), mayTake: true, heldElsewhere: () => false });
    h.releaseAll();
    expect(heard).toEqual(['taken 198.51.100.1 eth1', 'released 198.51.100.1', 'taken 198.51.100.2 eth1', 'released 198.51.100.2']);
  });

  it('records address_taken and address_released from the cluster manager\'s events', () => {
    const events: NewEvent[] = [];
    const ev: EventEmit = { emit: (e) => void events.push(e), journaled: (e) => void events.push(e) };
    const c = Object.assign(new EventEmitter(), { start: () => {} });
    const aborted: string[] = [];
    startCluster(c as never, {
      config: { ecclusterListeners: [] } as never, reroute: () => {}, logger: pino({ level: 'silent' }), events: ev,
      dispatch: { dropMovesTo: () => {}, abortDeliveriesFrom: (a: string) => void aborted.push(a) },
    });
    c.emit('taken', '198.51.100.1', 'eth1');
    c.emit('released', '198.51.100.1');
    expect(events).toEqual([{ type: 'address_taken', address: '198.51.100.1', ifname: 'eth1' }, { type: 'address_released', address: '198.51.100.1' }]);
    expect(aborted).toEqual(['198.51.100.1']); // what it did before stays
  });
});
