// Temporary directories for tests, removed after each test file (test/helpers/cleanup.ts, a vitest
// setup file) and, as a fallback, when the test process exits. Leftovers are not harmless: a spool
// allocates its segments up front, and a few hundred runs of the suite filled a 250 GB disk.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const made = new Set<string>();
let hooked = false;

/** A new directory under the system's temp directory, named `<prefix>XXXXXX`. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.add(dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', removeTempDirs);
  }
  return dir;
}

/** Removes every directory tempDir() made in this process. */
export function removeTempDirs(): void {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
  made.clear();
}
