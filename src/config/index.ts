// Public face of the config language: load a file set (or text) into a validated, typed Config, or
// every error found, each with file:line:column. Loading is synchronous and has no side effects
// beyond reading files: check-config and reload use it before anything is bound or opened.

import path from 'node:path';
import { buildConfig } from './build.js';
import type { Config } from './types.js';
import { clusterNodeErrors } from './cluster-nodes.js';
import { duravipConfigErrors } from './duravip.js';
import { exposureWarnings } from './exposure.js';
import type { ConfigError } from './errors.js';
import { displayName, parseFile, parseText, type Node, type ParseContext, type StanzaNode } from './parser.js';
import { packageRoot } from '../paths.js';

export type { SourceLocation, ConfigError } from './errors.js';
export { formatConfigError, formatConfigWarning } from './errors.js';
export type {
  Config, GlobalOptions, ListenerOptions, EcclusterListenerOptions, SpoolOptions, ClusterOptions, TopologyOptions,
  BindingGroupOptions, BindingOptions, DomainOptions, ListenerConfig, ControlListenerConfig, HttpListenerConfig, TopologyConfig,
  ClusterConfig, ClusterNodeConfig, ClusterNodeOptions, DomainConfig, BindingConfig, BindingGroupConfig, LookupContext, InboundCidrConfig, EventWebhookOptions, EventNatsOptions,
  HttpInjectionConfig, HttpTokenConfig,
} from './types.js';
export type { FallbackOption, FallbackValue, OptionName, OptionValue, Scope, Endpoint, HostPort } from './schema.js';
export { OPTIONS, STANZAS, SCOPES } from './schema.js';
export { renderReference } from './docgen.js';

/**
 * A valid config comes with its warnings: what it exposes (an admin API off loopback, an open relay,
 * a console socket in a world-writable directory), each located like an error. check-config prints
 * them, start and reload log them at WARN; none stops the config from loading.
 */
export type LoadResult = { ok: true; config: Config; warnings: ConfigError[] } | { ok: false; errors: ConfigError[] };

/** Loads a config file and everything it includes. Paths in errors are relative to cwd when below it. */
export function loadConfigFile(file: string, opts?: { cwd?: string }): LoadResult {
  const cwd = path.resolve(opts?.cwd ?? process.cwd());
  const ctx: ParseContext = { errors: [], files: [], cwd, stack: [] };
  const abs = path.resolve(cwd, file);
  const nodes = parseFile(abs, null, ctx);
  return finish(nodes, ctx);
}

/** Loads config text; `name` is used in errors, includes resolve against baseDir ?? cwd. */
export function loadConfigText(text: string, name: string, opts?: { cwd?: string; baseDir?: string }): LoadResult {
  const cwd = path.resolve(opts?.cwd ?? process.cwd());
  const ctx: ParseContext = { errors: [], files: [name], cwd, stack: [] };
  const nodes = parseText(text, name, path.resolve(cwd, opts?.baseDir ?? '.'), ctx);
  return finish(nodes, ctx);
}

/** The shipped rule set (share/shaping-rules.conf), read after the operator's configuration. */
export const SHIPPED_RULES = path.join(packageRoot, 'share', 'shaping-rules.conf');

/**
 * Appends the shipped Shaping_Rule stanzas whose names the configuration does not use, unless it
 * says Shaping_Default_Rules = false. Read before the config is built so that its rules are
 * checked, located in their file and shown like the operator's own.
 */
function withShippedRules(nodes: Node[], ctx: ParseContext): Node[] {
  const off = nodes.some((n) => n.type === 'option' && n.keyword.toLowerCase() === 'shaping_default_rules' && n.value.kind === 'scalar' && /^(false|no|off)$/i.test(n.value.text));
  if (off) return nodes;
  const taken = new Set(nodes.filter((n): n is StanzaNode => n.type === 'stanza' && n.keyword.toLowerCase() === 'shaping_rule').map((n) => n.name?.text));
  const shipped = parseFile(SHIPPED_RULES, null, ctx);
  return [...nodes, ...shipped.filter((n) => n.type === 'stanza' && n.keyword.toLowerCase() === 'shaping_rule' && !taken.has(n.name?.text))];
}

function finish(parsed: ReturnType<typeof parseText>, ctx: ParseContext): LoadResult {
  const nodes = ctx.errors.length === 0 ? withShippedRules(parsed, ctx) : parsed;
  const warnings: ConfigError[] = [];
  const config = buildConfig(nodes, ctx.files, ctx.errors, ctx.cwd, warnings);
  // Checks that need the assembled config (fallback lookups, every stanza at once).
  if (config) ctx.errors.push(...duravipConfigErrors(config), ...clusterNodeErrors(config));
  if (config && ctx.errors.length === 0) {
    warnings.push(...exposureWarnings(config));
    return { ok: true, config, warnings: sortByPlace(warnings, ctx) };
  }
  // Syntax errors are found before meaning errors; the operator reads them best in file order
  // (the order files were read), then by position.
  return { ok: false, errors: sortByPlace(ctx.errors, ctx) };
}

function sortByPlace(list: ConfigError[], ctx: ParseContext): ConfigError[] {
  const order = new Map<string, number>(ctx.files.map((f, i) => [path.isAbsolute(f) ? displayName(f, ctx.cwd) : f, i]));
  const rank = (file: string): number => order.get(file) ?? -1;
  return list
    .map((e, i) => ({ e, i }))
    .sort((a, b) => rank(a.e.file) - rank(b.e.file) || a.e.line - b.e.line || a.e.column - b.e.column || a.i - b.i)
    .map((x) => x.e);
}

/** The built-in single-node configuration used when no file is given. */
export const DEFAULT_CONFIG_TEXT = `# vipmta built-in default: one node, loopback only.
ESMTP_Listener {
  Listen "127.0.0.1:2525" { }
}
Spool {
  Directory = "./var/spool"
}
Control_Listener {
  Listen "./var/run/vipmta.sock" { }
}
Http_Listener {
  Listen "127.0.0.1:2081" { }
}
`;

/** DEFAULT_CONFIG_TEXT parsed as "<built-in>"; it cannot fail unless the schema is broken. */
export function defaultConfig(opts?: { cwd?: string }): Config {
  const r = loadConfigText(DEFAULT_CONFIG_TEXT, '<built-in>', opts);
  if (!r.ok) throw new Error(`built-in config is invalid: ${r.errors.map((e) => e.message).join('; ')}`);
  return r.config;
}

/**
 * The control socket paths a config file names, read leniently: syntax is parsed (with includes)
 * but nothing else is validated. `vipmta console` uses this so that an operator can still reach
 * the running node (and run `config reload` to see the errors) while the file on disk is broken.
 */
export function controlSocketPaths(file: string, opts?: { cwd?: string }): string[] {
  const cwd = path.resolve(opts?.cwd ?? process.cwd());
  const ctx: ParseContext = { errors: [], files: [], cwd, stack: [] };
  const nodes = parseFile(path.resolve(cwd, file), null, ctx);
  const out: string[] = [];
  for (const n of nodes) {
    if (n.type !== 'stanza' || n.keyword.toLowerCase() !== 'control_listener') continue;
    for (const l of n.body) {
      if (l.type === 'stanza' && l.keyword.toLowerCase() === 'listen' && l.name !== undefined) out.push(path.resolve(cwd, l.name.text));
    }
  }
  return out;
}
