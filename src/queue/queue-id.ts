// Queue ids in three numbers: the spool names a message `<node>-<segment>-<sequence>` (native
// spool_commit.cc, EncodeMessageRecord: "%s-%08llx-%06x"), so the store keeps the node name
// interned (Uint16) and the two hex fields as Uint32s, 10 bytes a part instead of a 40-byte V8
// string, and rebuilds the text when it is shown or sent. Ids of another form (tests, a future
// format) are kept as text by the caller (store.ts). Main thread only; never blocks.

/** Node names interned at most (0 is "not compact"); more fall back to text. */
const MAX_NODES = 0xffff;
/** Longest node name taken (the spool's sanitized names are at most 32 characters). */
const MAX_NODE_LEN = 64;
/** Past this many names, a lookup goes through a Map (it slices the name out: one allocation). */
const SCAN_NODES = 32;

/** A lowercase hex digit's value, or -1. */
function hexValue(c: number): number {
  return c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
}

const HEX_CODES = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

export class QueueIds {
  private readonly names: string[] = [''];
  private readonly index = new Map<string, number>();
  private last = 0;
  /** The fields of the last id parse() accepted. */
  node = 0;
  seg = 0;
  seq = 0;
  private readonly scratch = Buffer.allocUnsafeSlow(MAX_NODE_LEN + 24);

  /**
   * Splits `id` into node, segment and sequence (this.node/seg/seq) when it is in the spool's
   * form and rebuilds exactly (format(parse(id)) === id): segment 8 lowercase hex digits,
   * sequence 6 to 8 without a leading zero past 6, a node name of printable ASCII. An unknown node
   * name is interned when `intern`, else node is 0 (no such id is stored compact). False: not in
   * that form, or no room for another node name. No allocation when the node name is known.
   */
  parse(id: string, intern: boolean): boolean {
    const len = id.length;
    let p = len - 1;
    let seq = 0;
    let mul = 1;
    while (p >= 0) {
      const v = hexValue(id.charCodeAt(p));
      if (v < 0) break;
      seq += v * mul;
      mul *= 16;
      p--;
    }
    const digits = len - 1 - p;
    if (digits < 6 || digits > 8 || (digits > 6 && id.charCodeAt(p + 1) === 48) || p < 10 || id.charCodeAt(p) !== 45) return false;
    let seg = 0;
    for (let i = p - 8; i < p; i++) {
      const v = hexValue(id.charCodeAt(i));
      if (v < 0) return false;
      seg = seg * 16 + v;
    }
    const nodeLen = p - 9;
    if (id.charCodeAt(nodeLen) !== 45 || nodeLen < 1 || nodeLen > MAX_NODE_LEN) return false;
    for (let i = 0; i < nodeLen; i++) {
      const c = id.charCodeAt(i);
      if (c < 0x21 || c > 0x7e) return false;
    }
    const node = this.lookup(id, nodeLen, intern);
    if (node < 0) return false;
    this.node = node;
    this.seg = seg;
    this.seq = seq;
    return true;
  }

  /** The node number of id's first `n` characters; 0 when not interned (and not `intern`),
   *  -1 when there is no room to intern it. */
  private lookup(id: string, n: number, intern: boolean): number {
    const names = this.names;
    const l = names[this.last]!;
    if (l.length === n && id.startsWith(l)) return this.last;
    if (names.length <= SCAN_NODES) {
      for (let i = 1; i < names.length; i++) {
        const c = names[i]!;
        if (c.length === n && id.startsWith(c)) return (this.last = i);
      }
      if (!intern) return 0;
    }
    const name = id.slice(0, n);
    const i = this.index.get(name);
    if (i !== undefined) return (this.last = i);
    if (!intern) return 0;
    if (names.length > MAX_NODES) return -1;
    this.index.set(name, names.length);
    names.push(name);
    return (this.last = names.length - 1);
  }

  /** The id of (node, seg, seq) as the spool wrote it: one string allocated. Hot (each part a
   *  batch sends): "<node>-<seg>-" is kept for the last (node, seg), which a segment's messages share. */
  format(node: number, seg: number, seq: number): string {
    const b = this.scratch;
    let p: number;
    if (node === this.fNode && seg === this.fSeg) p = this.fLen;
    else {
      const name = this.names[node]!;
      for (p = 0; p < name.length; p++) b[p] = name.charCodeAt(p);
      b[p++] = 45;
      for (let k = 28; k >= 0; k -= 4) b[p++] = HEX_CODES[(seg >>> k) & 15]!;
      b[p++] = 45;
      this.fNode = node;
      this.fSeg = seg;
      this.fLen = p;
    }
    let k = 20;
    while (k < 28 && seq >>> (k + 4) !== 0) k += 4;
    for (; k >= 0; k -= 4) b[p++] = HEX_CODES[(seq >>> k) & 15]!;
    return b.toString('latin1', 0, p);
  }

  /** The (node, seg) whose "<node>-<seg>-" is in scratch[0, fLen). */
  private fNode = -1;
  private fSeg = -1;
  private fLen = 0;
}

/** A 32-bit hash of a compact id (murmur3's finalizer over the three fields). */
export function hashCompact(node: number, seg: number, seq: number): number {
  let h = Math.imul(seg, 0x9e3779b1) ^ seq ^ Math.imul(node, 0x85ebca6b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash (FNV-1a) of bytes [a, b) of `buf`: ids kept as text. */
export function hashBytes(buf: Uint8Array, a: number, b: number): number {
  let h = 0x811c9dc5;
  for (let i = a; i < b; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}
