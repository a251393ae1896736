// What one entry of the schema's OPTIONS table says about an option: how its value is written (and
// what it normalizes to, values.ts), where it may appear, its default and its description. Pure
// types, re-exported by schema.ts.
import type { Scope } from './stanzas.js';

/** How a value is written and what it normalizes to (see values.ts). */
export type ValueType =
  | { readonly kind: 'string'; readonly pattern?: RegExp; readonly patternText?: string }
  | { readonly kind: 'integer'; readonly min?: number; readonly max?: number }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'size' }
  | { readonly kind: 'duration' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'ip' }
  | { readonly kind: 'endpoint' }
  | { readonly kind: 'hostport' }
  | { readonly kind: 'cidr' }
  /** "N/PERIOD" ("300/60s", "5/1s"; a bare period is seconds) or "unlimited": { count, periodMs } or null. */
  | { readonly kind: 'rate' }
  | { readonly kind: 'list'; readonly of: ScalarType }
  | { readonly kind: 'dict' };
export type ScalarType = Exclude<ValueType, { kind: 'list' } | { kind: 'dict' }>;

export interface OptionSpec {
  readonly type: ValueType;
  readonly scopes: readonly Scope[];
  /** The default, written in the config language itself ("50M", "( \"a\" )"), parsed like user input. */
  readonly default?: string;
  /** A default taken from another global option once that is resolved (Hostname, Nodename). */
  readonly defaultFrom?: 'os.hostname' | 'Hostname';
  /** What the reference shows as the default when it is computed at run time. */
  readonly defaultText?: string;
  readonly description: string;
}
