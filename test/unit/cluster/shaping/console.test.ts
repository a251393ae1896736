// The shaping console commands: suspend and resume parse their arguments (a bad one is a clear
// error, an unknown binding refused), go through the shaping node, and `shaping suspensions` lists
// what is in force; `shaping leases` lists every cluster-wide limit's holders.
import { describe, expect, it } from 'vitest';
import { CommandTable } from '../../../../src/control/commands.js';
import { addShapingCommands, formatLeases, formatRestrictions } from '../../../../src/cluster/shaping/console.js';
import type { LeaseEntry } from '../../../../src/cluster/shaping/leases.js';
import type { Restriction } from '../../../../src/cluster/shaping/messages.js';

const NOW = Date.UTC(2026, 11, 3, 12, 0, 0);

const LEASES: LeaseEntry[] = [{
  key: 'mx:mx1.webmail.test#conn', cap: 5, sum: 5,
  holders: [{ member: 'n1', lease: 2, demand: 9, use: 2 }, { member: 'n2', lease: 2, demand: 3, use: 1 }, { member: 'n3@4', lease: 1, demand: 0, use: 1 }],
}, { key: 'bulk.test#msg/60000', cap: 600, sum: 200, holders: [{ member: 'n2', lease: 200, demand: 600, use: 180 }] }];

function host(): { t: CommandTable; made: Array<Omit<Restriction, 'origin'>>; lifted: Array<[string | null, string]> } {
  const made: Array<Omit<Restriction, 'origin'>> = [];
  const lifted: Array<[string | null, string]> = [];
  const t = new CommandTable();
  addShapingCommands(t, {
    shaping: {
      restrict: (r) => { made.push(r); },
      lift: (b, d) => { lifted.push([b, d]); },
      restrictions: () => made.map((r) => ({ ...r, origin: 'n1' })),
      leaseEntries: () => ({ status: 'round 5', entries: LEASES }),
    },
    destinationOf: (d) => d,
    hasBinding: (b) => b === 'b1',
    now: () => NOW,
  });
  return { t, made, lifted };
}

describe('shaping console', () => {
  it('suspends a domain for a duration, for one binding or all, with an optional reason', async () => {
    const { t, made } = host();
    expect(await t.run(['shaping', 'suspend', 'Bulk.test', '2h', 'complaints', 'spike'])).toBe('suspending bulk.test (every binding) until 2026-12-03T14:00:00.000Z on every node\n');
    expect(await t.run(['shaping', 'suspend', 'webmail.test', '--binding', 'b1', '30m'])).toBe('suspending webmail.test (binding b1) until 2026-12-03T12:30:00.000Z on every node\n');
    expect(made).toMatchObject([
      { action: 'suspend', binding: null, destination: 'bulk.test', until: NOW + 7_200_000, rule: 'console', reason: 'complaints spike' },
      { action: 'suspend', binding: 'b1', destination: 'webmail.test', until: NOW + 1_800_000, reason: 'suspended by the operator' },
    ]);
  });

  it('refuses what it cannot read, and a binding that is not configured', async () => {
    const { t, made } = host();
    await expect(t.run(['shaping', 'suspend', 'bulk.test'])).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST', message: expect.stringMatching(/^DURATION must be like 30m/) });
    await expect(t.run(['shaping', 'suspend', 'bulk.test', 'soon'])).rejects.toMatchObject({ message: expect.stringMatching(/^DURATION/) });
    await expect(t.run(['shaping', 'suspend', 'bulk.test', '--binding', 'b9', '1h'])).rejects.toMatchObject({ message: 'no binding "b9" is configured' });
    await expect(t.run(['shaping', 'suspend', 'bulk.test', '--binding'])).rejects.toMatchObject({ message: expect.stringMatching(/^--binding needs a name/) });
    await expect(t.run(['shaping', 'suspend', 'bulk.test', '--cluster', '1h'])).rejects.toMatchObject({ message: expect.stringMatching(/^unknown option --cluster/) });
    await expect(t.run(['shaping', 'resume', 'bulk.test', 'extra'])).rejects.toMatchObject({ message: expect.stringMatching(/^usage: shaping resume/) });
    expect(made).toEqual([]);
  });

  it('resumes a domain and says how many restrictions it lifts; lists what is in force', async () => {
    const { t, lifted } = host();
    await t.run(['shaping', 'suspend', 'bulk.test', '1h']);
    await t.run(['shaping', 'suspend', 'bulk.test', '--binding', 'b1', '2h']);
    expect(await t.run(['shaping', 'suspensions'])).toBe(
      'Action   Binding  Destination  Until                     Left   Origin  Rule     Reason\n'
      + 'suspend  *        bulk.test    2026-12-03T13:00:00.000Z  1h00m  n1      console  suspended by the operator\n'
      + 'suspend  b1       bulk.test    2026-12-03T14:00:00.000Z  2h00m  n1      console  suspended by the operator\n'
      + '2 restriction(s)\n',
    );
    expect(await t.run(['shaping', 'resume', 'bulk.test', '--binding', 'b1'])).toBe('resuming bulk.test (binding b1): 1 restriction(s) lifted on every node\n');
    expect(await t.run(['shaping', 'resume', 'bulk.test'])).toBe('resuming bulk.test (every binding): 2 restriction(s) lifted on every node\n');
    expect(lifted).toEqual([['b1', 'bulk.test'], [null, 'bulk.test']]);
    expect(formatRestrictions([], NOW)).toBe('no restriction in force\n');
  });

  it('lists every cluster-wide limit with each member\'s lease, demand and use, departed ones marked', async () => {
    const { t } = host();
    expect(await t.run(['shaping', 'leases'])).toBe(
      'round 5\n'
      + 'Key                       Cap  Leased  Used  Member         Lease  Demand  Use\n'
      + 'mx:mx1.webmail.test#conn  5    5       4     n1             2      9       2\n'
      + '                                             n2             2      3       1\n'
      + '                                             n3 (departed)  1      0       1\n'
      + 'bulk.test#msg/60000       600  200     180   n2             200    600     180\n'
      + '2 key(s)\n',
    );
    expect(formatLeases('single node: every limit is this node\'s whole', [])).toBe('single node: every limit is this node\'s whole\nno lease held\n');
  });
});
