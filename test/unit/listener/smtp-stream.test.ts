// The indexOf-based DATA parser must behave exactly like smtp-server's own: same message bytes,
// same end of data, same bytes left over for the next command, whatever the chunking.
import crypto from 'node:crypto';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { describe, expect, it } from 'vitest';
import { FastSmtpStream } from '../../../src/listener/smtp-stream.js';

interface Outcome {
  data: Buffer;
  commands: string[];
  byteLength: number;
}

/** Feeds `wire` (a DATA body with its terminator, then commands) in the given chunks. */
async function run(Ctor: typeof SMTPStream, wire: Buffer, cuts: number[]): Promise<Outcome> {
  const parser = new Ctor();
  const commands: string[] = [];
  const parts: Buffer[] = [];
  const ended = new Promise<number>((resolve) => {
    const ds = parser.startDataMode();
    ds.on('data', (d: Buffer) => parts.push(Buffer.from(d)));
    ds.on('end', () => {
      resolve(ds.byteLength);
      parser.continue();
    });
  });
  parser.oncommand = (cmd: Buffer, cb?: () => void) => {
    commands.push(cmd.toString('latin1'));
    cb?.();
  };
  let prev = 0;
  for (const c of [...cuts, wire.length]) {
    const piece = wire.subarray(prev, c);
    prev = c;
    if (piece.length > 0) await new Promise<void>((r) => parser.write(piece, () => r()));
  }
  const byteLength = await ended;
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  return { data: Buffer.concat(parts), commands, byteLength };
}

function randomBody(rng: () => number): Buffer {
  const atoms = ['.', '..', '\r\n', '\n', '\r', 'a', 'bc', '\r\n.', '\r\n..', '.\r\n', '\x00', 'xyz '];
  let s = '';
  const n = Math.floor(rng() * 40);
  for (let i = 0; i < n; i++) s += atoms[Math.floor(rng() * atoms.length)];
  // Make it a valid dot-stuffed body: stuff any line-leading dot, then terminate.
  const stuffed = s.replace(/(^|\r\n)\./g, '$1..');
  return Buffer.from(stuffed + '\r\n.\r\nQUIT\r\n', 'latin1');
}

describe('fast DATA parser', () => {
  it('matches smtp-server on 3,000 random bodies and chunkings', async () => {
    let seed = 12345;
    const rng = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    for (let k = 0; k < 3000; k++) {
      const wire = randomBody(rng);
      const cuts = Array.from({ length: Math.floor(rng() * 4) }, () => Math.floor(rng() * wire.length)).sort((a, b) => a - b);
      const a = await run(SMTPStream, wire, cuts);
      const b = await run(FastSmtpStream, wire, cuts);
      expect(b, `case ${k}: ${JSON.stringify(wire.toString('latin1'))} cut at ${cuts.join(',')}`).toEqual(a);
    }
  });

  it('handles a 64 KiB body with many stuffed dots the same way', async () => {
    const lines = Array.from({ length: 1500 }, (_, i) => (i % 7 === 0 ? '..dot ' : 'line ') + crypto.randomBytes(16).toString('hex'));
    const wire = Buffer.from(lines.join('\r\n') + '\r\n.\r\nQUIT\r\n');
    const cuts = [1, 4096, 4097, 30000, 65000];
    const a = await run(SMTPStream, wire, cuts);
    const b = await run(FastSmtpStream, wire, cuts);
    expect(b).toEqual(a);
    expect(a.commands).toEqual(['QUIT']);
    expect(a.data.toString()).toContain('\r\n.dot ');
  });
});
