// CidrTable (Inbound_Cidr at connect): the most specific network holding a peer, IPv4 and IPv6,
// IPv4-mapped peers as IPv4; and canonicalCidr, the one spelling of a network. Pure.
import { describe, expect, it } from 'vitest';
import { CidrTable, canonicalCidr } from '../../../src/net/cidr.js';

describe('CidrTable', () => {
  const t = new CidrTable(['10.0.0.0/8', '10.1.0.0/16', '10.1.2.3/32', '2001:db8::/32', '2001:db8:1::/48', '0.0.0.0/0']);

  it('answers the most specific IPv4 network, whatever the written order', () => {
    expect(t.match('10.1.2.3')).toBe(2);
    expect(t.match('10.1.2.4')).toBe(1);
    expect(t.match('10.2.0.1')).toBe(0);
    expect(t.match('192.0.2.1')).toBe(5);
    expect(t.match('255.255.255.255')).toBe(5);
  });

  it('answers the most specific IPv6 network and never crosses families', () => {
    expect(t.match('2001:db8:1::5')).toBe(4);
    expect(t.match('2001:db8:2::5')).toBe(3);
    expect(t.match('2001:DB8:0001:0:0:0:0:1')).toBe(4);
    expect(t.match('2001:db9::1')).toBe(-1);
    expect(t.match('::1')).toBe(-1);
    expect(t.match('fe80::1%eth0')).toBe(-1);
    const v6 = new CidrTable(['::/0', 'fe80::/10']);
    expect(v6.match('fe80::1%eth0')).toBe(1);
    expect(v6.match('10.0.0.1')).toBe(-1);
    expect(v6.match('2001:db8::1')).toBe(0);
  });

  it('counts an IPv4-mapped peer as IPv4', () => {
    expect(t.match('::ffff:10.1.2.3')).toBe(2);
    expect(t.match('::FFFF:10.9.9.9')).toBe(0);
  });

  it('finds nothing for what is not an address', () => {
    for (const bad of ['', 'x', '10.0.0', '10.0.0.256', '10.0.0.1.2', ':::1', '1::2::3', '12345::1', '2001:db8::g', '1:2:3:4:5:6:7:8:9']) {
      expect(t.match(bad), bad).toBe(-1);
    }
    expect(new CidrTable([]).match('10.0.0.1')).toBe(-1);
  });

  it('reads every IPv6 shape the kernel writes', () => {
    const one = (cidr: string, addr: string): number => new CidrTable([cidr]).match(addr);
    expect(one('::/128', '::')).toBe(0);
    expect(one('1:2:3:4:5:6:7:8/128', '1:2:3:4:5:6:7:8')).toBe(0);
    expect(one('1::8/128', '1:0:0:0:0:0:0:8')).toBe(0);
    expect(one('1::/128', '1::')).toBe(0);
    expect(one('::8/128', '::8')).toBe(0);
    expect(one('64:ff9b::c000:201/128', '64:ff9b::192.0.2.1')).toBe(0);
    expect(one('2001:db8::/127', '2001:db8::2')).toBe(-1);
    expect(one('2001:db8::/127', '2001:db8::1')).toBe(0);
  });
});

describe('canonicalCidr', () => {
  it('clears host bits and writes the address as RFC 5952 does', () => {
    expect(canonicalCidr('203.0.113.0/24')).toBe('203.0.113.0/24');
    expect(canonicalCidr('203.0.113.7/24')).toBe('203.0.113.0/24');
    expect(canonicalCidr('2001:DB8:0::1/32')).toBe('2001:db8::/32');
    expect(canonicalCidr('::ffff:0:0/96')).toBe('::ffff:0:0/96');
    expect(canonicalCidr('127.0.0.2')).toBe('127.0.0.2/32');
    expect(canonicalCidr('10.0.0.0/33')).toBeNull();
  });
});
