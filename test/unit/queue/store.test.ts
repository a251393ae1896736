// The queue's compact part store without V8 strings: queue ids as numbers (queue-id.ts), senders
// and recipients in the byte arena (arena.ts, senders.ts) with compaction, and the id table
// (id-table.ts). Randomized runs check them against plain JS maps as the oracle.
import { describe, expect, it } from 'vitest';
import { ByteArena, EMPTY_REC } from '../../../src/queue/arena.js';
import { IdTable } from '../../../src/queue/id-table.js';
import { QueueIds } from '../../../src/queue/queue-id.js';
import { PartStore } from '../../../src/queue/store.js';

function rng(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return Math.floor((x / 2 ** 31) * n);
  };
}

const hex = (v: number, w: number): string => v.toString(16).padStart(w, '0');

describe('queue ids', () => {
  it('rebuild ids in the spool form exactly and leave others as text', () => {
    const ids = new QueueIds();
    for (const id of ['n1-00000000-000000', 'mta-a-2-ffffffff-ffffff', 'node-0000abcd-1000000', 'x-deadbeef-ffffffff', 'a-00000001-000001']) {
      expect(ids.parse(id, true), id).toBe(true);
      expect(ids.format(ids.node, ids.seg, ids.seq)).toBe(id);
    }
    for (const id of ['q1', 'dsn', '', 'n1-0000000-000000', 'n1-0000000G-000000', 'n1-0000000A-000000', 'n1-00000000-00000', 'n1-00000000-0000001',
      'n1-00000000-100000000', 'n 1-00000000-000000', '-00000000-000000', 'n1_00000000-000000', 'é-00000000-000000', `${'n'.repeat(65)}-00000000-000000`]) {
      expect(ids.parse(id, true), id).toBe(false);
    }
  });

  it('does not intern a node name on a lookup', () => {
    const ids = new QueueIds();
    expect(ids.parse('n9-00000000-000001', false)).toBe(true);
    expect(ids.node).toBe(0);
    expect(ids.parse('n9-00000000-000001', true)).toBe(true);
    expect(ids.node).toBe(1);
    // Past the names a lookup scans, the Map finds them.
    for (let i = 0; i < 40; i++) ids.parse(`m${i}-00000000-000001`, true);
    expect(ids.parse('m3-00000000-000001', false) && ids.format(ids.node, ids.seg, ids.seq)).toBe('m3-00000000-000001');
  });
});

describe('byte arena', () => {
  it('keeps strings of every size and UTF-8, the empty one without a record', () => {
    const ar = new ByteArena();
    const strs = ['a', 'x'.repeat(63), 'y'.repeat(64), 'z'.repeat(9000), 'ü'.repeat(40_000), '用户@例子.广告', 'w'.repeat(3 * 1024 * 1024)];
    const at = strs.map((s) => ar.put(s));
    strs.forEach((s, i) => expect(ar.str(at[i]!)).toBe(s));
    expect(ar.put('')).toBe(EMPTY_REC);
    expect(ar.str(EMPTY_REC)).toBe('');
    const live = strs.reduce((n, s, i) => n + ar.size(at[i]!), 0);
    expect(ar.used - ar.garbage).toBe(live);
  });

  it('never splits a record across its 1 MiB chunks', () => {
    const ar = new ByteArena();
    const at: number[] = [];
    for (let i = 0; i < 100_000; i++) at.push(ar.put(`user${i}@d${i % 977}.example.net`));
    expect(ar.chunks).toBeGreaterThan(2);
    for (let i = 0; i < at.length; i++) if (ar.str(at[i]!) !== `user${i}@d${i % 977}.example.net`) expect.fail(`record ${i}`);
    for (const a of at) ar.release(a);
    expect(ar.wantsCompaction).toBe(false); // 3 MB: under its first 4 MiB, never compacted
  });
});

