// Loads the native addon (build/Release/vipmta.node), the only module that does, and hands it the
// JS error class once (better-sqlite3's pattern), so every error thrown or rejected from C++ is a
// VipError with a stable `code`. Runs on each thread that imports src/native/ (Node-API loads one
// instance of the addon per thread); blocks once, on the dlopen at first import.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ErrorCode, VipError } from '../errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/native/addon.js and src/native/addon.ts both sit two levels below the package root.
const addonPath = path.resolve(here, '..', '..', 'build', 'Release', 'vipmta.node');

/** The raw exports of the addon; each module of src/native/ types the part of its own .cc file. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Binding = Record<string, any>;

function load(): Binding {
  const require = createRequire(import.meta.url);
  let b: Binding;
  try {
    b = require(addonPath) as Binding;
  } catch (err) {
    throw new VipError(
      ErrorCode.NATIVE_UNAVAILABLE,
      `cannot load the native addon at ${addonPath}: run "npm ci" (or "npm run build") first`,
      { cause: err },
    );
  }
  // errors.cc constructs `new VipError(code, message, { errno?, syscall? })` from now on.
  b.setErrorClass(VipError);
  return b;
}

export const binding: Binding = load();

/** @internal for tests of the facade itself: the raw binding's export names. */
export function nativeExports(): string[] {
  return Object.keys(binding).sort();
}
