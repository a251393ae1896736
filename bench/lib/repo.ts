// Small helpers every whole-process benchmark needs: where the checkout is, and a list option.
// Pure; benchmark main threads only.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The vipmta checkout this file was compiled from (the benches run from node_modules/.cache). */
export function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(d, 'package.json');
    if (fs.existsSync(pj) && (JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'vipmta') return d;
    const up = path.dirname(d);
    if (up === d) return process.cwd();
    d = up;
  }
}

/** "4096,65536" -> [4096, 65536]; anything but positive integers is an error naming the option. */
export function list(s: string, what: string): number[] {
  const v = s.split(',').map((x) => Number(x.trim()));
  if (v.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`--${what}: expected positive integers, got "${s}"`);
  return v;
}
