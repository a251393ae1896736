// The Event_Webhook stanza: several allowed, Url required, defaults, names fit the journal's
// subscriber alphabet, header lines and retry bounds checked at load, the canonical text parses back.
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/config/index.js';

const load = (text: string) => loadConfigText(text, 'test.conf', { cwd: '/srv/mta' });
const msgs = (text: string): string => {
  const r = load(text);
  return r.ok ? '' : r.errors.map((e) => e.message).join('\n');
};

describe('Event_Webhook config', () => {
  it('takes several webhooks with their defaults, and shows them back', () => {
    const r = load(`Nodename = "n1"
Event_Webhook "billing" { Url = "https://hooks.example.net/vipmta" Headers = ( "Authorization: Bearer abc" ) Types = ( "delivery" "permanent_failure" ) }
Event_Webhook "bounces" { Url = "http://127.0.0.1:8080/in" Batch_Size = 50 Batch_Bytes = 64K Max_Delay = 200ms Request_Timeout = 2s TLS_Verify = false Subscribe_From = start Min_Retry_Delay = 100ms Max_Retry_Delay = 10s }
`);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.eventWebhooks.map((w) => w.name)).toEqual(['billing', 'bounces']);
    expect(r.config.eventWebhooks[0]!.options).toEqual({
      Url: 'https://hooks.example.net/vipmta', Batch_Size: 500, Batch_Bytes: 1024 * 1024, Max_Delay: 1000, Request_Timeout: 10_000,
      Headers: ['Authorization: Bearer abc'], Types: ['delivery', 'permanent_failure'], TLS_Verify: true, Subscribe_From: 'end',
      Min_Retry_Delay: 1000, Max_Retry_Delay: 300_000,
    });
    expect(r.config.eventWebhooks[1]!.options).toMatchObject({ Batch_Size: 50, Batch_Bytes: 65536, Max_Delay: 200, TLS_Verify: false, Subscribe_From: 'start', Max_Retry_Delay: 10_000 });
    const again = load(r.config.show());
    expect(again.ok && again.config.eventWebhooks.map((w) => w.options)).toEqual(r.config.eventWebhooks.map((w) => w.options));
    expect(load('Nodename = "n1"\n')).toMatchObject({ ok: true, config: { eventWebhooks: [] } });
  });

  it('refuses a missing or non-HTTP Url, a bad name, a header without a colon, a duplicate name and inverted retry bounds', () => {
    expect(msgs('Event_Webhook "a" { }\n')).toMatch(/Event_Webhook "a" needs Url/);
    expect(msgs('Event_Webhook "a" { Url = "ftp://x/" }\n')).toMatch(/Url/);
    expect(msgs('Event_Webhook "a/b" { Url = "http://x/" }\n')).toMatch(/the name must be/);
    expect(msgs('Event_Webhook "a" { Url = "http://x/" Headers = ( "Authorization Bearer" ) }\n')).toMatch(/Headers/);
    expect(msgs('Event_Webhook "a" { Url = "http://x/" }\nEvent_Webhook "a" { Url = "http://y/" }\n')).not.toBe('');
    expect(msgs('Event_Webhook "a" { Url = "http://x/" Min_Retry_Delay = 10s Max_Retry_Delay = 1s }\n')).toMatch(/Max_Retry_Delay is shorter/);
    expect(msgs('Event_Webhook "a" { Url = "http://x/" Batch_Szie = 5 }\n')).toMatch(/Batch_Size/);
  });
});
