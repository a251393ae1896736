// The address guardian (issue 12): a small process that outlives vipmta and removes the DuraVIPs
// vipmta plumbed the moment vipmta dies, so a crashed node never keeps an address while its
// successor plumbs it. vipmta tells it over a pipe (its stdin) what it is about to plumb and what it
// removed; on EOF (vipmta gone, however it died) it deletes those of them still on their interface
// and tagged as ours (IFA_PROTO or the ":vip" label), then exits. Parent side: main thread, one
// short pipe write per plumb or release. Guardian side: guardian-main.ts, its own process.
//
// Why a Node process and not a C++ executable: it reuses the addon's tested netlink code and tag
// check (one implementation of "ours"), and needs no second build target. It costs ~30-40 MB of
// RSS per node, once; it does no work until vipmta dies.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { InterfaceAddress, NetInterface } from '../native/index.js';
import { canonicalAddress } from '../net/address.js';

/** One address the guardian removes on EOF unless told it is gone: where it is and its mask. */
export interface GuardedAddress {
  readonly ifname: string;
  readonly address: string;
  readonly prefixLength: number;
}

/** The pipe's line protocol: "+ IFNAME ADDRESS PREFIX" before plumbing, "- IFNAME ADDRESS PREFIX" after removing. */
export function encodeGuardLine(op: '+' | '-', g: GuardedAddress): string {
  return `${op} ${g.ifname} ${g.address} ${g.prefixLength}\n`;
}

/** What the guardian holds in mind: the addresses vipmta declared and has not said it removed. */
export class GuardBook {
  private readonly entries = new Map<string, GuardedAddress>();
  private partial = '';

  /** Takes a chunk of the pipe; malformed lines are ignored (the pipe is ours, but never trust a parse). */
  feed(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = /^([+-]) (\S{1,15}) (\S+) (\d{1,3})$/.exec(line);
      if (m === null) continue;
      const address = canonicalAddress(m[3]!);
      const prefixLength = Number(m[4]);
      if (address === null || prefixLength > (address.includes(':') ? 128 : 32)) continue;
      if (m[1] === '+') this.entries.set(address, { ifname: m[2]!, address, prefixLength });
      else this.entries.delete(address);
    }
  }

  list(): GuardedAddress[] {
    return [...this.entries.values()];
  }
}

/** The netlink calls the cleanup needs (src/native in the guardian; fakes in unit tests). */
export interface GuardNetlink {
  listInterfaces(): NetInterface[];
  deleteAddress(ifindex: number, address: string, prefixLength: number): boolean;
  isOurAddress(a: InterfaceAddress): boolean;
}

/**
 * Deletes every declared address that is on its interface and tagged as ours; returns what it
 * removed and what it could not. An address another program put there untagged is left alone.
 */
export function removeGuarded(book: readonly GuardedAddress[], nl: GuardNetlink): { removed: string[]; failed: Array<{ address: string; error: string }> } {
  const removed: string[] = [];
  const failed: Array<{ address: string; error: string }> = [];
  if (book.length === 0) return { removed, failed };
  const ifs = new Map(nl.listInterfaces().map((i) => [i.name, i]));
  for (const g of book) {
    const itf = ifs.get(g.ifname);
    const mine = itf?.addresses.find((a) => canonicalAddress(a.address) === g.address && nl.isOurAddress(a));
    if (itf === undefined || mine === undefined) continue;
    try {
      if (nl.deleteAddress(itf.index, g.address, mine.prefixLength)) removed.push(g.address);
    } catch (err) {
      failed.push({ address: g.address, error: (err as Error).message });
    }
  }
  return { removed, failed };
}

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * vipmta's end of the pipe. The guardian runs in vipmta's network namespace (it is its child), in
 * its own session (detached: a signal to vipmta's process group, such as a terminal's Ctrl-C, does
 * not reach it) and ignores SIGTERM/SIGINT/SIGHUP (systemd's stop signals the whole unit: it must
 * live until vipmta is gone). It is not waited for: vipmta can exit while it runs.
 */
export class GuardianLink {
  private child: ChildProcess | null = null;
  /** What the running guardian has been told (re-sent to a new one if it had to be restarted). */
  private readonly declared = new Map<string, GuardedAddress>();
  private failedOnce = false;
  private stopped = false;

  constructor(private readonly logger: Logger, private readonly mainPath: string = path.join(here, 'guardian-main.js')) {}

  /** Starts the guardian (again, if it died); safe to call repeatedly. */
  start(): void {
    if (this.stopped || (this.child !== null && this.child.exitCode === null && this.child.signalCode === null)) return;
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, ['--max-old-space-size=16', this.mainPath], { detached: true, stdio: ['pipe', 'inherit', 'inherit'] });
    } catch (err) {
      this.fail(null, err as Error);
      return;
    }
    this.child = child;
    child.on('error', (err) => this.fail(child, err));
    child.on('exit', (code, signal) => this.fail(child, new Error(`the guardian exited (${code ?? signal})`)));
    child.stdin!.on('error', (err) => this.fail(child, err));
    // Neither keeps vipmta's event loop alive: a planned exit closes the pipe, which ends the guardian.
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    for (const g of this.declared.values()) this.write('+', g);
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Before plumbing: from now on the guardian removes it if vipmta dies. */
  declare(g: GuardedAddress): void {
    const had = this.declared.get(g.address);
    if (had !== undefined && had.ifname === g.ifname && had.prefixLength === g.prefixLength) return;
    this.declared.set(g.address, g);
    // A new guardian is told everything declared, this one included.
    if (this.child === null) this.start();
    else this.write('+', g);
  }

  /** After removing: the guardian forgets it (it must not remove a successor's address on this node later). */
  forget(address: string): void {
    const g = this.declared.get(address);
    if (g === undefined) return;
    this.declared.delete(address);
    this.write('-', g);
  }

  /** Planned exit: closes the pipe (the guardian removes whatever is still declared, then exits). */
  stop(): void {
    this.stopped = true;
    this.child?.stdin?.end();
    this.child = null;
  }

  private write(op: '+' | '-', g: GuardedAddress): void {
    const stdin = this.child?.stdin;
    // A socketpair with room: libuv writes it at once, before the netlink request that follows.
    if (stdin !== null && stdin !== undefined && !stdin.destroyed) stdin.write(encodeGuardLine(op, g));
  }

  /** `child` failed (null: could not be started); a later guardian's events never touch the current one. */
  private fail(child: ChildProcess | null, err: Error): void {
    if (this.stopped || (child !== null && child !== this.child)) return;
    // Once: a node without a guardian still works; its addresses then expire with their lifetime.
    if (!this.failedOnce) this.logger.error({ err: err.message }, 'DuraVIP guardian not running; after a crash this node keeps its addresses until their lifetime ends; restarting it');
    this.failedOnce = true;
    this.child = null;
    // Restarted at the next declare, and at once when something is held.
    if (this.declared.size > 0) setTimeout(() => this.start(), 1000).unref();
  }
}
