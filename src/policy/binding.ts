// Which binding a message leaves from. Momentum's order: the X-Binding header (a binding or a
// group, honoured only from the listener's Trusted_Injectors), the listener's Binding/Binding_Group,
// the sender-domain map (Sender_Domain_Bindings), else the "default" binding. A group picks a member
// whose address this node holds first, round robin among them. Main thread; pure and cheap per call.
import type { Config } from '../config/index.js';
import { domainOf } from '../message/recipients.js';
import { ipFamily } from '../net/address.js';
import { RelayPolicy } from './relay.js';

export interface AssignInput {
  /** Captured header fields, lower-case names. */
  headers: Readonly<Record<string, string>>;
  /** The injecting client's address. */
  client: string;
  /** The listener ("ip:port") the message came in on, or null when unknown (e.g. a recovered message). */
  listener: string | null;
  /** Envelope sender. */
  from: string;
}

export interface Assignment {
  bindingGroup: string;
  binding: string;
  /** How it was chosen: 'x-binding', 'listener', 'sender-domain' or 'default'. */
  source: 'x-binding' | 'listener' | 'sender-domain' | 'default';
  /** Set when a name did not resolve and the default was used instead: for the log. */
  warning?: string;
}

export interface BindingPolicyOptions {
  /** Whether this node holds an address (its own, or the DuraVIP it currently owns). Default: all. */
  holds?: (address: string) => boolean;
}

const ANY_CLIENT = new RelayPolicy(['0.0.0.0/0', '::/0']);

export class BindingPolicy {
  private readonly trust = new Map<string, RelayPolicy>();
  private readonly rr = new Map<string, number>();
  /** Sender_Domain_Bindings with lower-case keys: domains compare case-insensitively. */
  private readonly senderDomains = new Map<string, string>();

  constructor(private readonly config: Config, private readonly opts: BindingPolicyOptions = {}) {
    for (const l of config.esmtpListeners) this.trust.set(l.name, new RelayPolicy(l.options.Trusted_Injectors));
    // HTTP injection (issue 17): its worker sets x-binding only where the request's token allows it.
    for (const l of config.httpInjection?.listens ?? []) this.trust.set(l.listener, ANY_CLIENT);
    for (const [d, name] of Object.entries(config.global.Sender_Domain_Bindings ?? {})) this.senderDomains.set(d.toLowerCase(), name);
  }

  assign(m: AssignInput): Assignment {
    return this.assignStored({ xBinding: this.trustedXBinding(m), listener: m.listener, from: m.from });
  }

  /** The X-Binding header's value when the listener trusts the injecting client, else null. The
   *  queue keeps it so `rebind` can run the assignment again without the headers. */
  trustedXBinding(m: Pick<AssignInput, 'headers' | 'client' | 'listener'>): string | null {
    const header = m.headers['x-binding']?.trim();
    if (header === undefined || header === '' || m.listener === null) return null;
    return this.trust.get(m.listener)?.allows(m.client) === true ? header : null;
  }

  /** The assignment from what the queue keeps: a trusted X-Binding value, the listener, the sender. */
  assignStored(m: { xBinding: string | null; listener: string | null; from: string }): Assignment {
    if (m.xBinding !== null) {
      const r = this.resolve(m.xBinding, 'x-binding');
      if (r !== null) return r;
      return this.fallback(`X-Binding "${m.xBinding}" names no binding or binding group`);
    }
    const listener = m.listener === null ? undefined : this.config.esmtpListeners.find((l) => l.name === m.listener);
    if (listener !== undefined) {
      // The config guarantees these names exist (check-config refuses unknown ones).
      if (listener.options.Binding !== undefined) {
        const r = this.resolve(listener.options.Binding, 'listener');
        if (r !== null) return r;
      }
      if (listener.options.Binding_Group !== undefined) {
        const r = this.resolve(listener.options.Binding_Group, 'listener');
        if (r !== null) return r;
      }
    }
    const domain = domainOf(m.from);
    const name = domain === '' ? undefined : this.senderDomains.get(domain);
    if (name !== undefined) {
      const r = this.resolve(name, 'sender-domain');
      if (r !== null) return r;
      return this.fallback(`Sender_Domain_Bindings maps "${domain}" to "${name}", which names no binding or binding group`);
    }
    return { bindingGroup: 'default', binding: 'default', source: 'default' };
  }

  /** A binding name wins over a group of the same name (Momentum resolves X-Binding the same way). */
  private resolve(name: string, source: Assignment['source']): Assignment | null {
    const b = this.config.bindings.get(name);
    if (b !== undefined) return { bindingGroup: b.group, binding: b.name, source };
    const g = this.config.bindingGroups.get(name);
    if (g !== undefined && g.bindings.size > 0) return { bindingGroup: g.name, binding: this.pick(g.name, [...g.bindings.keys()]), source };
    return null;
  }

  private pick(group: string, members: string[]): string {
    const holds = this.opts.holds;
    const local = holds === undefined ? members : members.filter((n) => {
      const addr = this.config.bindings.get(n)?.options.Bind_Address;
      return addr === undefined || holds(normalize(addr));
    });
    const from = local.length > 0 ? local : members;
    const i = this.rr.get(group) ?? 0;
    this.rr.set(group, i + 1);
    return from[i % from.length]!;
  }

  private fallback(warning: string): Assignment {
    return { bindingGroup: 'default', binding: 'default', source: 'default', warning };
  }
}

function normalize(addr: string): string {
  return ipFamily(addr) === 6 ? addr.toLowerCase() : addr;
}
