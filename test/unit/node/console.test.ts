// The node's console commands (src/node/console.ts) over a real queue manager: selectors, hold and
// release, message show, the workers table, and the error codes the CLI turns into exit status.
import { describe, expect, it } from 'vitest';
import { formatCorrupt, formatMessage, nodeCommands, selector, type ConsoleHost } from '../../../src/node/console.js';
import type { ReloadResult } from '../../../src/node/reload.js';
import { config, idleQueue, recordingLogger } from './helpers.js';

const NOW = Date.UTC(2026, 0, 1);
const cfg = config('Binding "b1" { Bind_Address = 127.0.0.3 }\n');

function host(reload: ReloadResult = { ok: true, message: 'config reloaded' }): ConsoleHost {
  const { logger } = recordingLogger('silent');
  const queue = idleQueue(cfg, logger, NOW);
  queue.add({ id: 'Q1', size: 42, arrival: NOW, from: 'a@s.test', rcpt: ['x@one.test', 'y@two.test'], xBinding: null, listener: null, bindingGroup: 'default', binding: 'b1' });
  const pool = {
    deaths: 1,
    status: () => [0, 1].map((w) => ({ workerId: w, threadId: w + 7, ready: w === 0, restarts: w, uptimeMs: 0 })),
    broadcast: async () => [{ status: 'fulfilled', value: { workerId: 0, active: 3, accepted: { '127.0.0.1:2525': 12 } } }],
  } as unknown as ReturnType<ConsoleHost['pool']>;
  return {
    config: () => cfg, configFile: null, queue, pool: () => pool, cluster: () => null,
    reload: async () => reload, shutdown: async () => {}, startedAt: NOW, lastReload: () => null, spoolCorrupt: async () => [], spoolFull: () => ({ full: false, since: null, refused: 0 }),
  };
}

