// `vipmta log ...` as an operator runs it: straight from the spool directory of -c FILE when no node
// runs (tail, JSON, subscribe, read with --ack, tail -f picking up records written meanwhile, the
// errors and exit codes), then the same commands through the running node's console.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cliPath, killAll, runCli, startVipmta } from '../helpers/node-process.js';
import { addressOf, appendJournal } from '../helpers/spool-journal.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

afterEach(killAll);

const CONFIG = `Worker_Threads = 1
Nodename = "n1"
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
`;

const line = (k: number): RegExp => new RegExp(`^\\S+Z n1 address_taken ${addressOf(k).replace(/\./g, '\\.')}$`);

describe('vipmta log', () => {
  it('reads the journal from the spool without a node, follows it, then goes through the node\'s console', async () => {
    const dir = tempDir('vipmta-log-');
    fs.writeFileSync(path.join(dir, 'vipmta.conf'), CONFIG);
    const spool = path.join(dir, 'spool');
    await appendJournal(spool, 'n1', 1, 5);
    const log = (...args: string[]): ReturnType<typeof runCli> => runCli([cliPath, 'log', '-c', 'vipmta.conf', ...args], dir);

    const empty = tempDir('vipmta-log-none-');
    fs.writeFileSync(path.join(empty, 'vipmta.conf'), CONFIG);
    let r = await runCli([cliPath, 'log', '-c', 'vipmta.conf', 'tail'], empty);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/holds no event journal/);
    expect(fs.readdirSync(empty)).toEqual(['vipmta.conf']);

    r = await log('tail', '-n', '2');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/no node answers on .*control\.sock; reading the event journal in .*spool directly/);
    const out = r.stdout.trimEnd().split('\n');
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(line(4));
    expect(out[1]).toMatch(line(5));
    r = await log('tail', '-n', '1', '--json');
    expect(JSON.parse(r.stdout)).toMatchObject({ v: 1, type: 'address_taken', node: 'n1', id: 'ev-5', seq: 5, address: addressOf(5) });

    expect((await log('subscribe', 'billing', '--from', 'start')).stdout).toBe('subscribed billing; checkpoint 0 (it reads from seq 1)\n');
    r = await log('read', '--subscriber', 'billing', '--max', '3', '--ack');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').slice(0, 3).map((l, i) => line(i + 1).test(l))).toEqual([true, true, true]);
    expect(r.stdout).toMatch(/-- billing: 3 record\(s\), seq 1-3; checkpoint moved to 3 \(the node is not running/);

    r = await log('read', '--subscriber', 'nobody');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no subscriber nobody/);
    r = await log('tail', '--bogus');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown option --bogus/);
    r = await log('aggregator');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/log aggregator needs the running node/);

    // tail -f: the last record, then those written meanwhile, until SIGINT.
    const f = spawn(process.execPath, [cliPath, 'log', '-c', 'vipmta.conf', 'tail', '-f', '-n', '1'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    f.stdout.setEncoding('utf8').on('data', (d: string) => (followed += d));
    const exited = new Promise<number | null>((resolve) => f.on('exit', (code) => resolve(code)));
    await waitFor('tail -f printed the last record', () => followed.includes(addressOf(5)));
    await appendJournal(spool, 'n1', 6, 7);
    await waitFor('tail -f printed the new records', () => followed.includes(`${addressOf(7)}\n`), { timeoutMs: 10_000 });
    f.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(followed.trimEnd().split('\n').map((l) => [5, 6, 7].findIndex((k) => line(k).test(l)))).toEqual([0, 1, 2]);

    // With the node running: the same commands through its console (no fallback note).
    const node = startVipmta(CONFIG, { cwd: dir });
    await node.waitStarted();
    r = await log('tail', '-n', '1');
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout.trimEnd()).toMatch(line(7));
    r = await log('subscribers');
    expect(r.stdout).toMatch(/^journal: 1 segment\(s\), \d+ bytes .*, seq 1-7$/m);
    expect(r.stdout).toMatch(/^cap: \d+ bytes .* at cap: refuse; alarm: no$/m);
    expect(r.stdout).toMatch(/^billing +3 +4 +\d+$/m);
    r = await log('read', '--subscriber', 'billing', '--ack');
    expect(r.stdout).toMatch(/-- billing: 4 record\(s\), seq 4-7; checkpoint moved to 7\n$/);
    expect((await node.console('log', 'tail', '-n', '1', '--json')).stdout).toMatch(/"seq":7/);
    expect((await node.console('help')).stdout).toMatch(/^log read \[--subscriber NAME\]/m);
    const f2 = spawn(process.execPath, [cliPath, 'log', '-c', 'vipmta.conf', 'tail', '-f', '--json'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let followed2 = '';
    f2.stdout.setEncoding('utf8').on('data', (d: string) => (followed2 += d));
    const exited2 = new Promise<number | null>((resolve) => f2.on('exit', (code) => resolve(code)));
    await waitFor('tail -f through the node', () => followed2.split('\n').length > 7);
    f2.kill('SIGINT');
    expect(await exited2).toBe(0);
    expect(followed2.trimEnd().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  }, 60_000);
});
