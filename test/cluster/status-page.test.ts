// The live status page in a real browser: three vipmta nodes with real corosync in namespaces share
// six DuraVIPs; headless Chromium (Debian's `chromium`, driven by puppeteer-core over a pipe) runs
// inside n1's namespace and opens n1's admin listener on its loopback. The whole of another node
// (its vipmta and its corosync) is killed, and the page must show the new owner of that node's
// addresses without a reload; the delay from the kill is printed (no timing assertion). Mail
// queued on n2 (deferred: its server is down) shows in n1's page, in the table of bindings by
// node under n2's column (n2's queue summary over the console group); then n2 is drained, and
// with no #mmove listener anywhere its mail cannot leave: n1's page and `cluster membership` say
// what it has left to move. A screenshot goes to the lab's directory and to
// test-artifacts/status-page.png for CI.
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/node-process.js';
import { requireCommand } from '../helpers/preconditions.js';
import { ClusterLab, waitFor, type LabHost } from './harness.js';
import { consoleCmd, owners, startNode, waitStarted, type NodeRun } from './vipmta-node.js';

const VIPS = [201, 202, 203, 204, 205, 206].map((i) => `198.51.100.${i}`);
const HTTP_PORT = 8080;

function body(h: LabHost): string {
  return `Resolver_Servers = ( "127.0.0.1:9" )
Retry_Interval = 1h
Connect_Timeout = 3s
# Nothing listens there: its mail is deferred.
Domain "dest.test" { Routes = ( "198.51.100.100:2599" ) }
ESMTP_Listener {
  Relay_Hosts = ( "198.51.100.0/24" )
${VIPS.map((a) => `  Listen "${a}:25" { }`).join('\n')}
  Listen "${h.address}:25" { }
}
${VIPS.map((a) => `Binding "b${a.split('.')[3]}" { Bind_Address = ${a} Enable_Duravip = true }`).join('\n')}
Http_Listener { Listen "127.0.0.1:${HTTP_PORT}" { } }
Cluster {
  Cluster_Secret = "status page secret"
  View_Mature_Time = 1s
  If_Check_Interval = 2s
  Topology "198.51.100.0/24" { Interface = "eth1" Cidrmask = 32 }
}
`;
}

let lab: ClusterLab;
let browser: Browser | null = null;
const nodes = new Map<string, NodeRun>();

