// The one CIDR matcher (src/net/cidr.ts): the config's normal form, containment without crossing
// families, and the set asked about peers (IPv4-mapped peers count as IPv4). Pure: no I/O.
import { describe, expect, it } from 'vitest';
import { CidrSet, cidrContains, cidrLength, parseCidr } from '../../../src/net/cidr.js';

describe('parseCidr', () => {
  it('normalizes to addr/len; a bare address is a host', () => {
    expect(parseCidr('192.0.2.0/24')).toBe('192.0.2.0/24');
    expect(parseCidr('192.0.2.1')).toBe('192.0.2.1/32');
    expect(parseCidr('2001:db8::/32')).toBe('2001:db8::/32');
    expect(parseCidr('::1')).toBe('::1/128');
    expect(cidrLength('2001:db8::/32')).toBe(32);
  });
  it('refuses what is not a network', () => {
    for (const bad of ['192.0.2.0/33', '::/129', '192.0.2.0/', '192.0.2.0/x', 'host/8', '01.2.3.4/8', 'fe80::%eth0/64', '']) {
      expect(parseCidr(bad), bad).toBeNull();
    }
  });
});

describe('cidrContains', () => {
  it('matches IPv4 and IPv6 prefixes and never across families', () => {
    expect(cidrContains('198.51.100.0/24', '198.51.100.255')).toBe(true);
    expect(cidrContains('198.51.100.0/24', '198.51.101.0')).toBe(false);
    expect(cidrContains('0.0.0.0/0', '203.0.113.9')).toBe(true);
    expect(cidrContains('2001:db8::/64', '2001:db8::10')).toBe(true);
    expect(cidrContains('2001:db8::/64', '2001:db8:0:1::10')).toBe(false);
    expect(cidrContains('198.51.100.0/24', '::ffff:198.51.100.1')).toBe(false);
    expect(cidrContains('198.51.100.7/32', '198.51.100.7')).toBe(true);
    expect(cidrContains('198.51.100.7/32', '198.51.100.8')).toBe(false);
    expect(cidrContains('198.51.100.0/24', 'not an address')).toBe(false);
  });
});

describe('CidrSet', () => {
  const s = new CidrSet(['127.0.0.0/8', '::1/128', '198.51.100.0/25', '2001:db8:1::/48']);
  it('holds addresses inside a network, IPv4-mapped peers as IPv4', () => {
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '198.51.100.127', '::ffff:198.51.100.1', '2001:db8:1:ffff::5']) expect(s.has(a), a).toBe(true);
  });
  it('holds nothing else', () => {
    for (const a of ['198.51.100.128', '203.0.113.5', '::2', '2001:db8:2::1', '::ffff:203.0.113.5', 'localhost', '']) expect(s.has(a), a).toBe(false);
    expect(new CidrSet([]).has('127.0.0.1')).toBe(false);
  });
  it('refuses a list that the config did not normalize', () => {
    expect(() => new CidrSet(['192.0.2.0/40'])).toThrow(RangeError);
  });
});
