// Unit tests of the config language: values, stanzas, includes, fallback lookup, show(), every invalid
// fixture's exact file:line:column messages, and that docs/configuration.md matches the schema.
// Pure: reads fixtures under test/fixtures/config only; never binds or opens anything.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  SHIPPED_RULES,
  DEFAULT_CONFIG_TEXT, OPTIONS, defaultConfig, formatConfigError, loadConfigFile, loadConfigText, renderReference,
  type Config, type LoadResult,
} from '../../../src/config/index.js';
import { mmoveSettings } from '../../../src/mmove/settings.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/config');
const VALID = path.join(FIXTURES, 'valid');
const INVALID = path.join(FIXTURES, 'invalid');

// Auth_Users values must be scrypt PHC hashes (as `vipmta hash-password` prints them).
const H1 = '$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaGhhc2g=';
const H2 = '$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQy$aGFzaGhhc2hoYXNoaGFzaGhhc2g=';

function ok(r: LoadResult): Config {
  if (!r.ok) throw new Error(`expected a valid config, got:\n${r.errors.map(formatConfigError).join('\n')}`);
  return r.config;
}
function errorsOf(r: LoadResult): string[] {
  if (r.ok) throw new Error('expected errors, the config loaded');
  return r.errors.map(formatConfigError);
}
const text = (t: string, cwd = '/srv/mta'): LoadResult => loadConfigText(t, 'test.conf', { cwd });

