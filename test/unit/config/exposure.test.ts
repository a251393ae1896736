// Exposure warnings (issue 12): a config that loads but exposes the admin API, relays for anyone or
// puts the console socket in a world-writable directory says so, at file:line:column, without failing.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatConfigWarning, loadConfigText, type LoadResult } from '../../../src/config/index.js';
import { exposureWarnings } from '../../../src/config/exposure.js';
import { tempDir } from '../../helpers/tmp.js';

function warnings(r: LoadResult): string[] {
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('; '));
  return r.warnings.map(formatConfigWarning);
}
const load = (t: string): LoadResult => loadConfigText(t, 'c.conf', { cwd: '/srv' });

describe('config exposure warnings', () => {
  it('a loopback admin API and the default Relay_Hosts warn about nothing', () => {
    expect(warnings(load('ESMTP_Listener { Listen "0.0.0.0:25" { } }\nHttp_Listener {\n  Listen "127.0.0.1:2081" { }\n  Listen "[::1]:2081" { }\n}\n'))).toEqual([]);
  });

  it('an admin API on a wildcard or a public address warns at its Listen', () => {
    const w = warnings(load('Http_Listener {\n  Listen "0.0.0.0:2081" { }\n  Listen "[::]:2081" { }\n    Listen "192.0.2.5:2081" { }\n}\n'));
    expect(w).toHaveLength(3);
    expect(w[0]).toMatch(/^c\.conf:2:3: warning: Http_Listener Listen "0\.0\.0\.0:2081" serves the admin API on every interface; it has no authentication/);
    expect(w[1]).toMatch(/^c\.conf:3:3: warning: .*on every interface/);
    expect(w[2]).toMatch(/^c\.conf:4:5: warning: .*"192\.0\.2\.5:2081".*on a non-loopback address/);
  });

  it('Relay_Hosts with 0.0.0.0/0 or ::/0 is an open relay, warned at the option, on every listener it reaches', () => {
    const text = 'ESMTP_Listener {\n  Relay_Hosts = ( "10.0.0.0/8" "0.0.0.0/0" )\n  Listen "127.0.0.1:25" { }\n  Listen "127.0.0.1:26" {\n    Relay_Hosts = ( "::/0" )\n  }\n}\n';
    const w = warnings(load(text));
    expect(w).toEqual([
      expect.stringMatching(/^c\.conf:2:3: warning: Relay_Hosts of Listen "127\.0\.0\.1:25" contains "0\.0\.0\.0\/0": an open relay/),
      expect.stringMatching(/^c\.conf:5:5: warning: Relay_Hosts of Listen "127\.0\.0\.1:26" contains "::\/0": an open relay/),
    ]);
  });

  it('HTTP injection without TLS off loopback warns at its Listen; on loopback or with TLS it does not', () => {
    const hash = '$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$' + 'A'.repeat(43);
    const stanza = (listens: string, tls = ''): string => `Http_Injection {\n${tls}${listens}  Token "t" { Secret = "${hash}" }\n}\n`;
    const r = load(stanza('  Listen "0.0.0.0:8025" { }\n  Listen "127.0.0.1:8026" { }\n'));
    if (!r.ok) return expect(r.errors.map((e) => e.message)).toEqual([]);
    const w = warnings(r);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/^c\.conf:2:3: warning: Http_Injection Listen "0\.0\.0\.0:8025" takes requests without TLS on every interface/);
    expect(warnings(load(stanza('  Listen "192.0.2.5:8025" { }\n', '  TLS_Certificate = "/etc/c.pem"\n  TLS_Key = "/etc/k.pem"\n')))).toEqual([]);
  });

  it('a Relay_Hosts without /0 is no open relay', () => {
    expect(warnings(load('ESMTP_Listener {\n  Relay_Hosts = ( "10.0.0.0/8" "0.0.0.0/1" )\n  Listen "127.0.0.1:25" { }\n}\n'))).toEqual([]);
  });

  it('a Control_Listener socket in a world-writable directory warns; in a private one it does not', () => {
    const dir = tempDir('vipmta-exposure-');
    const open = path.join(dir, 'open');
    const closed = path.join(dir, 'closed');
    fs.mkdirSync(open);
    fs.mkdirSync(closed, { mode: 0o755 });
    fs.chmodSync(open, 0o777);
    const r = loadConfigText(`Control_Listener {\n  Listen "open/a.sock" { }\n  Listen "closed/b.sock" { }\n}\n`, 'c.conf', { cwd: dir });
    const w = warnings(r);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/^c\.conf:2:3: warning: Control_Listener socket ".*open\/a\.sock" is in a world-writable directory/);
  });

  it('the directory check is injectable and a missing directory is no warning', () => {
    const r = load('Control_Listener { Listen "/nonexistent-dir-for-test/x.sock" { } }\n');
    if (!r.ok) throw new Error('expected ok');
    expect(r.warnings).toEqual([]);
    expect(exposureWarnings(r.config, { worldWritable: (d) => d === '/nonexistent-dir-for-test' })).toHaveLength(1);
  });

  it('a config with errors fails as before, whatever it would have exposed', () => {
    const r = load('Http_Listener { Listen "0.0.0.0:2081" { } }\nLog_Levle = "x"\n');
    expect(r.ok).toBe(false);
  });
});
