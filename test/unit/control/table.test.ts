// Console columns (src/control/table.ts): padded to the widest cell, the last column never padded.
import { describe, expect, it } from 'vitest';
import { table } from '../../../src/control/table.js';

describe('table', () => {
  it('aligns columns two spaces apart and leaves the last one unpadded', () => {
    expect(table([['Node', 'Load'], ['a-long-name', '1'], ['b', '12']])).toBe('Node         Load\na-long-name  1\nb            12\n');
  });
  it('copes with short rows', () => {
    expect(table([['a', 'bb', 'c'], ['dddd']])).toBe('a     bb  c\ndddd\n');
  });
});
