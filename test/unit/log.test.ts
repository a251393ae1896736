import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LineBatcher } from '../../src/log.js';

const line = (level: string, msg: string): string => `{"level":"${level}","time":"t","msg":"${msg}"}\n`;

describe('log lines in batches', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('holds info lines until the batch timer, then writes them in one write, in order', () => {
    vi.useFakeTimers();
    const writes: string[] = [];
    const b = new LineBatcher({ write: (s: string) => writes.push(s) });
    b.write(line('info', 'a'));
    b.write(line('debug', 'b'));
    b.write(line('info', 'c'));
    expect(writes).toEqual([]);
    vi.advanceTimersByTime(60);
    expect(writes).toEqual([line('info', 'a') + line('debug', 'b') + line('info', 'c')]);
  });

  it('writes a warning or worse at once, after the lines logged before it', () => {
    vi.useFakeTimers();
    const writes: string[] = [];
    const b = new LineBatcher({ write: (s: string) => writes.push(s) });
    b.write(line('info', 'a'));
    b.write(line('error', 'b'));
    expect(writes).toEqual([line('info', 'a') + line('error', 'b')]);
    b.write(line('warn', 'c'));
    b.write(line('fatal', 'd'));
    expect(writes.slice(1)).toEqual([line('warn', 'c'), line('fatal', 'd')]);
  });

  it('never writes more than 4096 bytes of whole lines at once, counting UTF-8 bytes', () => {
    vi.useFakeTimers();
    const writes: string[] = [];
    const b = new LineBatcher({ write: (s: string) => writes.push(s) });
    const sent: string[] = [];
    for (let i = 0; i < 200; i++) {
      const l = line('info', `${i} ${'é'.repeat(i % 50)}`);
      sent.push(l);
      b.write(l);
    }
    const long = line('info', 'x'.repeat(10_000));
    b.write(long);
    sent.push(long);
    vi.advanceTimersByTime(60);
    expect(writes.join('')).toBe(sent.join(''));
    for (const w of writes) {
      expect(w.endsWith('\n')).toBe(true);
      if (w !== long) expect(Buffer.byteLength(w)).toBeLessThanOrEqual(4096);
    }
    expect(writes.length).toBeGreaterThan(2);
  });

  it('writes what is waiting when the process exits', () => {
    // The compiled module (`npm test` builds dist/ first), in a child that logs info lines and
    // exits at once, before any batch timer could fire.
    const logJs = pathToFileURL(path.resolve('dist/log.js')).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import('${logJs}').then(({ createLogger }) => { const l = createLogger('info'); for (let i = 0; i < 5; i++) l.info('line ' + i); process.exit(3); })`], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    const msgs = r.stdout.trim().split('\n').map((s) => (JSON.parse(s) as { msg: string }).msg);
    expect(msgs).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
  });
});
