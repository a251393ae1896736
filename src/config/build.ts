// Turns the syntax tree into a typed, validated Config, using only the schema: unknown keywords,
// misplaced options, bad values, duplicates and a few purely local cross-field rules all become
// located errors, collected together. Also the fallback lookup; the canonical `show()` text is show.ts.
// Pure apart from os.hostname() and path resolution; main thread.

import { hostname as osHostname } from 'node:os';
import path from 'node:path';
import type { ConfigError, SourceLocation } from './errors.js';
import { at } from './errors.js';
import { parseText, type Node, type Scalar, type StanzaNode } from './parser.js';
import {
  findOption, OPTION_NAMES, OPTIONS, optionsInScope, STANZAS,
  type Endpoint, type FallbackOption, type FallbackValue, type OptionName, type Scope, type ScopeOptions,
  type SetOptions, type StanzaSpec,
} from './schema.js';
import { parseValue } from './values.js';
import { isPasswordHash } from './password.js';
import { showConfig } from './show.js';
import { isOpenNetwork } from './exposure.js';
import { canonicalAddress, parseEndpoint } from '../net/address.js';
import { canonicalCidr, parseCidr } from '../net/cidr.js';

import type {
  HttpInjectionConfig, HttpInjectionOptions, HttpTokenConfig,
  BindingConfig, BindingGroupConfig, BindingGroupOptions, BindingOptions, ClusterConfig, ClusterNodeConfig, ClusterNodeOptions, ClusterOptions, Config, ControlListenerConfig, DomainConfig, DomainOptions, EcclusterListenerOptions, GlobalOptions, HttpListenerConfig, InboundCidrConfig, InboundCidrOptions, ListenerConfig, ListenerOptions, EventNatsConfig, EventNatsOptions, EventWebhookConfig, EventWebhookOptions, LogAggregatorConfig, LogAggregatorOptions, LookupContext, ShapingRuleConfig, ShapingRuleOptions, SpoolOptions, TopologyConfig, TopologyOptions,
} from './types.js';

// --- defaults, parsed from the schema's own text ------------------------------------------------

const defaultCache = new Map<OptionName, unknown>();
/** A schema default, parsed exactly like user input; throws if the schema itself is wrong. */
export function schemaDefault(name: OptionName): unknown {
  if (defaultCache.has(name)) return defaultCache.get(name);
  const spec = OPTIONS[name] as { default?: string; type: (typeof OPTIONS)[OptionName]['type'] };
  let value: unknown;
  if (spec.default !== undefined) {
    const errors: ConfigError[] = [];
    const nodes = parseText(`${name} = ${spec.default}`, '<schema>', '.', { errors, files: [], cwd: '.', stack: [] });
    const node = nodes[0];
    const p = node?.type === 'option' ? parseValue(spec.type, node.value) : null;
    if (errors.length || !p || !p.ok) throw new Error(`schema default of ${name} does not parse: ${spec.default}`);
    value = p.value;
  }
  defaultCache.set(name, value);
  return value;
}

// --- messages --------------------------------------------------------------------------------------

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The nearest candidate by edit distance, only when close enough to be a plausible typo. */
export function suggest(word: string, ...candidateSets: string[][]): string | undefined {
  const w = word.toLowerCase();
  const limit = w.length <= 4 ? 1 : w.length <= 8 ? 2 : 3;
  for (const set of candidateSets) {
    let best: string | undefined;
    let bestD = limit + 1;
    for (const c of set) {
      const d = levenshtein(w, c.toLowerCase());
      if (d < bestD) { best = c; bestD = d; }
    }
    if (best !== undefined) return best;
  }
  return undefined;
}
const didYouMean = (s: string | undefined): string => (s ? `; did you mean "${s}"?` : '');
const locText = (w: SourceLocation, from: SourceLocation): string => (w.file === from.file ? `${w.line}:${w.column}` : `${w.file}:${w.line}:${w.column}`);

// --- walking the tree ---------------------------------------------------------------------------

interface SetValue { value: unknown; where: SourceLocation }
interface Collected { values: Map<OptionName, SetValue>; children: Child[] }
interface Child { spec: StanzaSpec; node: StanzaNode; name: string }
interface Frame { scope: Scope; keyword: string; /** "in Binding \"b\"", "at global scope". */ desc: string }

const describeStanza = (keyword: string, name?: string): string => (name === undefined ? keyword : `${keyword} "${name}"`);

