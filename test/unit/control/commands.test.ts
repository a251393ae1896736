// The console command table: case-insensitive words, longest match, arguments, stable error codes.
import { describe, expect, it } from 'vitest';
import { CommandTable } from '../../../src/control/commands.js';

describe('console command table', () => {
  const t = new CommandTable();
  t.add('config show', 'print', () => 'shown');
  t.add('config reload', 'reload', () => 'reloaded');
  t.add('cluster duravip move IP to NODE', 'move', (args) => `move ${args.join(',')}`);
  t.add('cluster duravip show', 'show', () => 'vips');

  it('matches command words case-insensitively and passes the rest as arguments', async () => {
    expect(await t.run(['CONFIG', 'Show'])).toBe('shown');
    expect(await t.run(['cluster', 'duravip', 'move', '198.51.100.7', 'to', 'n2'])).toBe('move 198.51.100.7,to,n2');
  });

  it('answers an unknown command with ERR_CONTROL_UNKNOWN_COMMAND', async () => {
    await expect(t.run(['config', 'frobnicate'])).rejects.toMatchObject({ code: 'ERR_CONTROL_UNKNOWN_COMMAND' });
    await expect(t.run([])).rejects.toMatchObject({ code: 'ERR_CONTROL_UNKNOWN_COMMAND' });
  });

  it('refuses two commands with the same words', () => {
    expect(() => t.add('config show', 'again', () => '')).toThrow(/duplicate/);
  });

  it('lists every command with its usage in help', () => {
    const h = t.help();
    expect(h).toMatch(/^cluster duravip move IP to NODE\s+move$/m);
    expect(h.split('\n').filter(Boolean)).toHaveLength(4);
  });
});
