// The configuration language's stanzas and the scopes options are written in: which stanza holds
// which, what its name looks like, and each scope's human name. Part of the one schema (schema.ts
// re-exports it; OPTIONS there names these scopes). Pure data; loaded on the main thread at start.

/** Where an option may be written. "listener" is ESMTP_Listener and its Listen stanzas. */
export const SCOPES = [
  'global',
  'listener',
  'eccluster_listener',
  'control_listener',
  'http_listener',
  'spool',
  'cluster',
  'topology',
  'inbound_cidr',
  'cluster_node',
  'shaping_rule',
  'binding_group',
  'binding',
  'domain',
  'log_aggregator',
  'event_webhook',
  'event_nats',
  'http_injection',
  'http_token',
] as const;
export type Scope = (typeof SCOPES)[number];

/** What a stanza's name must look like. */
export type StanzaNameKind = 'none' | 'endpoint' | 'path' | 'cidr' | 'name';

export interface StanzaSpec {
  readonly keyword: string;
  /** The scope of options inside it. */
  readonly scope: Scope;
  /** Stanza keywords (or "global") it may appear in. */
  readonly parents: readonly string[];
  readonly name: StanzaNameKind;
  /** At most one per file set (unnamed singletons). */
  readonly single?: boolean;
  /** A single stanza that may be written several times (e.g. split across included files): the
   *  occurrences are read as one block, in order. */
  readonly merge?: boolean;
  readonly description: string;
}