describe('part store', () => {
  it('gives back ids, senders and recipients as set, across compactions under churn', () => {
    const r = rng(42);
    const home: string[] = [];
    const st = new PartStore((s) => home[s]!, new ByteArena(0));
    const domains = ['d0.example', 'bücher.example', 'xn--bcher-kva.example', 'D3.Example'];
    const oracle = new Map<number, { id: string; from: string; rcpt: string[] }>();
    const ring = new Map<number, number[]>(); // first part -> parts
    let n = 0;
    const add = (): void => {
      n++;
      const id = r(4) === 0 ? `other id ${n} ✓` : `node${r(3)}-${hex(n >>> 10, 8)}-${hex(n & 0x3ff, 6)}`;
      const from = r(5) === 0 ? '' : r(4) === 0 ? `ünï${n}@sënder.example` : `bounce-${n}@news${r(3)}.example`;
      const parts: number[] = [];
      for (let k = 1 + r(3); k > 0; k--) {
        const s = st.alloc();
        const d = domains[r(domains.length)]!;
        home[s] = d.toLowerCase();
        if (parts.length === 0) st.setMessage(s, id, from);
        else st.join(parts[0]!, s);
        // Mostly in the home domain as is (stored without it), sometimes in another case.
        const rcpt = Array.from({ length: 1 + r(3) }, (_, i) => `u${n}.${i}${r(10) === 0 ? '@' + d : '@' + d.toLowerCase()}`);
        st.setRcpts(s, rcpt);
        oracle.set(s, { id, from, rcpt });
        parts.push(s);
      }
      ring.set(parts[0]!, parts);
    };
    const check = (): void => {
      for (const [s, o] of oracle) {
        expect(st.idOf(s)).toBe(o.id);
        expect(st.fromOf(s)).toBe(o.from);
        expect(st.rcptsOf(s)).toEqual(o.rcpt);
      }
    };
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 1500; i++) add();
      // Partial deliveries: recipients replaced by fewer.
      for (const [s, o] of oracle) {
        if (r(3) !== 0) continue;
        o.rcpt = o.rcpt.slice(0, 1);
        st.setRcpts(s, o.rcpt);
      }
      // Most messages finish, part by part.
      for (const [first, parts] of [...ring]) {
        if (r(10) < 3) continue;
        for (const s of parts) {
          st.free(s);
          oracle.delete(s);
        }
        ring.delete(first);
      }
      check();
    }
    expect(st.arena.compactions).toBeGreaterThan(10);
    // Garbage stays under about half: the arena holds little more than twice the live bytes.
    expect(st.arena.garbage * 2).toBeLessThanOrEqual(st.arena.used + 1);
    expect(st.count).toBe(oracle.size);
    // No recipients reads back as today's ''.split('\n') did.
    const e = st.alloc();
    home[e] = 'd0.example';
    st.setRcpts(e, []);
    expect(st.rcptsOf(e)).toEqual(['']);
  });
});

describe('id table', () => {
  function run(spread: (h: number) => number, seed: number): void {
    const r = rng(seed);
    const st = new PartStore();
    const table = new IdTable(st, spread, 8);
    const oracle = new Map<string, number>();
    const live: string[] = [];
    for (let op = 0; op < 6000; op++) {
      if (live.length === 0 || r(3) !== 0) {
        const n = op;
        const id = r(3) === 0 ? `q${n}` : `n${r(2)}-${hex(r(4), 8)}-${hex(n, 6)}`;
        if (oracle.has(id)) continue;
        const s = st.alloc();
        st.setMessage(s, id, 'a@b.example');
        expect(table.has(id)).toBe(false);
        table.insert(s);
        oracle.set(id, s);
        live.push(id);
      } else {
        const i = r(live.length);
        const id = live[i]!;
        live[i] = live[live.length - 1]!;
        live.pop();
        const s = oracle.get(id)!;
        table.remove(s);
        st.free(s);
        oracle.delete(id);
      }
      if (op % 500 === 0) {
        expect(table.size).toBe(oracle.size);
        for (const [id, s] of oracle) expect(table.find(id), id).toBe(s);
        expect(table.find('n0-ffffffff-ffffff')).toBe(-1);
        expect(table.find('nope')).toBe(-1);
      }
    }
    for (const [id, s] of oracle) {
      expect(table.find(id)).toBe(s);
      expect(table.headOf(s)).toBe(s);
    }
    const seen: number[] = [];
    table.forEach((s) => seen.push(s));
    expect(seen.sort((a, b) => a - b)).toEqual([...oracle.values()].sort((a, b) => a - b));
  }

  it('finds what a Map finds through growth and deletion', () => run((h) => h, 1));
  it('finds what a Map finds when every id collides in a few buckets', () => run((h) => h & 3, 2));

  it('moves a message entry to another of its parts', () => {
    const st = new PartStore();
    const table = new IdTable(st);
    const a = st.alloc();
    st.setMessage(a, 'n1-00000001-000001', 'x@y.example');
    const b = st.alloc();
    st.join(a, b);
    table.insert(a);
    expect(table.headOf(b)).toBe(a);
    table.replace(b, a); // b is not the entry: nothing changes
    expect(table.find('n1-00000001-000001')).toBe(a);
    table.replace(a, b);
    expect(table.find('n1-00000001-000001')).toBe(b);
    st.free(a);
    expect(st.idOf(b)).toBe('n1-00000001-000001');
    table.remove(b);
    expect(table.size).toBe(0);
  });
});