describe('config parser', () => {
  describe('built-in default', () => {
    it('listens on loopback 2525 with spool and control socket resolved against cwd', () => {
      const c = defaultConfig({ cwd: '/srv/mta' });
      expect(c.files).toEqual(['<built-in>', SHIPPED_RULES]);
      expect(c.esmtpListeners).toHaveLength(1);
      expect(c.esmtpListeners[0]).toMatchObject({ name: '127.0.0.1:2525', host: '127.0.0.1', port: 2525, family: 4, where: { file: '<built-in>', line: 3, column: 3 } });
      expect(c.spool.Directory).toBe('/srv/mta/var/spool');
      expect(c.controlListeners.map((l) => l.path)).toEqual(['/srv/mta/var/run/vipmta.sock']);
      expect(c.ecclusterListeners).toEqual([]);
      expect(c.cluster).toBeNull();
      expect(DEFAULT_CONFIG_TEXT).toContain('Listen "127.0.0.1:2525"');
    });

    it('applies every schema default, with Hostname and Nodename from the host', () => {
      const c = defaultConfig({ cwd: '/srv/mta' });
      expect(c.global).toMatchObject({ Worker_Threads: 0, Log_Level: 'info', Hostname: hostname(), Nodename: hostname(), Retry_Interval: 20 * 60_000, Message_Expiration: 5 * 86_400_000, Max_Body_Memory: 256 * 1024 ** 2 });
      expect(c.spool).toMatchObject({ Sync: 'fdatasync', Commit_Delay: 0, Segment_Size: 64 * 1024 ** 2, Copy_Forward_After: 3_600_000 });
      expect(c.esmtpListeners[0]!.options).toEqual({
        Hostname: hostname(), Max_Message_Size: 50 * 1024 ** 2, Max_Recipients: 1000, Concurrency: 2000, Timeout: 300_000,
        Pipelining: true, Enable_8bitmime: true, Smtputf8: true, Relay_Hosts: ['127.0.0.0/8', '::1/128'],
        Trusted_Injectors: ['127.0.0.0/8', '::1/128'], Enable_Duravip: false,
        Max_Auth_Failures: 3, Max_Auth_Failures_Per_Client: 10, Auth_Failure_Window: 600_000, Auth_Failure_Delay: 1000,
        Max_Connections_Per_Client: 20,
        Command_Deadline: 60_000, Max_Junk_Commands: 100, Data_Deadline: 300_000, Min_Data_Rate: 10 * 1024,
      });
    });

    it('serves the HTTP admin API on loopback 2081', () => {
      const c = defaultConfig({ cwd: '/srv/mta' });
      expect(c.httpListeners).toEqual([{ name: '127.0.0.1:2081', host: '127.0.0.1', port: 2081, family: 4, where: { file: '<built-in>', line: 12, column: 3 } }]);
    });

    it('always has binding group "default" holding binding "default"', () => {
      const c = defaultConfig();
      expect([...c.bindingGroups.keys()]).toEqual(['default']);
      expect([...c.bindingGroups.get('default')!.bindings.keys()]).toEqual(['default']);
      expect(c.bindings.get('default')).toMatchObject({ name: 'default', group: 'default', where: null, options: {} });
    });
  });

  describe('values', () => {
    it('normalizes durations to ms and sizes to bytes, a bare duration being seconds and a bare size bytes', () => {
      const c = ok(text(`Spool { Commit_Delay = 500ms Copy_Forward_After = 2h Segment_Size = 64K }
        Cluster { View_Mature_Time = 30 If_Check_Interval = 5m Arp_Refresh = 1d Arp_Interval = "250ms" }
        ESMTP_Listener { Listen "127.0.0.1:25" { Max_Message_Size = 1G } Listen "127.0.0.1:26" { Max_Message_Size = 1000 } }`));
      expect(c.spool).toMatchObject({ Commit_Delay: 500, Copy_Forward_After: 7_200_000, Segment_Size: 65_536 });
      expect(c.cluster!.options).toMatchObject({ View_Mature_Time: 30_000, If_Check_Interval: 300_000, Arp_Refresh: 86_400_000, Arp_Interval: 250 });
      expect(c.esmtpListeners.map((l) => l.options.Max_Message_Size)).toEqual([1024 ** 3, 1000]);
    });

    it('accepts true/false, yes/no, on/off, bare or quoted, as booleans', () => {
      const vals = ['true', 'yes', 'on', '"TRUE"', 'false', 'no', 'off', '"off"'];
      const c = ok(text(`ESMTP_Listener { ${vals.map((v, i) => `Listen "127.0.0.1:${100 + i}" { Pipelining = ${v} }`).join('\n')} }`));
      expect(c.esmtpListeners.map((l) => l.options.Pipelining)).toEqual([true, true, true, true, false, false, false, false]);
    });

    it('resolves the escapes \\" \\\\ \\n \\t in quoted strings and skips both kinds of comment', () => {
      const c = ok(text('# line comment\nCluster { /* a\n block */ Cluster_Secret = "a\\"b\\\\c\\nd\\te" # trailing\n }'));
      expect(c.cluster!.options.Cluster_Secret).toBe('a"b\\c\nd\te');
    });

    it('parses lists, dictionaries, CIDRs, IPv6 endpoints and host:port routes', () => {
      const c = ok(text(`ESMTP_Listener {
          Relay_Hosts = ( "10.0.0.0/8" 192.0.2.7 "2001:db8::/32" )
          Auth_Users = [ alice = "${H1}" "bob@example.com" = "${H2}" ]
          TLS_Certificate = "/c.pem" TLS_Key = "/k.pem"
          Listen "[::1]:25" { }
        }
        Domain "d" { Routes = ( "mx.d:2525" "[2001:db8::1]:26" 192.0.2.9 ) }`));
      const l = c.esmtpListeners[0]!;
      expect(l).toMatchObject({ name: '[::1]:25', host: '::1', port: 25, family: 6 });
      expect(l.options.Relay_Hosts).toEqual(['10.0.0.0/8', '192.0.2.7/32', '2001:db8::/32']);
      expect(l.options.Auth_Users).toEqual({ alice: H1, 'bob@example.com': H2 });
      expect(c.domains.get('d')!.options.Routes).toEqual([{ host: 'mx.d', port: 2525 }, { host: '2001:db8::1', port: 26 }, { host: '192.0.2.9', port: 25 }]);
    });
    it('explains where a value comes from: the most specific level with its location, the top level, or the default', () => {
      const c = ok(text(`Retry_Interval = 5m
        Binding "b1" { Max_Outbound_Connections = 7 Domain "webmail.test" { Max_Deliveries_Per_Connection = 9 } }
        Domain "webmail.test" { Max_Outbound_Connections = 3 }`));
      const ctx = { binding: 'b1', domain: 'webmail.test' };
      expect(c.explain('Max_Deliveries_Per_Connection', ctx)).toEqual({ value: 9, from: 'Binding "b1" Domain "webmail.test" at test.conf:2:53' });
      expect(c.explain('Max_Outbound_Connections', ctx)).toEqual({ value: 7, from: 'Binding "b1" at test.conf:2:9' });
      expect(c.explain('Max_Outbound_Connections', { binding: 'default', domain: 'webmail.test' })).toEqual({ value: 3, from: 'Domain "webmail.test" at test.conf:3:9' });
      expect(c.explain('Retry_Interval', ctx)).toEqual({ value: 300_000, from: 'the top level' });
      expect(c.explain('Message_Expiration', ctx)).toEqual({ value: 5 * 86_400_000, from: 'the default' });
    });

    it('looks a rate up through the fallback, "unlimited" included, and shows it re-parseably', () => {
      const c = ok(text(`Outbound_Throttle_Messages = "300/60s"
        Domain "webmail.test" { Outbound_Throttle_Messages = "5/1" }
        Binding "b1" { Domain "webmail.test" { Outbound_Throttle_Messages = unlimited } }`));
      const ctx = { binding: 'default', domain: 'webmail.test' };
      expect(c.lookup('Outbound_Throttle_Messages', ctx)).toEqual({ count: 5, periodMs: 1000 });
      expect(c.lookup('Outbound_Throttle_Messages', { binding: 'default', domain: 'other.com' })).toEqual({ count: 300, periodMs: 60_000 });
      expect(c.lookup('Outbound_Throttle_Messages', { binding: 'b1', domain: 'webmail.test' })).toBeNull();
      expect(ok(text('')).lookup('Outbound_Throttle_Messages', ctx)).toBeNull();
      expect(c.show()).toContain('Outbound_Throttle_Messages = "300/1m"');
      expect(c.show()).toContain('Outbound_Throttle_Messages = unlimited');
      expect(ok(text(c.show())).lookup('Outbound_Throttle_Messages', ctx)).toEqual({ count: 5, periodMs: 1000 });
      expect(errorsOf(text('Outbound_Throttle_Messages = "300 per minute"\nDomain "d" { Outbound_Throttle_Messages = "5/0s" }'))).toEqual([
        'test.conf:1:30: invalid value for "Outbound_Throttle_Messages": expected a rate "N/PERIOD" ("300/60s", "5/1s"; a bare period is seconds) or "unlimited", got "300 per minute"',
        'test.conf:2:43: invalid value for "Outbound_Throttle_Messages": expected a rate "N/PERIOD" ("300/60s", "5/1s"; a bare period is seconds) or "unlimited", got "5/0s"',
      ]);
    });
  });

  describe('stanzas', () => {
    it('uses ESMTP_Listener options as defaults under each Listen', () => {
      const c = ok(text('ESMTP_Listener { Timeout = 1m Concurrency = 5 Listen "127.0.0.1:25" { Timeout = 2m } Listen "127.0.0.1:26" { } }'));
      expect(c.esmtpListeners.map((l) => [l.options.Timeout, l.options.Concurrency])).toEqual([[120_000, 5], [60_000, 5]]);
    });

    it('treats keywords case-insensitively but keeps names and values as written', () => {
      const c = ok(loadConfigFile('case.conf', { cwd: VALID }));
      expect(c.global).toMatchObject({ Worker_Threads: 3, Log_Level: 'error' });
      expect(c.esmtpListeners[0]!.options.Max_Message_Size).toBe(1024);
      expect([...c.bindings.keys()]).toEqual(['B1', 'b1', 'default']);
      expect(c.bindings.get('B1')!.options.Bind_Address).toBe('192.0.2.1');
      expect(c.bindings.get('b1')!.options.Bind_Address).toBe('192.0.2.2');
      expect(c.spool.Directory).toBe(path.join(VALID, 'Var/Spool'));
    });
  });

  describe('a realistic multi-file config', () => {
    const c = ok(loadConfigFile('multi/main.conf', { cwd: VALID }));
    const M = path.join(VALID, 'multi');

    it('reads an included file, an included directory in byte order, and includes relative to the including file', () => {
      expect(c.files).toEqual([
        'main.conf', 'common/spool.conf', 'listeners.conf',
        'bindings.d/10-alpha.conf', 'bindings.d/20-beta.conf', 'bindings.d/beta-domains.inc', 'bindings.d/9-gamma.conf',
      ].map((f) => path.join(M, f)).concat(SHIPPED_RULES));
      expect([...c.bindingGroups.get('marketing')!.bindings.keys()]).toEqual(['alpha', 'beta', 'gamma']);
      expect(c.bindings.get('beta')!.domains.get('bulk.test')!.options).toEqual({ Max_Outbound_Connections: 3 });
    });

    it('reports where each stanza came from', () => {
      expect(c.esmtpListeners[1]!.where).toEqual({ file: 'multi/listeners.conf', line: 12, column: 3 });
      expect(c.bindings.get('gamma')!.where).toEqual({ file: 'multi/bindings.d/9-gamma.conf', line: 1, column: 1 });
    });

    it('builds typed global, spool, listener, cluster and binding settings', () => {
      expect(c.global).toMatchObject({ Worker_Threads: 4, Log_Level: 'warn', Hostname: 'mx1.example.com', Nodename: 'node1', Ehlo_Hostname: 'mx1.example.com' });
      expect(c.spool).toEqual({ Directory: path.join(VALID, 'spool'), Sync: 'none', Commit_Delay: 2, Segment_Size: 128 * 1024 ** 2, Copy_Forward_After: 3_600_000,
        Event_Journal_Max_Size: 1024 ** 3, Event_Journal_At_Cap: 'refuse', Event_Journal_Retention: 128 * 1024 ** 2 });
      const [v4, v6] = c.esmtpListeners;
      expect(v4!.options).toMatchObject({ Max_Message_Size: 20 * 1024 ** 2, Timeout: 120_000, Enable_Duravip: true, Duravip_Preference: 'node1', Binding_Group: 'marketing', Hostname: 'mx1.example.com' });
      expect(v6!).toMatchObject({ host: '2001:db8::10', port: 587, family: 6 });
      expect(v6!.options).toMatchObject({ Max_Message_Size: 30 * 1024 ** 2, Duravip_Follow: 'transactional', Pipelining: false, Enable_Duravip: false, TLS_Key: '/etc/vipmta/tls.key' });
      expect(Object.keys(v6!.options.Auth_Users!)).toEqual(['alice', 'bob@example.com']);
      expect(v6!.options.Auth_Users!['alice']).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$/);
      expect(c.ecclusterListeners.map((l) => l.name)).toEqual(['10.9.0.1:2424']);
      expect(c.controlListeners.map((l) => l.path)).toEqual([path.join(VALID, 'run/vipmta.sock')]);
      expect(c.cluster!.options).toMatchObject({ Cluster_Secret: 's3cr"et\\x', Arp_All_Hosts: true, Arp_Count: 3, Arp_Mode: 'request', Nodename: 'node1' });
      expect(c.cluster!.topologies.map((t) => [t.cidr, t.options.Interface, t.options.Cidrmask])).toEqual([['198.51.100.0/24', 'eth1', 32], ['2001:db8::/64', 'eth1', 128]]);
      expect(c.bindings.get('transactional')).toMatchObject({ group: 'default', options: { Bind_Address: '198.51.100.30', Enable_Duravip: true } });
      expect(c.lookup('Max_Deliveries_Per_Connection', { binding: 'gamma' })).toBe(500);
      expect(c.lookup('Retry_Interval', { binding: 'alpha' })).toBe(5 * 60_000);
      expect(c.lookup('Retry_Interval', { binding: 'gamma' })).toBe(30 * 60_000);
      expect(c.lookup('Routes', { domain: 'example.org' })).toHaveLength(3);
    });

    it('shows a canonical text that parses back to the same configuration', () => {
      const shown = c.show();
      const again = ok(loadConfigText(shown, 'shown.conf', { cwd: VALID }));
      expect(again.show()).toBe(shown);
      expect(again.global).toEqual(c.global);
      expect(again.esmtpListeners.map((l) => l.options)).toEqual(c.esmtpListeners.map((l) => l.options));
      expect(shown).toContain('Cluster_Secret = "s3cr\\"et\\\\x"');
      expect(shown).toContain('Max_Message_Size = 30M');
    });
  });

  describe('fallback lookup', () => {
    const c = ok(loadConfigFile('fallback.conf', { cwd: VALID }));
    const ctx = { bindingGroup: 'g', binding: 'b', domain: 'd.com' };

    it('prefers the Domain inside the binding over every other level', () => {
      expect(c.lookup('Max_Outbound_Connections', ctx)).toBe(1);
      expect(c.lookup('Max_Outbound_Connections', { binding: 'top', domain: 'd.com' })).toBe(2);
    });
    it('then the Domain inside the binding group', () => {
      expect(c.lookup('Max_Deliveries_Per_Connection', ctx)).toBe(13);
      expect(c.lookup('Max_Outbound_Connections', { bindingGroup: 'g', domain: 'd.com' })).toBe(3);
    });
    it('then the Binding', () => {
      expect(c.lookup('Retry_Interval', ctx)).toBe(4 * 60_000);
      expect(c.lookup('Max_Outbound_Connections', { binding: 'b', domain: 'other.com' })).toBe(4);
    });
    it('then the Binding_Group', () => {
      expect(c.lookup('Message_Expiration', ctx)).toBe(5 * 3_600_000);
      expect(c.lookup('Retry_Interval', { binding: 'b-bare', domain: 'd.com' })).toBe(5 * 60_000);
    });
    it('then the top-level Domain', () => {
      expect(c.lookup('Ehlo_Hostname', ctx)).toBe('domain.example');
      expect(c.lookup('Max_Outbound_Connections', { binding: 'default', domain: 'd.com' })).toBe(6);
    });
    it('then the global value, and the schema default when nothing sets it', () => {
      expect(c.lookup('Duravip_Preference', ctx)).toBe('gnode');
      expect(c.lookup('Max_Outbound_Connections', { binding: 'default', domain: 'other.com' })).toBe(7);
      expect(c.lookup('Enable_Duravip', ctx)).toBe(false);
      expect(c.lookup('Routes', { binding: 'b', domain: 'other.com' })).toEqual([]);
      expect(c.lookup('Routes', ctx)).toEqual([{ host: 'smarthost.example', port: 2525 }]);
    });
    it('takes the group from the binding and skips names that are not configured', () => {
      expect(c.lookup('Max_Deliveries_Per_Connection', { binding: 'b', bindingGroup: 'default' })).toBe(14);
      expect(c.lookup('Max_Outbound_Connections', { binding: 'nope', bindingGroup: 'nope', domain: 'nope' })).toBe(7);
      expect(c.lookup('Bind_Address', ctx)).toBe('192.0.2.1');
      expect(c.lookup('Bind_Address', { binding: 'top' })).toBeUndefined();
    });
    it('rejects an option that is not binding- or domain-scoped', () => {
      expect(() => c.lookup('Worker_Threads' as never, {})).toThrow(/not a binding\/domain-scoped option/);
    });
  });

  describe('errors', () => {
    const load = (f: string): string[] => errorsOf(loadConfigFile(f, { cwd: INVALID }));

    it('reports every syntax error with its position and goes on', () => {
      expect(load('syntax.conf')).toEqual([
        'syntax.conf:2:16: expected "=" or "{" after "Worker_Threads"',
        'syntax.conf:3:13: unterminated string: missing closing \'"\' before end of line',
        'syntax.conf:4:16: unknown escape "\\q" in string; expected \\" \\\\ \\n or \\t',
        'syntax.conf:5:1: unexpected "}" with no stanza to close',
        'syntax.conf:9:1: expected a value after "Sync =", got "}"',
        'syntax.conf:10:1: option "Relay_Hosts" is not allowed at global scope; it belongs in ESMTP_Listener/Listen',
        'syntax.conf:11:1: expected ")" to close list opened at 10:15, got "Cluster"',
        'syntax.conf:12:3: unterminated comment: "/*" without "*/"',
        'syntax.conf:13:1: expected "}" to close Cluster opened at 11:1',
      ]);
    });

    it('reports an unclosed stanza at end of file, naming where it opened', () => {
      expect(load('unclosed.conf')).toEqual(['unclosed.conf:6:1: expected "}" to close Binding "b1" opened at 1:1']);
    });

    it('rejects unknown and misplaced options and stanzas, suggesting the nearest name when close', () => {
      expect(load('unknown.conf')).toEqual([
        'unknown.conf:2:3: unknown option "Bind_Adress" in Binding "b1"; did you mean "Bind_Address"?',
        'unknown.conf:3:3: unknown option "Frobnicate" in Binding "b1"',
        'unknown.conf:5:1: unknown stanza "Bindng" at global scope; did you mean "Binding"?',
        'unknown.conf:6:1: stanza "Listen" is not allowed at global scope; it belongs in ESMTP_Listener, ECCluster_Listener, Control_Listener, Http_Listener, Http_Injection',
        'unknown.conf:7:9: option "Max_Message_Size" is not allowed in Spool; it belongs in ESMTP_Listener/Listen, ECCluster_Listener/Listen',
        'unknown.conf:8:18: option "Bind_Address" is not allowed in Domain "x.com"; it belongs in Binding',
        'unknown.conf:9:18: stanza "Spool" is not allowed in ESMTP_Listener; it belongs in the top level',
        'unknown.conf:10:1: unknown option "Cluster" at global scope; Cluster is a stanza: Cluster { ... }',
        'unknown.conf:11:1: unknown stanza "Worker_Threads" at global scope; Worker_Threads is an option: Worker_Threads = value',
      ]);
    });

    it('says what each bad value should have been', () => {
      expect(load('values.conf')).toEqual([
        'values.conf:1:18: invalid value for "Worker_Threads": expected an integer from 0 to 1024, got "many"',
        'values.conf:2:13: invalid value for "Log_Level": expected one of trace, debug, info, warn, error, got "verbose"',
        'values.conf:4:20: invalid value for "Max_Recipients": expected an integer from 1 to 1000000, got "0"',
        'values.conf:5:22: invalid value for "Max_Message_Size": expected a size (bytes, or with K, M, G, T: 64K, 10M), got "10Q"',
        'values.conf:6:22: expected "=" or "{" after "minutes"',
        'values.conf:7:16: invalid value for "Pipelining": expected a boolean (true/false, yes/no, on/off), got "maybe"',
        'values.conf:8:32: invalid value for "Relay_Hosts": expected a CIDR network ("192.0.2.0/24"; a bare address is a host) in the list, got "10.0.0.0/33"',
        'values.conf:9:26: invalid value for "Auth_Users": expected unique keys in the dictionary, got "a" twice',
        'values.conf:10:14: invalid value for "Hostname": expected a host name, got a list',
        'values.conf:11:10: Listen name must be an address "ip:port" ("[::1]:25" for IPv6), got "127.0.0.1"',
        'values.conf:12:10: Listen name must be an address "ip:port" ("[::1]:25" for IPv6), got "::1:25"',
        'values.conf:13:10: Listen name must be an address "ip:port" ("[::1]:25" for IPv6), got "127.0.0.1:70000"',
        'values.conf:15:30: invalid value for "Bind_Address": expected an IP address, got "300.1.1.1"',
        'values.conf:16:25: invalid value for "Routes": expected a "host:port" ("[::1]:25" for IPv6; port defaults to 25) in the list, got "mx:port"',
        'values.conf:17:20: Topology name must be a CIDR network "addr/len", got "10.0.0.0"',
        'values.conf:17:63: invalid value for "Arp_Mode": expected one of request, reply, got "gratuitous"',
      ]);
    });

    it('checks duplicates and the local cross-field rules', () => {
      expect(load('cross.conf')).toEqual([
        'cross.conf:4:27: Listen "192.0.2.1:25" sets both Enable_Duravip and Duravip_Follow; a listener either is a DuraVIP or follows a binding\'s',
        'cross.conf:5:27: Listen "192.0.2.2:25" needs both TLS_Certificate and TLS_Key',
        'cross.conf:6:27: Binding "b2" in Listen "192.0.2.3:25" names no Binding; did you mean "b1"?',
        'cross.conf:6:42: Binding_Group "nogroup" in Listen "192.0.2.3:25" names no Binding_Group',
        'cross.conf:7:3: duplicate Listen "192.0.2.1:25" in ESMTP_Listener (first at 4:3)',
        'cross.conf:9:3: duplicate option "Timeout" in ESMTP_Listener (first set at 8:3)',
        'cross.conf:11:16: Binding "b1" sets Enable_Duravip but has no Bind_Address to fail over',
        'cross.conf:13:3: duplicate Binding "b1" (first at 11:1); binding names are unique across groups',
        'cross.conf:14:3: Binding "default" belongs to Binding_Group "default", not "g"',
        'cross.conf:16:1: Binding needs a name: Binding "name" { ... }',
        'cross.conf:17:7: Spool takes no name: Spool { ... }',
        'cross.conf:19:1: duplicate Spool at global scope (first at 18:1)',
        'cross.conf:21:3: Nodename "n2" in Cluster differs from the global Nodename "n1" (set at 1:1); set it once',
        'cross.conf:22:3: Topology "192.0.2.0/24" needs Interface = "name"',
        'cross.conf:22:29: invalid value for "Cidrmask": expected 0 to 32 for an IPv4 Topology, got 40',
      ]);
    });

    it('reserves binding names starting with "#" (#mmove is the cluster\'s)', () => {
      expect(errorsOf(text('Binding "#mmove" { }\n'))).toEqual([
        'test.conf:1:1: Binding "#mmove": names starting with "#" are reserved (#mmove is the cluster\'s message-move binding)',
      ]);
    });

    it('refuses AUTH users without TLS and passwords that are not hashed', () => {
      expect(load('auth.conf')).toEqual([
        'auth.conf:3:28: Listen "192.0.2.1:587" sets Auth_Users but no TLS_Certificate/TLS_Key; AUTH is only offered after STARTTLS',
        'auth.conf:3:28: Auth_Users entry "alice" in Listen "192.0.2.1:587" is not a scrypt password hash; make one with "vipmta hash-password"',
      ]);
    });

    it('detects an include cycle and names the chain', () => {
      expect(load('cycle/a.conf')).toEqual(['cycle/b.conf:1:9: include cycle: cycle/a.conf -> cycle/b.conf -> cycle/a.conf']);
    });

    it('reports a missing included file or directory at the include', () => {
      expect(load('include-missing.conf')).toEqual([
        'include-missing.conf:1:9: cannot read included file "does-not-exist.conf": ENOENT',
        'include-missing.conf:2:9: cannot read included file "no-such-dir": ENOENT',
      ]);
    });

    it('reports the errors of all files together, in the order the files were read', () => {
      expect(load('across/main.conf')).toEqual([
        'across/main.conf:1:18: invalid value for "Worker_Threads": expected an integer from 0 to 1024, got "-1"',
        'across/main.conf:3:1: unknown option "Log_Levle" at global scope; did you mean "Log_Level"?',
        'across/second.conf:2:18: invalid value for "Segment_Size": expected a size (bytes, or with K, M, G, T: 64K, 10M), got "big"',
      ]);
    });

    it('reports a missing top-level file', () => {
      expect(load('nope.conf')).toEqual(['nope.conf:1:1: cannot read config file: ENOENT']);
    });

    it('reads an ESMTP_Listener split across included files as one, and still reports an option or Listen set twice', () => {
      const c = ok(loadConfigFile('split/main.conf', { cwd: VALID }));
      expect(c.esmtpListeners.map((l) => [l.host, l.port, l.options.Timeout])).toEqual([
        ['127.0.0.1', 2525, 120_000], ['127.0.0.2', 2525, 30_000], ['127.0.0.3', 2525, 120_000],
      ]);
      expect(c.esmtpListeners[2]!.where).toEqual({ file: 'split/sites/b.conf', line: 2, column: 3 });
      expect(load('split/main.conf')).toEqual([
        'split/more.conf:2:3: duplicate option "Timeout" in ESMTP_Listener (first set at split/main.conf:2:3)',
        'split/more.conf:3:3: duplicate Listen "127.0.0.1:2525" in ESMTP_Listener (first at split/main.conf:3:3)',
      ]);
    });

    it('resolves includes of config text against baseDir', () => {
      expect(errorsOf(loadConfigText('include "second.conf"', 'inline', { cwd: INVALID, baseDir: 'across' }))).toEqual([
        'across/second.conf:2:18: invalid value for "Segment_Size": expected a size (bytes, or with K, M, G, T: 64K, 10M), got "big"',
      ]);
    });

    it('formats an error as file:line:column: message', () => {
      expect(formatConfigError({ file: 'conf/main.conf', line: 12, column: 3, message: 'boom' })).toBe('conf/main.conf:12:3: boom');
    });
  });

  describe('Shaping_Rule', () => {
    it('reads rules in order with their options and defaults, compiles Match case-insensitively, and shows them re-parseably', () => {
      const c = ok(text(`Shaping_Default_Rules = false
        Shaping_Rule "yahoo-tss04" {
          Match = "\\\\[TSS04\\\\]" Domains = ( "bulk.*" "other.test" ) Action = suspend Duration = 1h Scope = domain
        }
        Shaping_Rule "blocks" { Classes = ( 50 51 ) Threshold = "5/1m" Action = reduce_connections Connections = 1 }
        Shaping_Rule "slow" { Match = "rate limited" Action = throttle Rate = "60/1m" }`));
      expect(c.shapingRules.map((r) => [r.name, r.options.Action, r.options.Duration, r.options.Scope])).toEqual([
        ['yahoo-tss04', 'suspend', 3_600_000, 'domain'], ['blocks', 'reduce_connections', 900_000, 'binding_domain'], ['slow', 'throttle', 900_000, 'binding_domain'],
      ]);
      expect(c.shapingRules[0]!.match!.test('421 4.7.0 [tss04] Messages from 198.51.100.7 temporarily deferred')).toBe(true);
      expect(c.shapingRules[0]!.options.Domains).toEqual(['bulk.*', 'other.test']);
      expect(c.shapingRules[1]!.match).toBeNull();
      expect(c.shapingRules[1]!.options).toMatchObject({ Classes: [50, 51], Threshold: { count: 5, periodMs: 60_000 }, Connections: 1 });
      expect(c.shapingRules[2]!.options.Rate).toEqual({ count: 60, periodMs: 60_000 });
      const again = ok(text(c.show()));
      expect(again.show()).toBe(c.show());
      expect(again.shapingRules[0]!.match!.source).toBe('\\[TSS04\\]');
    });

    it('rejects a bad regex, a rule that would match everything, and a missing Action, Rate or Connections, with file:line:column', () => {
      expect(errorsOf(text(`Shaping_Rule "a" { Match = "(unclosed" Action = suspend }
Shaping_Rule "b" { Action = suspend }
Shaping_Rule "c" { Match = "x" }
Shaping_Rule "d" { Match = "x" Action = throttle }
Shaping_Rule "e" { Match = "x" Action = reduce_connections }
Shaping_Rule "f" { Match = "x" Action = pause }`))).toEqual([
        'test.conf:1:20: invalid value for "Match": expected a regular expression (/(unclosed/i: Unterminated group)',
        'test.conf:2:1: Shaping_Rule "b" needs Match = "regex" or Classes = ( ... ): it would match every failure',
        'test.conf:3:1: Shaping_Rule "c" needs Action = suspend | throttle | reduce_connections | bounce',
        'test.conf:4:1: Shaping_Rule "d" has Action = throttle but no Rate = "N/PERIOD"',
        'test.conf:5:1: Shaping_Rule "e" has Action = reduce_connections but no Connections = N',
        'test.conf:6:1: Shaping_Rule "f" needs Action = suspend | throttle | reduce_connections | bounce',
        'test.conf:6:41: invalid value for "Action": expected one of suspend, throttle, reduce_connections, bounce, got "pause"',
      ]);
    });
  });

  describe('the shipped Shaping_Rule set', () => {
    it('is read after the configuration; a rule of the same name replaces the shipped one; Shaping_Default_Rules = false leaves it out', () => {
      const shipped = ok(text('')).shapingRules;
      expect(shipped.map((r) => r.name)).toContain('yahoo-tss04');
      expect(new Set(shipped.map((r) => r.where.file))).toEqual(new Set([SHIPPED_RULES]));
      const mine = ok(text('Shaping_Rule "yahoo-tss04" { Match = "TSS04" Action = suspend Duration = 10m }')).shapingRules;
      expect(mine.filter((r) => r.name === 'yahoo-tss04').map((r) => r.options.Duration)).toEqual([600_000]);
      expect(mine).toHaveLength(shipped.length);
      expect(ok(text('Shaping_Default_Rules = off')).shapingRules).toEqual([]);
    });
  });

  describe('Http_Listener', () => {
    it('has no HTTP API when a config file has no Http_Listener', () => {
      expect(ok(text('ESMTP_Listener { Listen "127.0.0.1:25" { } }')).httpListeners).toEqual([]);
    });

    it('accepts IPv4, IPv6 and non-loopback addresses and shows them re-parseably', () => {
      const c = ok(text('Http_Listener {\n  Listen "127.0.0.1:2081" { }\n  Listen "[::1]:2082" { }\n  Listen "192.0.2.5:9100" { }\n}'));
      expect(c.httpListeners.map(({ name, host, port, family }) => ({ name, host, port, family }))).toEqual([
        { name: '127.0.0.1:2081', host: '127.0.0.1', port: 2081, family: 4 },
        { name: '[::1]:2082', host: '::1', port: 2082, family: 6 },
        { name: '192.0.2.5:9100', host: '192.0.2.5', port: 9100, family: 4 },
      ]);
      expect(c.httpListeners[1]!.where).toEqual({ file: 'test.conf', line: 3, column: 3 });
      expect(c.show()).toContain('Http_Listener {\n  Listen "127.0.0.1:2081" {\n  }\n  Listen "[::1]:2082" {\n  }\n  Listen "192.0.2.5:9100" {\n  }\n}\n');
      expect(ok(text(c.show())).httpListeners.map((l) => l.name)).toEqual(['127.0.0.1:2081', '[::1]:2082', '192.0.2.5:9100']);
    });

    it('rejects a name that is not ip:port, options inside it and a second Http_Listener', () => {
      expect(errorsOf(text('Http_Listener {\n  Listen "localhost" { }\n  Listen "127.0.0.1:2081" { Timeout = 5s }\n}\nHttp_Listener { }'))).toEqual([
        'test.conf:2:10: Listen name must be an address "ip:port" ("[::1]:25" for IPv6), got "localhost"',
        'test.conf:3:29: option "Timeout" is not allowed in Listen "127.0.0.1:2081"; it belongs in ESMTP_Listener/Listen, ECCluster_Listener/Listen',
        'test.conf:5:1: duplicate Http_Listener at global scope (first at 1:1)',
      ]);
    });
  });

  describe('ECCluster_Listener and the #mmove options', () => {
    it('takes Timeout and Max_Message_Size per Listen, the Mmove_* options in Cluster, and shows them re-parseably', () => {
      const c = ok(text('ECCluster_Listener {\n  Timeout = 30s\n  Listen "127.0.0.1:4802" { Max_Message_Size = 1M }\n}\n' +
        'Cluster {\n  Cluster_Secret = "s"\n  Mmove_Connections = 2\n  Mmove_Max_Hops = 5\n  Mmove_Dedup_Entries = 5000\n  Mmove_Dedup_Window = 10m\n}'));
      expect(c.ecclusterListeners[0]!.options).toMatchObject({ Timeout: 30_000, Max_Message_Size: 1024 * 1024 });
      expect(c.cluster!.options).toMatchObject({ Mmove_Connections: 2, Mmove_Max_Hops: 5, Mmove_Dedup_Entries: 5000, Mmove_Dedup_Window: 600_000 });
      expect(ok(text(c.show())).ecclusterListeners[0]!.options).toEqual(c.ecclusterListeners[0]!.options);
    });

    it('rejects listener options that do not apply to the cluster link, and out-of-range values', () => {
      const errs = errorsOf(text('ECCluster_Listener {\n  Listen "127.0.0.1:4802" { Relay_Hosts = ( "10.0.0.0/8" ) }\n}\nCluster {\n  Mmove_Max_Hops = 0\n}'));
      expect(errs).toHaveLength(2);
      expect(errs[0]).toMatch(/^test\.conf:2:29: option "Relay_Hosts" is not allowed in Listen "127\.0\.0\.1:4802"/);
      expect(errs[1]).toBe('test.conf:5:20: invalid value for "Mmove_Max_Hops": expected an integer from 1 to 255, got "0"');
    });
  });

  describe('Mmove_TLS', () => {
    it('is off by default, takes a boolean in Cluster, reaches the workers, and shows re-parseably', () => {
      expect(mmoveSettings(ok(text('Cluster {\n  Cluster_Secret = "s"\n}'))).tls).toBe(false);
      const c = ok(text('Cluster {\n  Cluster_Secret = "s"\n  Mmove_TLS = yes\n}'));
      expect(c.cluster!.options.Mmove_TLS).toBe(true);
      expect(mmoveSettings(c).tls).toBe(true);
      expect(ok(text(c.show())).cluster!.options.Mmove_TLS).toBe(true);
    });

    it('rejects an invalid value, a misspelling and the option outside Cluster, with file:line:column', () => {
      expect(errorsOf(text('Cluster {\n  Mmove_TLS = maybe\n  Mmove_TSL = true\n}\nMmove_TLS = true'))).toEqual([
        'test.conf:2:15: invalid value for "Mmove_TLS": expected a boolean (true/false, yes/no, on/off), got "maybe"',
        'test.conf:3:3: unknown option "Mmove_TSL" in Cluster; did you mean "Mmove_TLS"?',
        'test.conf:5:1: option "Mmove_TLS" is not allowed at global scope; it belongs in Cluster',
      ]);
    });
  });

  describe('schema and reference', () => {
    it('has a parseable default, a description and a scope for every option', () => {
      const c = defaultConfig();
      for (const [name, spec] of Object.entries(OPTIONS)) {
        expect(spec.description, name).toMatch(/^[A-Z].*\.$/);
        expect(spec.scopes.length, name).toBeGreaterThan(0);
        // Every global option with a default appears in the typed global options.
        if ((spec.scopes as readonly string[]).includes('global') && ('default' in spec || 'defaultFrom' in spec)) expect(c.global, name).toHaveProperty(name);
      }
    });

    it('keeps docs/configuration.md identical to renderReference() (regenerate: npm run build:ts && npm run docs)', () => {
      const committed = readFileSync(path.join(ROOT, 'docs/configuration.md'), 'utf8');
      expect(committed).toBe(renderReference());
    });

    it('documents every option, stanza and the fallback order', () => {
      const ref = renderReference();
      for (const name of Object.keys(OPTIONS)) expect(ref).toContain(`| \`${name}\` |`);
      for (const s of ['ESMTP_Listener', 'ECCluster_Listener', 'Control_Listener', 'Http_Listener', 'Topology', 'Binding_Group', 'Domain']) expect(ref).toContain(`| \`${s}\` |`);
      expect(ref).toMatch(/## Fallback order/);
      expect(ref).toMatch(/include "dir"/);
    });
  });
});