class Builder {
  readonly errors: ConfigError[];
  constructor(errors: ConfigError[], private readonly cwd: string) { this.errors = errors; }
  private error(where: SourceLocation, message: string): void { this.errors.push(at(where, message)); }

  /** Validates one block's options against its scope and sorts out its child stanzas. */
  collect(frame: Frame, nodes: Node[]): Collected {
    const values = new Map<OptionName, SetValue>();
    const children: Child[] = [];
    const seen = new Map<string, SourceLocation>();
    const inScope = optionsInScope(frame.scope);
    for (const node of nodes) {
      if (node.type === 'option') {
        const name = findOption(node.keyword);
        if (!name) {
          const stanza = STANZAS.find((s) => s.keyword.toLowerCase() === node.keyword.toLowerCase());
          const hint = stanza ? `; ${stanza.keyword} is a stanza: ${stanza.keyword}${stanza.name === 'none' ? '' : ' "name"'} { ... }` : didYouMean(suggest(node.keyword, inScope, OPTION_NAMES));
          this.error(node.where, `unknown option "${node.keyword}" ${frame.desc}${hint}`);
          continue;
        }
        if (!inScope.includes(name)) {
          this.error(node.where, `option "${name}" is not allowed ${frame.desc}; it belongs in ${scopeList(OPTIONS[name].scopes)}`);
          continue;
        }
        const prev = values.get(name);
        if (prev) {
          this.error(node.where, `duplicate option "${name}" ${frame.desc} (first set at ${locText(prev.where, node.where)})`);
          continue;
        }
        const p = parseValue(OPTIONS[name].type, node.value);
        if (!p.ok) {
          this.error(p.where ?? node.value.where, `invalid value for "${name}": expected ${p.expected}`);
          continue;
        }
        values.set(name, { value: p.value, where: node.where });
        continue;
      }
      const lower = node.keyword.toLowerCase();
      const spec = STANZAS.find((s) => s.keyword.toLowerCase() === lower && s.parents.includes(frame.keyword));
      if (!spec) {
        const any = STANZAS.filter((s) => s.keyword.toLowerCase() === lower);
        if (any.length) {
          this.error(node.where, `stanza "${any[0]!.keyword}" is not allowed ${frame.desc}; it belongs in ${[...new Set(any.flatMap((s) => s.parents))].map((p) => (p === 'global' ? 'the top level' : p)).join(', ')}`);
        } else {
          const here = STANZAS.filter((s) => s.parents.includes(frame.keyword)).map((s) => s.keyword);
          const opt = findOption(node.keyword);
          const hint = opt ? `; ${opt} is an option: ${opt} = value` : didYouMean(suggest(node.keyword, here, STANZAS.map((s) => s.keyword)));
          this.error(node.where, `unknown stanza "${node.keyword}" ${frame.desc}${hint}`);
        }
        continue;
      }
      const name = this.checkName(spec, node);
      if (name === null) continue;
      const key = spec.single ? spec.keyword : `${spec.keyword}\0${name}`;
      const first = seen.get(key);
      if (first && spec.merge) {
        // One stanza written in several places (typically one Listen per included file): read as one
        // block, so an option set in two of them is still reported as a duplicate with both places.
        const c = children.find((x) => x.spec === spec)!;
        c.node = { ...c.node, body: [...c.node.body, ...node.body] };
        continue;
      }
      if (first) {
        this.error(node.where, `duplicate ${describeStanza(spec.keyword, spec.single ? undefined : name)} ${frame.desc} (first at ${locText(first, node.where)})`);
        continue;
      }
      seen.set(key, node.where);
      children.push({ spec, node, name });
    }
    return { values, children };
  }

  /** The stanza's name if it has the right form ("" for unnamed stanzas), else null (reported). */
  private checkName(spec: StanzaSpec, node: StanzaNode): string | null {
    const n: Scalar | undefined = node.name;
    if (spec.name === 'none') {
      if (n) { this.error(n.where, `${spec.keyword} takes no name: ${spec.keyword} { ... }`); return null; }
      return '';
    }
    if (!n) { this.error(node.where, `${spec.keyword} needs a name: ${spec.keyword} "${nameExample(spec)}" { ... }`); return null; }
    const ok = spec.name === 'endpoint' ? parseEndpoint(n.text) !== null
      : spec.name === 'cidr' ? parseCidr(n.text) !== null && n.text.includes('/')
      : spec.name === 'path' ? n.text.length > 0 && !n.text.includes('\0')
      : /^\S+$/.test(n.text);
    if (!ok) {
      const want = spec.name === 'endpoint' ? 'an address "ip:port" ("[::1]:25" for IPv6)' : spec.name === 'cidr' ? 'a CIDR network "addr/len"' : spec.name === 'path' ? 'a socket path' : 'a name without spaces';
      this.error(n.where, `${spec.keyword} name must be ${want}, got "${n.text}"`);
      return null;
    }
    return n.text;
  }

