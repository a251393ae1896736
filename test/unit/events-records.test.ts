// The event records (src/events/): every type encodes to one compact JSON buffer and decodes back
// to the same record; the decoder refuses an unknown type, a newer version and every bad field with
// a code; a reception payload without its queue id decodes with the id its journal frame carries;
// and each type has its one-line text and the log line it had before the journals.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeEvent, encodeEvent, eventFrame } from '../../src/events/codec.js';
import { mmoveReceivedOf, mmoveReceivedPayload, receptionOf, receptionPayload, rejectionOf } from '../../src/events/build.js';
import { EVENT_FIELDS, EVENT_TYPES, type EventRecord, type EventType } from '../../src/events/records.js';
import { formatEvent, logLine } from '../../src/events/text.js';
import type { SpoolEnvelope } from '../../src/message/envelope.js';

const T = Date.UTC(2026, 11, 3, 16, 0, 0, 123);
const base = { v: 1 as const, time: T, node: 'n1' };

/** One example of every type, as docs/events.md shows them. */
export const EXAMPLES: Record<EventType, EventRecord> = {
  reception: {
    ...base, type: 'reception', id: '0A1B2C3D4E5F', msgid: '<m1@example.net>', from: 'a@example.net', rcpt: ['b@example.org', 'c@example.org'],
    size: 2301, listener: 'mx', client: '198.51.100.7', helo: 'client.example.net', tls: true, binding: 'default/b1',
  },
  delivery: {
    ...base, type: 'delivery', id: '0A1B2C3D4E5F', from: 'a@example.net', rcpt: 'b@example.org', binding: 'default/b1', source: '192.0.2.10',
    mx: 'mx.example.org', ip: '203.0.113.5', reply: '250 2.0.0 Ok: queued as 4F2', code: 250, enhanced: '2.0.0', origin: 'remote', attempt: 1, size: 2301,
  },
  transient_failure: {
    ...base, type: 'transient_failure', id: '0A1B2C3D4E5F', from: 'a@example.net', rcpt: 'b@example.org', binding: 'default/b1', source: '192.0.2.10',
    mx: 'mx.example.org', ip: '203.0.113.5', reply: '451 4.7.1 Greylisted, try again', code: 451, enhanced: '4.7.1', origin: 'remote', attempt: 1,
    size: 2301, class: 51, bounce_class: '51 Spam Block', next: T + 600_000,
  },
  permanent_failure: {
    ...base, type: 'permanent_failure', id: '0A1B2C3D4E5F', from: 'a@example.net', rcpt: 'b@example.org', binding: 'default/b1', source: '192.0.2.10',
    mx: 'mx.example.org', ip: '203.0.113.5', reply: '550 5.1.1 <b@example.org>: user unknown', code: 550, enhanced: '5.1.1', origin: 'remote',
    attempt: 2, size: 2301, class: 10, bounce_class: '10 Invalid Recipient',
  },
  expiry: {
    ...base, type: 'expiry', id: '0A1B2C3D4E5F', from: 'a@example.net', rcpt: 'b@example.org', binding: 'default/b1', source: null,
    reply: '421 4.4.1 connect to mx.example.org failed', attempt: 9, class: 24, bounce_class: '24 Timeout',
  },
  dsn: { ...base, type: 'dsn', id: '5E6F7A8B9C0D', for: '0A1B2C3D4E5F', to: 'a@example.net', rcpt: ['b@example.org'], size: 1822 },
  rejection: {
    ...base, type: 'rejection', listener: 'mx', client: '198.51.100.7', local: '192.0.2.1:25', stage: 'RCPT', from: 'a@example.net', rcpt: ['x@example.com'],
    code: 554, enhanced: '5.7.1', reply: '554 5.7.1 Relay access denied',
  },
  mmove_sent: {
    ...base, type: 'mmove_sent', id: '0A1B2C3D4E5F', from: 'a@example.net', rcpt: ['b@example.org'], binding: 'default/b2', peer: 'n2',
    reply: '250 2.0.0 Ok: queued as 7C1', duplicate: false, size: 2301,
  },
  mmove_received: {
    ...base, node: 'n2', type: 'mmove_received', id: '7C1D2E3F4A5B', from: 'a@example.net', rcpt: ['b@example.org'], size: 2301, client: '10.0.0.1',
    origin: 'n1', original: '0A1B2C3D4E5F', listener: 'cluster', hops: 1, binding: 'default/b2',
  },
  hold: { ...base, type: 'hold', id: '0A1B2C3D4E5F', binding: 'default/b1', rcpt: ['b@example.org'] },
  release: { ...base, type: 'release', id: '0A1B2C3D4E5F', binding: 'default/b1', rcpt: ['b@example.org'] },
  rebind: { ...base, type: 'rebind', id: '0A1B2C3D4E5F', binding: 'default/b3', previous: 'default/b1', rcpt: ['b@example.org'] },
  suspension: {
    ...base, type: 'suspension', state: 'start', action: 'suspend', binding: null, destination: 'example.org', until: T + 3_600_000,
    rule: 'greylist-storm', reason: '421 4.7.0 Too many connections', origin: 'n1',
  },
  address_taken: { ...base, type: 'address_taken', address: '192.0.2.10', ifname: 'eth0' },
  address_released: { ...base, type: 'address_released', address: '192.0.2.10' },
};

