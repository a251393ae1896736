// The reload round of `console --cluster config reload` (src/cluster/reload-round.ts) over a View:
// it waits for every member of the view, closes on the last one's 'reloaded' (the caller elects
// then), ignores members outside the round, and a tick ends it only after RELOAD_WAIT_MS. Pure.
import { describe, expect, it } from 'vitest';
import { expireReloadRound, memberReloaded, openReloadRound, RELOAD_WAIT_MS } from '../../../src/cluster/reload-round.js';
import { View } from '../../../src/cluster/view.js';

const members = [{ nodeId: 1, pid: 10 }, { nodeId: 2, pid: 20 }, { nodeId: 3, pid: 30 }];
const view = (): View => new View(1, members.map((m) => ({ ...m, reason: 0 })) as never, 0);

describe('reload round', () => {
  it('closes on the last member\'s reloaded, not before, and only once', () => {
    const v = view();
    openReloadRound(v, 'n2', 1000);
    expect(memberReloaded(v, 2, 20)).toBe(false);
    expect(memberReloaded(v, 9, 90)).toBe(false); // not a member of the round
    expect(memberReloaded(v, 1, 10)).toBe(false);
    expect(v.reload).not.toBeNull();
    expect(memberReloaded(v, 3, 30)).toBe(true);
    expect(v.reload).toBeNull();
    expect(memberReloaded(v, 3, 30)).toBe(false); // no round open: nothing to close
  });

  it('ends on a tick only once it has waited RELOAD_WAIT_MS, naming who did not report', () => {
    const v = view();
    openReloadRound(v, 'n1', 1000);
    memberReloaded(v, 1, 10);
    expect(expireReloadRound(v, 1000 + RELOAD_WAIT_MS - 1)).toBeNull();
    expect(v.reload).not.toBeNull();
    expect(expireReloadRound(v, 1000 + RELOAD_WAIT_MS)).toEqual(['2:20', '3:30']);
    expect(v.reload).toBeNull();
    expect(expireReloadRound(v, 1000 + 2 * RELOAD_WAIT_MS)).toBeNull();
  });
});
