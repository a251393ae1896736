// The typed configuration: what buildConfig (build.ts) makes of a file set and every part of it,
// one interface per stanza. Types only; imported by the rest of the tree through index.ts.
import type { SourceLocation } from './errors.js';
import type { Endpoint, FallbackOption, FallbackValue, ScopeOptions, SetOptions } from './schema.js';

export type GlobalOptions = ScopeOptions<'global'>;
export type ListenerOptions = ScopeOptions<'listener'>;
export type EcclusterListenerOptions = ScopeOptions<'eccluster_listener'>;
export type SpoolOptions = ScopeOptions<'spool'>;
export type ClusterOptions = ScopeOptions<'cluster'>;
export type TopologyOptions = ScopeOptions<'topology'>;
export type ClusterNodeOptions = ScopeOptions<'cluster_node'>;
export type ShapingRuleOptions = ScopeOptions<'shaping_rule'>;
export type InboundCidrOptions = ScopeOptions<'inbound_cidr'>;
export type BindingGroupOptions = SetOptions<'binding_group'>;
export type BindingOptions = SetOptions<'binding'>;
export type DomainOptions = SetOptions<'domain'>;
export type LogAggregatorOptions = ScopeOptions<'log_aggregator'>;
/** The Log_Aggregator stanza (src/aggregate/): Directory resolved against the working directory. */
export interface LogAggregatorConfig { options: LogAggregatorOptions; where: SourceLocation }
export type EventWebhookOptions = ScopeOptions<'event_webhook'>;
/** An Event_Webhook stanza (src/export/): Url is set (the build refuses a stanza without one). */
export interface EventWebhookConfig { name: string; options: EventWebhookOptions & { Url: string }; where: SourceLocation }
export type EventNatsOptions = ScopeOptions<'event_nats'>;
/** An Event_Nats stanza (src/export/nats.ts): Servers is not empty, Credentials resolved against
 *  the working directory. */
export interface EventNatsConfig { name: string; options: EventNatsOptions; where: SourceLocation }

export type HttpInjectionOptions = ScopeOptions<'http_injection'>;
/** A Token of Http_Injection: Secret is a scrypt PHC hash (checked at load). */
export interface HttpTokenConfig { name: string; secret: string; bindings: readonly string[]; where: SourceLocation }
/** The Http_Injection stanza (src/inject/): its addresses, options and tokens. `listener` of each
 *  Listen is the name its messages carry ("http:ip:port"), the one the binding policy trusts. */
export interface HttpInjectionConfig {
  listens: (Endpoint & { name: string; listener: string; where: SourceLocation })[];
  options: HttpInjectionOptions;
  tokens: HttpTokenConfig[];
  where: SourceLocation;
}

export interface ListenerConfig<O = ListenerOptions> {
  /** "ip:port" as written. */
  name: string;
  host: string;
  port: number;
  family: 4 | 6;
  /** ESMTP_Listener-level options merged under Listen-level ones, defaults applied. */
  options: O;
  where: SourceLocation;
}
export interface ControlListenerConfig { path: string; where: SourceLocation }
/** An HTTP admin API address (Http_Listener/Listen); it has no options yet. */
export interface HttpListenerConfig extends Endpoint { name: string; where: SourceLocation }
/** A Shaping_Rule, its Match compiled (case-insensitive). */
export interface ShapingRuleConfig { name: string; options: ShapingRuleOptions; match: RegExp | null; where: SourceLocation }
/** An Inbound_Cidr of ESMTP_Listener: `cidr` canonical (host bits clear, RFC 5952 address). */
export interface InboundCidrConfig { cidr: string; limit: number; where: SourceLocation }
export interface TopologyConfig { cidr: string; options: TopologyOptions; where: SourceLocation }
/** A Cluster / Node stanza: a member of the cluster (checked by cluster-nodes.ts). */
export interface ClusterNodeConfig {
  name: string;
  options: ClusterNodeOptions;
  where: SourceLocation;
  /** Where Cluster_Address and Node_Id are written (the stanza when they are not). */
  addressWhere: SourceLocation;
  idWhere: SourceLocation;
}
export interface ClusterConfig { options: ClusterOptions; topologies: TopologyConfig[]; nodes: ClusterNodeConfig[]; where: SourceLocation }
export interface DomainConfig { name: string; options: DomainOptions; where: SourceLocation }
export interface BindingConfig {
  name: string;
  /** The binding group it belongs to ("default" when declared outside any Binding_Group). */
  group: string;
  /** Null for the implicit "default" binding. */
  where: SourceLocation | null;
  /** Only the options written in this stanza; use Config.lookup for effective values. */
  options: BindingOptions;
  domains: ReadonlyMap<string, DomainConfig>;
}
export interface BindingGroupConfig {
  name: string;
  where: SourceLocation | null;
  options: BindingGroupOptions;
  bindings: ReadonlyMap<string, BindingConfig>;
  domains: ReadonlyMap<string, DomainConfig>;
}
export interface LookupContext { bindingGroup?: string; binding?: string; domain?: string }

export interface Config {
  files: string[];
  global: GlobalOptions;
  spool: SpoolOptions;
  esmtpListeners: ListenerConfig[];
  /** ESMTP_Listener's Inbound_Cidr networks, in the order written (each applies to every Listen). */
  inboundCidrs: InboundCidrConfig[];
  ecclusterListeners: ListenerConfig<EcclusterListenerOptions>[];
  controlListeners: ControlListenerConfig[];
  httpListeners: HttpListenerConfig[];
  bindingGroups: ReadonlyMap<string, BindingGroupConfig>;
  bindings: ReadonlyMap<string, BindingConfig>;
  domains: ReadonlyMap<string, DomainConfig>;
  cluster: ClusterConfig | null;
  /** Shaping_Rule stanzas, in the order written. */
  shapingRules: ShapingRuleConfig[];
  /** Log_Aggregator: this node pulls the members' journals; null without the stanza. */
  logAggregator: LogAggregatorConfig | null;
  /** Event_Webhook stanzas, in the order written. */
  eventWebhooks: EventWebhookConfig[];
  /** Event_Nats stanzas, in the order written. */
  eventNats: EventNatsConfig[];
  /** Http_Injection (issue 17); absent or null: HTTP injection is off. */
  httpInjection?: HttpInjectionConfig | null;
  /**
   * An option's effective value for a binding group / binding / domain, in Momentum's order:
   * binding's Domain > group's Domain > Binding > Binding_Group > top-level Domain > global (or default).
   * A binding belongs to one group, so `binding` implies its group and `bindingGroup` is then ignored;
   * names that are not configured simply contribute no level.
   */
  lookup<K extends FallbackOption>(option: K, ctx: LookupContext): FallbackValue<K>;
  /** lookup's value and the level it came from ("Binding \"b1\" Domain \"gmail.com\" at main.conf:12:3",
   *  "the top level", "the default"), for `shaping show`. */
  explain<K extends FallbackOption>(option: K, ctx: LookupContext): { value: FallbackValue<K>; from: string };
  /** Canonical, re-parseable text of the effective configuration (`vipmta console config show`). */
  show(): string;
}