describe('node console', () => {
  it('parses selectors: all, a queue id, -b and -d', () => {
    expect(selector('hold', ['all'])).toEqual({});
    expect(selector('hold', ['Q1'])).toEqual({ id: 'Q1' });
    expect(selector('hold', ['-b', 'b1', '-d', 'one.test'])).toEqual({ binding: 'b1', domain: 'one.test' });
    for (const bad of [[], ['-b'], ['-x', 'v'], ['Q1', 'Q2']]) {
      expect(() => selector('hold', bad)).toThrow(expect.objectContaining({ code: 'ERR_CONTROL_BAD_REQUEST' }));
    }
  });

  it('holds and releases parts and shows a message part by part', async () => {
    const t = nodeCommands(host());
    expect(await t.run(['hold', '-d', 'two.test'])).toBe('held 1 part(s)\n');
    expect(await t.run(['message', 'show', 'Q1'])).toBe(
      `Q1  from <a@s.test>  size 42  arrived ${new Date(NOW).toISOString()}\n`
      + '  default/b1  one.test  active  attempts 0  next -  rcpt <x@one.test>\n'
      + '  default/b1  two.test  hold  attempts 0  next -  rcpt <y@two.test>\n',
    );
    expect(await t.run(['release', 'all'])).toBe('released 1 part(s)\n');
    await expect(t.run(['message', 'show', 'nope'])).rejects.toMatchObject({ code: 'ERR_CONTROL_NOT_FOUND' });
  });

  it('lists queued messages with their parts and says how many more there are', async () => {
    const h = host();
    const queue = h.queue as ReturnType<typeof idleQueue>;
    queue.add({ id: 'Q2', size: 7, arrival: NOW + 1000, from: 'b@s.test', rcpt: ['z@two.test'], xBinding: null, listener: null, bindingGroup: 'default', binding: 'b1' },
      { v: 1, p: [{ g: 'default', b: 'b1', r: ['z@two.test'], a: 2, n: NOW + 60_000 }] });
    const t = nodeCommands(h);
    await t.run(['hold', '-d', 'one.test']);
    const at = (ms: number): string => new Date(ms).toISOString();
    expect(await t.run(['message', 'list'])).toBe(
      'Queue-ID  From        Size  Arrived                   Parts             Next attempt\n'
      + `Q1        <a@s.test>    42  ${at(NOW)}  1 active, 1 hold  -\n`
      + `Q2        <b@s.test>     7  ${at(NOW + 1000)}  1 deferred        ${at(NOW + 60_000)}\n`
      + '2 message(s)\n',
    );
    const limited = await t.run(['message', 'list', '--limit', '1']);
    expect(limited).toContain('Q1 ');
    expect(limited).not.toContain('Q2');
    expect(limited).toMatch(/\n1 shown, 1 more \(use --limit, -b or -d\)\n$/);
    const one = await t.run(['message', 'list', '-d', 'one.test']);
    expect(one).toContain('Q1 ');
    expect(one).not.toContain('Q2');
    expect(await t.run(['message', 'list', '-b', 'nope'])).toBe('Queue-ID  From  Size  Arrived  Parts  Next attempt\n0 message(s)\n');
    for (const bad of [['--limit', '0'], ['--limit', 'x'], ['-b'], ['-x', 'v']]) {
      await expect(t.run(['message', 'list', ...bad])).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST' });
    }
  });

  it('shows the last reply of a deferred part under it', () => {
    const part = { bindingGroup: 'default', binding: 'b1', domain: 'one.test', via: null, state: 'deferred' as const, attempts: 3, nextAttempt: NOW, rcpt: ['x@one.test'] };
    const queue = {
      show: () => ({ id: 'Q9', from: '', size: 1, arrival: NOW, parts: [{ ...part, lastReply: '451 4.7.1 greylisted, try later' }, { ...part, domain: 'two.test', lastReply: null }] }),
    };
    expect(formatMessage(queue, 'Q9')).toBe(
      `Q9  from <>  size 1  arrived ${new Date(NOW).toISOString()}\n`
      + `  default/b1  one.test  deferred  attempts 3  next ${new Date(NOW).toISOString()}  rcpt <x@one.test>\n`
      + '    last reply: 451 4.7.1 greylisted, try later\n'
      + `  default/b1  two.test  deferred  attempts 3  next ${new Date(NOW).toISOString()}  rcpt <x@one.test>\n`,
    );
  });

  it('lists the workers with what each reports', async () => {
    const out = await nodeCommands(host()).run(['workers']);
    expect(out).toBe(
      'Worker  Thread  State     Restarts  Active  Accepted\n'
      + '0       7       ready     0         3       127.0.0.1:2525=12\n'
      + '1       8       starting  1         -       -\n'
      + 'deaths since start: 1\n',
    );
  });

  it('fails config reload with ERR_CONFIG_INVALID and the reason', async () => {
    const t = nodeCommands(host({ ok: false, message: 'config reload failed; keeping the running config:\nbad' }));
    await expect(t.run(['config', 'reload'])).rejects.toMatchObject({ code: 'ERR_CONFIG_INVALID', message: 'config reload failed; keeping the running config:\nbad' });
    expect(await nodeCommands(host()).run(['config', 'reload'])).toBe('config reloaded\n');
  });

  it('lists what corrupt/ holds, one row per saved region, and the count', () => {
    expect(formatCorrupt([])).toBe('corrupt: 0 record(s)\n');
    expect(formatCorrupt([
      { savedAs: 'corrupt/seg-1.spool-000000000040.bad', file: 'seg-1.spool', offset: 64, length: 512, reason: 'checksum mismatch', id: 'Q1abc', savedAt: NOW },
      { savedAs: 'corrupt/seg-2.spool.bad', file: 'seg-2.spool', offset: null, length: null, reason: 'bad magic', id: '-', savedAt: NOW },
    ])).toBe(
      'Saved                     Queue id  As                                    From         Offset  Length  Reason\n'
      + `${new Date(NOW).toISOString()}  Q1abc     corrupt/seg-1.spool-000000000040.bad  seg-1.spool  64      512     checksum mismatch\n`
      + `${new Date(NOW).toISOString()}  -         corrupt/seg-2.spool.bad               seg-2.spool  -       -       bad magic\n`
      + 'corrupt: 2 record(s)\n',
    );
  });

  it('shows a full spool in status', async () => {
    expect(await nodeCommands(host()).run(['status'])).toMatch(/^spool: ok$/m);
    const full = { ...host(), spoolFull: () => ({ full: true, since: NOW, refused: 12 }) };
    expect(await nodeCommands(full).run(['status'])).toMatch(new RegExp(`^spool: FULL since ${new Date(NOW).toISOString()}, refusing messages with 452 4\\.3\\.1 \\(12 refused\\)$`, 'm'));
  });

  it('registers the cluster commands after its own', async () => {
    const help = await nodeCommands(host()).run(['help']);
    expect(help).toContain('mailq [-d DOMAIN] [-b BINDING]');
    expect(help).toMatch(/^cluster /m);
  });
});
