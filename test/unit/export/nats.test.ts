// The JetStream exporter's mapping of a record to a message (subject, Nats-Msg-Id, expected
// stream), of a failed publish to a log level, and its Event_Nats stanza: defaults, checks, and
// the canonical text parsing back.
import { NatsError } from 'nats';
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/config/index.js';
import { connectFailure, natsHeaders, natsMessage, publishFailure, subjectToken } from '../../../src/export/nats.js';

const load = (text: string) => loadConfigText(text, 'test.conf', { cwd: '/srv/mta' });
const msgs = (text: string): string => {
  const r = load(text);
  return r.ok ? '' : r.errors.map((e) => e.message).join('\n');
};

describe('JetStream message of a record', () => {
  it('publishes to PREFIX.NODE.TYPE with the message id NODE:SEQ and the record JSON as payload', () => {
    const json = '{"record_id":"n1:42","type":"delivery","seq":42}';
    const m = natsMessage({ seq: 42, node: 'n1', type: 'delivery', json }, 'vipmta.events');
    expect(m.subject).toBe('vipmta.events.n1.delivery');
    expect(m.msgId).toBe('n1:42');
    expect(Buffer.from(m.data).toString('utf8')).toBe(json);
    // A dotted node name stays one subject token; the message id keeps the name as it is.
    const d = natsMessage({ seq: 7, node: 'mx1.example.net', type: 'dsn', json: '{}' }, 'p');
    expect(d).toMatchObject({ subject: 'p.mx1_example_net.dsn', msgId: 'mx1.example.net:7' });
    expect(subjectToken('a*b>c d')).toBe('a_b_c_d');
  });

  it('sets Nats-Msg-Id always, Nats-Expected-Stream only with Stream', () => {
    const m = natsMessage({ seq: 3, node: 'n2', type: 'reception', json: '{}' }, 'vipmta.events');
    expect(natsHeaders(m, null).get('Nats-Msg-Id')).toBe('n2:3');
    expect(natsHeaders(m, null).has('Nats-Expected-Stream')).toBe(false);
    expect(natsHeaders(m, 'VIPMTA').get('Nats-Expected-Stream')).toBe('VIPMTA');
  });

  it('takes no stream (503), a JetStream refusal and refused credentials for ERRORs, a timeout or a refused connection for a WARN', () => {
    const none = publishFailure(new NatsError('503', '503'), 'vipmta.events.n1.delivery', null);
    expect(none).toMatchObject({ ok: false, level: 'error', key: 'no stream' });
    expect(none.ok === false && none.reason).toMatch(/no JetStream stream captures subject vipmta\.events\.n1\.delivery/);
    const refused = Object.assign(new NatsError('expected stream does not match', '400'), { api_error: { code: 400, err_code: 10060, description: 'expected stream does not match' } });
    expect(publishFailure(refused, 's', 'X')).toMatchObject({ ok: false, level: 'error', key: 'jetstream 10060' });
    expect(publishFailure(new NatsError('TIMEOUT', 'TIMEOUT'), 's', null)).toMatchObject({ ok: false, level: 'warn', key: 'error TIMEOUT' });
    // A connection refused is the server away; refused credentials a misconfiguration.
    expect(connectFailure(new NatsError('CONNECTION_REFUSED', 'CONNECTION_REFUSED'), ['nats://127.0.0.1:4222'])).toMatchObject({ level: 'warn', key: 'connect CONNECTION_REFUSED' });
    expect(connectFailure(new NatsError('Authorization Violation', 'AUTHORIZATION_VIOLATION'), ['nats://127.0.0.1:4222'])).toMatchObject({ level: 'error' });
  });
});

describe('Event_Nats config', () => {
  it('takes several with their defaults, resolves Credentials, and shows them back', () => {
    const r = load(`Nodename = "n1"
Event_Nats "lake" { }
Event_Nats "audit" { Servers = ( "nats://10.0.0.1:4222" "tls://10.0.0.2:4222" ) Subject_Prefix = "mta.ev" Stream = "VIPMTA" Credentials = "etc/audit.creds" Types = ( "delivery" ) Batch_Size = 50 Max_Retry_Delay = 30s }
`);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.eventNats.map((w) => w.name)).toEqual(['lake', 'audit']);
    expect(r.config.eventNats[0]!.options).toEqual({
      Servers: ['nats://127.0.0.1:4222'], Subject_Prefix: 'vipmta.events', Batch_Size: 500, Batch_Bytes: 1024 * 1024, Max_Delay: 1000,
      Request_Timeout: 10_000, Types: [], Subscribe_From: 'end', Min_Retry_Delay: 1000, Max_Retry_Delay: 300_000,
    });
    expect(r.config.eventNats[1]!.options).toMatchObject({ Stream: 'VIPMTA', Credentials: '/srv/mta/etc/audit.creds', Subject_Prefix: 'mta.ev', Batch_Size: 50 });
    const again = load(r.config.show());
    expect(again.ok && again.config.eventNats.map((w) => w.options)).toEqual(r.config.eventNats.map((w) => w.options));
    expect(r.config.eventWebhooks).toEqual([]);
  });

  it('refuses no server, a non-NATS URL, a wildcard prefix, a bad name, Token with Credentials and inverted retry bounds', () => {
    expect(msgs('Event_Nats "a" { Servers = ( ) }\n')).toMatch(/needs at least one server/);
    expect(msgs('Event_Nats "a" { Servers = ( "http://x:4222" ) }\n')).toMatch(/Servers/);
    expect(msgs('Event_Nats "a" { Subject_Prefix = "vipmta.*" }\n')).toMatch(/Subject_Prefix/);
    expect(msgs('Event_Nats "a/b" { }\n')).toMatch(/the name must be/);
    expect(msgs('Event_Nats "a" { Token = "t" Credentials = "c.creds" }\n')).toMatch(/give one/);
    expect(msgs('Event_Nats "a" { Min_Retry_Delay = 10s Max_Retry_Delay = 1s }\n')).toMatch(/Max_Retry_Delay is shorter/);
    expect(msgs('Event_Nats "a" { Url = "http://x/" }\n')).not.toBe('');
  });
});
