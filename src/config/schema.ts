// The one schema of the configuration language: every option, with type, default, scopes and a
// one-line description (the stanzas and scopes it refers to are in stanzas.ts, the shape of an
// entry in option-spec.ts, both re-exported here).
// Validation (build.ts), the TypeScript option types (below), the fallback lookup and the generated
// reference (docgen.ts) are all derived from these tables, so adding an option is one entry in OPTIONS. Pure data and types; loaded on the main thread at start.

import type { Endpoint, HostPort } from '../net/address.js';
import type { OptionSpec, ValueType } from './option-spec.js';
import type { Scope } from './stanzas.js';

export { SCOPES, SCOPE_TITLES, STANZAS, type Scope, type StanzaNameKind, type StanzaSpec } from './stanzas.js';
export type { OptionSpec, ScalarType, ValueType } from './option-spec.js';

// Host names: RFC 1123 labels. Node names also appear in queue ids, hence the tighter alphabet.
const HOSTNAME = { kind: 'string', pattern: /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/, patternText: 'a host name' } as const;
const NODENAME = { kind: 'string', pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, patternText: 'a node name (letters, digits, ".", "_", "-"; at most 63)' } as const;
const NAME = { kind: 'string', pattern: /^[^\s]+$/, patternText: 'a name without spaces' } as const;

const FALLBACK = ['global', 'binding_group', 'binding', 'domain'] as const;

