// The canonical text of a Config (`vipmta config show`, `Config.show()`): every option that differs
// from nothing, in schema order, as a file that parses back to the same Config. Pure; main thread.
import type { Config, DomainConfig } from './types.js';
import { OPTIONS, optionsInScope, type Scope } from './schema.js';
import { formatValue, quote } from './values.js';

export function showConfig(c: Config): string {
  const out: string[] = ['# vipmta effective configuration (canonical form; re-parseable)'];
  const opts = (scope: Scope, values: Record<string, unknown>, indent: string): void => {
    for (const name of optionsInScope(scope)) {
      const v = values[name];
      if (v !== undefined) out.push(`${indent}${name} = ${formatValue(OPTIONS[name].type, v)}`);
    }
  };
  const domainsText = (m: ReadonlyMap<string, DomainConfig>, indent: string): void => {
    for (const d of m.values()) {
      out.push(`${indent}Domain ${quote(d.name)} {`);
      opts('domain', d.options, indent + '  ');
      out.push(`${indent}}`);
    }
  };
  opts('global', c.global, '');
  out.push('Spool {');
  opts('spool', c.spool, '  ');
  out.push('}');
  if (c.esmtpListeners.length || c.inboundCidrs.length) {
    out.push('ESMTP_Listener {');
    for (const n of c.inboundCidrs) out.push(`  Inbound_Cidr ${quote(n.cidr)} {`, `    Cluster_Max_Inbound_Connections = ${n.limit}`, '  }');
    for (const l of c.esmtpListeners) {
      out.push(`  Listen ${quote(l.name)} {`);
      opts('listener', l.options, '    ');
      out.push('  }');
    }
    out.push('}');
  }
  if (c.ecclusterListeners.length) {
    out.push('ECCluster_Listener {');
    // #mmove (issue 6): the cluster link's listeners now take Timeout and Max_Message_Size.
    for (const l of c.ecclusterListeners) {
      out.push(`  Listen ${quote(l.name)} {`);
      opts('eccluster_listener', l.options, '    ');
      out.push('  }');
    }
    out.push('}');
  }
  if (c.controlListeners.length) {
    out.push('Control_Listener {');
    for (const l of c.controlListeners) out.push(`  Listen ${quote(l.path)} {`, '  }');
    out.push('}');
  }
  if (c.httpListeners.length) {
    out.push('Http_Listener {');
    for (const l of c.httpListeners) out.push(`  Listen ${quote(l.name)} {`, '  }');
    out.push('}');
  }
  if (c.cluster) {
    out.push('Cluster {');
    // Nodename is shown once, at the top level, where it is already effective.
    opts('cluster', { ...c.cluster.options, Nodename: undefined }, '  ');
    for (const t of c.cluster.topologies) {
      out.push(`  Topology ${quote(t.cidr)} {`);
      opts('topology', t.options, '    ');
      out.push('  }');
    }
    for (const n of c.cluster.nodes) {
      out.push(`  Node ${quote(n.name)} {`);
      opts('cluster_node', n.options, '    ');
      out.push('  }');
    }
    out.push('}');
  }
  if (c.logAggregator) {
    out.push('Log_Aggregator {');
    opts('log_aggregator', c.logAggregator.options, '  ');
    out.push('}');
  }
  for (const w of c.eventWebhooks) {
    out.push(`Event_Webhook ${quote(w.name)} {`);
    opts('event_webhook', w.options, '  ');
    out.push('}');
  }
  for (const w of c.eventNats) {
    out.push(`Event_Nats ${quote(w.name)} {`);
    opts('event_nats', w.options, '  ');
    out.push('}');
  }
  if (c.httpInjection) {
    const h = c.httpInjection;
    out.push('Http_Injection {');
    opts('http_injection', h.options, '  ');
    for (const l of h.listens) out.push(`  Listen ${quote(l.name)} {`, '  }');
    for (const t of h.tokens) {
      out.push(`  Token ${quote(t.name)} {`);
      opts('http_token', { Secret: t.secret, Bindings: t.bindings }, '    ');
      out.push('  }');
    }
    out.push('}');
  }
  for (const r of c.shapingRules) {
    out.push(`Shaping_Rule ${quote(r.name)} {`);
    opts('shaping_rule', r.options, '  ');
    out.push('}');
  }
  for (const g of c.bindingGroups.values()) {
    out.push(`Binding_Group ${quote(g.name)} {`);
    opts('binding_group', g.options, '  ');
    for (const bd of g.bindings.values()) {
      out.push(`  Binding ${quote(bd.name)} {`);
      opts('binding', bd.options, '    ');
      domainsText(bd.domains, '    ');
      out.push('  }');
    }
    domainsText(g.domains, '  ');
    out.push('}');
  }
  domainsText(c.domains, '');
  return out.join('\n') + '\n';
}
