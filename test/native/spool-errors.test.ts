// Errors across the native boundary, with the spool as the example: every error made in C++ is an
// instance of the JS class the loader hands the addon (VipError), with its stable code, errno and
// syscall, on the main thread and in workers; and a journal the spool cannot read fails the open
// with such an error instead of being skipped. Real files in temp directories; worker code imports dist/.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Spool, attachSpool } from '../../src/spool/index.js';
import { ErrorCode, VipError } from '../../src/errors.js';
import { distSpool, distSpoolUrl, root, tempDir, wireBody } from '../unit/spool/helpers.js';

const distErrorsUrl = pathToFileURL(path.join(root, 'dist', 'errors.js')).href;
const dirs: string[] = [];
const open: Spool[] = [];

function dir(): string {
  const d = tempDir('spool-errors');
  dirs.push(d);
  return d;
}
function openSpool(directory: string): Spool {
  const s = Spool.open({ directory, nodeId: 'test-node' });
  open.push(s);
  return s;
}
async function commit(s: Spool, body: Buffer): Promise<string> {
  const m = s.writer().begin();
  m.append(body);
  return (await m.commit(Buffer.from('{}'))).id;
}
function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

beforeAll(() => {
  if (!fs.existsSync(distSpool)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('native errors', () => {
  it('throws instances of VipError with our code from C++', () => {
    const e = caught(() => attachSpool(dir()));
    expect(e).toBeInstanceOf(VipError);
    expect(e).toMatchObject({ code: ErrorCode.SPOOL_CLOSED });
    expect((e as VipError).errno).toBeUndefined();
  });

  it('throws instances of VipError with the errno name, errno and syscall for a failed system call', async () => {
    const s = openSpool(dir());
    const e = caught(() => s.read('test-node-00000001-000001'));
    expect(e).toBeInstanceOf(VipError);
    expect(e).toMatchObject({ code: 'ENOENT', errno: 2, syscall: 'read' });
    expect((e as Error).message).toMatch(/^read no queued message test-node-00000001-000001: .* \(ENOENT\)$/);
  });

  it('rejects with instances of VipError from the commit thread (settled through the thread-safe function)', async () => {
    const s = openSpool(dir());
    const err = await s.update('test-node-00000001-000001', Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VipError);
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'update' });
    await s.close();
    const closed = await s.markDone(['x']).catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(VipError);
    expect(closed).toMatchObject({ code: ErrorCode.SPOOL_CLOSED });
  });

  it('makes VipError instances in a worker thread too (the class is handed over on every thread)', async () => {
    const d = dir();
    const code = `
      import { attachSpool } from ${JSON.stringify(distSpoolUrl)};
      import { VipError } from ${JSON.stringify(distErrorsUrl)};
      import { parentPort, workerData } from 'node:worker_threads';
      try { attachSpool(workerData.dir); parentPort.postMessage({ threw: false }); }
      catch (e) { parentPort.postMessage({ threw: true, instance: e instanceof VipError, code: e.code }); }`;
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: { dir: d } });
    const got = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    expect(got).toEqual({ threw: true, instance: true, code: ErrorCode.SPOOL_CLOSED });
  });
});

describe('a journal that cannot be read', () => {
  it('fails the open with a coded error naming the file, and loses nothing: once readable, the done-marks hold', async () => {
    const d = dir();
    let s = openSpool(d);
    const ids = [await commit(s, wireBody(100, 1)), await commit(s, wireBody(100, 2))];
    await s.markDone([ids[0]!]);
    await s.close();
    const journals = fs.readdirSync(d).filter((f) => f.startsWith('journal-') && f.endsWith('.log'));
    expect(journals).toHaveLength(1);
    const journal = path.join(d, journals[0]!);
    // A directory where the journal should be: open(2) fails (EISDIR), as it would for EACCES or EIO.
    fs.renameSync(journal, `${journal}.aside`);
    fs.mkdirSync(journal);
    const e = caught(() => Spool.open({ directory: d, nodeId: 'test-node' }));
    expect(e).toBeInstanceOf(VipError);
    expect(e).toMatchObject({ code: 'EISDIR', syscall: 'open', errno: 21 });
    expect((e as Error).message).toContain(journals[0]!);
    expect((e as Error).message).toContain('delivered messages would be sent again');
    // The failed open kept its hands off: the lock is released and the segment is untouched.
    fs.rmdirSync(journal);
    fs.renameSync(`${journal}.aside`, journal);
    s = openSpool(d);
    expect(s.recover().map((r) => r.id)).toEqual([ids[1]]);
    expect(s.recoveryEvents).toEqual([]);
  });
});