  /** Defaults under stanza values (later layers win); `inherit` supplies defaultFrom values. */
  resolve(scope: Scope, layers: Map<OptionName, SetValue>[], inherit: (n: OptionName) => unknown): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const name of optionsInScope(scope)) {
      let v: unknown = schemaDefault(name);
      if (v === undefined && (OPTIONS[name] as { defaultFrom?: string }).defaultFrom) v = inherit(name);
      for (const l of layers) { const s = l.get(name); if (s) v = s.value; }
      if (v !== undefined) out[name] = v;
    }
    return out;
  }

  setOnly(values: Map<OptionName, SetValue>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, s] of values) out[name] = s.value;
    return out;
  }

  resolvePath(p: string): string { return path.resolve(this.cwd, p); }
}

function nameExample(spec: StanzaSpec): string {
  return spec.name === 'endpoint' ? '127.0.0.1:25' : spec.name === 'cidr' ? '192.0.2.0/24' : spec.name === 'path' ? '/run/vipmta.sock' : 'name';
}
function scopeList(scopes: readonly Scope[]): string {
  const names: Record<Scope, string> = {
    global: 'the top level', listener: 'ESMTP_Listener/Listen', eccluster_listener: 'ECCluster_Listener/Listen',
    control_listener: 'Control_Listener/Listen', http_listener: 'Http_Listener/Listen', spool: 'Spool', cluster: 'Cluster', topology: 'Topology', inbound_cidr: 'ESMTP_Listener/Inbound_Cidr', cluster_node: 'Cluster/Node', shaping_rule: 'Shaping_Rule',
    binding_group: 'Binding_Group', binding: 'Binding', domain: 'Domain', log_aggregator: 'Log_Aggregator', event_webhook: 'Event_Webhook', event_nats: 'Event_Nats',
    http_injection: 'Http_Injection', http_token: 'Http_Injection/Token',
  };
  return scopes.map((s) => names[s]).join(', ');
}
const frameOf = (spec: StanzaSpec, name: string): Frame => ({ scope: spec.scope, keyword: spec.keyword, desc: `in ${describeStanza(spec.keyword, spec.name === 'none' ? undefined : name)}` });

// --- the whole config ---------------------------------------------------------------------------