describe('event records', () => {
  it('has an example of every type the schema lists', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual([...EVENT_TYPES].sort());
  });

  it('documents every type and its fields in docs/events.md, with an example', () => {
    const doc = fs.readFileSync(new URL('../../docs/events.md', import.meta.url), 'utf8');
    for (const t of EVENT_TYPES) {
      expect(doc, t).toContain(`### ${t}\n`);
      expect(doc, t).toContain(encodeEvent(EXAMPLES[t]).toString());
      const row = doc.split('\n').find((l) => l.startsWith('| ') && l.includes(`\`${t}\``));
      expect(row, t).toBeDefined();
      // "as `delivery`" stands for the delivery row's fields.
      const own = row!.includes('as `delivery`') ? Object.keys(EVENT_FIELDS[t]).filter((f) => !(f in EVENT_FIELDS.delivery)) : Object.keys(EVENT_FIELDS[t]);
      for (const f of own) expect(row, `${t}.${f}`).toContain(`\`${f}`);
    }
  });

  it.each(EVENT_TYPES)('encodes %s to one compact JSON buffer and decodes it back', (t) => {
    const r = EXAMPLES[t];
    const data = encodeEvent(r);
    expect(data.toString()).not.toMatch(/\n|": /);
    expect(decodeEvent(data)).toEqual(r);
  });

  it.each(EVENT_TYPES)('refuses a %s record missing a required field, or with a field of the wrong kind', (t) => {
    const fields = EVENT_FIELDS[t];
    const required = Object.keys(fields).filter((f) => !fields[f]!.endsWith('?'));
    expect(required.length).toBeGreaterThan(0);
    for (const f of required) {
      const r: Record<string, unknown> = { ...EXAMPLES[t] };
      delete r[f];
      expect(() => decodeEvent(encodeEvent(r as unknown as EventRecord)), `${t} without ${f}`).toThrow(expect.objectContaining({ code: 'ERR_EVENT_INVALID' }));
      r[f] = { wrong: true };
      expect(() => decodeEvent(encodeEvent(r as unknown as EventRecord)), `${t} with ${f} an object`).toThrow(new RegExp(`${f} must be`));
    }
  });

  it('refuses an unknown type or a newer version as unknown, and what is not a record as invalid', () => {
    const unknown = expect.objectContaining({ code: 'ERR_EVENT_UNKNOWN' });
    const invalid = expect.objectContaining({ code: 'ERR_EVENT_INVALID' });
    expect(() => decodeEvent(Buffer.from('{"v":1,"type":"teleport","time":1,"node":"n1"}'))).toThrow(unknown);
    expect(() => decodeEvent(Buffer.from(JSON.stringify({ ...EXAMPLES.delivery, v: 2 })))).toThrow(unknown);
    expect(() => decodeEvent(Buffer.from('not json'))).toThrow(invalid);
    expect(() => decodeEvent(Buffer.from('[1]'))).toThrow(invalid);
    expect(() => decodeEvent(Buffer.from(JSON.stringify({ ...EXAMPLES.delivery, v: 0 })))).toThrow(invalid);
    expect(() => decodeEvent(Buffer.from(JSON.stringify({ ...EXAMPLES.delivery, time: 'now' })))).toThrow(invalid);
    expect(() => decodeEvent(Buffer.from(JSON.stringify({ ...EXAMPLES.delivery, origin: 'elsewhere' })))).toThrow(/origin must be one of/);
    expect(() => decodeEvent(Buffer.from(JSON.stringify({ ...EXAMPLES.suspension, state: 'maybe' })))).toThrow(invalid);
    expect(() => decodeEvent(Buffer.from(JSON.stringify({ ...EXAMPLES.reception, size: -1 })))).toThrow(invalid);
  });

  it('keeps fields it does not know (a newer writer may add optional ones)', () => {
    expect(decodeEvent(Buffer.from(JSON.stringify({ ...EXAMPLES.hold, by: 'admin' })))).toMatchObject({ by: 'admin' });
  });

  it('takes the queue id, time, node and seq from the journal frame when the payload has none', () => {
    const env: SpoolEnvelope = {
      v: 1, from: 'a@example.net', rcpt: ['b@example.org'], arrival: T - 5, client: '198.51.100.7', helo: 'client.example.net', user: null, tls: false,
      listener: 'mx', headers: { 'message-id': '<m1@example.net>' },
    };
    const payload = receptionPayload(env, 2301);
    expect(payload).not.toHaveProperty('id');
    const data = encodeEvent(payload);
    expect(() => decodeEvent(data)).toThrow(/time is missing/);
    const r = decodeEvent(data, { id: '0A1B2C3D4E5F', seq: 42, time: T, node: 'n1' });
    expect(r).toEqual({
      v: 1, type: 'reception', id: '0A1B2C3D4E5F', seq: 42, time: T, node: 'n1', from: 'a@example.net', rcpt: ['b@example.org'], size: 2301,
      listener: 'mx', client: '198.51.100.7', helo: 'client.example.net', tls: false, msgid: '<m1@example.net>',
    });
    // A payload's own id must agree with its frame's.
    expect(() => decodeEvent(encodeEvent(EXAMPLES.delivery), { id: 'OTHER' })).toThrow(expect.objectContaining({ code: 'ERR_EVENT_INVALID' }));
    expect(eventFrame(EXAMPLES.delivery).id).toBe('0A1B2C3D4E5F');
    expect(eventFrame(payload)).not.toHaveProperty('id');
  });

  it('builds the mmove_received payload the #mmove receiver would write with its commit', () => {
    const moved = { binding: 'b2', bindingGroup: 'default', originalId: '0A1B2C3D4E5F', originNode: 'n1', arrival: T, attempts: 2, nextAttempt: 0, hops: 1 };
    const env: SpoolEnvelope = { v: 1, from: 'a@x.test', rcpt: ['b@y.test'], arrival: T, client: '10.0.0.1', helo: '', user: null, tls: false, listener: 'cluster', headers: {}, moved };
    const payload = mmoveReceivedPayload(env, moved, 2301);
    expect(payload).not.toHaveProperty('id');
    expect(decodeEvent(encodeEvent(payload), { id: '7C1D2E3F4A5B', seq: 7, time: T, node: 'n2' })).toEqual({ ...EXAMPLES.mmove_received, seq: 7, rcpt: ['b@y.test'], from: 'a@x.test' });
  });

  it('builds the reception and #mmove records intake knows', () => {
    const m = { id: 'Q1', size: 10, arrival: T, from: 'a@x.test', rcpt: ['b@y.test'], headers: { 'message-id': '<i@x>' }, listener: 'mx', client: '198.51.100.7' };
    expect(receptionOf(m, 'g/b')).toEqual({ type: 'reception', id: 'Q1', from: 'a@x.test', rcpt: ['b@y.test'], size: 10, listener: 'mx', client: '198.51.100.7', binding: 'g/b', msgid: '<i@x>' });
    const moved = { ...m, headers: {}, moved: { binding: 'b', bindingGroup: 'g', originalId: 'P9', originNode: 'n1', arrival: T, attempts: 0, nextAttempt: 0, hops: 1 } };
    expect(mmoveReceivedOf(moved, moved.moved, 'g/b')).toMatchObject({ type: 'mmove_received', id: 'Q1', origin: 'n1', original: 'P9', hops: 1, binding: 'g/b' });
  });

  it('builds a rejection from the refused command: its verb, the recipient of a RCPT, every recipient at the end of DATA', () => {
    const s = { listener: 'mx', client: '198.51.100.7', local: '192.0.2.1:25', from: 'a@x.test', rcpt: [{ address: 'b@y.test' }, { address: 'c@y.test' }] };
    expect(rejectionOf({ ...s, command: Buffer.from('RCPT TO:<z@elsewhere.test> NOTIFY=NEVER') }, 554, '5.7.1 Relay access denied', T)).toEqual({
      type: 'rejection', time: T, listener: 'mx', client: '198.51.100.7', local: '192.0.2.1:25', stage: 'RCPT', code: 554, enhanced: '5.7.1',
      reply: '554 5.7.1 Relay access denied', rcpt: ['z@elsewhere.test'], from: 'a@x.test',
    });
    expect(rejectionOf({ ...s, command: Buffer.from('data') }, 552, '5.3.4 Message too big', T)).toMatchObject({ stage: 'DATA', rcpt: ['b@y.test', 'c@y.test'] });
    expect(rejectionOf({ ...s, command: Buffer.from('MAIL FROM:<q@x.test> SIZE=9') , from: null }, 555, '5.5.4 unknown parameter', T)).toMatchObject({ stage: 'MAIL', from: 'q@x.test' });
    expect(rejectionOf({ ...s, command: null, from: null, rcpt: [] }, 421, 'Too many', T)).toMatchObject({ stage: 'CONNECT', enhanced: null });
  });

  it('formats every type as one line starting with the time, the node and the type', () => {
    for (const t of EVENT_TYPES) {
      const line = formatEvent(EXAMPLES[t]);
      expect(line).not.toContain('\n');
      expect(line.startsWith(`2026-12-03T16:00:00.123Z ${EXAMPLES[t].node} ${t} `)).toBe(true);
      expect(line).not.toContain('undefined');
    }
    expect(formatEvent(EXAMPLES.delivery)).toBe(
      '2026-12-03T16:00:00.123Z n1 delivery 0A1B2C3D4E5F <a@example.net> -> <b@example.org> via 203.0.113.5 (mx.example.org) binding default/b1 source 192.0.2.10 attempt 1: 250 2.0.0 Ok: queued as 4F2',
    );
    expect(formatEvent(EXAMPLES.transient_failure)).toContain(' class 51 Spam Block next 2026-12-03T16:10:00.123Z: 451 4.7.1 Greylisted');
  });

  it('gives each record the log line it had before the journals', () => {
    expect(logLine(EXAMPLES.delivery)).toEqual({
      fields: { event: 'delivery', id: '0A1B2C3D4E5F', binding: 'default/b1', source: '192.0.2.10', rcpt: 'b@example.org', destination: '203.0.113.5', host: 'mx.example.org', reply: '250 2.0.0 Ok: queued as 4F2', origin: 'remote', attempt: 1 },
      msg: 'delivered',
    });
    expect(logLine(EXAMPLES.transient_failure)).toMatchObject({ fields: { event: 'transient_failure', class: 51, bounce_class: '51 Spam Block' }, msg: 'transient failure' });
    expect(logLine(EXAMPLES.expiry)).toMatchObject({ fields: { event: 'permanent_failure', expired: true, class: 24 }, msg: 'expired' });
    expect(logLine(EXAMPLES.reception)).toEqual({
      fields: { event: 'reception', id: '0A1B2C3D4E5F', from: 'a@example.net', rcpt: ['b@example.org', 'c@example.org'], size: 2301, listener: 'mx', client: '198.51.100.7', binding: 'default/b1' },
      msg: 'reception',
    });
    expect(logLine(EXAMPLES.dsn)).toEqual({ fields: { event: 'dsn', id: '5E6F7A8B9C0D', for: '0A1B2C3D4E5F', to: 'a@example.net', rcpt: ['b@example.org'] }, msg: 'DSN queued' });
    expect(logLine(EXAMPLES.mmove_sent)).toMatchObject({ fields: { event: 'mmove', node: 'n2', duplicate: false }, msg: 'moved' });
    expect(logLine({ ...EXAMPLES.permanent_failure, peer: 'n2' } as EventRecord)).toMatchObject({ fields: { event: 'permanent_failure', node: 'n2' }, msg: 'mmove refused' });
    expect(logLine(EXAMPLES.hold)).toEqual({ fields: { event: 'hold', id: '0A1B2C3D4E5F', binding: 'default/b1', rcpt: ['b@example.org'] }, msg: 'hold' });
    expect(logLine(EXAMPLES.rejection).fields).not.toHaveProperty('node');
  });
});
