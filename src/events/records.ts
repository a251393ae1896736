// The event records (issue 15): one versioned schema for everything billing, bounce processing and
// reputation read: what each record type carries, as TypeScript types and as the one field table
// the decoder validates against (docs/events.md is written from the same table). Pure data; any
// thread (a listener worker builds reception and rejection records, the main thread the rest).

/** The schema's version, in every record as `v`. A reader ignores fields it does not know; `v`
 *  changes only when an existing field changes meaning or a required one is added. */
export const EVENT_VERSION = 1;

/** Fields every record has. `id`, `time` and `node` may also come from the journal frame. */
interface Common {
  v: typeof EVENT_VERSION;
  /** When it happened, ms since the epoch. */
  time: number;
  /** The node (Nodename) that wrote it. */
  node: string;
  /** The journal's sequence number, set by the reader from the frame (never written in the payload). */
  seq?: number;
}

/** The queue id and Message-ID of the message a record is about. */
interface About {
  /** Queue id in this node's spool. */
  id: string;
  /** The Message-ID header field as received (angle brackets kept), when known. */
  msgid?: string;
}

/** The injecting client's message is on disk and was answered 250 (or a DSN we made was spooled). */
export interface ReceptionEvent extends Common, About {
  type: 'reception';
  from: string;
  rcpt: string[];
  /** Bytes in the spool (body with our Received header). */
  size: number;
  /** Listener name; null for mail vipmta made itself. */
  listener: string | null;
  /** The client's address (the source address of the injection). */
  client: string;
  helo?: string;
  /** The AUTH user, when the client authenticated. */
  user?: string;
  tls?: boolean;
  /** "group/binding" the binding policy assigned (absent in a payload built at commit time). */
  binding?: string;
}

/** One recipient's delivery attempt: what delivery, transient and permanent failures share. */
interface Attempt extends Common, About {
  from?: string;
  rcpt: string;
  /** "group/binding" the message was sent under. */
  binding: string;
  /** Our end of the connection (the binding's address); null when no connection was made. */
  source: string | null;
  /** MX (or route) host name and its IP that answered; null when none was reached. */
  mx: string | null;
  ip: string | null;
  /** The reply: the peer's ("550 5.1.1 ...", origin remote) or our diagnosis (origin local). */
  reply: string;
  code: number;
  /** RFC 3463 enhanced status code, or null when there was none. */
  enhanced: string | null;
  origin: 'remote' | 'local';
  /** The attempt's number (1 for the first). */
  attempt: number;
  size?: number;
  /** Set when the attempt was a #mmove to another node (the node's name) rather than SMTP. */
  peer?: string;
}

/** Momentum's bounce class of a failure: the number and "N Name" as the docs list it. */
interface Classed {
  class?: number;
  bounce_class?: string;
}

export interface DeliveryEvent extends Attempt {
  type: 'delivery';
}
export interface TransientFailureEvent extends Attempt, Classed {
  type: 'transient_failure';
  /** When the recipient is tried again, ms since the epoch (absent when it expired now). */
  next?: number;
}
export interface PermanentFailureEvent extends Attempt, Classed {
  type: 'permanent_failure';
}

/** A recipient reached Message_Expiration without delivery (it bounces). */
export interface ExpiryEvent extends Common, About, Classed {
  type: 'expiry';
  from?: string;
  rcpt: string;
  binding: string;
  source: string | null;
  /** The last reply it had, or null when it never had one. */
  reply: string | null;
  attempt: number;
  size?: number;
}

/** A DSN (bounce) was spooled: `id` is the DSN's own queue id, `for` the original's. */
export interface DsnEvent extends Common, About {
  type: 'dsn';
  for: string;
  /** The DSN's recipient: the original's envelope sender. */
  to: string;
  /** The original's recipients the DSN reports. */
  rcpt: string[];
  size?: number;
}

/** A 4xx or 5xx reply a listener sent a client (the mail, recipient or command it refused). */
export interface RejectionEvent extends Common {
  type: 'rejection';
  listener: string;
  client: string;
  /** Our address and port the client reached. */
  local?: string;
  /** The command refused, upper case ("RCPT", "DATA" for the end of data), or "CONNECT". */
  stage: string;
  from?: string;
  rcpt?: string[];
  code: number;
  enhanced: string | null;
  reply: string;
}

/** Our copy of a message moved to another node over #mmove (its 250 arrived). */
export interface MmoveSentEvent extends Common, About {
  type: 'mmove_sent';
  from?: string;
  rcpt: string[];
  binding: string;
  /** The node it went to. */
  peer: string;
  reply: string;
  /** The receiver had it already (a retry after a lost 250). */
  duplicate: boolean;
  size?: number;
}

/** A message moved here by another node over #mmove is on disk (its reception is on the first node). */
export interface MmoveReceivedEvent extends Common, About {
  type: 'mmove_received';
  from: string;
  rcpt: string[];
  size: number;
  /** The sending node's address, and the node that first accepted the message. */
  client: string;
  origin: string;
  /** Its queue id on the sending node. */
  original: string;
  /** The ECCluster_Listener that took it. */
  listener?: string;
  hops: number;
  binding: string;
}

/** An operator's hold or release of one part (a message's recipients in one domain). */
export interface HoldEvent extends Common, About {
  type: 'hold' | 'release';
  binding: string;
  rcpt: string[];
}

/** An operator's rebind moved one part from `previous` to `binding`. */
export interface RebindEvent extends Common, About {
  type: 'rebind';
  binding: string;
  previous: string;
  rcpt: string[];
}

