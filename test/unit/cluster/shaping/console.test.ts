// The shaping console commands: suspend and resume parse their arguments (a bad one is a clear
// error, an unknown binding refused), go through the shaping node, and `shaping suspensions` lists
// what is in force.
import { describe, expect, it } from 'vitest';
import { CommandTable } from '../../../../src/control/commands.js';
import { addShapingCommands, formatRestrictions } from '../../../../src/cluster/shaping/console.js';
import type { Restriction } from '../../../../src/cluster/shaping/messages.js';

const NOW = Date.UTC(2026, 11, 3, 12, 0, 0);

function host(): { t: CommandTable; made: Array<Omit<Restriction, 'origin'>>; lifted: Array<[string | null, string]> } {
  const made: Array<Omit<Restriction, 'origin'>> = [];
  const lifted: Array<[string | null, string]> = [];
  const t = new CommandTable();
  addShapingCommands(t, {
    shaping: {
      restrict: (r) => { made.push(r); },
      lift: (b, d) => { lifted.push([b, d]); },
      restrictions: () => made.map((r) => ({ ...r, origin: 'n1' })),
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
});
