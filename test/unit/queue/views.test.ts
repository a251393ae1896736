// Momentum's mailq layout (src/queue/views.ts formatMailq): held parts have their own column (HQ),
// so a held message is not counted as deferred.
import { describe, expect, it } from 'vitest';
import { formatMailq } from '../../../src/queue/views.js';

describe('mailq layout', () => {
  it('shows active, deferred and held parts in columns of their own', () => {
    const rows = [
      { bindingGroup: 'default', binding: 'b1', domain: 'one.test', active: 12, deferred: 3, hold: 0 },
      { bindingGroup: 'default', binding: 'b1', domain: 'two.test', active: 0, deferred: 0, hold: 1 },
      { bindingGroup: 'default', binding: '#mmove', domain: '', active: 1, deferred: 0, hold: 0 },
    ];
    expect(formatMailq(rows, { messages: 16, active: 13, deferred: 3, hold: 1 })).toBe(
      'Group/Binding   Domain    AQ  DQ  HQ\n'
      + 'default/b1      one.test  12   3   0\n'
      + 'default/b1      two.test   0   0   1\n'
      + 'default/#mmove  (none)     1   0   0\n'
      + 'Total: 16 message(s); per domain: 13 active, 3 deferred, 1 on hold\n',
    );
  });
});
