// Value types of the config language: parse a written value into its normalized form (durations in
// ms, sizes in bytes, endpoints split) and format a normalized value back into canonical text for
// `config show`. Errors say what was expected; the caller adds the location. Pure functions.

import { formatHostPort, ipFamily, parseEndpoint, parseHostPort, type HostPort } from '../net/address.js';
import { parseCidr } from '../net/cidr.js';
import type { ScalarType, ValueType } from './schema.js';
import type { Scalar, Value } from './parser.js';

export type Parsed = { ok: true; value: unknown } | { ok: false; expected: string; where?: Scalar['where'] };

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, '': 1000 };
const BOOLEANS: Record<string, boolean> = { true: true, yes: true, on: true, false: false, no: false, off: false };

/** What a type looks like, for "expected ..." messages and the reference. */
export function describeType(t: ValueType): string {
  switch (t.kind) {
    case 'string': return t.patternText ?? 'a string';
    case 'integer':
      if (t.min !== undefined && t.max !== undefined) return `an integer from ${t.min} to ${t.max}`;
      if (t.min !== undefined) return `an integer >= ${t.min}`;
      return 'an integer';
    case 'boolean': return 'a boolean (true/false, yes/no, on/off)';
    case 'size': return 'a size (bytes, or with K, M, G, T: 64K, 10M)';
    case 'duration': return 'a duration (500ms, 30s, 5m, 2h, 1d; a bare number is seconds)';
    case 'enum': return `one of ${t.values.join(', ')}`;
    case 'ip': return 'an IP address';
    case 'endpoint': return 'an address "ip:port" ("[::1]:25" for IPv6)';
    case 'hostport': return 'a "host:port" ("[::1]:25" for IPv6; port defaults to 25)';
    case 'cidr': return 'a CIDR network ("192.0.2.0/24"; a bare address is a host)';
    case 'rate': return 'a rate "N/PERIOD" ("300/60s", "5/1s"; a bare period is seconds) or "unlimited"';
    case 'list': return `a list ( ... ) of ${describeType(t.of).replace(/^an? /, '')}s`;
    case 'dict': return 'a dictionary [ key = "value" ... ]';
  }
}

/** Short type name for the reference table. */
export function typeName(t: ValueType): string {
  switch (t.kind) {
    case 'integer': return t.min !== undefined && t.max !== undefined ? `integer ${t.min}..${t.max}` : 'integer';
    case 'enum': return t.values.join(' | ');
    case 'list': return `list of ${typeName(t.of)}`;
    case 'dict': return 'dictionary';
    case 'endpoint': return 'ip:port';
    case 'hostport': return 'host:port';
    case 'ip': return 'ip address';
    case 'rate': return 'N/PERIOD';
    case 'string': return t.patternText ? (t.patternText.startsWith('a host') ? 'host name' : t.patternText.startsWith('a node') ? 'node name' : 'string') : 'string';
    default: return t.kind;
  }
}

export function parseValue(t: ValueType, v: Value): Parsed {
  if (t.kind === 'list') {
    if (v.kind !== 'list') return { ok: false, expected: describeType(t) };
    const out: unknown[] = [];
    for (const item of v.items) {
      const p = parseScalar(t.of, item);
      if (!p.ok) return { ok: false, expected: `${describeType(t.of)} in the list, got "${item.text}"`, where: item.where };
      out.push(p.value);
    }
    return { ok: true, value: out };
  }
  if (t.kind === 'dict') {
    if (v.kind !== 'dict') return { ok: false, expected: describeType(t) };
    const out: Record<string, string> = {};
    for (const e of v.entries) {
      if (Object.hasOwn(out, e.key)) return { ok: false, expected: `unique keys in the dictionary, got "${e.key}" twice`, where: e.where };
      out[e.key] = e.value.text;
    }
    return { ok: true, value: out };
  }
  if (v.kind !== 'scalar') return { ok: false, expected: `${describeType(t)}, got a ${v.kind === 'list' ? 'list' : 'dictionary'}` };
  const p = parseScalar(t, v);
  return p.ok ? p : { ok: false, expected: `${describeType(t)}, got "${v.text}"` };
}

