// Fills a file system for the full-disk tests: writes into one file until not one byte more fits.
import fs from 'node:fs';

/** Writes into `file` in shrinking chunks until a one-byte write gets ENOSPC. */
export function fillUp(file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (const size of [64 * 1024, 4096, 1]) {
      const b = Buffer.alloc(size, 0x78);
      for (;;) {
        try {
          fs.writeSync(fd, b);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