export function buildConfig(nodes: Node[], files: string[], errors: ConfigError[], cwd: string, warnings: ConfigError[] = []): Config | null {
  const b = new Builder(errors, cwd);
  const top = b.collect({ scope: 'global', keyword: 'global', desc: 'at global scope' }, nodes);
  const child = (c: Collected, keyword: string): Child | undefined => c.children.find((x) => x.spec.keyword === keyword);
  const children = (c: Collected, keyword: string): Child[] => c.children.filter((x) => x.spec.keyword === keyword);

  // Cluster first: its Nodename wins over the global one.
  const clusterChild = child(top, 'Cluster');
  const clusterC = clusterChild ? b.collect(frameOf(clusterChild.spec, ''), clusterChild.node.body) : null;
  const gNode = top.values.get('Nodename');
  const cNode = clusterC?.values.get('Nodename');
  if (gNode && cNode && gNode.value !== cNode.value) {
    b.errors.push(at(cNode.where, `Nodename "${String(cNode.value)}" in Cluster differs from the global Nodename "${String(gNode.value)}" (set at ${locText(gNode.where, cNode.where)}); set it once`));
  }
  const hostname = (top.values.get('Hostname')?.value as string | undefined) ?? osHostname();
  const nodename = (cNode?.value ?? gNode?.value ?? hostname) as string;
  const fromGlobal = (n: OptionName): unknown => (n === 'Nodename' ? nodename : hostname);
  const global = b.resolve('global', [top.values], fromGlobal) as GlobalOptions;
  global.Nodename = nodename;

  // Spool
  const spoolChild = child(top, 'Spool');
  const spoolC = spoolChild ? b.collect(frameOf(spoolChild.spec, ''), spoolChild.node.body) : null;
  const spool = b.resolve('spool', spoolC ? [spoolC.values] : [], fromGlobal) as SpoolOptions;
  spool.Directory = b.resolvePath(spool.Directory);
  if (spoolC?.values.get('Directory')?.value === '') b.errors.push(at(spoolC.values.get('Directory')!.where, 'invalid value for "Directory": expected a non-empty path'));

  // Bindings, groups, domains: collected before listeners so listeners can refer to them.
  const groups = new Map<string, BindingGroupConfig & { bindings: Map<string, BindingConfig>; domains: Map<string, DomainConfig> }>();
  const bindings = new Map<string, BindingConfig>();
  const domains = new Map<string, DomainConfig>();
  const bindingWhere = new Map<string, Map<OptionName, SetValue>>();
  const domainsOf = (c: Collected): Map<string, DomainConfig> => {
    const m = new Map<string, DomainConfig>();
    for (const d of children(c, 'Domain')) {
      const dc = b.collect(frameOf(d.spec, d.name), d.node.body);
      m.set(d.name, { name: d.name, where: d.node.where, options: b.setOnly(dc.values) as DomainOptions });
    }
    return m;
  };
  const getGroup = (name: string, where: SourceLocation | null, options: BindingGroupOptions = {}) => {
    let g = groups.get(name);
    if (!g) { g = { name, where, options, bindings: new Map(), domains: new Map() }; groups.set(name, g); }
    return g;
  };
  const addBinding = (bc: Child, group: string): void => {
    const c = b.collect(frameOf(bc.spec, bc.name), bc.node.body);
    const prev = bindings.get(bc.name);
    if (prev) {
      b.errors.push(at(bc.node.where, `duplicate Binding "${bc.name}" (first at ${locText(prev.where!, bc.node.where)}); binding names are unique across groups`));
      return;
    }
    if (bc.name.startsWith('#')) {
      b.errors.push(at(bc.node.where, `Binding "${bc.name}": names starting with "#" are reserved (#mmove is the cluster's message-move binding)`));
      return;
    }
    if (bc.name === 'default' && group !== 'default') {
      b.errors.push(at(bc.node.where, `Binding "default" belongs to Binding_Group "default", not "${group}"`));
      return;
    }
    const binding: BindingConfig = { name: bc.name, group, where: bc.node.where, options: b.setOnly(c.values) as BindingOptions, domains: domainsOf(c) };
    if (binding.options.Enable_Duravip === true && binding.options.Bind_Address === undefined) {
      b.errors.push(at(c.values.get('Enable_Duravip')!.where, `Binding "${bc.name}" sets Enable_Duravip but has no Bind_Address to fail over`));
    }
    bindings.set(bc.name, binding);
    bindingWhere.set(bc.name, c.values);
    getGroup(group, null).bindings.set(bc.name, binding);
  };
  // Document order, so a duplicate is reported at the later stanza.
  for (const gc of top.children) {
    if (gc.spec.keyword === 'Binding') { addBinding(gc, 'default'); continue; }
    if (gc.spec.keyword !== 'Binding_Group') continue;
    const c = b.collect(frameOf(gc.spec, gc.name), gc.node.body);
    const g = getGroup(gc.name, gc.node.where);
    g.where = gc.node.where;
    g.options = b.setOnly(c.values) as BindingGroupOptions;
    g.domains = domainsOf(c);
    for (const bc of children(c, 'Binding')) addBinding(bc, gc.name);
  }
  if (!bindings.has('default')) {
    const def: BindingConfig = { name: 'default', group: 'default', where: null, options: {}, domains: new Map() };
    bindings.set('default', def);
    getGroup('default', null).bindings.set('default', def);
  }
  for (const [k, v] of domainsOf(top)) domains.set(k, v);

  // Listeners
  const esmtpListeners: ListenerConfig[] = [];
  const inboundCidrs: InboundCidrConfig[] = [];
  const esmtp = child(top, 'ESMTP_Listener');
  if (esmtp) {
    const outer = b.collect(frameOf(esmtp.spec, ''), esmtp.node.body);
    inboundCidrs.push(...inboundOf(b, children(outer, 'Inbound_Cidr')));
    for (const l of children(outer, 'Listen')) {
      const inner = b.collect(frameOf(l.spec, l.name), l.node.body);
      const options = b.resolve('listener', [outer.values, inner.values], fromGlobal) as ListenerOptions;
      const set = (n: OptionName): SetValue | undefined => inner.values.get(n) ?? outer.values.get(n);
      const what = `Listen "${l.name}"`;
      const follow = set('Duravip_Follow');
      if (options.Enable_Duravip && follow) {
        b.errors.push(at(follow.where, `${what} sets both Enable_Duravip and Duravip_Follow; a listener either is a DuraVIP or follows a binding's`));
      }
      if ((options.TLS_Certificate === undefined) !== (options.TLS_Key === undefined)) {
        const w = set('TLS_Certificate') ?? set('TLS_Key');
        b.errors.push(at(w!.where, `${what} needs both TLS_Certificate and TLS_Key`));
      }
      const users = set('Auth_Users');
      if (users) {
        // AUTH PLAIN/LOGIN is only offered over TLS (RFC 4954 4), so users without TLS could never log in.
        if (options.TLS_Certificate === undefined) b.errors.push(at(users.where, `${what} sets Auth_Users but no TLS_Certificate/TLS_Key; AUTH is only offered after STARTTLS`));
        for (const [user, hash] of Object.entries(users.value as Record<string, string>)) {
          if (!isPasswordHash(hash)) b.errors.push(at(users.where, `Auth_Users entry "${user}" in ${what} is not a scrypt password hash; make one with "vipmta hash-password"`));
        }
      }
      for (const n of ['Binding', 'Duravip_Follow'] as const) {
        const s = set(n);
        if (s && !bindings.has(s.value as string)) b.errors.push(at(s.where, `${n} "${String(s.value)}" in ${what} names no Binding${didYouMean(suggest(s.value as string, [...bindings.keys()]))}`));
      }
      const relay = set('Relay_Hosts');
      const open = relay ? (relay.value as string[]).filter(isOpenNetwork) : [];
      if (open.length) warnings.push(at(relay!.where, `Relay_Hosts of ${what} contains ${open.map((c) => `"${c}"`).join(' ')}: an open relay, anyone may send mail anywhere through it`));
      const g = set('Binding_Group');
      if (g && !groups.has(g.value as string)) b.errors.push(at(g.where, `Binding_Group "${String(g.value)}" in ${what} names no Binding_Group${didYouMean(suggest(g.value as string, [...groups.keys()]))}`));
      esmtpListeners.push({ ...endpoint(l.name), name: l.name, options, where: l.node.where });
    }
  }
  const ecclusterListeners: ListenerConfig<EcclusterListenerOptions>[] = [];
  const ecc = child(top, 'ECCluster_Listener');
  if (ecc) {
    const outer = b.collect(frameOf(ecc.spec, ''), ecc.node.body);
    for (const l of children(outer, 'Listen')) {
      const inner = b.collect(frameOf(l.spec, l.name), l.node.body);
      const options = b.resolve('eccluster_listener', [outer.values, inner.values], fromGlobal) as EcclusterListenerOptions;
      ecclusterListeners.push({ ...endpoint(l.name), name: l.name, options, where: l.node.where });
    }
  }
  const controlListeners: ControlListenerConfig[] = [];
  const ctl = child(top, 'Control_Listener');
  if (ctl) {
    const outer = b.collect(frameOf(ctl.spec, ''), ctl.node.body);
    for (const l of children(outer, 'Listen')) {
      b.collect(frameOf(l.spec, l.name), l.node.body);
      controlListeners.push({ path: b.resolvePath(l.name), where: l.node.where });
    }
  }
  const httpListeners: HttpListenerConfig[] = [];
  const http = child(top, 'Http_Listener');
  if (http) {
    const outer = b.collect(frameOf(http.spec, ''), http.node.body);
    for (const l of children(outer, 'Listen')) {
      b.collect(frameOf(l.spec, l.name), l.node.body);
      httpListeners.push({ ...endpoint(l.name), name: l.name, where: l.node.where });
    }
  }

  // Cluster
  let cluster: ClusterConfig | null = null;
  if (clusterChild && clusterC) {
    const options = b.resolve('cluster', [clusterC.values], fromGlobal) as ClusterOptions;
    const token = clusterC.values.get('Corosync_Token');
    if (token && ((token.value as number) < 200 || (token.value as number) > 60_000)) b.errors.push(at(token.where, `invalid value for "Corosync_Token": expected 200ms to 60s, got ${String(token.value)}ms`));
    options.Nodename = nodename;
    const topologies: TopologyConfig[] = [];
    for (const t of children(clusterC, 'Topology')) {
      const tc = b.collect(frameOf(t.spec, t.name), t.node.body);
      const topts = b.resolve('topology', [tc.values], fromGlobal) as TopologyOptions;
      const cidr = parseCidr(t.name)!;
      if (topts.Interface === undefined) b.errors.push(at(t.node.where, `Topology "${t.name}" needs Interface = "name"`));
      const mask = tc.values.get('Cidrmask');
      if (mask && !cidr.includes(':') && (mask.value as number) > 32) b.errors.push(at(mask.where, `invalid value for "Cidrmask": expected 0 to 32 for an IPv4 Topology, got ${String(mask.value)}`));
      topologies.push({ cidr, options: topts, where: t.node.where });
    }
    const nodes: ClusterNodeConfig[] = [];
    for (const n of children(clusterC, 'Node')) {
      const nc = b.collect(frameOf(n.spec, n.name), n.node.body);
      const nopts = b.resolve('cluster_node', [nc.values], fromGlobal) as ClusterNodeOptions;
      const where = n.node.where;
      nodes.push({ name: n.name, options: nopts, where, addressWhere: nc.values.get('Cluster_Address')?.where ?? where, idWhere: nc.values.get('Node_Id')?.where ?? where });
    }
    cluster = { options, topologies, nodes, where: clusterChild.node.where };
  }

  const shapingRules: ShapingRuleConfig[] = [];
  for (const r of children(top, 'Shaping_Rule')) {
    const rc = b.collect(frameOf(r.spec, r.name), r.node.body);
    const ro = b.resolve('shaping_rule', [rc.values], fromGlobal) as ShapingRuleOptions;
    let match: RegExp | null = null;
    const m = rc.values.get('Match');
    if (m) {
      try {
        match = new RegExp(m.value as string, 'i');
      } catch (e) {
        b.errors.push(at(m.where, `invalid value for "Match": expected a regular expression (${(e as Error).message.replace(/^Invalid regular expression: /, '')})`));
      }
    }
    const need = (what: string): void => { b.errors.push(at(r.node.where, `Shaping_Rule "${r.name}" ${what}`)); };
    if (!m && ro.Classes.length === 0) need('needs Match = "regex" or Classes = ( ... ): it would match every failure');
    if (ro.Action === undefined) need('needs Action = suspend | throttle | reduce_connections | bounce');
    if (ro.Action === 'throttle' && ro.Rate === null) need('has Action = throttle but no Rate = "N/PERIOD"');
    if (ro.Action === 'reduce_connections' && ro.Connections === undefined) need('has Action = reduce_connections but no Connections = N');
    shapingRules.push({ name: r.name, options: ro, match, where: r.node.where });
  }

  let logAggregator: LogAggregatorConfig | null = null;
  const laChild = child(top, 'Log_Aggregator');
  if (laChild) {
    const lc = b.collect(frameOf(laChild.spec, ''), laChild.node.body);
    const options = b.resolve('log_aggregator', [lc.values], fromGlobal) as LogAggregatorOptions;
    const dir = lc.values.get('Directory');
    if (dir === undefined || dir.value === '') b.errors.push(at(dir?.where ?? laChild.node.where, 'Log_Aggregator needs Directory = "path" (where the aggregated files go)'));
    options.Directory = b.resolvePath(options.Directory);
    logAggregator = { options, where: laChild.node.where };
  }

  const eventWebhooks: EventWebhookConfig[] = [];
  for (const w of children(top, 'Event_Webhook')) {
    const wc = b.collect(frameOf(w.spec, w.name), w.node.body);
    const options = b.resolve('event_webhook', [wc.values], fromGlobal) as EventWebhookOptions;
    // The journal subscriber is "webhook-NAME": the journal's subscriber-name alphabet, 64 at most.
    if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,55}$/.test(w.name)) b.errors.push(at(w.node.where, `Event_Webhook "${w.name}": the name must be letters, digits, ".", "_", "-" (at most 56; its journal subscriber is webhook-NAME)`));
    if (options.Url === undefined) b.errors.push(at(w.node.where, `Event_Webhook "${w.name}" needs Url = "https://..."`));
    if (options.Max_Retry_Delay < options.Min_Retry_Delay) b.errors.push(at(wc.values.get('Max_Retry_Delay')?.where ?? w.node.where, `Event_Webhook "${w.name}": Max_Retry_Delay is shorter than Min_Retry_Delay`));
    eventWebhooks.push({ name: w.name, options: options as EventWebhookConfig['options'], where: w.node.where });
  }

  const eventNats: EventNatsConfig[] = [];
  for (const w of children(top, 'Event_Nats')) {
    const wc = b.collect(frameOf(w.spec, w.name), w.node.body);
    const options = b.resolve('event_nats', [wc.values], fromGlobal) as EventNatsOptions;
    // The journal subscriber is "nats-NAME": the journal's subscriber-name alphabet, 64 at most.
    if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,58}$/.test(w.name)) b.errors.push(at(w.node.where, `Event_Nats "${w.name}": the name must be letters, digits, ".", "_", "-" (at most 59; its journal subscriber is nats-NAME)`));
    if (options.Servers.length === 0) b.errors.push(at(wc.values.get('Servers')?.where ?? w.node.where, `Event_Nats "${w.name}" needs at least one server in Servers`));
    if (options.Max_Retry_Delay < options.Min_Retry_Delay) b.errors.push(at(wc.values.get('Max_Retry_Delay')?.where ?? w.node.where, `Event_Nats "${w.name}": Max_Retry_Delay is shorter than Min_Retry_Delay`));
    if (options.Token !== undefined && options.Credentials !== undefined) b.errors.push(at(w.node.where, `Event_Nats "${w.name}": Token and Credentials are two ways to authenticate; give one`));
    if (options.Credentials !== undefined) options.Credentials = b.resolvePath(options.Credentials);
    eventNats.push({ name: w.name, options, where: w.node.where });
  }

  // Http_Injection (issue 17): off without the stanza; tokens hold hashes only.
  let httpInjection: HttpInjectionConfig | null = null;
  const hiChild = child(top, 'Http_Injection');
  if (hiChild) {
    const hc = b.collect(frameOf(hiChild.spec, ''), hiChild.node.body);
    const options = b.resolve('http_injection', [hc.values], fromGlobal) as HttpInjectionOptions;
    if ((options.TLS_Certificate === undefined) !== (options.TLS_Key === undefined)) b.errors.push(at(hiChild.node.where, 'Http_Injection: TLS_Certificate and TLS_Key go together'));
    for (const n of ['TLS_Certificate', 'TLS_Key'] as const) if (options[n] !== undefined) options[n] = b.resolvePath(options[n]);
    const listens: HttpInjectionConfig['listens'] = [];
    for (const l of children(hc, 'Listen')) {
      b.collect(frameOf(l.spec, l.name), l.node.body);
      listens.push({ ...endpoint(l.name), name: l.name, listener: `http:${l.name}`, where: l.node.where });
    }
    if (listens.length === 0) b.errors.push(at(hiChild.node.where, 'Http_Injection needs a Listen "ip:port" { }'));
    const tokens: HttpTokenConfig[] = [];
    for (const t of children(hc, 'Token')) {
      const tc = b.collect(frameOf(t.spec, t.name), t.node.body);
      const to = b.resolve('http_token', [tc.values], fromGlobal) as ScopeOptions<'http_token'>;
      if (to.Secret === undefined || !isPasswordHash(to.Secret)) b.errors.push(at(tc.values.get('Secret')?.where ?? t.node.where, `Token "${t.name}" of Http_Injection needs Secret = a scrypt hash; make one with "vipmta hash-password"`));
      for (const name of to.Bindings) {
        if (name !== '*' && !bindings.has(name) && !groups.has(name)) b.errors.push(at(tc.values.get('Bindings')!.where, `Bindings of Token "${t.name}" names "${name}", no Binding or Binding_Group`));
      }
      tokens.push({ name: t.name, secret: to.Secret ?? '', bindings: [...to.Bindings], where: t.node.where });
    }
    if (tokens.length === 0) b.errors.push(at(hiChild.node.where, 'Http_Injection needs at least one Token "name" { Secret = "..." }: every request is authenticated'));
    httpInjection = { listens, options, tokens, where: hiChild.node.where };
  }

  if (errors.length) return null;
  const config: Config = {
    files, global, spool, esmtpListeners, inboundCidrs, ecclusterListeners, controlListeners, httpListeners,
    bindingGroups: groups, bindings, domains, cluster, shapingRules, logAggregator, eventWebhooks, eventNats, httpInjection,
    lookup: (option, ctx) => lookup(config, option, ctx) as never,
    explain: (option, ctx) => explain(config, option, ctx) as never,
    show: () => showConfig(config),
  };
  return config;
}

