// Binding assignment: X-Binding only from trusted injectors, listener defaults, the sender-domain
// map, groups that prefer bindings whose address this node holds, and the default fallback.
import { describe, expect, it } from 'vitest';
import { loadConfigText, type Config } from '../../../src/config/index.js';
import { BindingPolicy } from '../../../src/policy/binding.js';

function config(text: string): Config {
  const r = loadConfigText(text, 'test.conf');
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  return r.config;
}

const CONF = `
Sender_Domain_Bindings = [ "Shop.Example" = "tx" "bad.example" = "nothing" ]
ESMTP_Listener {
  Listen "127.0.0.1:25" { }
  Listen "127.0.0.1:26" { Binding_Group = "news" Trusted_Injectors = ( "10.0.0.0/8" ) }
  Listen "127.0.0.1:27" { Binding = "tx" }
}
Binding "tx" { Bind_Address = 198.51.100.5 }
Binding_Group "news" {
  Binding "news-a" { Bind_Address = 198.51.100.21 }
  Binding "news-b" { Bind_Address = 198.51.100.22 }
  Binding "news-c" { Bind_Address = 198.51.100.23 }
}
`;

const msg = (o: Partial<{ headers: Record<string, string>; client: string; listener: string | null; from: string }>) => ({
  headers: {}, client: '127.0.0.1', listener: '127.0.0.1:25', from: 'a@other.example', ...o,
});

describe('binding assignment', () => {
  it('honours X-Binding naming a binding from a trusted injector', () => {
    const p = new BindingPolicy(config(CONF));
    expect(p.assign(msg({ headers: { 'x-binding': 'news-b' } }))).toEqual({ bindingGroup: 'news', binding: 'news-b', source: 'x-binding' });
  });

  it('ignores X-Binding from an injector the listener does not trust', () => {
    const p = new BindingPolicy(config(CONF));
    expect(p.assign(msg({ headers: { 'x-binding': 'tx' }, client: '203.0.113.9' }))).toMatchObject({ binding: 'default', source: 'default' });
    // Listener 26 trusts 10/8 only, so loopback's header is ignored and the listener's group applies.
    expect(p.assign(msg({ headers: { 'x-binding': 'tx' }, listener: '127.0.0.1:26' }))).toMatchObject({ bindingGroup: 'news', source: 'listener' });
    expect(p.assign(msg({ headers: { 'x-binding': 'tx' }, listener: '127.0.0.1:26', client: '10.1.2.3' }))).toMatchObject({ binding: 'tx', source: 'x-binding' });
    expect(p.assign(msg({ headers: { 'x-binding': 'tx' }, listener: null }))).toMatchObject({ binding: 'default' });
  });

  it('falls back to default, with a warning, when X-Binding names nothing', () => {
    const p = new BindingPolicy(config(CONF));
    expect(p.assign(msg({ headers: { 'x-binding': 'nope' } }))).toEqual({
      bindingGroup: 'default', binding: 'default', source: 'default', warning: 'X-Binding "nope" names no binding or binding group',
    });
  });

  it('spreads a group round robin', () => {
    const p = new BindingPolicy(config(CONF));
    const got = Array.from({ length: 6 }, () => p.assign(msg({ headers: { 'x-binding': 'news' } })).binding);
    expect(got).toEqual(['news-a', 'news-b', 'news-c', 'news-a', 'news-b', 'news-c']);
  });

  it('prefers the group members whose address this node holds', () => {
    const held = new Set(['198.51.100.22', '198.51.100.23']);
    const p = new BindingPolicy(config(CONF), { holds: (a) => held.has(a) });
    const got = Array.from({ length: 4 }, () => p.assign(msg({ listener: '127.0.0.1:26' })).binding);
    expect(got).toEqual(['news-b', 'news-c', 'news-b', 'news-c']);
    // None held: still round robin over all (the message will be moved to the owner).
    const none = new BindingPolicy(config(CONF), { holds: () => false });
    expect(Array.from({ length: 3 }, () => none.assign(msg({ listener: '127.0.0.1:26' })).binding)).toEqual(['news-a', 'news-b', 'news-c']);
  });

  it('uses the listener binding, then the sender-domain map, then default', () => {
    const p = new BindingPolicy(config(CONF));
    expect(p.assign(msg({ listener: '127.0.0.1:27' }))).toMatchObject({ binding: 'tx', source: 'listener' });
    expect(p.assign(msg({ from: 'orders@SHOP.example' }))).toMatchObject({ binding: 'tx', source: 'sender-domain' });
    expect(p.assign(msg({ from: 'x@bad.example' }))).toMatchObject({ binding: 'default', warning: expect.stringContaining('"bad.example"') });
    expect(p.assign(msg({ from: '' }))).toEqual({ bindingGroup: 'default', binding: 'default', source: 'default' });
  });
});
