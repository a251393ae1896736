// The one typed facade over native/ (build/Release/vipmta.node). Nothing else in src/ loads the
// addon. Each section below belongs to one native file; functions are either short synchronous
// system calls or return Promises backed by AsyncWorkers. Safe to import from worker threads:
// Node-API loads a separate instance of the addon per thread.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ErrorCode, VipError } from '../errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/native/index.js and src/native/index.ts both sit two levels below the package root.
const addonPath = path.resolve(here, '..', '..', 'build', 'Release', 'vipmta.node');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Binding = Record<string, any>;

function load(): Binding {
  const require = createRequire(import.meta.url);
  try {
    return require(addonPath) as Binding;
  } catch (err) {
    throw new VipError(
      ErrorCode.NATIVE_UNAVAILABLE,
      `cannot load the native addon at ${addonPath}: run "npm ci" (or "npm run build") first`,
      { cause: err },
    );
  }
}

const binding: Binding = load();

// ---- socket.cc -------------------------------------------------------------------------------

// ---- netlink.cc ------------------------------------------------------------------------------

// ---- spool.cc --------------------------------------------------------------------------------

/** @internal for tests of the facade itself: the raw binding's export names. */
export function nativeExports(): string[] {
  return Object.keys(binding).sort();
}
