// Relay policy: configured networks only, IPv4, IPv6 and IPv4-mapped peers.
import { describe, expect, it } from 'vitest';
import { RelayPolicy } from '../../../src/policy/relay.js';

describe('relay policy', () => {
  const p = new RelayPolicy(['127.0.0.0/8', '::1/128', '198.51.100.0/25', '2001:db8:1::/48']);
  it('allows clients inside a configured network', () => {
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '198.51.100.127', '::ffff:198.51.100.1', '2001:db8:1:ffff::5']) expect(p.allows(a), a).toBe(true);
  });
  it('refuses everyone else, and anything that is not an address', () => {
    for (const a of ['198.51.100.128', '203.0.113.5', '::2', '2001:db8:2::1', '::ffff:203.0.113.5', 'localhost', '']) expect(p.allows(a), a).toBe(false);
  });
  it('refuses everyone when no network is configured', () => {
    expect(new RelayPolicy([]).allows('127.0.0.1')).toBe(false);
  });
});