/** Every stanza. A named stanza's name is unique among its siblings. */
export const STANZAS: readonly StanzaSpec[] = [
  { keyword: 'ESMTP_Listener', scope: 'listener', parents: ['global'], name: 'none', single: true, merge: true, description: 'SMTP listeners; its options are defaults for its Listen stanzas. May be written several times (say, one per included file): the occurrences are read as one.' },
  { keyword: 'Listen', scope: 'listener', parents: ['ESMTP_Listener'], name: 'endpoint', description: 'One SMTP listening address, "ip:port" ("[::1]:25" for IPv6).' },
  { keyword: 'ECCluster_Listener', scope: 'eccluster_listener', parents: ['global'], name: 'none', single: true, merge: true, description: 'Cluster link listeners (#mmove); may be written several times, read as one. The first one on a specific address is announced to the other nodes as where they move mail to this node.' },
  { keyword: 'Listen', scope: 'eccluster_listener', parents: ['ECCluster_Listener'], name: 'endpoint', description: 'One cluster link address, "ip:port".' },
  { keyword: 'Control_Listener', scope: 'control_listener', parents: ['global'], name: 'none', single: true, description: 'Console sockets (mode 0600).' },
  { keyword: 'Listen', scope: 'control_listener', parents: ['Control_Listener'], name: 'path', description: 'One console socket path; relative to the working directory.' },
  { keyword: 'Http_Listener', scope: 'http_listener', parents: ['global'], name: 'none', single: true, description: 'HTTP admin API: the live status page (/), /api/cluster/v1/state and its event stream, /health, /metrics (Prometheus), /stats/queues/mailq, /shaping/*. No authentication: it shows queue data and takes shaping actions, so keep it on loopback or a private network.' },
  { keyword: 'Listen', scope: 'http_listener', parents: ['Http_Listener'], name: 'endpoint', description: 'One HTTP admin address, "ip:port" (the built-in default: "127.0.0.1:2081").' },
  { keyword: 'Spool', scope: 'spool', parents: ['global'], name: 'none', single: true, description: 'The message spool.' },
  { keyword: 'Cluster', scope: 'cluster', parents: ['global'], name: 'none', single: true, description: 'Cluster membership and DuraVIP.' },
  { keyword: 'Shaping_Rule', scope: 'shaping_rule', parents: ['global'], name: 'name', description: 'A response-driven rule: when replies matching it arrive (Threshold), suspend, throttle, reduce connections or bounce, cluster-wide, for Duration.' },
  { keyword: 'Inbound_Cidr', scope: 'inbound_cidr', parents: ['ESMTP_Listener'], name: 'cidr', description: 'A client network ("203.0.113.0/24", "2001:db8::/32") whose connections to the ESMTP listeners are limited cluster-wide; a client counts under the most specific one that holds it. Applies to every Listen.' },
  { keyword: 'Topology', scope: 'topology', parents: ['Cluster'], name: 'cidr', description: 'A network on which DuraVIPs are plumbed, named by its CIDR.' },
  { keyword: 'Node', scope: 'cluster_node', parents: ['Cluster'], name: 'name', description: 'A member of the cluster, named by its Nodename: the same list on every node (`vipmta cluster corosync-conf` writes corosync\'s nodelist from it).' },
  { keyword: 'Log_Aggregator', scope: 'log_aggregator', parents: ['global'], name: 'none', single: true, description: 'On the node(s) that have it: pull every member\'s event journal over the cluster link (authenticated with Cluster_Secret like #mmove) into files under Directory laid out by Logfile; each record exactly once, across restarts and cut links.' },
  { keyword: 'Event_Webhook', scope: 'event_webhook', parents: ['global'], name: 'name', description: 'A batched HTTP exporter of this node\'s event journal: POSTs JSON arrays of records to Url through its own journal subscriber (webhook-NAME), retrying a failed batch with backoff until a 2xx; at least once, each record with a stable record_id. Several may be written, one per receiver.' },
  { keyword: 'Event_Nats', scope: 'event_nats', parents: ['global'], name: 'name', description: 'An exporter of this node\'s event journal to NATS JetStream: publishes each record to Subject_Prefix.NODE.TYPE with the message id NODE:SEQ through its own journal subscriber (nats-NAME), acknowledging a batch once every PubAck is in and retrying it with backoff otherwise; the stream\'s duplicate window drops what is sent again. Several may be written.' },
  { keyword: 'Http_Injection', scope: 'http_injection', parents: ['global'], name: 'none', single: true, description: 'HTTP injection (POST /api/inject/v1, KumoMTA\'s request shape; docs/http-injection.md), served by the worker threads; off without this stanza. Every request needs a Token. Separate from Http_Listener (the admin API).' },
  { keyword: 'Listen', scope: 'http_injection', parents: ['Http_Injection'], name: 'endpoint', description: 'One HTTP injection address, "ip:port": an address on this host or a wildcard (not a DuraVIP that is not plumbed yet).' },
  { keyword: 'Token', scope: 'http_token', parents: ['Http_Injection'], name: 'name', description: 'A bearer token of HTTP injection: its hashed Secret and the Bindings it may choose.' },
  { keyword: 'Binding_Group', scope: 'binding_group', parents: ['global'], name: 'name', description: 'A group of bindings; options are fallbacks for its bindings.' },
  { keyword: 'Binding', scope: 'binding', parents: ['global', 'Binding_Group'], name: 'name', description: 'An outbound identity (source address); outside a group it belongs to "default".' },
  { keyword: 'Domain', scope: 'domain', parents: ['global', 'Binding_Group', 'Binding'], name: 'name', description: 'Per-destination-domain options, at global, group or binding level.' },
];

/** Human name of a scope, for messages and the reference. */
export const SCOPE_TITLES: Record<Scope, string> = {
  global: 'global (top level)',
  listener: 'ESMTP_Listener and its Listen',
  eccluster_listener: 'ECCluster_Listener and its Listen',
  control_listener: 'Control_Listener and its Listen',
  http_listener: 'Http_Listener and its Listen',
  shaping_rule: 'Shaping_Rule',
  spool: 'Spool',
  cluster: 'Cluster',
  topology: 'Cluster / Topology',
  inbound_cidr: 'ESMTP_Listener / Inbound_Cidr',
  cluster_node: 'Cluster / Node',
  binding_group: 'Binding_Group',
  binding: 'Binding',
  domain: 'Domain',
  log_aggregator: 'Log_Aggregator',
  event_webhook: 'Event_Webhook',
  event_nats: 'Event_Nats',
  http_injection: 'Http_Injection and its Listen',
  http_token: 'Http_Injection / Token',
};
