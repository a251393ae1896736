// Shared helpers of the spool tests (unit, native, integration): temp directories, message
// bodies already in wire form, a JS reference of the wire-form conversion. Test process only.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Spool, type SpoolOptions } from '../../../src/spool/index.js';
import { tempDir as makeTempDir } from '../../helpers/tmp.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The compiled spool module, for worker threads and child processes (built by `npm test`). */
export const distSpool = path.join(root, 'dist', 'spool', 'index.js');
/** The same as a file: URL, for `import` in eval'd or data: URL code. */
export const distSpoolUrl = pathToFileURL(distSpool).href;

export function tempDir(tag: string): string {
  return makeTempDir(`vipmta-${tag}-`);
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** RFC 5321 wire form as the spool stores it (reference implementation, byte at a time). */
export function wireForm(input: Buffer): Buffer {
  const out: number[] = [];
  let lineStart = true;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === 13) {
      out.push(13, 10);
      lineStart = true;
      if (input[i + 1] === 10) i++;
      continue;
    }
    if (c === 10) {
      out.push(13, 10);
      lineStart = true;
      continue;
    }
    if (lineStart && c === 46) out.push(46);
    out.push(c);
    lineStart = false;
  }
  if (!lineStart) out.push(13, 10);
  return Buffer.from(out);
}

/** A body that is already in wire form (so stored bytes equal it): CRLF lines of letters. */
export function wireBody(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = 97 + ((x >>> 0) % 26);
  }
  for (let i = 76; i < size - 3; i += 78) {
    b[i] = 13;
    b[i + 1] = 10;
  }
  if (size >= 2) {
    b[size - 2] = 13;
    b[size - 1] = 10;
  }
  return b;
}

/**
 * Spools opened on temp directories by one test file, closed and removed after each test
 * (`afterEach(() => fx.cleanup())`); also builds dist/ once if it is missing (`fx.ensureBuilt()`
 * in beforeAll), since worker and child code import it.
 */
export class SpoolFixture {
  private readonly dirs: string[] = [];
  private readonly open: Spool[] = [];
  constructor(private readonly tag: string) {}

  ensureBuilt(): void {
    if (!fs.existsSync(distSpool)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  }
  dir(): string {
    const d = tempDir(this.tag);
    this.dirs.push(d);
    return d;
  }
  openSpool(opts: Partial<SpoolOptions> & { directory: string }): Spool {
    const s = Spool.open({ nodeId: 'test-node', ...opts });
    this.open.push(s);
    return s;
  }
  /** Closes one spool now (the test goes on with the directory). */
  async close(s: Spool): Promise<void> {
    this.open.splice(this.open.indexOf(s), 1);
    await s.close();
  }
  async cleanup(): Promise<void> {
    for (const s of this.open.splice(0)) await s.close();
    for (const d of this.dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
}

/** Commits one message through the spool's writer; resolves to its queue id once durable. */
export async function commitMessage(s: Spool, body: Buffer, envelope = '{"from":"a@b"}'): Promise<string> {
  const m = s.writer().begin();
  m.append(body);
  return (await m.commit(Buffer.from(envelope))).id;
}

/** The spool's segment files, oldest first. */
export function segmentFiles(d: string): string[] {
  return fs.readdirSync(d).filter((f) => f.endsWith('.spool')).sort();
}
