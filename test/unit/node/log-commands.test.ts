// The `log ...` console commands (src/node/log-commands.ts) over a real spool's event journal: tail
// in text and JSON, a damaged and an unknown record printed as such, --after/--next for tail -f,
// read from a subscriber's checkpoint with and without --ack, subscribers and their lag,
// subscribe/unsubscribe, and the same commands over the files once the spool is closed.
import { afterEach, describe, expect, it } from 'vitest';
import { CommandTable } from '../../../src/control/commands.js';
import { addLogCommands } from '../../../src/node/log-commands.js';
import { EventJournal, Spool } from '../../../src/spool/index.js';
import { tempDir } from '../../helpers/tmp.js';

const T = Date.UTC(2026, 11, 3, 12);
const addr = (i: number): Buffer => Buffer.from(JSON.stringify({ v: 1, type: 'address_taken', time: T + i, node: 'n1', address: `192.0.2.${i}` }));
const text = (i: number): string => `${new Date(T + i).toISOString()} n1 address_taken 192.0.2.${i}`;

let spool: Spool | null = null;
afterEach(async () => {
  await spool?.close();
  spool = null;
});

/** Records 1-5 valid, 6 not JSON, 7 of a type this version does not know, 8 valid. */
async function journal(): Promise<{ dir: string; t: CommandTable }> {
  const dir = tempDir('log-commands-');
  spool = Spool.open({ directory: dir, nodeId: 't', sync: 'none', preallocate: 'none' });
  await spool.appendEvents([1, 2, 3, 4, 5].map((i) => ({ data: addr(i) })));
  await spool.appendEvents([{ data: Buffer.from('{"v":1,"type":"reception"'), id: 'Q6' }, { data: Buffer.from('{"v":1,"type":"teleport","time":1,"node":"n1"}') }, { data: addr(8) }]);
  const t = new CommandTable();
  addLogCommands(t, { spoolDirectory: () => dir, nodeName: () => 'n1', live: true });
  return { dir, t };
}