/** Every option. Keys are the canonical spelling; keywords match case-insensitively. */
export const OPTIONS = {
  // --- global ---
  Worker_Threads: {
    type: { kind: 'integer', min: 0, max: 1024 }, scopes: ['global'], default: '0',
    description: 'Worker threads for listeners, HTTP injection, delivery and #mmove; 0 = one per CPU core but one (at least one), leaving a core to the main thread and the spool\'s commit thread.',
  },
  Log_Level: {
    type: { kind: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error'] }, scopes: ['global'], default: 'info',
    description: 'Least severe log level written (JSON lines on stdout). Info and debug lines are written in batches, at most 50 ms late; a warning or an error is written at once, with the lines before it.',
  },
  Event_Log_Lines: {
    type: { kind: 'boolean' }, scopes: ['global'], default: 'true',
    description: 'Besides the event journal (the durable record, docs/events.md), write each event record (reception, delivery, failure, ...) as an info line on the log, the lines vipmta wrote before the journal. Turn it off once your tools read the journal (`vipmta log tail`/`log read`, an exporter, a Log_Aggregator) to save their cost.',
  },
  Config_Auto_Apply: {
    type: { kind: 'boolean' }, scopes: ['global'], default: 'true',
    description: 'On a node started from a config repository (`vipmta start --repo`, docs/config-repository.md): run a new revision as soon as it is committed (Momentum\'s autoupdate). When false the node keeps its revision until `config apply REV` is run on it; it still checks every change and keeps the whole history.',
  },
  Hostname: {
    type: HOSTNAME, scopes: ['global', 'listener'], defaultFrom: 'os.hostname', defaultText: 'the host name (os.hostname()); in a listener: the global Hostname',
    description: 'Name this node announces (SMTP greeting, Received headers).',
  },
  Sender_Domain_Bindings: {
    type: { kind: 'dict' }, scopes: ['global'],
    description: 'Binding or binding group per envelope sender domain: [ "example.com" = "news" ]; used when no X-Binding applies.',
  },
  Postmaster_Address: {
    type: { kind: 'string', pattern: /^[^\s@<>]+@[^\s@<>]+$/, patternText: 'a mail address ("hostmaster@example.com")' }, scopes: ['global'],
    description: 'Where mail to the bare recipient <postmaster> (RFC 5321 4.5.1, any case) goes: the queued recipient is rewritten at intake, the spool keeps what the client sent. Unset: such mail is accepted but bounces, and each one is logged at WARN.',
  },
  Nodename: {
    type: NODENAME, scopes: ['global', 'cluster'], defaultFrom: 'Hostname', defaultText: 'the global Hostname',
    description: 'Identity of this node in the cluster and in queue ids; Cluster { Nodename } wins over the global one.',
  },

  Resolver_Servers: {
    type: { kind: 'list', of: { kind: 'string', pattern: /^(\[[0-9A-Fa-f:.]+\]|[0-9.]+|[0-9A-Fa-f:]+)(:\d{1,5})?$/, patternText: 'a DNS server address ("192.0.2.53", "192.0.2.53:5353", "[2001:db8::53]:53")' } }, scopes: ['global'], default: '( )',
    description: 'DNS servers for MX and address lookups; empty = the system\'s (/etc/resolv.conf).',
  },
  Connect_Timeout: {
    type: { kind: 'duration' }, scopes: ['global'], default: '30s',
    description: 'Outbound: how long a TCP connect may take before the next MX address is tried.',
  },
  Command_Timeout: {
    type: { kind: 'duration' }, scopes: ['global'], default: '5m',
    description: 'Outbound: how long to wait for the reply to an SMTP command (Postfix\'s smtp_*_timeout).',
  },
  Data_Timeout: {
    type: { kind: 'duration' }, scopes: ['global'], default: '10m',
    description: 'Outbound: how long to wait for the reply to the end of a message\'s data.',
  },
  Max_Body_Memory: {
    type: { kind: 'size' }, scopes: ['global'], default: '256M',
    description: 'Memory for message bodies being received, across all ESMTP listeners and worker threads. Bodies up to 64K are not counted (Concurrency bounds them); up to 1M they take from a quarter of it; a larger body reserves its listener\'s Max_Message_Size from the rest (alone if that is more). A body that does not fit pauses its client, not counted against Data_Deadline, until others are committed; after Timeout it gets 421 4.3.2.',
  },

  // --- spool ---
  Directory: {
    type: { kind: 'string' }, scopes: ['spool', 'log_aggregator'], default: '"./var/spool"',
    description: 'Spool directory; in Log_Aggregator (where it is required): where the aggregated files and their marks go. Relative paths resolve against the working directory.',
  },
  Sync: {
    type: { kind: 'enum', values: ['fdatasync', 'none'] }, scopes: ['spool'], default: 'fdatasync',
    description: 'How commits reach the disk; "none" is not durable and is for tests only.',
  },
  Commit_Delay: {
    type: { kind: 'duration' }, scopes: ['spool'], default: '0',
    description: 'How long a group commit waits for more messages before it syncs.',
  },
  Segment_Size: {
    type: { kind: 'size' }, scopes: ['spool'], default: '64M',
    description: 'Size at which a spool segment file is closed and a new one started.',
  },
  Copy_Forward_After: {
    type: { kind: 'duration' }, scopes: ['spool'], default: '1h',
    description: 'Age after which deferred messages are copied forward so old segments can be reclaimed.',
  },
  Event_Journal_Max_Size: {
    type: { kind: 'size' }, scopes: ['spool'], default: '1G',
    description: 'The most disk the event journal (the events/ directory in the spool Directory, see docs/events.md) may use. At 80% of it the journal reports its alarm; what happens at the cap is Event_Journal_At_Cap.',
  },
  Event_Journal_At_Cap: {
    type: { kind: 'enum', values: ['refuse', 'drop_oldest'] }, scopes: ['spool'], default: 'refuse',
    description: 'What happens when an event does not fit under Event_Journal_Max_Size. "refuse": the operation it came with fails like a full spool (a message gets 452 4.3.1), so nothing acknowledged lacks its record, until subscribers catch up and their segments are removed. "drop_oldest": the oldest segment is removed even if a subscriber has not read it, and the loss is logged at ERROR with the subscriber and the records it lost.',
  },
  Event_Journal_Retention: {
    type: { kind: 'size' }, scopes: ['spool'], default: '128M',
    description: 'Event history kept even when every subscriber has read it (with no subscriber: the most recent this much). Segments beyond it are removed once every subscriber has passed them.',
  },

  // --- listener (ESMTP_Listener and Listen) ---
  Max_Message_Size: {
    type: { kind: 'size' }, scopes: ['listener', 'eccluster_listener'], default: '50M',
    description: 'Largest message accepted (SMTP SIZE).',
  },
  Max_Recipients: {
    type: { kind: 'integer', min: 1, max: 1_000_000 }, scopes: ['listener', 'http_injection'], default: '1000',
    description: 'Most RCPT TO accepted per message (Http_Injection: most recipients per request, more is answered 413).',
  },
  Concurrency: {
    type: { kind: 'integer', min: 1, max: 1_000_000 }, scopes: ['listener'], default: '2000',
    description: 'Most concurrent connections on the listener, across all worker threads; more are answered 421 4.3.2.',
  },
  Max_Connections_Per_Client: {
    type: { kind: 'integer', min: 1, max: 1_000_000 }, scopes: ['listener'], default: '20',
    description: 'Most concurrent connections from one client address outside Relay_Hosts, counted per worker thread; more are answered 421 4.7.0.',
  },
  Timeout: {
    type: { kind: 'duration' }, scopes: ['listener', 'eccluster_listener'], default: '5m',
    description: 'Idle time after which a client connection is closed.',
  },
  Command_Deadline: {
    type: { kind: 'duration' }, scopes: ['listener'], default: '1m',
    description: 'Time a command line may take from its first byte to its end, however steadily it arrives; then 421 4.4.2 and close.',
  },
  Max_Junk_Commands: {
    type: { kind: 'integer', min: 0, max: 1_000_000 }, scopes: ['listener'], default: '100',
    description: 'NOOP, RSET, VRFY, EXPN, HELP and ETRN a session may send without sending a message (the count starts again at each DATA); then 421 4.7.0 and close, so a client cannot hold a session with cheap commands. 0: no limit. Postfix\'s smtpd_junk_command_limit.',
  },
  Data_Deadline: {
    type: { kind: 'duration' }, scopes: ['listener'], default: '5m',
    description: 'Time a message\'s data may take from the 354 to the final dot, plus one second per Min_Data_Rate bytes received; then 421 4.4.2 and close. Time spent waiting for Max_Body_Memory does not count.',
  },
  Min_Data_Rate: {
    type: { kind: 'size' }, scopes: ['listener'], default: '10K',
    description: 'Bytes of data per second that each extend Data_Deadline by one second (Postfix\'s smtpd_min_data_rate); 0: no extension.',
  },
  Pipelining: {
    type: { kind: 'boolean' }, scopes: ['listener'], default: 'true',
    description: 'Advertise PIPELINING (RFC 2920).',
  },
  Enable_8bitmime: {
    type: { kind: 'boolean' }, scopes: ['listener'], default: 'true',
    description: 'Advertise 8BITMIME (RFC 6152).',
  },
  Smtputf8: {
    type: { kind: 'boolean' }, scopes: ['listener'], default: 'true',
    description: 'Advertise SMTPUTF8 (RFC 6531).',
  },
  TLS_Certificate: {
    type: { kind: 'string' }, scopes: ['listener', 'http_injection'],
    description: 'PEM certificate file for STARTTLS (Http_Injection: HTTPS on every Listen); needs TLS_Key.',
  },
  TLS_Key: {
    type: { kind: 'string' }, scopes: ['listener', 'http_injection'],
    description: 'PEM private key file for STARTTLS (Http_Injection: HTTPS on every Listen); needs TLS_Certificate.',
  },
  Auth_Users: {
    type: { kind: 'dict' }, scopes: ['listener'],
    description: 'SMTP AUTH users: user = "hashed password".',
  },
  Max_Auth_Failures: {
    type: { kind: 'integer', min: 1, max: 1000 }, scopes: ['listener'], default: '3',
    description: 'Failed AUTH attempts after which the connection is answered 421 4.7.0 and closed.',
  },
  Max_Auth_Failures_Per_Client: {
    type: { kind: 'integer', min: 1, max: 1_000_000 }, scopes: ['listener'], default: '10',
    description: 'Failed AUTH attempts from one client address within Auth_Failure_Window after which its AUTH is answered 421 4.7.0 unchecked (counted per worker thread).',
  },
  Auth_Failure_Window: {
    type: { kind: 'duration' }, scopes: ['listener'], default: '10m',
    description: 'Window in which failed AUTH attempts from one client address are counted.',
  },
  Auth_Failure_Delay: {
    type: { kind: 'duration' }, scopes: ['listener'], default: '1s',
    description: 'Delay before a failed AUTH is answered, times the client\'s failures in the window (at most 5 times).',
  },
  Relay_Hosts: {
    type: { kind: 'list', of: { kind: 'cidr' } }, scopes: ['listener'], default: '( "127.0.0.0/8" "::1/128" )',
    description: 'Client networks allowed to relay without AUTH.',
  },
  Trusted_Injectors: {
    type: { kind: 'list', of: { kind: 'cidr' } }, scopes: ['listener'], default: '( "127.0.0.0/8" "::1/128" )',
    description: 'Client networks whose X-Binding header is honoured; from anyone else it is ignored.',
  },
  Binding: {
    type: NAME, scopes: ['listener'],
    description: 'Binding assigned to messages received on this listener.',
  },
  Binding_Group: {
    type: NAME, scopes: ['listener'],
    description: 'Binding group assigned to messages received on this listener.',
  },
  Duravip_Follow: {
    type: NAME, scopes: ['listener'],
    description: 'Binding whose DuraVIP owner this listener address follows, so mail injected here for that binding is delivered without a #mmove. Not with Enable_Duravip.',
  },
  Enable_Duravip: {
    type: { kind: 'boolean' }, scopes: ['listener', 'global', 'binding_group', 'binding'], default: 'false',
    description: 'Manage the address (listener IP or Bind_Address) as a DuraVIP that fails over between nodes.',
  },
  Duravip_Preference: {
    type: NODENAME, scopes: ['listener', 'global', 'binding_group', 'binding'],
    description: 'Node that should own the DuraVIP while it is up.',
  },

  // --- cluster ---
  Cluster_Secret: {
    type: { kind: 'string' }, scopes: ['cluster'],
    description: 'Shared secret that authenticates the cluster links (#mmove) and the console across the cluster (console --cluster / --node); the same on every node.',
  },
  // #mmove (issue 6): the cluster link's message moves (src/mmove/, docs/mmove.md).
  Mmove_Connections: {
    type: { kind: 'integer', min: 1, max: 64 }, scopes: ['cluster'], default: '4',
    description: 'Connections per peer node over which a batch of #mmove messages is spread.',
  },
  Mmove_Max_Hops: {
    type: { kind: 'integer', min: 1, max: 255 }, scopes: ['cluster'], default: '8',
    description: 'A message arriving over #mmove that has already moved this many times is refused (554 5.4.6).',
  },
  Mmove_TLS: {
    type: { kind: 'boolean' }, scopes: ['cluster'], default: 'false',
    description: 'Wrap every #mmove connection in TLS 1.2 with a pre-shared key derived from Cluster_Secret (no certificates); all nodes must agree.',
  },
  Mmove_Dedup_Entries: {
    type: { kind: 'integer', min: 64, max: 100_000_000 }, scopes: ['cluster'], default: '1000000',
    description: 'How many recently received #mmove queue ids are remembered to suppress duplicates (restart to change).',
  },
  Mmove_Dedup_Window: {
    type: { kind: 'duration' }, scopes: ['cluster'], default: '1h',
    description: 'How long a received #mmove queue id is remembered to suppress duplicates (restart to change).',
  },
  Arp_All_Hosts: {
    type: { kind: 'boolean' }, scopes: ['cluster'], default: 'false',
    description: 'Also send unicast ARP to every known host on takeover (IPv4 only).',
  },
  View_Mature_Time: {
    type: { kind: 'duration' }, scopes: ['cluster'], default: '10s',
    description: 'How long a membership view must be stable before addresses are rebalanced.',
  },
  If_Check_Interval: {
    type: { kind: 'duration' }, scopes: ['cluster'], default: '1s',
    description: 'How often owned addresses are checked and their lifetimes renewed.',
  },
  Arp_Count: {
    type: { kind: 'integer', min: 1, max: 100 }, scopes: ['cluster'], default: '3',
    description: 'Gratuitous ARP frames (IPv6: unsolicited Neighbour Advertisements) sent on takeover.',
  },
  Arp_Interval: {
    type: { kind: 'duration' }, scopes: ['cluster'], default: '200ms',
    description: 'Pause between gratuitous ARP frames (and Neighbour Advertisements).',
  },
  Arp_Refresh: {
    type: { kind: 'duration' }, scopes: ['cluster'], default: '60s',
    description: 'How often owned addresses are announced again.',
  },
  Arp_Mode: {
    type: { kind: 'enum', values: ['request', 'reply'] }, scopes: ['cluster'], default: 'request',
    description: 'Gratuitous ARP opcode (IPv4 only).',
  },

  // The corosync.conf written by `vipmta cluster corosync-conf` (src/cluster/corosync-conf.ts).
  Cluster_Name: {
    type: { kind: 'string', pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, patternText: 'a cluster name (letters, digits, ".", "_", "-"; at most 64)' }, scopes: ['cluster'], default: '"vipmta"',
    description: 'The cluster_name in the corosync.conf that `vipmta cluster corosync-conf` writes.',
  },
  Corosync_Token: {
    type: { kind: 'duration' }, scopes: ['cluster'], default: '1s',
    description: 'The token timeout in the corosync.conf that `vipmta cluster corosync-conf` writes (200ms to 60s): a dead node is seen after about 2.2 x this.',
  },
  Corosync_Token_Coefficient: {
    type: { kind: 'duration' }, scopes: ['cluster'], default: '0',
    description: 'The token_coefficient in the corosync.conf that `vipmta cluster corosync-conf` writes: added to the token timeout per node beyond two (corosync\'s own default, 650ms, would slow detection by that much per node).',
  },
  // --- cluster node (Cluster / Node "name") ---
  Cluster_Address: {
    type: { kind: 'ip' }, scopes: ['cluster_node'],
    description: 'The node\'s address on the cluster link: corosync\'s ring0_addr.',
  },
  Node_Id: {
    type: { kind: 'integer', min: 1, max: 2_147_483_647 }, scopes: ['cluster_node'], defaultText: 'the Node\'s position in the list (1, 2, ...)',
    description: 'The node\'s corosync nodeid; set it to keep the other nodes\' ids when one is removed from the list.',
  },

  // --- topology ---
  Interface: {
    type: { kind: 'string', pattern: /^[^\s/]{1,15}$/, patternText: 'an interface name (at most 15 characters, no "/")' }, scopes: ['topology'],
    description: 'Interface on which addresses of this network are plumbed.',
  },
  Cidrmask: {
    type: { kind: 'integer', min: 0, max: 128 }, scopes: ['topology'],
    description: 'Prefix length given to plumbed addresses (32 or 128 for a host address).',
  },

  // --- ESMTP_Listener / Inbound_Cidr ---
  Cluster_Max_Inbound_Connections: {
    type: { kind: 'integer', min: 0, max: 1_000_000 }, scopes: ['inbound_cidr'],
    description: 'Most connections open at once from the Inbound_Cidr network to the ESMTP listeners of the whole cluster (every Listen address, every node); more are answered 421 4.7.0 and closed. Each node may hold its share of it (a lease; on a single node all of it). Required in an Inbound_Cidr.',
  },

  // --- binding / binding group / domain, fallback-resolved ---
  Bind_Address: {
    type: { kind: 'ip' }, scopes: ['binding'],
    description: 'Source address of outbound connections of the binding.',
  },
  Ehlo_Hostname: {
    type: HOSTNAME, scopes: FALLBACK, defaultFrom: 'Hostname', defaultText: 'the global Hostname',
    description: 'Name sent in EHLO on outbound connections.',
  },
  Max_Outbound_Connections: {
    type: { kind: 'integer', min: 1, max: 100_000 }, scopes: FALLBACK, default: '20',
    description: 'Most concurrent outbound connections to one destination.',
  },
  Max_Deliveries_Per_Connection: {
    type: { kind: 'integer', min: 1, max: 1_000_000 }, scopes: FALLBACK, default: '100',
    description: 'Messages delivered over one outbound connection before it is closed.',
  },
  Retry_Interval: {
    type: { kind: 'duration' }, scopes: FALLBACK, default: '20m',
    description: 'Base interval between delivery attempts of a deferred message.',
  },
  Message_Expiration: {
    type: { kind: 'duration' }, scopes: FALLBACK, default: '5d',
    description: 'Age at which an undelivered message bounces.',
  },
  Suspend_Delivery: {
    type: { kind: 'boolean' }, scopes: FALLBACK, default: 'false',
    description: 'Queue but do not deliver (for a binding, group, domain or everything): mail stays active in mailq until this is turned off and the config reloaded. Moves to the node that owns a binding (#mmove) are not held.',
  },
  Outbound_TLS: {
    type: { kind: 'enum', values: ['opportunistic', 'required'] }, scopes: FALLBACK, default: 'opportunistic',
    description: 'STARTTLS on outbound connections: "opportunistic" uses it when offered and falls back to plain text if the handshake fails; "required" defers the message instead.',
  },
  Outbound_TLS_Verify: {
    type: { kind: 'boolean' }, scopes: FALLBACK, default: 'false',
    description: 'With Outbound_TLS = "required": verify the certificate chain and the host name (the MX or route host).',
  },
  Outbound_Throttle_Messages: {
    type: { kind: 'rate' }, scopes: FALLBACK, default: 'unlimited',
    description: 'Most messages sent from one binding to one destination per period, over every sliding window of that period ("300/60s"). Enforced by the node that owns the binding.',
  },
  Outbound_Throttle_Connections: {
    type: { kind: 'rate' }, scopes: FALLBACK, default: 'unlimited',
    description: 'Most connections opened from one binding to one destination per period, over every sliding window of that period ("5/1s"). A batch that can reuse an idle connection never waits for it; one that must open a connection waits while the window is full. Enforced by the node that owns the binding.',
  },
  Cluster_Max_Outbound_Connections: {
    type: { kind: 'integer', min: 0, max: 1_000_000 }, scopes: FALLBACK, default: '0',
    description: 'Most connections open to one destination (the domain, or with Mx_Rollup its MX set) from the whole cluster, all bindings of all nodes together, idle ones included; 0: no limit. Each node uses the share its lease gives it, never more at any instant.',
  },
  Cluster_Outbound_Throttle_Messages: {
    type: { kind: 'rate' }, scopes: FALLBACK, default: 'unlimited',
    description: 'Most messages sent to one destination per period from the whole cluster, over every sliding window of that period ("600/60s"); each node sends within its lease of it.',
  },
  Cluster_Outbound_Throttle_Connections: {
    type: { kind: 'rate' }, scopes: FALLBACK, default: 'unlimited',
    description: 'Most connections opened to one destination per period from the whole cluster ("10/1s"); each node opens within its lease of it. Batches that reuse an idle connection do not count.',
  },
  // --- Shaping_Rule (response-driven shaping: Momentum's Adaptive Delivery) ---
  Mx_Rollup: {
    type: { kind: 'boolean' }, scopes: ['global'], default: 'true',
    description: 'Domains served by the same MX hosts (or Routes) are one destination for shaping: a restriction made for one (a rule firing, `shaping suspend`) holds them all, as the receiver sees one sender. The destination is learned from each delivery\'s MX lookup; false: every domain is its own.',
  },
  Shaping_Default_Rules: {
    type: { kind: 'boolean' }, scopes: ['global'], default: 'true',
    description: 'Read vipmta\'s shipped Shaping_Rule set (share/shaping-rules.conf: Yahoo, Gmail, Microsoft, Orange deferrals and blocks, each with its source) after this configuration; a Shaping_Rule of yours with the same name replaces the shipped one.',
  },
  Match: {
    type: { kind: 'string' }, scopes: ['shaping_rule'],
    description: 'A regular expression (JavaScript syntax, case-insensitive) searched in the receiver\'s whole reply line: code, enhanced code and text ("421 4.7.0 [TSS04] Messages from ..."). Never matched against replies vipmta generates itself.',
  },
  Classes: {
    type: { kind: 'list', of: { kind: 'integer', min: 1, max: 100 } }, scopes: ['shaping_rule'], default: '( )',
    description: 'Bounce classes the failure must have (Momentum\'s codes: 10 invalid recipient, 21 DNS failure, 50 mail block, 51 spam block, 70 transient, ...); empty: any. With Match, both must hold.',
  },
  Domains: {
    type: { kind: 'list', of: { kind: 'string' } }, scopes: ['shaping_rule'], default: '( )',
    description: 'Recipient domains the rule applies to, as glob patterns ("yahoo.*", "*.outlook.com"); empty: every domain.',
  },
  Mx: {
    type: { kind: 'list', of: { kind: 'string' } }, scopes: ['shaping_rule'], default: '( )',
    description: 'MX hosts the rule applies to, as glob patterns ("*.yahoodns.net"); empty: every host.',
  },
  Threshold: {
    type: { kind: 'rate' }, scopes: ['shaping_rule'], default: '"1/1m"',
    description: 'How many matches within the period fire the rule ("5/1m"); the default fires on the first.',
  },
  Action: {
    type: { kind: 'enum', values: ['suspend', 'throttle', 'reduce_connections', 'bounce'] }, scopes: ['shaping_rule'],
    description: 'What firing does for Duration: suspend delivery, throttle to Rate, reduce connections to Connections, or bounce the matching recipients (permanent failure with the reply).',
  },
  Duration: {
    type: { kind: 'duration' }, scopes: ['shaping_rule'], default: '15m',
    description: 'How long a suspension, throttle or connection reduction lasts; it ends on its own, on every node.',
  },
  Rate: {
    type: { kind: 'rate' }, scopes: ['shaping_rule'], default: 'unlimited',
    description: 'The message rate while throttled ("60/1m"); needed by Action = throttle.',
  },
  Connections: {
    type: { kind: 'integer', min: 0, max: 100_000 }, scopes: ['shaping_rule'],
    description: 'The connection limit while reduced; needed by Action = reduce_connections.',
  },
  Scope: {
    type: { kind: 'enum', values: ['binding_domain', 'domain'] }, scopes: ['shaping_rule'], default: 'binding_domain',
    description: 'What the action applies to: the binding and destination the reply came on, or the destination from every binding of the cluster.',
  },
  // --- Log_Aggregator (issue 15: src/aggregate/, docs/events.md "Aggregation") ---
  Logfile: {
    type: { kind: 'string', pattern: /^(?!\/)(?=.*%\{n\})(?=.*%\{l\})[^\0]+$/, patternText: 'a relative path pattern with %{l} and %{n} ("%Y/%m/%d/%{l}/%{n}")' }, scopes: ['log_aggregator'], default: '"%Y/%m/%d/%{l}/%{n}"',
    description: 'The file each member\'s records go to, under Directory: %Y %m %d %H are the UTC date and hour of the record, %{l} the log ("events"), %{n} the node; one JSON line per record.',
  },
  Members: {
    type: { kind: 'list', of: { kind: 'string', pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}(=(\[[0-9A-Fa-f:.]+\]|[0-9.]+):\d{1,5})?$/, patternText: 'a node name, or "name=ip:port" with its ECCluster_Listener ("n2=192.0.2.2:2526")' } }, scopes: ['log_aggregator'], default: '( )',
    description: 'The nodes whose journals are pulled; empty: every Node of the Cluster stanza (this one too). A name alone is reached at the ECCluster_Listener it announced in the cluster\'s view; "name=ip:port" gives the address.',
  },
  // --- Event_Webhook (issue 15: src/export/, docs/events.md "Exporters") ---
  Url: {
    type: { kind: 'string', pattern: /^https?:\/\/[^\s/?#]+[^\s]*$/, patternText: 'an http:// or https:// URL' }, scopes: ['event_webhook'],
    description: 'Where the batches are POSTed (required): a JSON array of event records, Content-Type application/json; a 2xx reply acknowledges the batch.',
  },
  Batch_Size: {
    type: { kind: 'integer', min: 1, max: 100_000 }, scopes: ['event_webhook', 'event_nats'], default: '500',
    description: 'Most records in one batch (one request of an Event_Webhook; the publishes whose PubAcks an Event_Nats awaits together).',
  },
  Batch_Bytes: {
    type: { kind: 'size' }, scopes: ['event_webhook', 'event_nats'], default: '1M',
    description: 'A batch stops growing once its records\' JSON reaches this size (a single larger record is still sent, alone).',
  },
  Max_Delay: {
    type: { kind: 'duration' }, scopes: ['event_webhook', 'event_nats'], default: '1s',
    description: 'How long a batch that is not full waits for more records before it is sent.',
  },
  Request_Timeout: {
    type: { kind: 'duration' }, scopes: ['event_webhook', 'event_nats'], default: '10s',
    description: 'A request with no complete reply (Event_Webhook), or a connection or PubAck that does not come (Event_Nats), after this long fails, and the batch is retried.',
  },
  Headers: {
    type: { kind: 'list', of: { kind: 'string', pattern: /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*$/, patternText: 'a header line "Name: value" ("Authorization: Bearer ...")' } }, scopes: ['event_webhook'], default: '( )',
    description: 'Header fields added to every request (authentication, say); never logged or shown in the console.',
  },
  Types: {
    type: { kind: 'list', of: { kind: 'string', pattern: /^[a-z_]+$/, patternText: 'an event record type ("delivery", "permanent_failure", ...)' } }, scopes: ['event_webhook', 'event_nats'], default: '( )',
    description: 'Record types sent (docs/events.md "Record types"); empty: every type. Records of other types are passed over and acknowledged.',
  },
  TLS_Verify: {
    type: { kind: 'boolean' }, scopes: ['event_webhook'], default: 'true',
    description: 'For an https:// Url: verify the receiver\'s certificate chain and host name. false only for tests or a pinned private network.',
  },
  Subscribe_From: {
    type: { kind: 'enum', values: ['end', 'start'] }, scopes: ['event_webhook', 'event_nats'], default: 'end',
    description: 'Where the exporter\'s journal subscriber (webhook-NAME, nats-NAME) starts when it is created, at the first start with this stanza: "end" sends what is recorded from then on; "start" also sends the history the journal still holds. An existing subscriber resumes at its checkpoint either way.',
  },
  Min_Retry_Delay: {
    type: { kind: 'duration' }, scopes: ['event_webhook', 'event_nats'], default: '1s',
    description: 'Wait before the first retry of a failed batch; each further failure doubles it (with jitter) up to Max_Retry_Delay.',
  },
  Max_Retry_Delay: {
    type: { kind: 'duration' }, scopes: ['event_webhook', 'event_nats'], default: '5m',
    description: 'Longest wait between retries of a failed batch (a Retry-After reply may not make it longer). For Event_Nats keep it below the stream\'s duplicate window, so that a batch sent again is deduplicated.',
  },
  // --- Event_Nats (issue 15: src/export/nats.ts, docs/events.md "The JetStream exporter") ---
  Servers: {
    type: { kind: 'list', of: { kind: 'string', pattern: /^(nats|tls):\/\/[^\s/?#]+$/, patternText: 'a NATS server URL ("nats://127.0.0.1:4222", "tls://nats.example.net:4222")' } }, scopes: ['event_nats'], default: '( "nats://127.0.0.1:4222" )',
    description: 'The NATS servers (of one cluster) to publish to; the client connects to one and moves to another when it is lost.',
  },
  Subject_Prefix: {
    type: { kind: 'string', pattern: /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, patternText: 'a NATS subject without wildcards ("vipmta.events")' }, scopes: ['event_nats'], default: '"vipmta.events"',
    description: 'Each record is published to PREFIX.NODE.TYPE ("vipmta.events.n1.delivery"; dots in the node name become "_"). A JetStream stream must capture these subjects.',
  },
  Stream: {
    type: { kind: 'string', pattern: /^[^\s.*>\/\\]{1,255}$/, patternText: 'a JetStream stream name' }, scopes: ['event_nats'],
    description: 'When set, each publish says which stream must store it (Nats-Expected-Stream): a subject captured by another stream, or by none, is refused (ERROR) rather than stored elsewhere.',
  },
  Token: {
    type: { kind: 'string' }, scopes: ['event_nats'],
    description: 'The server\'s authorization token, if it has one; never logged.',
  },
  Credentials: {
    type: { kind: 'string' }, scopes: ['event_nats'],
    description: 'A NATS .creds file (user JWT and NKey seed) for servers using decentralized authentication; relative to the working directory.',
  },
  // --- Http_Injection (issue 17: src/inject/, docs/http-injection.md) ---
  Max_Body_Size: {
    type: { kind: 'size' }, scopes: ['http_injection'], default: '20M',
    description: 'Largest request body (the JSON) accepted; a larger one is answered 413 as soon as its Content-Length or its bytes say so.',
  },
  Max_Concurrent_Requests: {
    type: { kind: 'integer', min: 1, max: 100_000 }, scopes: ['http_injection'], default: '64',
    description: 'Requests in progress at once across all worker threads (reading, building, spooling); one more is answered 429 with Retry-After. With Max_Body_Size it bounds the memory requests hold.',
  },
  Request_Deadline: {
    type: { kind: 'duration' }, scopes: ['http_injection'], default: '60s',
    description: 'Time a client has to send its whole request body; a slower one is answered 408 and its connection closed, so a slow client cannot hold a request slot.',
  },
  Secret: {
    type: { kind: 'string' }, scopes: ['http_token'],
    description: 'The token\'s secret as a scrypt hash from `vipmta hash-password` (never the secret itself). Clients send the secret as "Authorization: Bearer SECRET", or as Basic with the token\'s name as user.',
  },
  Bindings: {
    type: { kind: 'list', of: NAME }, scopes: ['http_token'], default: '( )',
    description: 'Bindings and binding groups this token may name in a request\'s "binding" (as a trusted X-Binding); "*" allows any. Empty: the token may not choose one (the binding policy decides).',
  },
  Routes: {
    type: { kind: 'list', of: { kind: 'hostport' } }, scopes: ['domain'], default: '( )',
    description: 'Deliver to these host:port instead of the MX; empty = use MX records.',
  },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;


// --- Types derived from the schema ---------------------------------------------------------------
// Properties carry the canonical option names (`global.Worker_Threads`, `listener.options.Max_Message_Size`):
// one spelling in the config text, the reference and the code.

export type { Endpoint, HostPort };

/** A parsed "N/PERIOD": at most `count` events in every sliding window of `periodMs`. */
export interface Rate {
  readonly count: number;
  readonly periodMs: number;
}

export type ValueOfType<T> =
  T extends { kind: 'string' | 'ip' | 'cidr' } ? string
  : T extends { kind: 'integer' | 'size' | 'duration' } ? number
  : T extends { kind: 'boolean' } ? boolean
  : T extends { kind: 'enum'; values: readonly (infer V)[] } ? V
  : T extends { kind: 'endpoint' } ? Endpoint
  : T extends { kind: 'hostport' } ? HostPort
  : T extends { kind: 'rate' } ? Rate | null
  : T extends { kind: 'list'; of: infer O } ? readonly ValueOfType<O>[]
  : T extends { kind: 'dict' } ? Readonly<Record<string, string>>
  : never;

type Spec<K extends OptionName> = (typeof OPTIONS)[K];
/** The normalized value of an option (durations in ms, sizes in bytes). */
export type OptionValue<K extends OptionName> = ValueOfType<Spec<K>['type']>;
type HasDefault<K extends OptionName> = Spec<K> extends { default: string } | { defaultFrom: string } ? true : false;
type InScope<K extends OptionName, S extends Scope> = S extends Spec<K>['scopes'][number] ? K : never;

/** All options of a scope, defaults applied (options without a default may be undefined). */
export type ScopeOptions<S extends Scope> = {
  -readonly [K in OptionName as HasDefault<K> extends true ? InScope<K, S> : never]: OptionValue<K>;
} & {
  -readonly [K in OptionName as HasDefault<K> extends true ? never : InScope<K, S>]?: OptionValue<K>;
};
/** Only the options written in one stanza (fallback scopes: a missing key means "ask the next level"). */
export type SetOptions<S extends Scope> = {
  -readonly [K in OptionName as InScope<K, S>]?: OptionValue<K>;
};

/** Options resolved through binding group, binding and domain (Config.lookup). */
type FallbackName = { [K in OptionName]: [Extract<Spec<K>['scopes'][number], 'binding' | 'domain' | 'binding_group'>] extends [never] ? never : K }[OptionName];
export type FallbackOption = FallbackName;
export type FallbackValue<K extends FallbackOption> = HasDefault<K> extends true ? OptionValue<K> : OptionValue<K> | undefined;

// --- Runtime views of the tables -----------------------------------------------------------------

export const OPTION_NAMES = Object.keys(OPTIONS) as OptionName[];
export function optionSpec(name: OptionName): OptionSpec { return OPTIONS[name]; }
const byLower = new Map<string, OptionName>(OPTION_NAMES.map((n) => [n.toLowerCase(), n]));
/** Canonical option name for a keyword as written, or undefined. */
export function findOption(keyword: string): OptionName | undefined { return byLower.get(keyword.toLowerCase()); }
export function optionsInScope(scope: Scope): OptionName[] { return OPTION_NAMES.filter((n) => (OPTIONS[n].scopes as readonly Scope[]).includes(scope)); }

export const FALLBACK_OPTIONS: OptionName[] = OPTION_NAMES.filter((n) =>
  (OPTIONS[n].scopes as readonly Scope[]).some((s) => s === 'binding' || s === 'domain' || s === 'binding_group'));

