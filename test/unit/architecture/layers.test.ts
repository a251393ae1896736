// The layout's one rule, checked on the source: every import of src/ goes down the layers (or stays
// inside its own folder), no file takes part in an import circle, and only src/native/addon.ts loads
// the addon. docs/architecture.md explains the layers; this test is what keeps it true.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../../src');

/** Layer of each top-level folder (or file) of src/: an import may only go to a lower layer, or
 *  stay in its own folder. Hosts above engines above the shared vocabulary. */
const LAYERS: Record<string, number> = {
  cli: 10,
  node: 9, // the process: lifecycle, intake, reload, dispatch
  cluster: 8, // membership, election, addresses (main thread)
  control: 7, // console socket, HTTP admin API, metrics
  workers: 6, // the worker host: pool, protocol, socket set, engine hosts
  queue: 6, // the queue manager (main thread)
  aggregate: 6, // the Log_Aggregator: pulls members' journals (main thread)
  export: 6, // event exporters (Event_Webhook): read the journal, POST batches (main thread)
  listener: 5, // engines...
  delivery: 5,
  inject: 5, // HTTP injection (issue 17), hosted by workers/inject-host.ts
  mmove: 4,
  policy: 4,
  spool: 3,
  config: 2,
  events: 2, // the event records: built in engines, emitted on the main thread
  native: 2,
  message: 1, // ...over the shared vocabulary
  smtp: 1,
  net: 1,
  'errors.ts': 0,
  'log.ts': 0,
  'paths.ts': 0,
  'version.ts': 1, // reads package.json through paths.ts
};

/** Engines run inside a host and must not know it (STYLE.md: engines do not know their host). */
const ENGINES = ['listener', 'delivery', 'mmove', 'spool', 'inject'];
const HOSTS = ['workers', 'node', 'cli'];

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative imports of a file, resolved to the .ts files they name (type-only imports count too). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((f) => f.startsWith('.'))
    .map((f) => path.resolve(path.dirname(file), f).replace(/\.js$/, '.ts'));
}

const top = (file: string): string => path.relative(SRC, file).split(path.sep)[0]!;
const rel = (file: string): string => path.relative(SRC, file);

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('the layout', () => {
  it('gives every top-level folder of src/ a layer', () => {
    const unknown = [...new Set(files.map(top))].filter((t) => LAYERS[t] === undefined);
    expect(unknown).toEqual([]);
  });

  it('imports only downwards, or within a folder', () => {
    const up: string[] = [];
    for (const [f, deps] of graph) {
      for (const d of deps) {
        if (top(d) === top(f)) continue;
        if (LAYERS[top(d)]! >= LAYERS[top(f)]!) up.push(`${rel(f)} -> ${rel(d)}`);
      }
    }
    expect(up).toEqual([]);
  });

  it('keeps engines ignorant of the workers and the process that host them', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      if (!ENGINES.includes(top(f))) continue;
      for (const d of deps) if (HOSTS.includes(top(d))) bad.push(`${rel(f)} -> ${rel(d)}`);
    }
    expect(bad).toEqual([]);
  });

  it('has no import circle between files', () => {
    // Tarjan's strongly connected components over the file graph.
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const on = new Set<string>();
    const circles: string[][] = [];
    const visit = (v: string): void => {
      idx.set(v, index);
      low.set(v, index++);
      stack.push(v);
      on.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
      if (low.get(v) === idx.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          on.delete(w);
          scc.push(rel(w));
        } while (w !== v);
        if (scc.length > 1) circles.push(scc.sort());
      }
    };
    for (const f of files) if (!idx.has(f)) visit(f);
    expect(circles).toEqual([]);
  });

  it('loads the addon in exactly one module', () => {
    const loaders = files.filter((f) => /['"]vipmta\.node['"]/.test(fs.readFileSync(f, 'utf8'))).map(rel);
    expect(loaders).toEqual(['native/addon.ts']);
  });

  it('finds every import it checks (the checker itself works)', () => {
    // A resolved import that names no file would hide an edge: every relative import must exist.
    const missing: string[] = [];
    for (const [f, deps] of graph) for (const d of deps) if (!fs.existsSync(d)) missing.push(`${rel(f)} -> ${rel(d)}`);
    expect(missing).toEqual([]);
    expect(graph.get(path.join(SRC, 'node', 'daemon.ts'))?.length ?? 0).toBeGreaterThan(5);
  });
});
