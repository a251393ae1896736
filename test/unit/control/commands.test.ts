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

  it('logs a command whole, or without the arguments of one that keeps them private', () => {
    const u = new CommandTable();
    u.add('config propose CHANGE', 'propose', () => 'ok', { privateArgs: true });
    u.add('message show ID', 'show', () => 'msg');
    expect(u.logged(['config', 'propose', 'eyJzZWNyZXQiOiJzMyJ9'])).toBe('config propose (21 bytes of arguments not logged)');
    expect(u.logged(['message', 'show', 'Q1'])).toBe('message show Q1');
    expect(u.logged(['no', 'such'])).toBe('no such');
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

describe('console arguments the command does not know', () => {
  const t = new CommandTable();
  t.add('config reload', 'reload', () => 'reloaded');
  t.add('mailq [-d DOMAIN] [-b BINDING]', 'mailq', (args) => `mailq ${args.join(',')}`);
  t.add('message list [-b BINDING] [-d DOMAIN] [--limit N]', 'list', (args) => `list ${args.join(',')}`);
  t.add('shaping suspend DOMAIN [--binding NAME] DURATION [REASON]', 'suspend', (args) => `suspend ${args.join(',')}`);
  t.add('hold QUEUE-ID|all|[-b BINDING] [-d DOMAIN]', 'hold', (args) => `hold ${args.join(',')}`);

  it('refuses an unknown --flag with ERR_CONTROL_BAD_REQUEST, the usage code (config reload --cluster used to reload this node only)', async () => {
    await expect(t.run(['config', 'reload', '--cluster'])).rejects.toMatchObject({
      code: 'ERR_CONTROL_BAD_REQUEST',
      message: expect.stringMatching(/^unknown option --cluster for config reload; usage: config reload$/),
    });
    await expect(t.run(['mailq', '--cluster'])).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST', message: expect.stringMatching(/^unknown option --cluster for mailq; usage: mailq \[-d DOMAIN\]/) });
    await expect(t.run(['mailq', '-x', 'y'])).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST' });
    await expect(t.run(['message', 'list', '--limit', '5', '--node', 'n2'])).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST' });
  });

  it('refuses arguments to a command that takes none', async () => {
    await expect(t.run(['config', 'reload', 'now'])).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST', message: expect.stringMatching(/config reload takes no arguments/) });
  });

  it('passes the flags a command declares, and free words', async () => {
    expect(await t.run(['config', 'reload'])).toBe('reloaded');
    expect(await t.run(['mailq', '-d', 'example.com', '-b', 'b1'])).toBe('mailq -d,example.com,-b,b1');
    expect(await t.run(['message', 'list', '--limit', '5'])).toBe('list --limit,5');
    expect(await t.run(['shaping', 'suspend', 'x.test', '--binding', 'b1', '1h', 'a', '-', 'reason'])).toBe('suspend x.test,--binding,b1,1h,a,-,reason');
    expect(await t.run(['hold', '-b', 'b1'])).toBe('hold -b,b1');
  });

  it('says which command an argv runs (the fixed words), or null', () => {
    expect(t.match(['MAILQ', '-d', 'x'])).toBe('mailq');
    expect(t.match(['shaping', 'suspend', 'x.test', '1h'])).toBe('shaping suspend');
    expect(t.match(['nothing'])).toBeNull();
  });
});
