// Recipient addresses as the queue splits them: by destination domain. Pure; any thread.

/** The domain part of an address, lower-cased; the null sender and bare names give "". */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

/** Recipients grouped by domain (case-insensitive), in first-seen order. */
export function splitByDomain(rcpt: string[]): string[][] {
  const by = new Map<string, string[]>();
  for (const r of rcpt) {
    const d = domainOf(r);
    const l = by.get(d);
    if (l === undefined) by.set(d, [r]);
    else l.push(r);
  }
  return [...by.values()];
}
