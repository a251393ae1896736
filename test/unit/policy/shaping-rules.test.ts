// Shaping rules read real receiver replies: match, scope, threshold over a sliding window, no
// re-firing while an action lasts, never on vipmta's own failures, and glob filters.
import { describe, expect, it } from 'vitest';
import { loadConfigText, type Config } from '../../../src/config/index.js';
import { classify } from '../../../src/policy/bounce-class.js';
import { globTest, RuleBook, type ReplyEvent } from '../../../src/policy/shaping-rules.js';

function rules(text: string): Config['shapingRules'] {
  const r = loadConfigText(text, 'rules.conf', { cwd: '/' });
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  return r.config.shapingRules;
}

const TSS04 = '421 4.7.0 [TSS04] Messages from 198.51.100.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.example.net/error-codes';

function ev(reply: string | null, over: Partial<ReplyEvent> = {}): ReplyEvent {
  const code = reply === null ? null : Number(reply.slice(0, 3));
  return { binding: 'b1', domain: 'bulk.test', destination: 'bulk.test', mx: 'mta5.mx.bulk.test', reply, cls: classify({ code, text: reply ?? 'lost connection' }), ...over };
}

describe('RuleBook', () => {
  const book = (): RuleBook => new RuleBook(rules(`
    Shaping_Rule "yahoo-tss04" { Match = "\\\\[TSS04\\\\]" Domains = ( "bulk.*" "other.test" ) Mx = ( "*.mx.bulk.test" ) Action = suspend Duration = 1h }
    Shaping_Rule "blocks" { Classes = ( 51 ) Threshold = "3/1m" Action = reduce_connections Connections = 1 Duration = 10m Scope = domain }
    Shaping_Rule "bounce-policy" { Match = "^554 5\\\\.7\\\\.9" Action = bounce }`));

  it('fires a suspension on the first matching reply, per binding and destination, and not again while it lasts', () => {
    const b = book();
    const f = b.observe(ev(TSS04), 1000);
    expect(f).toEqual([{ rule: 'yahoo-tss04', action: 'suspend', binding: 'b1', destination: 'bulk.test', at: 1000, until: 1000 + 3_600_000, rate: null, connections: null, reason: TSS04 }]);
    expect(b.observe(ev(TSS04), 2000)).toEqual([]);
    expect(b.observe(ev(TSS04, { binding: 'b2' }), 2000)).toHaveLength(1);
    expect(b.observe(ev(TSS04), 1000 + 3_600_000)).toHaveLength(1);
  });

  it('applies Domains and Mx globs, and never matches a failure vipmta generated itself', () => {
    const b = book();
    expect(b.observe(ev(TSS04, { domain: 'webmail.test', destination: 'webmail.test' }), 0)).toEqual([]);
    expect(b.observe(ev(TSS04, { mx: 'mx.other.net' }), 0)).toEqual([]);
    expect(b.observe(ev(TSS04, { mx: null }), 0)).toEqual([]);
    expect(b.observe(ev(null), 0)).toEqual([]);
    expect(b.observe(ev(TSS04, { domain: 'OTHER.test' }), 0)).toHaveLength(1);
  });

  it('counts matches over the threshold window before firing, across bindings when Scope = domain', () => {
    const b = book();
    const block = '550 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org';
    expect(b.observe(ev(block, { binding: 'b1' }), 0)).toEqual([]);
    expect(b.observe(ev(block, { binding: 'b2' }), 10_000)).toEqual([]);
    // The first match has left the one-minute window by now: still two, then still two.
    expect(b.observe(ev(block, { binding: 'b3' }), 70_500)).toEqual([]);
    expect(b.observe(ev(block, { binding: 'b1' }), 71_000)).toEqual([]);
    const f = b.observe(ev(block, { binding: 'b2' }), 72_000);
    expect(f).toMatchObject([{ rule: 'blocks', action: 'reduce_connections', binding: null, connections: 1, until: 72_000 + 600_000 }]);
  });

  it('bounces every matching failure (no duration to wait out)', () => {
    const b = book();
    const r = '554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.example.net/error-codes';
    expect(b.observe(ev(r), 5)).toMatchObject([{ action: 'bounce', until: 5 }]);
    expect(b.observe(ev(r), 6)).toMatchObject([{ action: 'bounce', until: 6 }]);
  });
});

describe('globTest', () => {
  it('matches whole names case-insensitively, * spanning dots, and everything when empty', () => {
    const t = globTest(['bulk.*', '*.relay.test']);
    expect(['bulk.test', 'BULK.example.net', 'eu.olc.relay.test'].map(t)).toEqual([true, true, true]);
    expect(['mybulk.test', 'relay.test', 'bulk'].map(t)).toEqual([false, false, false]);
    expect(globTest([])('anything')).toBe(true);
  });
});
