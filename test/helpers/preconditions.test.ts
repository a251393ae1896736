// The precondition rule itself (test/helpers/preconditions.ts): a missing capability or program
// fails with its name and how to get it. Pure checks on made-up /proc status text and on PATH.
import { describe, expect, it } from 'vitest';
import { hasCommand, missingCapabilities, requireCommand } from './preconditions.js';
import { waitFor } from './wait.js';

describe('preconditions', () => {
  it('reads the effective capabilities from the status text', () => {
    // CAP_NET_ADMIN is bit 12 (0x1000), CAP_NET_RAW bit 13 (0x2000), CAP_SYS_ADMIN bit 21 (0x200000).
    const status = (eff: string): string => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${eff}\nCapBnd:\t000001ffffffffff\n`;
    expect(missingCapabilities(['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_ADMIN'], status('000001ffffffffff'))).toEqual([]);
    expect(missingCapabilities(['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_ADMIN'], status('0000000000001000'))).toEqual(['CAP_NET_RAW', 'CAP_SYS_ADMIN']);
    expect(missingCapabilities(['CAP_NET_ADMIN'], 'no such line')).toEqual(['CAP_NET_ADMIN']);
  });

  it('names a missing program and the package it comes from', () => {
    expect(hasCommand('sh')).toBe(true);
    expect(hasCommand('vipmta-no-such-program')).toBe(false);
    expect(() => requireCommand('sh')).not.toThrow();
    expect(() => requireCommand('sh', 'vipmta-no-such-program')).toThrow(/needs "vipmta-no-such-program" \(apt-get install vipmta-no-such-program\) on PATH/);
    expect(() => hasCommand('sh; true')).toThrow(TypeError);
  });
});

describe('waitFor', () => {
  it('returns the first value that holds, and names what it waited for when it times out', async () => {
    let n = 0;
    expect(await waitFor('three calls', () => (++n >= 3 ? n : false), { intervalMs: 1 })).toBe(3);
    await expect(waitFor('a thing that never holds', () => null, { timeoutMs: 20, intervalMs: 5 })).rejects.toThrow(/waiting for a thing that never holds/);
  });
});