function endpoint(name: string): Endpoint { return parseEndpoint(name)!; }

/** ESMTP_Listener's Inbound_Cidr stanzas: a network written twice (in any spelling) or with host
 *  bits set is an error, as is one without its limit. */
function inboundOf(b: Builder, stanzas: Child[]): InboundCidrConfig[] {
  const out: InboundCidrConfig[] = [];
  const first = new Map<string, SourceLocation>();
  for (const s of stanzas) {
    const c = b.collect(frameOf(s.spec, s.name), s.node.body);
    const where = s.node.name!.where;
    const cidr = canonicalCidr(s.name)!;
    if (canonicalAddress(s.name.slice(0, s.name.lastIndexOf('/'))) !== cidr.slice(0, cidr.lastIndexOf('/'))) {
      b.errors.push(at(where, `Inbound_Cidr "${s.name}" has host bits set; the network is "${cidr}"`));
      continue;
    }
    const prev = first.get(cidr);
    if (prev) {
      b.errors.push(at(where, `duplicate Inbound_Cidr "${s.name}" in ESMTP_Listener: the network ${cidr} is already limited (first at ${locText(prev, where)})`));
      continue;
    }
    first.set(cidr, where);
    const limit = c.values.get('Cluster_Max_Inbound_Connections');
    if (!limit) {
      // Written but invalid: already reported where written.
      if (s.node.body.some((x) => x.type === 'option' && findOption(x.keyword) === 'Cluster_Max_Inbound_Connections')) continue;
      b.errors.push(at(s.node.where, `Inbound_Cidr "${s.name}" needs Cluster_Max_Inbound_Connections = N`));
      continue;
    }
    out.push({ cidr, limit: limit.value as number, where: s.node.where });
  }
  return out;
}