beforeAll(async () => {
  requireCommand('chromium');
  requireCommand('smtp-source');
  lab = await ClusterLab.create({ nodes: 3, corosync: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await lab?.destroy();
});

/** The owner the page shows for an address ("-" for none), or null while its row is not there. */
function pageOwner(page: Page, address: string): Promise<string | null> {
  return page.evaluate(`document.querySelector('tr[data-key="${address}"] td.owner')?.textContent ?? null`) as Promise<string | null>;
}

describe('status page in a browser', () => {
  it('shows the members and every DuraVIP, and the new owner after a node is killed', async () => {
    for (const h of lab.hosts) nodes.set(h.name, startNode(lab, h, body(h)));
    await Promise.all([...nodes.values()].map(waitStarted));
    const n1 = nodes.get('n1')!;
    // Every address owned, the same on every node (an election after all three joined).
    const before = await (async () => {
      for (const deadline = Date.now() + 30_000; ; ) {
        const views = await Promise.all([...nodes.values()].map(owners));
        const o = views[0]!;
        const owned = VIPS.every((a) => o.get(a)?.owner != null);
        const agreed = views.every((v) => VIPS.every((a) => v.get(a)?.owner === o.get(a)?.owner));
        const all = new Set(VIPS.map((a) => o.get(a)?.owner)).size === 3;
        if (owned && agreed && all) return o;
        if (Date.now() > deadline) throw new Error(`no balanced election: ${JSON.stringify([...o])}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    // Chromium in n1's namespace, so the page is n1's loopback admin listener.
    const wrapper = path.join(lab.dir, 'chromium-in-n1');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${n1.host.ns} chromium "$@"\n`);
    chmodSync(wrapper, 0o755);
    const { default: puppeteer } = await import('puppeteer-core');
    browser = await puppeteer.launch({
      executablePath: wrapper, pipe: true, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', `--user-data-dir=${path.join(lab.dir, 'chromium-profile')}`],
    });
    const page = await browser.newPage();
    const scriptErrors: string[] = [];
    page.on('pageerror', (e) => scriptErrors.push(String(e)));
    await page.setViewport({ width: 1280, height: 1000 });
    await page.goto(`http://127.0.0.1:${HTTP_PORT}/`);
    await page.waitForFunction(`document.querySelectorAll('#addresses tbody tr').length === ${VIPS.length} && document.querySelectorAll('#members tbody tr').length === 3`, { timeout: 15_000 });
    for (const a of VIPS) expect(await pageOwner(page, a)).toBe(before.get(a)!.owner);
    expect(await page.$eval('#conn', (e) => e.textContent)).toBe('live');
    expect(await page.$eval('#members tbody', (e) => e.textContent)).toContain('n1 (this node)');
    expect(await page.$eval('#cluster', (e) => e.textContent)).toContain('quorate');

    // Kill n3 whole: its vipmta and its corosync.
    const lost = VIPS.filter((a) => before.get(a)!.owner === 'n3');
    expect(lost.length).toBeGreaterThan(0);
    const t0 = Date.now();
    await Promise.all([nodes.get('n3')!.proc.kill('SIGKILL'), lab.killCorosync(lab.host('n3'))]);
    await page.waitForFunction(
      `${JSON.stringify(lost)}.every((a) => { const t = document.querySelector('tr[data-key="' + a + '"] td.owner')?.textContent; return t === 'n1' || t === 'n2'; })`,
      { polling: 'mutation', timeout: 20_000 },
    );
    const shownMs = Date.now() - t0;
    console.log(`status page: the new owner of ${lost.join(', ')} showed ${shownMs} ms after n3 was killed (token ${lab.token} ms; issue 14 asks for 2 s)`);
    // The page agrees with the console, and it saw the change without a reload (the failover table).
    const after = await owners(n1);
    for (const a of lost) expect(await pageOwner(page, a)).toBe(after.get(a)!.owner);
    await page.waitForFunction(`document.querySelector('#failovers tbody')?.textContent.includes('${lost[0]}')`, { timeout: 5000 });
    expect(await page.$eval('#failovers tbody', (e) => e.textContent)).toContain('n3');

    // Mail queued on n2 shows on n1's page, under n2's column, from n2's queue summary.
    const n2 = nodes.get('n2')!;
    const sent = await lab.execAsync(lab.client, ['smtp-source', '-s', '1', '-m', '5', '-l', '256', '-f', 'sender@lab.example', '-t', 'rcpt@dest.test', `${n2.host.address}:25`]);
    expect(sent.code).toBe(0);
    const cellOf = (key: string, node: string): string => `document.querySelector('#cqueues tr[data-key="${key}"] td[data-node="${node}"]')?.textContent`;
    await page.waitForFunction(`${cellOf('(total)', 'n2')} === '5'`, { polling: 'mutation', timeout: 20_000 });
    const n2Rows = await page.$$eval('#cqueues tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-key'), tr.querySelector('td[data-node="n2"]')?.textContent, tr.querySelector('td[data-node="n1"]')?.textContent]));
    expect(n2Rows).toContainEqual(['default/default', '5', '']);
    expect(n2Rows.at(-1)).toEqual(['(total)', '5', '0']);
    expect(await page.$eval('#cqueues thead', (e) => e.textContent)).toMatch(/n1 \(this node\)n2total/);

    // n2 drained: no member has a #mmove listener, so its mail stays, and n1 says how much.
    expect(await consoleCmd(n1, 'cluster', 'drain', 'n2')).toMatch(/draining n2/);
    const drainCell = `Array.from(document.querySelectorAll('#members tbody tr')).find((tr) => tr.cells[0].textContent === 'n2')?.querySelector('td.drain')?.textContent`;
    await page.waitForFunction(`${drainCell} === 'drained: 5 left to move'`, { polling: 'mutation', timeout: 20_000 });
    await waitFor('n1\'s membership shows n2\'s drain progress', async () => /^n2 is DRAINED: 5 queued part\(s\) left to move/m.test(await consoleCmd(n1, 'cluster', 'membership')), { timeoutMs: 10_000, intervalMs: 200 });
    await page.waitForFunction(`document.querySelector('#cqueues thead').textContent.includes('n2 (drained)')`, { polling: 'mutation', timeout: 10_000 });

    expect(scriptErrors).toEqual([]);

    const shot = path.join(lab.dir, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    const artifacts = path.join(repoRoot, 'test-artifacts');
    mkdirSync(artifacts, { recursive: true });
    copyFileSync(shot, path.join(artifacts, 'status-page.png'));
  });
});