describe('log commands', () => {
  it('tail: the last N records as text or JSON, bad records said to be bad, and --after/--next to follow', async () => {
    const { t } = await journal();
    expect(await t.run(['log', 'tail', '-n', '1'])).toBe(`${text(8)}\n`);
    expect((await t.run(['log', 'tail'])).trimEnd().split('\n')).toHaveLength(8);
    const lines = (await t.run(['log', 'tail', '-n', '4'])).trimEnd().split('\n');
    expect(lines[0]).toBe(text(5));
    expect(lines[1]).toMatch(/ n1 seq 6 Q6: damaged record: event record: not JSON; payload "\{\\"v\\":1,\\"type\\":\\"reception\\""$/);
    expect(lines[2]).toMatch(/ n1 seq 7 -: record this vipmta cannot read \(a newer writer\?\): event record: unknown type "teleport"/);
    expect(lines[3]).toBe(text(8));

    const json = (await t.run(['log', 'tail', '-n', '3', '--json'])).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json[0]).toMatchObject({ seq: 6, id: 'Q6', error: 'ERR_EVENT_INVALID', raw: '{"v":1,"type":"reception"' });
    expect(json[1]).toMatchObject({ seq: 7, error: 'ERR_EVENT_UNKNOWN' });
    expect(json[2]).toEqual({ v: 1, type: 'address_taken', time: T + 8, node: 'n1', address: '192.0.2.8', seq: 8 });

    expect(await t.run(['log', 'tail', '--after', '3', '-n', '2', '--next'])).toBe(`${text(4)}\n${text(5)}\nnext 6\n`);
    expect(await t.run(['log', 'tail', '--after', '8', '--json', '--next'])).toBe('{"next":9}\n');
    await spool!.appendEvents([{ data: addr(9) }]);
    expect(await t.run(['log', 'tail', '--after', '8', '--next'])).toBe(`${text(9)}\nnext 10\n`);
    await expect(t.run(['log', 'tail', '-n', '0'])).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST' });
    await expect(t.run(['log', 'tail', '--bogus'])).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST' });
  });

  it('read: after the subscriber\'s checkpoint; --ack moves it to the last record printed', async () => {
    const { dir, t } = await journal();
    await expect(t.run(['log', 'read', '--subscriber', 'billing'])).rejects.toMatchObject({ code: 'ERR_CONTROL_NOT_FOUND' });
    await expect(t.run(['log', 'read'])).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST' });
    expect(await t.run(['log', 'subscribe', 'billing', '--from', 'start'])).toBe('subscribed billing; checkpoint 0 (it reads from seq 1)\n');
    expect(await t.run(['log', 'subscribe', 'billing'])).toBe('billing is already subscribed; checkpoint 0 kept\n');
    expect(await t.run(['log', 'read', '--subscriber', 'billing', '--max', '2'])).toBe(`${text(1)}\n${text(2)}\n-- billing: 2 record(s), seq 1-2; checkpoint 0 (not moved: --ack moves it)\n`);
    expect(await t.run(['log', 'read', '--subscriber', 'billing', '--max', '2', '--ack'])).toBe(`${text(1)}\n${text(2)}\n-- billing: 2 record(s), seq 1-2; checkpoint moved to 2\n`);
    const j = new EventJournal({ directory: dir });
    expect(j.checkpoint('billing')).toBe(2);
    const rest = (await t.run(['log', 'read', '--subscriber', 'billing', '--json', '--ack'])).trimEnd().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(rest).toEqual([3, 4, 5, 6, 7, 8]);
    expect(j.checkpoint('billing')).toBe(8);
    expect(await t.run(['log', 'read', '--subscriber', 'billing', '--ack'])).toBe('-- billing: no new records; checkpoint 8\n');
  });

  it('subscribers: checkpoints and lag, the journal\'s seqs, cap and alarm; unsubscribe', async () => {
    const { t } = await journal();
    await t.run(['log', 'subscribe', 'late', '--from', 'start']);
    await t.run(['log', 'subscribe', 'now']);
    const out = await t.run(['log', 'subscribers']);
    expect(out).toMatch(/^journal: 1 segment\(s\), \d+ bytes \(.* MiB\), seq 1-8$/m);
    expect(out).toMatch(/^cap: 1073741824 bytes \(1024\.0 MiB\), alarm at \d+ bytes, at cap: refuse; alarm: no$/m);
    expect(out).toMatch(/^late +0 +8 +\d+$/m);
    expect(out).toMatch(/^now +8 +0 +0$/m);
    const st = JSON.parse(await t.run(['log', 'subscribers', '--json'])) as { lastSeq: number; subscribers: { name: string }[] };
    expect(st.lastSeq).toBe(8);
    expect(st.subscribers.map((s) => s.name).sort()).toEqual(['late', 'now']);
    expect(await t.run(['log', 'unsubscribe', 'late'])).toBe('unsubscribed late\n');
    await expect(t.run(['log', 'unsubscribe', 'late'])).rejects.toMatchObject({ code: 'ERR_CONTROL_NOT_FOUND' });
    await expect(t.run(['log', 'subscribe', '../x'])).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST' });
    expect(await t.run(['log', 'subscribers'])).not.toMatch(/^late/m);
  });

  it('reads the files with the spool closed (the CLI without a node): no cap known, an ack moves the checkpoint', async () => {
    const { dir } = await journal();
    await spool!.close();
    spool = null;
    const t = new CommandTable();
    addLogCommands(t, { spoolDirectory: () => dir, nodeName: () => 'n1', live: false });
    expect(await t.run(['log', 'tail', '-n', '1'])).toBe(`${text(8)}\n`);
    await t.run(['log', 'subscribe', 'x', '--from', 'start']);
    expect(await t.run(['log', 'read', '--subscriber', 'x', '--max', '1', '--ack'])).toMatch(/checkpoint moved to 1 \(the node is not running: the segments this frees are trimmed when it next trims\)\n$/);
    expect(await t.run(['log', 'subscribers'])).toMatch(/^cap: unknown \(the node is not running/m);
  });
});