// --- fallback lookup ----------------------------------------------------------------------------

const FALLBACK_BY_KEY = new Map<string, OptionName>(
  OPTION_NAMES.filter((n) => (OPTIONS[n].scopes as readonly Scope[]).some((s) => s === 'binding' || s === 'binding_group' || s === 'domain')).map((n) => [n, n]),
);

/** The fallback levels for ctx, most specific first (Momentum's order); undefined where none is configured. */
function fallbackLevels(config: Config, ctx: LookupContext): { levels: ({ options: Record<string, unknown>; where: SourceLocation | null } | undefined)[]; binding: BindingConfig | undefined; group: BindingGroupConfig | undefined } {
  const binding = ctx.binding !== undefined ? config.bindings.get(ctx.binding) : undefined;
  const group = config.bindingGroups.get(binding?.group ?? ctx.bindingGroup ?? '\0');
  const d = ctx.domain;
  const levels = [
    d !== undefined ? binding?.domains.get(d) : undefined,
    d !== undefined ? group?.domains.get(d) : undefined,
    binding, group,
    d !== undefined ? config.domains.get(d) : undefined,
  ];
  return { levels, binding, group };
}

function lookup(config: Config, option: string, ctx: LookupContext): unknown {
  const name = FALLBACK_BY_KEY.get(option);
  if (!name) throw new TypeError(`lookup: "${option}" is not a binding/domain-scoped option`);
  for (const l of fallbackLevels(config, ctx).levels) {
    const v = l?.options[option];
    if (v !== undefined) return v;
  }
  const g = (config.global as Record<string, unknown>)[option];
  return g !== undefined ? g : schemaDefault(name);
}

/** lookup, saying where the value came from (for the console; not on a hot path). */
function explain(config: Config, option: string, ctx: LookupContext): { value: unknown; from: string } {
  const value = lookup(config, option, ctx);
  const { levels, binding, group } = fallbackLevels(config, ctx);
  const d = ctx.domain;
  const names = [`Binding "${binding?.name}" Domain "${d}"`, `Binding_Group "${group?.name}" Domain "${d}"`, `Binding "${binding?.name}"`, `Binding_Group "${group?.name}"`, `Domain "${d}"`];
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l?.options[option] === undefined) continue;
    return { value, from: l.where === null ? names[i]! : `${names[i]} at ${l.where.file}:${l.where.line}:${l.where.column}` };
  }
  // Built global options hold their defaults: a value equal to the default reads as the default.
  const g = (config.global as Record<string, unknown>)[option];
  const def = schemaDefault(FALLBACK_BY_KEY.get(option)!);
  return { value, from: g !== undefined && JSON.stringify(g) !== JSON.stringify(def) ? 'the top level' : 'the default' };
}