/** A shaping restriction came into force on this node (`state` start) or ended (end). */
export interface SuspensionEvent extends Common {
  type: 'suspension';
  state: 'start' | 'end';
  action: 'suspend' | 'throttle' | 'reduce_connections';
  /** null: every binding. */
  binding: string | null;
  /** The domain, or with MX rollup the MX set ("mx:a.example,b.example"). */
  destination: string;
  /** When it ends, ms since the epoch. */
  until: number;
  /** The Shaping_Rule that fired, or "console". */
  rule: string;
  reason: string;
  /** The node that asked for it. */
  origin: string;
  /** throttle: messages per period; reduce_connections: the connection limit. */
  rate?: number;
  period?: number;
  connections?: number;
}

/** A DuraVIP was plumbed on this node (taken) or taken off the wire (released). */
export interface AddressEvent extends Common {
  type: 'address_taken' | 'address_released';
  address: string;
  ifname?: string;
}

export type EventRecord =
  | ReceptionEvent
  | DeliveryEvent
  | TransientFailureEvent
  | PermanentFailureEvent
  | ExpiryEvent
  | DsnEvent
  | RejectionEvent
  | MmoveSentEvent
  | MmoveReceivedEvent
  | HoldEvent
  | RebindEvent
  | SuspensionEvent
  | AddressEvent;

export type EventType = EventRecord['type'];

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A record as an emission point makes it: the emitter adds `v` and `node`, and `time` when absent. */
export type NewEvent = DistributiveOmit<EventRecord, 'v' | 'node' | 'time' | 'seq'> & { time?: number };

/** A record written before its queue id, time or node are known (at the spool's commit): the
 *  journal frame carries them and decodeEvent takes them from it. */
export type EventPayload = DistributiveOmit<EventRecord, 'id' | 'seq' | 'time' | 'node'> & { id?: string; time?: number; node?: string };
export type ReceptionPayload = Extract<EventPayload, { type: 'reception' }>;
export type MmoveReceivedPayload = Extract<EventPayload, { type: 'mmove_received' }>;

// --- the field table ------------------------------------------------------------------------------

/** s string, n finite number, i integer >= 0, b boolean, ss string[]; "|null" also null; "?" optional. */
export type FieldKind = 's' | 'n' | 'i' | 'b' | 'ss' | 's|null' | 's?' | 'i?' | 'n?' | 'b?' | 'ss?' | 's|null?';

const ABOUT = { id: 's', msgid: 's?' } as const;
const ATTEMPT = {
  ...ABOUT, from: 's?', rcpt: 's', binding: 's', source: 's|null', mx: 's|null', ip: 's|null', reply: 's', code: 'i',
  enhanced: 's|null', origin: 's', attempt: 'i', size: 'i?', peer: 's?',
} as const;
const CLASSED = { class: 'i?', bounce_class: 's?' } as const;

/** Every record type's own fields (besides v, type, time, node, seq): the decoder checks these. */
export const EVENT_FIELDS: Readonly<Record<EventType, Readonly<Record<string, FieldKind>>>> = {
  reception: { ...ABOUT, from: 's', rcpt: 'ss', size: 'i', listener: 's|null', client: 's', helo: 's?', user: 's?', tls: 'b?', binding: 's?' },
  delivery: ATTEMPT,
  transient_failure: { ...ATTEMPT, ...CLASSED, next: 'n?' },
  permanent_failure: { ...ATTEMPT, ...CLASSED },
  expiry: { ...ABOUT, ...CLASSED, from: 's?', rcpt: 's', binding: 's', source: 's|null', reply: 's|null', attempt: 'i', size: 'i?' },
  dsn: { ...ABOUT, for: 's', to: 's', rcpt: 'ss', size: 'i?' },
  rejection: { listener: 's', client: 's', local: 's?', stage: 's', from: 's?', rcpt: 'ss?', code: 'i', enhanced: 's|null', reply: 's' },
  mmove_sent: { ...ABOUT, from: 's?', rcpt: 'ss', binding: 's', peer: 's', reply: 's', duplicate: 'b', size: 'i?' },
  mmove_received: { ...ABOUT, from: 's', rcpt: 'ss', size: 'i', client: 's', origin: 's', original: 's', listener: 's?', hops: 'i', binding: 's' },
  hold: { ...ABOUT, binding: 's', rcpt: 'ss' },
  release: { ...ABOUT, binding: 's', rcpt: 'ss' },
  rebind: { ...ABOUT, binding: 's', previous: 's', rcpt: 'ss' },
  suspension: {
    state: 's', action: 's', binding: 's|null', destination: 's', until: 'n', rule: 's', reason: 's', origin: 's',
    rate: 'i?', period: 'i?', connections: 'i?',
  },
  address_taken: { address: 's', ifname: 's?' },
  address_released: { address: 's', ifname: 's?' },
};

/** Fields whose value is one of a few words, per record type. */
const ORIGIN = { origin: ['remote', 'local'] } as const;
export const EVENT_ENUMS: Readonly<Partial<Record<EventType, Readonly<Record<string, readonly string[]>>>>> = {
  delivery: ORIGIN,
  transient_failure: ORIGIN,
  permanent_failure: ORIGIN,
  suspension: { state: ['start', 'end'], action: ['suspend', 'throttle', 'reduce_connections'] },
};

export const EVENT_TYPES = Object.keys(EVENT_FIELDS) as EventType[];

export function isEventType(t: unknown): t is EventType {
  return typeof t === 'string' && Object.hasOwn(EVENT_FIELDS, t);
}
