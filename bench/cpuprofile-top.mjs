// Summarises V8 .cpuprofile files (node --cpu-prof, one per thread: CPU.<date>.<time>.<pid>.<tid>.<seq>)
// as self time per function and per group (file or package), so docs/performance.md can quote where a
// thread's time goes. Runs on the main thread of a plain `node`; reads the files synchronously.
//
// Run: node bench/cpuprofile-top.mjs [--top N] DIR-or-FILE...
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
let top = 15;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else if (fs.statSync(args[i]).isDirectory()) for (const f of fs.readdirSync(args[i]).sort()) { if (f.endsWith('.cpuprofile')) files.push(path.join(args[i], f)); }
  else files.push(args[i]);
}

/** A group: the package under node_modules, node's own module, or the source file under src/. */
function group(url) {
  if (url === '') return '(native/V8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 13).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return url;
  const src = url.indexOf('/dist/');
  if (src >= 0) return url.slice(src + 1);
  return url;
}

for (const file of files) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = p.timeDeltas;
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (dt[i] ?? 0));
  const total = dt.reduce((a, b) => a + b, 0);
  const fn = new Map();
  const grp = new Map();
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    if (cf.functionName === '(idle)') { idle += us; continue; }
    const key = `${cf.functionName || '(anonymous)'} ${cf.url ? `${group(cf.url)}:${cf.lineNumber + 1}` : ''}`.trim();
    fn.set(key, (fn.get(key) ?? 0) + us);
    const g = cf.url ? group(cf.url) : cf.functionName.startsWith('(') ? cf.functionName : '(native/V8)';
    grp.set(g, (grp.get(g) ?? 0) + us);
  }
  const busy = total - idle;
  const ms = (us) => (us / 1000).toFixed(0);
  const pct = (us) => ((100 * us) / busy).toFixed(1);
  console.log(`\n## ${path.basename(file)}: ${ms(total)} ms profiled, ${ms(busy)} ms busy (${((100 * busy) / total).toFixed(0)}%)`);
  console.log(`| group | self ms | % of busy |\n|---|---:|---:|`);
  for (const [k, v] of [...grp].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`| ${k} | ${ms(v)} | ${pct(v)} |`);
  console.log(`\n| function | self ms | % of busy |\n|---|---:|---:|`);
  for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`| ${k.replaceAll('|', '/')} | ${ms(v)} | ${pct(v)} |`);
}
