// Where the package's own files are, whether this module runs from src/ (vitest) or dist/ (the
// installed CLI). Worker threads always run compiled JavaScript from dist/, which `npm ci` and
// `npm test` build first.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (the directory holding package.json). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Absolute path of a compiled module under dist/, e.g. distFile('workers/worker.js'). */
export function distFile(rel: string): string {
  return path.join(packageRoot, 'dist', rel);
}
