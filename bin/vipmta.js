#!/usr/bin/env node
// The `vipmta` command: a thin shim over the compiled CLI so `npm ci` + `npx vipmta` work from a checkout.
import '../dist/cli/main.js';
