// Warnings about what a valid config exposes (issue 12): an admin API reachable off the host, an
// injection API without TLS off the host, an open relay, a console socket in a directory anyone can write. Not errors: an operator may mean it,
// but must not get it without a word. Runs wherever the config loader runs; may stat directories.

import fs from 'node:fs';
import path from 'node:path';
import { at, type ConfigError, type SourceLocation } from './errors.js';

/** The part of a Config this reads (build.ts imports this file, so no import back). */
export interface ExposedParts {
  httpListeners: readonly { host: string; name: string; where: SourceLocation }[];
  controlListeners: readonly { path: string; where: SourceLocation }[];
  /** Http_Injection (issue 17), when written. */
  httpInjection?: { listens: readonly { host: string; name: string; where: SourceLocation }[]; options: { TLS_Certificate?: string | undefined } } | null;
}

/** Loopback: 127.0.0.0/8, ::1, and IPv4-mapped loopback. */
function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h.startsWith('127.') || h === '::1' || h.startsWith('::ffff:127.') || h === 'localhost';
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0' || host === '';
}

/** A network of prefix length 0 contains every address of its family. */
export function isOpenNetwork(cidr: string): boolean {
  return /\/0+$/.test(cidr.trim());
}

/**
 * Every exposure warning of a built config, each at the stanza or option that causes it.
 * `relayWarnings` are found while building (they need the Relay_Hosts option's own location).
 */
export function exposureWarnings(config: ExposedParts, opts?: { worldWritable?: (dir: string) => boolean }): ConfigError[] {
  const out: ConfigError[] = [];
  for (const h of config.httpListeners) {
    if (isLoopback(h.host)) continue;
    const where = isWildcard(h.host) ? 'on every interface' : 'on a non-loopback address';
    out.push(at(h.where, `Http_Listener Listen "${h.name}" serves the admin API ${where}; it has no authentication and shows queue data: keep it on loopback or a private network behind a firewall`));
  }
  // Injection is authenticated, but without TLS its tokens (and the mail) cross the network in clear.
  const hi = config.httpInjection;
  if (hi != null && hi.options.TLS_Certificate === undefined) {
    for (const l of hi.listens) {
      if (isLoopback(l.host)) continue;
      out.push(at(l.where, `Http_Injection Listen "${l.name}" takes requests without TLS ${isWildcard(l.host) ? 'on every interface' : 'on a non-loopback address'}: their bearer tokens and messages cross the network in clear; set TLS_Certificate and TLS_Key, or keep it on loopback behind a TLS proxy`));
    }
  }
  const worldWritable = opts?.worldWritable ?? dirIsWorldWritable;
  for (const c of config.controlListeners) {
    const dir = path.dirname(c.path);
    if (worldWritable(dir)) {
      out.push(at(c.where, `Control_Listener socket "${c.path}" is in a world-writable directory (${dir}): another user could put a socket or link there first`));
    }
  }
  return out;
}

/** True when the directory exists and others may write it; a missing directory is no warning. */
function dirIsWorldWritable(dir: string): boolean {
  try {
    return (fs.statSync(dir).mode & 0o002) !== 0;
  } catch {
    return false;
  }
}