export function parseScalar(t: ScalarType, s: Scalar): Parsed {
  const text = s.text;
  const bad: Parsed = { ok: false, expected: describeType(t) };
  switch (t.kind) {
    case 'string':
      if (t.pattern && !t.pattern.test(text)) return bad;
      return { ok: true, value: text };
    case 'integer': {
      if (!/^-?\d+$/.test(text)) return bad;
      const n = Number(text);
      if (!Number.isSafeInteger(n) || (t.min !== undefined && n < t.min) || (t.max !== undefined && n > t.max)) return bad;
      return { ok: true, value: n };
    }
    case 'boolean': {
      const b = BOOLEANS[text.toLowerCase()];
      return b === undefined ? bad : { ok: true, value: b };
    }
    case 'size': {
      const m = /^(\d+)([kmgt]?)b?$/i.exec(text);
      if (!m) return bad;
      const n = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
      return Number.isSafeInteger(n) ? { ok: true, value: n } : bad;
    }
    case 'duration': {
      const m = /^(\d+)(ms|s|m|h|d)?$/i.exec(text);
      if (!m) return bad;
      const n = Number(m[1]) * DURATION_UNITS[(m[2] ?? '').toLowerCase()]!;
      return Number.isSafeInteger(n) ? { ok: true, value: n } : bad;
    }
    case 'enum': {
      const v = t.values.find((x) => x === text.toLowerCase());
      return v === undefined ? bad : { ok: true, value: v };
    }
    case 'ip':
      return ipFamily(text) !== 0 ? { ok: true, value: text } : bad;
    case 'endpoint': {
      const e = parseEndpoint(text);
      return e ? { ok: true, value: e } : bad;
    }
    case 'hostport': {
      const e = parseHostPort(text);
      return e ? { ok: true, value: e } : bad;
    }
    case 'cidr': {
      const c = parseCidr(text);
      return c ? { ok: true, value: c } : bad;
    }
    case 'rate': {
      if (text.toLowerCase() === 'unlimited') return { ok: true, value: null };
      const m = /^(\d+)\s*\/\s*(\d+)(ms|s|m|h|d)?$/i.exec(text);
      if (!m) return bad;
      const count = Number(m[1]);
      const periodMs = Number(m[2]) * DURATION_UNITS[(m[3] ?? '').toLowerCase()]!;
      if (!Number.isSafeInteger(count) || !Number.isSafeInteger(periodMs) || periodMs <= 0) return bad;
      return { ok: true, value: { count, periodMs } };
    }
  }
}

// --- canonical text ------------------------------------------------------------------------------

export function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
}

function formatUnit(n: number, units: [string, number][]): string {
  for (const [u, f] of units) if (n !== 0 && n % f === 0) return `${n / f}${u}`;
  return String(n);
}

function formatDuration(ms: number): string {
  return ms === 0 ? '0' : formatUnit(ms, [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]]);
}

export function formatValue(t: ValueType, v: unknown): string {
  switch (t.kind) {
    case 'string': case 'ip': case 'cidr': return quote(v as string);
    case 'integer': return String(v);
    case 'boolean': return v ? 'true' : 'false';
    case 'enum': return v as string;
    case 'size': return formatUnit(v as number, [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]]);
    case 'duration': return formatDuration(v as number);
    case 'rate': {
      const r = v as { count: number; periodMs: number } | null;
      return r === null ? 'unlimited' : quote(`${r.count}/${formatDuration(r.periodMs)}`);
    }
    case 'endpoint': case 'hostport': {
      const e = v as HostPort;
      return quote(formatHostPort(e.host, e.port));
    }
    case 'list': {
      const items = (v as unknown[]).map((x) => formatValue(t.of, x));
      return items.length ? `( ${items.join(' ')} )` : '( )';
    }
    case 'dict': {
      const entries = Object.entries(v as Record<string, string>).map(([k, x]) => `${/^[A-Za-z0-9_.@-]+$/.test(k) ? k : quote(k)} = ${quote(x)}`);
      return entries.length ? `[ ${entries.join(' ')} ]` : '[ ]';
    }
  }
}
