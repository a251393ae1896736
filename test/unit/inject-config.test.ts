// The Http_Injection stanza (issue 17): off without it; Listen, limits and tokens with hashed
// secrets and known bindings; refused when a token's secret is not a hash, a binding is unknown,
// TLS is half given or no Listen or Token is written; shown by `config show` as it reads back; its
// address is probed with the other listening addresses; the binding policy trusts its x-binding.
import { describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/config/password.js';
import { loadConfigText, type Config } from '../../src/config/index.js';
import { listenAddresses } from '../../src/node/listen-check.js';
import { injectSettings } from '../../src/node/worker-settings.js';
import { BindingPolicy } from '../../src/policy/binding.js';

const HASH = await hashPassword('x', { ln: 4, r: 8, p: 1 });

function load(stanza: string): { config: Config | null; errors: string[] } {
  const r = loadConfigText(`Binding "b1" { }\nBinding_Group "g1" { Binding "b2" { } }\n${stanza}`, 'test.conf', { cwd: '/tmp' });
  return r.ok ? { config: r.config, errors: [] } : { config: null, errors: r.errors.map((e) => e.message) };
}

const GOOD = `Http_Injection {
  Listen "127.0.0.1:8025" { }
  Max_Recipients = 500
  Token "app" { Secret = "${HASH}" Bindings = ( "b1" "g1" ) }
}`;

describe('Http_Injection', () => {
  it('is off without the stanza', () => {
    const { config } = load('');
    expect(config!.httpInjection ?? null).toBeNull();
    expect(injectSettings(config!)).toBeNull();
  });

  it('reads Listen, the limits and the tokens', () => {
    const c = load(GOOD).config!;
    const h = c.httpInjection!;
    expect(h.listens.map((l) => [l.name, l.listener])).toEqual([['127.0.0.1:8025', 'http:127.0.0.1:8025']]);
    expect(h.options).toMatchObject({ Max_Recipients: 500, Max_Body_Size: 20 * 1024 * 1024, Max_Concurrent_Requests: 64, Request_Deadline: 60_000 });
    expect(h.tokens).toMatchObject([{ name: 'app', secret: HASH, bindings: ['b1', 'g1'] }]);
    const s = injectSettings(c)!;
    expect(s).toMatchObject({ maxRecipients: 500, tls: null, tokens: [{ name: 'app', bindings: ['b1', 'g1'] }] });
    expect([...s.bindingNames].sort()).toEqual(['b1', 'b2', 'default', 'g1']);
  });

  it('refuses a clear secret, an unknown binding, half of TLS, no Listen, no Token', () => {
    expect(load(GOOD.replace(HASH, 'plain')).errors.join('\n')).toMatch(/Token "app" of Http_Injection needs Secret = a scrypt hash/);
    expect(load(GOOD.replace('"g1"', '"nosuch"')).errors.join('\n')).toMatch(/names "nosuch", no Binding or Binding_Group/);
    expect(load(GOOD.replace('Max_Recipients = 500', 'TLS_Key = "k.pem"')).errors.join('\n')).toMatch(/TLS_Certificate and TLS_Key go together/);
    expect(load(GOOD.replace('Listen "127.0.0.1:8025" { }', '')).errors.join('\n')).toMatch(/needs a Listen/);
    expect(load(GOOD.replace(/Token "app".*\n/, '')).errors.join('\n')).toMatch(/needs at least one Token/);
  });

  it('shows as it reads back', () => {
    const c = load(GOOD).config!;
    const again = loadConfigText(c.show(), 'shown.conf', { cwd: '/tmp' });
    expect(again.ok).toBe(true);
    if (again.ok) expect(again.config.httpInjection).toMatchObject({ tokens: c.httpInjection!.tokens.map((t) => ({ name: t.name, secret: t.secret })), options: c.httpInjection!.options });
  });

  it('has its address probed like the other listeners', () => {
    const c = load(GOOD).config!;
    expect(listenAddresses(c).filter((a) => a.kind === 'Http_Injection')).toEqual([{ kind: 'Http_Injection', name: '127.0.0.1:8025', host: '127.0.0.1', port: 8025, freeBind: false }]);
  });

  it('is the one listener whose x-binding the policy takes from any client', () => {
    const c = load(GOOD).config!;
    const p = new BindingPolicy(c);
    expect(p.trustedXBinding({ headers: { 'x-binding': 'b1' }, client: '198.51.100.7', listener: 'http:127.0.0.1:8025' })).toBe('b1');
    expect(p.trustedXBinding({ headers: { 'x-binding': 'b1' }, client: '198.51.100.7', listener: '127.0.0.1:8025' })).toBeNull();
    expect(p.assign({ headers: { 'x-binding': 'g1' }, client: '198.51.100.7', listener: 'http:127.0.0.1:8025', from: 'a@x.test' })).toMatchObject({ bindingGroup: 'g1', binding: 'b2', source: 'x-binding' });
  });
});
