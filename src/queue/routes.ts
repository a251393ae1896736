// Where each binding's mail goes in a cluster: delivered here, moved to the node that owns the
// binding's Bind_Address (#mmove), or kept here while nobody owns it. The table remembers each
// (group, binding)'s route as last looked up, so reroute() can tell which ones changed.
// Main thread; pure bookkeeping over the route callback, never blocks.

/** Where a binding's mail goes now: delivered here, moved to the node that owns the binding's
 *  address, or kept here undelivered while no node owns it (no quorum, an election pending). */
export type Route = { readonly to: 'local' } | { readonly to: 'wait' } | { readonly to: 'node'; readonly node: string };
export const LOCAL_ROUTE: Route = { to: 'local' };
/** The virtual binding (in the default group) of mail waiting to move to another node. */
export const MMOVE_BINDING = '#mmove';

export type RouteLookup = (bindingGroup: string, binding: string) => Route;

export class RouteTable {
  /** The route of each (group, binding) as last looked up; keyed `group\0binding`. */
  private readonly routes = new Map<string, Route>();

  /** Without a lookup (no cluster) every binding is local. */
  constructor(private readonly lookup: RouteLookup | undefined) {}

  get clustered(): boolean {
    return this.lookup !== undefined;
  }

  /** The route of a home queue's binding, looked up once and then remembered until changed(). */
  of(bindingGroup: string, binding: string): Route {
    if (this.lookup === undefined) return LOCAL_ROUTE;
    const key = `${bindingGroup}\0${binding}`;
    let r = this.routes.get(key);
    if (r === undefined) this.routes.set(key, (r = this.lookup(bindingGroup, binding)));
    return r;
  }

  /** Looks every known binding up again; returns the keys (`group\0binding`) whose route changed. */
  changed(): Set<string> {
    const changed = new Set<string>();
    if (this.lookup === undefined) return changed;
    for (const [key, old] of this.routes) {
      const sep = key.indexOf('\0');
      const now = this.lookup(key.slice(0, sep), key.slice(sep + 1));
      if (sameRoute(old, now)) continue;
      this.routes.set(key, now);
      changed.add(key);
    }
    return changed;
  }

  /** For the log: `group/binding` -> where its mail goes now. */
  describe(keys: Iterable<string>): Record<string, string> {
    return Object.fromEntries([...keys].map((k) => [k.replace('\0', '/'), describeRoute(this.routes.get(k)!)]));
  }
}

function sameRoute(a: Route, b: Route): boolean {
  return a.to === b.to && (a.to !== 'node' || a.node === (b as { node: string }).node);
}

function describeRoute(r: Route): string {
  return r.to === 'node' ? `#mmove to ${r.node}` : r.to;
}
