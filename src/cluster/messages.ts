// The messages cluster members multicast over the CPG group, and their wire form. Main thread, pure.
// Every message is one JSON header line (type, the sender's clock `now`, small fields), then for an
// announce the MemberState encoding of state.ts. `now` travels inside agreed-order messages so every
// member runs the election with the same time (election.ts: time enters only through agreed values).
// Peers are untrusted: decodeMessage validates and returns an error instead of throwing.

import { canonicalAddress } from '../net/address.js';
import { decodeMemberState, encodeMemberState, isNodeName, MAX_ANNOUNCE_BYTES, type MemberState } from './state.js';

/** A neighbour (ARP cache entry) a member shares for Arp_All_Hosts: [IPv4 address, MAC]. */
export type SharedNeighbour = readonly [address: string, mac: string];
export const MAX_SHARED_NEIGHBOURS = 1024;
const MAC_RE = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

export type ClusterMessage =
  /** A member's state: after every view change, and whenever what it holds or its quorum changes. */
  | { readonly type: 'announce'; readonly now: number; readonly state: MemberState; readonly neighbours: readonly SharedNeighbour[] }
  /** `cluster duravip move IP to NODE`, agreed so that every member applies it at the same point. */
  | { readonly type: 'move'; readonly now: number; readonly address: string; readonly node: string }
  /**
   * `cluster drain NODE` (drained true) or `cluster undrain NODE` (false), agreed so every member
   * treats NODE as drained from the same point; NODE persists it and announces it in its state.
   */
  | { readonly type: 'drain'; readonly now: number; readonly node: string; readonly drained: boolean }
  /**
   * `console --cluster config reload`: every member reloads now (the console group tells each), so
   * elections wait until each member of the view has said 'reloaded' (after announcing its new
   * configuration), or a tick RELOAD_WAIT_MS later: the cluster elects once, with every new config.
   */
  | { readonly type: 'reload'; readonly now: number; readonly node: string }
  /** This member's reload of the round is over (applied, or refused and the old config kept). */
  | { readonly type: 'reloaded'; readonly now: number; readonly node: string }
  /** The view has been stable for View_Mature_Time (or a reload round waited too long): run the
   *  election again with this agreed time. */
  | { readonly type: 'tick'; readonly now: number }
  /**
   * Sent every If_Check_Interval and ignored by receivers: a corosync that is stopped shows as a
   * send that does not complete (CorosyncGroup.sendState), even on a quiet cluster.
   */
  | { readonly type: 'ping'; readonly now: number };

const MAX_HEADER = 64 * 1024;

export function encodeMessage(m: ClusterMessage): Buffer {
  switch (m.type) {
    case 'announce': {
      const head = Buffer.from(`${JSON.stringify({ t: 'A', now: m.now, neighbours: m.neighbours.slice(0, MAX_SHARED_NEIGHBOURS) })}\n`);
      return Buffer.concat([head, encodeMemberState(m.state)]);
    }
    case 'move':
      return Buffer.from(`${JSON.stringify({ t: 'M', now: m.now, address: m.address, node: m.node })}\n`);
    case 'drain':
      return Buffer.from(`${JSON.stringify({ t: 'D', now: m.now, node: m.node, drained: m.drained })}\n`);
    case 'reload':
      return Buffer.from(`${JSON.stringify({ t: 'R', now: m.now, node: m.node })}\n`);
    case 'reloaded':
      return Buffer.from(`${JSON.stringify({ t: 'r', now: m.now, node: m.node })}\n`);
    case 'tick':
      return Buffer.from(`${JSON.stringify({ t: 'T', now: m.now })}\n`);
    case 'ping':
      return Buffer.from(`${JSON.stringify({ t: 'P', now: m.now })}\n`);
  }
}

export type DecodedMessage = { readonly ok: true; readonly message: ClusterMessage } | { readonly ok: false; readonly error: string };

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;

export function decodeMessage(buf: Uint8Array): DecodedMessage {
  if (buf.length > MAX_HEADER + MAX_ANNOUNCE_BYTES) return { ok: false, error: `message of ${buf.length} bytes is too large` };
  const nl = buf.indexOf(0x0a);
  if (nl < 0 || nl > MAX_HEADER) return { ok: false, error: 'message has no header line' };
  let head: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset, nl).toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, error: 'header is not an object' };
    head = parsed as Record<string, unknown>;
  } catch {
    return { ok: false, error: 'header is not JSON' };
  }
  if (!isTime(head.now)) return { ok: false, error: 'header has no valid "now"' };
  const rest = buf.subarray(nl + 1);
  switch (head.t) {
    case 'A': {
      const d = decodeMemberState(rest);
      if (!d.ok) return d;
      const raw = Array.isArray(head.neighbours) ? head.neighbours.slice(0, MAX_SHARED_NEIGHBOURS) : [];
      const neighbours: SharedNeighbour[] = [];
      for (const n of raw) {
        if (!Array.isArray(n) || n.length !== 2 || typeof n[0] !== 'string' || typeof n[1] !== 'string') continue;
        const a = canonicalAddress(n[0]);
        if (a === null || a.includes(':') || !MAC_RE.test(n[1])) continue;
        neighbours.push([a, n[1]]);
      }
      return { ok: true, message: { type: 'announce', now: head.now, state: d.state, neighbours } };
    }
    case 'M': {
      const address = typeof head.address === 'string' ? canonicalAddress(head.address) : null;
      if (address === null || !isNodeName(head.node)) return { ok: false, error: 'move needs an address and a node name' };
      return { ok: true, message: { type: 'move', now: head.now, address, node: head.node } };
    }
    case 'D':
      if (!isNodeName(head.node) || typeof head.drained !== 'boolean') return { ok: false, error: 'drain needs a node name and drained true or false' };
      return { ok: true, message: { type: 'drain', now: head.now, node: head.node, drained: head.drained } };
    case 'R':
    case 'r':
      if (!isNodeName(head.node)) return { ok: false, error: 'reload needs a node name' };
      return { ok: true, message: { type: head.t === 'R' ? 'reload' : 'reloaded', now: head.now, node: head.node } };
    case 'T':
      return { ok: true, message: { type: 'tick', now: head.now } };
    case 'P':
      return { ok: true, message: { type: 'ping', now: head.now } };
    default:
      return { ok: false, error: `unknown message type ${JSON.stringify(head.t)?.slice(0, 20)}` };
  }
}
