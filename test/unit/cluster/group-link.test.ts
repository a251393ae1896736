// The CPG group link: retries a failed join every REJOIN_MS and says each distinct reason once,
// says once when corosync does not answer, hands the group over when joined, and joins again
// after the group is lost. A fake join and fake timers; no corosync.
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CorosyncGroup } from '../../../src/native/index.js';
import { GroupLink, JOIN_ERROR_MS, JOIN_SLOW_MS, REJOIN_MS } from '../../../src/cluster/group-link.js';

class FakeGroup extends EventEmitter {
  closed = false;
  close(): void { this.closed = true; }
}

function logger(): { lines: string[]; l: never } {
  const lines: string[] = [];
  const say = (_o: unknown, m?: string): void => { lines.push(typeof _o === 'string' ? _o : m ?? ''); };
  return { lines, l: { warn: say, error: say, info: say } as never };
}

beforeEach(() => { vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

describe('GroupLink', () => {
  it('retries a failed join, says each reason once, joins, and joins again after a loss', async () => {
    const { lines, l } = logger();
    const answers: Array<() => Promise<CorosyncGroup>> = [
      () => Promise.reject(Object.assign(new Error('no corosync'), { code: 'ERR_COROSYNC_NOT_RUNNING' })),
      () => Promise.reject(Object.assign(new Error('no corosync'), { code: 'ERR_COROSYNC_NOT_RUNNING' })),
      () => Promise.resolve(new FakeGroup() as unknown as CorosyncGroup),
      () => Promise.resolve(new FakeGroup() as unknown as CorosyncGroup),
    ];
    const joined: FakeGroup[] = [];
    const lost: Error[] = [];
    const link = new GroupLink({
      name: 'g', logger: l, prefix: 'test: ', without: 'nothing works',
      joined: (g) => joined.push(g as unknown as FakeGroup), lost: (e) => lost.push(e),
      join: () => answers.shift()!(),
    });
    link.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(link.group).toBeNull();
    expect(link.joinError).toBe('ERR_COROSYNC_NOT_RUNNING: no corosync');
    await vi.advanceTimersByTimeAsync(REJOIN_MS);
    expect(lines.filter((x) => x.startsWith('test: cannot join corosync'))).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(REJOIN_MS);
    expect(joined).toHaveLength(1);
    expect(link.group).toBe(joined[0]);
    expect(link.joinError).toBeNull();
    joined[0]!.emit('error', new Error('corosync died'));
    expect(lost.map((e) => e.message)).toEqual(['corosync died']);
    expect(link.group).toBeNull();
    await vi.advanceTimersByTimeAsync(REJOIN_MS);
    expect(joined).toHaveLength(2);
    link.stop();
    expect(joined[1]!.closed).toBe(true);
  });

  it('says once when corosync does not answer the join, and closes a group that arrives after stop', async () => {
    const { lines, l } = logger();
    let answer!: (g: CorosyncGroup) => void;
    const link = new GroupLink({
      name: 'g', logger: l, prefix: 'test: ', without: 'nothing works', joined: () => {}, lost: () => {},
      join: () => new Promise((r) => { answer = r; }),
    });
    link.start();
    expect(link.waiting).toBe(true);
    await vi.advanceTimersByTimeAsync(JOIN_SLOW_MS);
    expect(lines).toEqual([`test: corosync has not answered the join for ${JOIN_SLOW_MS} ms (stopped?); nothing works until it does`]);
    link.stop();
    const late = new FakeGroup();
    answer(late as unknown as CorosyncGroup);
    await vi.advanceTimersByTimeAsync(0);
    expect(late.closed).toBe(true);
    expect(link.group).toBeNull();
  });

  it('warns while joins fail for a moment, says ERROR once they have failed for JOIN_ERROR_MS, and says when it joined', async () => {
    const said: Array<[string, string]> = [];
    const at = (level: string) => (_o: unknown, m?: string): void => { said.push([level, typeof _o === 'string' ? _o : m ?? '']); };
    const l = { warn: at('warn'), error: at('error'), info: at('info') } as never;
    let failures = JOIN_ERROR_MS / REJOIN_MS + 3;
    const link = new GroupLink({
      name: 'g', logger: l, prefix: 'test: ', without: 'nothing works', joined: () => {}, lost: () => {},
      join: () => (failures-- > 0
        ? Promise.reject(Object.assign(new Error('no corosync'), { code: 'ERR_COROSYNC_NOT_RUNNING' }))
        : Promise.resolve(new FakeGroup() as unknown as CorosyncGroup)),
    });
    link.start();
    await vi.advanceTimersByTimeAsync(JOIN_ERROR_MS - REJOIN_MS);
    // A corosync that refuses for a few seconds (starting, busy) is a warning, said once.
    expect(said.map(([lv]) => lv)).toEqual(['warn']);
    await vi.advanceTimersByTimeAsync(2 * REJOIN_MS);
    expect(said.map(([lv]) => lv)).toEqual(['warn', 'error']);
    expect(said[1]![1]).toMatch(/^test: cannot join corosync \(no corosync\); nothing works until it can/);
    await vi.advanceTimersByTimeAsync(3 * REJOIN_MS);
    expect(link.group).not.toBeNull();
    expect(said.map(([lv]) => lv)).toEqual(['warn', 'error', 'info']);
    expect(said[2]![1]).toMatch(/joined corosync after failed joins/);
    link.stop();
  });
});
