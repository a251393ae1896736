// Wire-form conversion of DATA chunks (dot-stuffing, line ends, state across chunk boundaries),
// checked through a real spool (sync 'none') against the reference in helpers.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { Spool } from '../../../src/spool/index.js';
import { tempDir, wireForm } from './helpers.js';

let dir: string;
let spool: Spool;

beforeAll(() => {
  dir = tempDir('wire');
  spool = Spool.open({ directory: dir, nodeId: 'wire', sync: 'none', preallocate: 'none' });
});
afterAll(async () => {
  await spool.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function store(...chunks: (string | Buffer)[]): Promise<{ body: Buffer; size: number }> {
  const m = spool.writer().begin();
  for (const c of chunks) m.append(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  const { id, size } = await m.commit(Buffer.from('{}'));
  return { body: spool.read(id), size };
}

async function text(...chunks: (string | Buffer)[]): Promise<string> {
  return (await store(...chunks)).body.toString('latin1');
}

describe('spool wire form', () => {
  it('keeps CRLF lines as they are', async () => {
    expect(await text('a\r\nb\r\n')).toBe('a\r\nb\r\n');
  });

  it('turns bare LF into CRLF', async () => {
    expect(await text('a\nb\n\n')).toBe('a\r\nb\r\n\r\n');
  });

  it('turns a lone CR into CRLF (no bare CR reaches a peer)', async () => {
    expect(await text('a\rb\r\n')).toBe('a\r\nb\r\n');
    expect(await text('a\r.\r\n')).toBe('a\r\n..\r\n');
  });

  it('doubles a dot at the start of a line, also at the start of a chunk and of the message', async () => {
    expect(await text('.x\r\n')).toBe('..x\r\n');
    expect(await text('a\r\n', '.b\r\n')).toBe('a\r\n..b\r\n');
    expect(await text('a\r\n', '.', '\r\n')).toBe('a\r\n..\r\n');
    expect(await text('a.b\r\n. c\r\n')).toBe('a.b\r\n.. c\r\n');
  });

  it('joins a CR at the end of one chunk with the LF at the start of the next', async () => {
    expect(await text('a\r', '\nb\r\n')).toBe('a\r\nb\r\n');
    expect(await text('a\r', '', '\n', '.b\r\n')).toBe('a\r\n..b\r\n');
    expect(await text('a\r', '\r\nb')).toBe('a\r\n\r\nb\r\n');
    expect(await text('a\r', '.b\n')).toBe('a\r\n..b\r\n');
  });

  it('preserves NUL and 8-bit bytes', async () => {
    const { body } = await store(Buffer.from([0, 0x41, 0, 0xff, 0x80, 10]));
    expect([...body]).toEqual([0, 0x41, 0, 0xff, 0x80, 13, 10]);
  });

  it('ends a non-empty body with CRLF and keeps an empty body empty', async () => {
    expect(await text('no newline')).toBe('no newline\r\n');
    expect(await text('ends in cr\r')).toBe('ends in cr\r\n');
    const { body, size } = await store();
    expect(body.length).toBe(0);
    expect(size).toBe(0);
  });

  it('gives the same bytes however the data is split into chunks', async () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = [46, 13, 10, 97, 0, 98, 46, 13, 10, 0xe9];
    for (let round = 0; round < 40; round++) {
      const input = Buffer.from(Array.from({ length: 1 + rnd(600) }, () => alphabet[rnd(alphabet.length)]!));
      const chunks: Buffer[] = [];
      for (let i = 0; i < input.length; ) {
        const n = 1 + rnd(round % 2 === 0 ? 3 : 64);
        chunks.push(input.subarray(i, i + n));
        i += n;
      }
      const expected = wireForm(input);
      const got = await store(...chunks);
      expect(got.body.equals(expected)).toBe(true);
      expect(got.size).toBe(expected.length);
    }
  });

  it('handles a body far larger than the initial buffer', async () => {
    const line = Buffer.from('.0123456789'.repeat(7) + '\n');
    const chunks = Array.from({ length: 20000 }, () => line);
    const { body } = await store(...chunks);
    expect(body.equals(wireForm(Buffer.concat(chunks)))).toBe(true);
  });
});
