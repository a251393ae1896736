// The one address parser (src/net/address.ts): canonical text, numeric order, IPv4-mapped peers and
// the "host:port" forms of the config. Pure: no I/O.
import { describe, expect, it } from 'vitest';
import {
  addressBits, canonicalAddress, compareAddresses, formatHostPort, ipFamily, parseEndpoint, parseHostPort, parsePort, unmapIPv4,
} from '../../../src/net/address.js';

describe('addresses', () => {
  it('canonicalises IPv4 and IPv6 addresses and refuses what is not one', () => {
    expect(canonicalAddress('198.51.100.1')).toBe('198.51.100.1');
    expect(canonicalAddress('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalAddress('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalAddress('::')).toBe('::');
    expect(canonicalAddress('::ffff:192.0.2.1')).toBe('::ffff:c000:201');
    expect(canonicalAddress('1:2:3:4:5:6:192.0.2.1')).toBe('1:2:3:4:5:6:c000:201');
    for (const bad of ['', '1.2.3', '1.2.3.256', '01.2.3.4', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', 'host', ':::']) {
      expect(canonicalAddress(bad), bad).toBeNull();
      expect(addressBits(bad), bad).toBeNull();
    }
  });

  it('sorts numerically, IPv4 before IPv6', () => {
    expect(['2001:db8::1', '198.51.100.20', '198.51.100.3'].sort(compareAddresses)).toEqual(['198.51.100.3', '198.51.100.20', '2001:db8::1']);
  });

  it('gives an address its number and family', () => {
    expect(addressBits('192.0.2.1')).toEqual({ family: 4, n: 0xc0000201n });
    expect(addressBits('::1')).toEqual({ family: 6, n: 1n });
    expect(addressBits('2001:db8::')).toEqual({ family: 6, n: 0x20010db8n << 96n });
  });

  it('unmaps only IPv4-mapped peers', () => {
    expect(unmapIPv4('::ffff:198.51.100.1')).toBe('198.51.100.1');
    expect(unmapIPv4('::FFFF:198.51.100.1')).toBe('198.51.100.1');
    expect(unmapIPv4('::1')).toBe('::1');
    expect(unmapIPv4('2001:db8::ffff:1.2.3.4')).toBe('2001:db8::ffff:1.2.3.4');
  });

  it('tells the family of what a socket may report', () => {
    expect(ipFamily('192.0.2.1')).toBe(4);
    expect(ipFamily('2001:db8::1')).toBe(6);
    expect(ipFamily('mx.example.net')).toBe(0);
  });
});

describe('host:port', () => {
  it('parses literal endpoints; IPv6 must be bracketed', () => {
    expect(parseEndpoint('127.0.0.1:25')).toEqual({ host: '127.0.0.1', port: 25, family: 4 });
    expect(parseEndpoint('[::1]:2525')).toEqual({ host: '::1', port: 2525, family: 6 });
    for (const bad of ['::1:25', '[127.0.0.1]:25', 'localhost:25', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '[::1]']) {
      expect(parseEndpoint(bad), bad).toBeNull();
    }
  });

  it('parses host names and bare hosts with the default port', () => {
    expect(parseHostPort('mx.example.net:2525')).toEqual({ host: 'mx.example.net', port: 2525 });
    expect(parseHostPort('mx.example.net')).toEqual({ host: 'mx.example.net', port: 25 });
    expect(parseHostPort('192.0.2.1', 587)).toEqual({ host: '192.0.2.1', port: 587 });
    expect(parseHostPort('[2001:db8::1]:26')).toEqual({ host: '2001:db8::1', port: 26 });
    for (const bad of ['-mx:25', '.mx', 'mx:x', '[mx]:25', 'a b', '']) expect(parseHostPort(bad), bad).toBeNull();
  });

  it('formats what it parses', () => {
    expect(formatHostPort('2001:db8::1', 26)).toBe('[2001:db8::1]:26');
    expect(formatHostPort('mx.example.net', 25)).toBe('mx.example.net:25');
    expect(parsePort('65535')).toBe(65535);
    expect(parsePort('123456')).toBeNull();
  });
});
