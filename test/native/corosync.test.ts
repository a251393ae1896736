// The corosync binding (native/corosync.cc) through the facade's CorosyncGroup, on a real
// three-node corosync cluster in network namespaces (test/cluster/harness.ts). Each node runs a CPG
// client process (test/cluster/fixtures/cpg-client.mjs) that prints its events as JSON lines; the
// test asserts what each sees. Faults: a client killed, a node isolated, a node's corosync killed,
// corosync's client libraries missing (hidden in a private mount namespace).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorosyncGroup, corosyncLibrary } from '../../src/native/index.js';
import { ClusterLab, type LabHost, type LabProcess } from '../cluster/harness.js';
import { buildFacade, facadeUrl } from './worker-harness.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'cluster', 'fixtures', 'cpg-client.mjs');
const GROUP = 'vipmta-test';

interface Ev {
  event: string;
  [k: string]: unknown;
}
interface Member {
  nodeId: number;
  pid: number;
  reason?: string;
}

let lab: ClusterLab;
let n1: LabHost;
let n2: LabHost;
let n3: LabHost;

function startClient(host: LabHost, group = GROUP): LabProcess {
  return lab.spawn(host, [process.execPath, fixture, facadeUrl, group]);
}

function parsed(p: LabProcess, from = 0): Ev[] {
  return p.lines.slice(from).map((l) => JSON.parse(l) as Ev);
}

async function waitEvent(p: LabProcess, pred: (e: Ev) => boolean, from = 0, timeoutMs = 10_000): Promise<Ev & { index: number }> {
  const { index, line } = await p.waitLine((l) => pred(JSON.parse(l) as Ev), { from, timeoutMs });
  return { ...(JSON.parse(line) as Ev), index };
}

const nodeIds = (ms: unknown): number[] => (ms as Member[]).map((m) => m.nodeId).sort();

async function readyClient(host: LabHost): Promise<{ p: LabProcess; pid: number }> {
  const p = startClient(host);
  const ready = await waitEvent(p, (e) => e.event === 'ready' || e.event === 'join-error');
  expect(ready).toMatchObject({ event: 'ready', nodeId: host.nodeId });
  return { p, pid: ready.pid as number };
}

beforeAll(async () => {
  buildFacade();
  lab = await ClusterLab.create({ nodes: 3, corosync: true });
  [n1, n2, n3] = lab.hosts as [LabHost, LabHost, LabHost];
}, 60_000);

afterAll(async () => {
  await lab?.destroy();
});

describe('CorosyncGroup arguments', () => {
  it.each(['', 'x'.repeat(129)])('rejects a group name of %# bytes outside 1..128 before connecting', async (name) => {
    await expect(CorosyncGroup.join(name)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('corosync client libraries', () => {
  it('are loaded at run time, not linked: the addon loads without them', () => {
    const lib = corosyncLibrary();
    expect(lib).toMatchObject({ available: true, cpg: expect.stringMatching(/\/libcpg\.so\.4$/), quorum: expect.stringMatching(/\/libquorum\.so\.5$/) });
    const needed = execFileSync('ldd', [path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'Release', 'vipmta.node')]).toString();
    expect(needed).not.toMatch(/libcpg|libquorum/);
  });

  it('when libcpg cannot be loaded, join rejects with ERR_COROSYNC_UNAVAILABLE saying what to install', () => {
    // An honest "not installed": in a private mount namespace an empty file hides the real library
    // file, so dlopen fails as it does on a machine without corosync. Nothing in vipmta is told.
    const lib = corosyncLibrary();
    if (!lib.available) throw new Error(`corosync's libraries are not installed here: ${lib.error}`);
    const empty = path.join(os.tmpdir(), `vipmta-empty-${process.pid}.so`);
    writeFileSync(empty, '');
    const script = `
      const n = await import(${JSON.stringify(facadeUrl)});
      const lib = n.corosyncLibrary();
      const r = await n.CorosyncGroup.join('vipmta-nolib').then(() => ({ joined: true }), (e) => ({ code: e.code, message: e.message }));
      console.log(JSON.stringify({ lib, r }));`;
    const out = execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
      'mount --bind "$1" "$2" && exec "$3" --input-type=module -e "$4"', 'sh', empty, realpathSync(lib.cpg), process.execPath, script]).toString();
    const { lib: missing, r } = JSON.parse(out) as { lib: { available: boolean; error: string }; r: { code: string; message: string } };
    expect(missing.available).toBe(false);
    expect(r.code).toBe('ERR_COROSYNC_UNAVAILABLE');
    expect(r.message).toMatch(/^libcpg\.so\.4 cannot be loaded \(.+\): .*install corosync \(Debian: apt-get install corosync\)$/);
    expect(missing.error).toBe(r.message);
  });
});

describe('CorosyncGroup', () => {
  let c: Array<{ p: LabProcess; pid: number }>;

  it('joins on every node and sees all three members, quorate, with its own nodeid', async () => {
    c = [await readyClient(n1), await readyClient(n2), await readyClient(n3)];
    for (const { p } of c) {
      await waitEvent(p, (e) => e.event === 'confchg' && (e.members as Member[]).length === 3);
      // CS_TRACK_CURRENT and CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF: the present state, unasked.
      expect(await waitEvent(p, (e) => e.event === 'quorum')).toMatchObject({ quorate: true, members: [1, 2, 3] });
      expect(await waitEvent(p, (e) => e.event === 'totem')).toMatchObject({ members: [1, 2, 3] });
    }
    const last = parsed(c[0]!.p).filter((e) => e.event === 'confchg').at(-1)!;
    expect((last.members as Member[]).map((m) => `${m.nodeId}/${m.pid}`).sort())
      .toEqual(c.map(({ pid }, i) => `${i + 1}/${pid}`).sort());
  });

  it('delivers every message to every member in one agreed order, sender included', async () => {
    const from = c.map(({ p }) => p.lines.length);
    const per = 50;
    c.forEach(({ p }, i) => p.send(JSON.stringify({ op: 'sendMany', prefix: `n${i + 1}-`, count: per })));
    const seqs = await Promise.all(c.map(async ({ p }, i) => {
      await p.waitLine(() => parsed(p, from[i]).filter((e) => e.event === 'message').length >= 3 * per, { from: from[i] });
      return parsed(p, from[i]).filter((e) => e.event === 'message');
    }));
    const texts = seqs.map((s) => s.map((e) => e.text));
    expect(texts[0]).toHaveLength(3 * per);
    expect(texts[1]).toEqual(texts[0]);
    expect(texts[2]).toEqual(texts[0]);
    // Each sender's own messages stay in the order it sent them, and carry its nodeid and pid.
    for (let i = 0; i < 3; i++) {
      const mine = seqs[0]!.filter((e) => (e.text as string).startsWith(`n${i + 1}-`));
      expect(mine.map((e) => e.text)).toEqual(Array.from({ length: per }, (_, k) => `n${i + 1}-${k}`));
      expect(mine.every((e) => e.nodeId === i + 1 && e.pid === c[i]!.pid)).toBe(true);
    }
  });

  it('hands over binary and large payloads intact, and an empty one', async () => {
    const from = c.map(({ p }) => p.lines.length);
    const big = Buffer.alloc(256 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    c[1]!.p.send(JSON.stringify({ op: 'sendBytes', base64: big.toString('base64') }));
    c[1]!.p.send(JSON.stringify({ op: 'sendBytes', base64: '' }));
    const digest = createHash('sha256').update(big).digest('hex');
    for (const [i, { p }] of c.entries()) {
      const got = await waitEvent(p, (e) => e.event === 'message' && e.length === big.length, from[i]);
      expect(got).toMatchObject({ nodeId: 2, pid: c[1]!.pid, sha256: digest });
      await waitEvent(p, (e) => e.event === 'message' && e.text === '', got.index + 1);
    }
  });

  it('sees a client that closes leave with reason "leave", and one that is killed with "procdown"', async () => {
    const extra = await readyClient(n2);
    let from = c[0]!.p.lines.length;
    extra.p.send(JSON.stringify({ op: 'close' }));
    let ev = await waitEvent(c[0]!.p, (e) => e.event === 'confchg' && (e.left as Member[]).length > 0, from);
    expect(ev.left).toEqual([{ nodeId: 2, pid: extra.pid, reason: 'leave' }]);
    await extra.p.kill();

    const victim = await readyClient(n2);
    await waitEvent(c[0]!.p, (e) => e.event === 'confchg' && (e.joined as Member[]).some((m) => m.pid === victim.pid), from);
    from = c[0]!.p.lines.length;
    const t0 = Date.now();
    await victim.p.kill('SIGKILL');
    ev = await waitEvent(c[0]!.p, (e) => e.event === 'confchg' && (e.left as Member[]).length > 0, from);
    console.log(`CPG client SIGKILL: seen leaving after ${Date.now() - t0} ms`);
    expect(ev.left).toEqual([{ nodeId: 2, pid: victim.pid, reason: 'procdown' }]);
    expect(nodeIds(ev.members)).toEqual([1, 2, 3]);
  });

  it('refuses a second join of the same group from one process with ERR_COROSYNC (CS_ERR_EXIST)', async () => {
    const r = await lab.execAsync(n1, [process.execPath, '--input-type=module', '-e', `
      const n = await import(${JSON.stringify(facadeUrl)});
      const a = await n.CorosyncGroup.join('twice');
      try { await n.CorosyncGroup.join('twice'); console.log('joined twice'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, csError: e.csError, call: e.call })); }
      a.close();`]);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 'ERR_COROSYNC', call: 'cpg_join' });
  });

  it('leaves by itself when the worker thread that joined is terminated without close()', async () => {
    const from = c[0]!.p.lines.length;
    const script = `
      const { Worker } = await import('node:worker_threads');
      // An eval worker inherits --input-type=module: its source is ESM too.
      const w = new Worker(\`
        const { parentPort } = await import('node:worker_threads');
        const n = await import(${JSON.stringify(facadeUrl)});
        await n.CorosyncGroup.join(${JSON.stringify(GROUP)});
        parentPort.postMessage('joined');\`, { eval: true });
      await new Promise((r) => w.once('message', r));
      console.log(JSON.stringify({ pid: process.pid }));
      await w.terminate();
      console.log('terminated');`;
    const p = lab.spawn(n1, [process.execPath, '--input-type=module', '-e', script]);
    const { line } = await p.waitLine((l) => l.startsWith('{'));
    const pid = (JSON.parse(line) as { pid: number }).pid;
    await p.waitLine((l) => l === 'terminated');
    const ev = await waitEvent(c[0]!.p, (e) => e.event === 'confchg' && (e.left as Member[]).some((m) => m.pid === pid), from);
    // The environment cleanup hook closed it: stopped the poll thread, cpg_leave, cpg_finalize.
    expect(ev.left).toEqual([{ nodeId: 1, pid, reason: 'leave' }]);
    await p.exited;
    expect(p.exitCode).toBe(0);
  });

  it('lets the process exit when unref()ed, leaving the group on the way out', async () => {
    const from = c[0]!.p.lines.length;
    const p = lab.spawn(n2, [process.execPath, '--input-type=module', '-e', `
      const n = await import(${JSON.stringify(facadeUrl)});
      (await n.CorosyncGroup.join(${JSON.stringify(GROUP)})).unref();
      console.log(process.pid);`]);
    await p.exited;
    expect(p.exitCode).toBe(0);
    const pid = Number(p.lines[0]);
    const ev = await waitEvent(c[0]!.p, (e) => e.event === 'confchg' && (e.left as Member[]).some((m) => m.pid === pid), from);
    expect(ev.left).toEqual([{ nodeId: 2, pid, reason: 'leave' }]);
  });

  it('loses quorum on an isolated node while the pair keeps it, and rejoins when healed', async () => {
    const from = c.map(({ p }) => p.lines.length);
    lab.isolate(n3);
    const lost = await waitEvent(c[2]!.p, (e) => e.event === 'quorum' && e.quorate === false, from[2]);
    expect(lost.members).toEqual([3]);
    for (const i of [0, 1]) {
      const v = await waitEvent(c[i]!.p, (e) => e.event === 'confchg' && (e.left as Member[]).length > 0, from[i]);
      expect(v.left).toEqual([{ nodeId: 3, pid: c[2]!.pid, reason: 'nodedown' }]);
      const q = await waitEvent(c[i]!.p, (e) => e.event === 'quorum', from[i]);
      expect(q).toMatchObject({ quorate: true, members: [1, 2] });
    }
    // CPG still forms a view on the isolated side (ANCHORS.md): quorum is what gates ownership.
    const alone = await waitEvent(c[2]!.p, (e) => e.event === 'confchg' && (e.members as Member[]).length === 1, from[2]);
    expect(nodeIds(alone.members)).toEqual([3]);

    lab.heal(n3);
    for (const i of [0, 1, 2]) {
      await waitEvent(c[i]!.p, (e) => e.event === 'quorum' && e.quorate === true && (e.members as number[]).length === 3, from[i], 15_000);
      await waitEvent(c[i]!.p, (e) => e.event === 'confchg' && (e.members as Member[]).length === 3, from[i], 15_000);
    }
  });

  it('gives the pair a new view within ~token+consensus when a node\'s corosync is killed; its client gets ERR_COROSYNC_DISCONNECTED', async () => {
    const from = c.map(({ p }) => p.lines.length);
    const t0 = Date.now();
    await lab.killCorosync(n3);
    const err = await waitEvent(c[2]!.p, (e) => e.event === 'error', from[2]);
    expect(err.code).toBe('ERR_COROSYNC_DISCONNECTED');
    await waitEvent(c[2]!.p, (e) => e.event === 'close', from[2]);
    const views = await Promise.all([0, 1].map((i) =>
      waitEvent(c[i]!.p, (e) => e.event === 'confchg' && (e.left as Member[]).length > 0, from[i]).then((v) => ({ v, ms: Date.now() - t0 }))));
    console.log(`corosync SIGKILL: new CPG view after ${views.map((x) => x.ms).join('/')} ms (token ${lab.token} ms)`);
    for (const { v } of views) {
      expect(v.left).toEqual([{ nodeId: 3, pid: c[2]!.pid, reason: 'nodedown' }]);
      expect(nodeIds(v.members)).toEqual([1, 2]);
    }
    for (const i of [0, 1]) {
      await waitEvent(c[i]!.p, (e) => e.event === 'quorum' && e.quorate === true && (e.members as number[]).length === 2, from[i]);
    }
    // The survivors still agree on order.
    const f2 = c.map(({ p }) => p.lines.length);
    c[0]!.p.send(JSON.stringify({ op: 'sendMany', prefix: 'after-', count: 5 }));
    c[1]!.p.send(JSON.stringify({ op: 'sendMany', prefix: 'late-', count: 5 }));
    const got = await Promise.all([0, 1].map(async (i) => {
      const p = c[i]!.p;
      await p.waitLine(() => parsed(p, f2[i]).filter((e) => e.event === 'message').length >= 10, { from: f2[i] });
      return parsed(p, f2[i]).filter((e) => e.event === 'message').map((e) => e.text);
    }));
    expect(got[1]).toEqual(got[0]);
  });

  it('says clearly that corosync is not running, on a dead node and outside any node\'s namespace', async () => {
    for (const host of [n3, lab.client]) {
      const p = startClient(host);
      const e = await waitEvent(p, (x) => x.event === 'join-error' || x.event === 'ready');
      expect(e).toMatchObject({ event: 'join-error', code: 'ERR_COROSYNC_NOT_RUNNING' });
      expect(e.message).toMatch(/corosync is not running \(or not in this network namespace\)/);
      await p.exited;
    }
  });

  it('never blocks JavaScript while corosync is stopped: sends queue, the stall shows, close returns', async () => {
    const { p } = await readyClient(n1);
    const cs = lab.corosync(n1)!;
    process.kill(cs.pid, 'SIGSTOP');
    try {
      const from = p.lines.length;
      // 6 MB: more than libqb's request ring holds, so the IO thread's send must wait for corosync.
      p.send(JSON.stringify({ op: 'sendMany', prefix: 'stopped-', count: 100, size: 60_000 }));
      // Each 'state' is answered while corosync sleeps (the event loop is free), and the IO
      // thread's send shows as a call that has not returned.
      let stalled = 0;
      for (let i = 0; i < 60 && stalled <= 300; i++) {
        const mark = p.lines.length;
        p.send(JSON.stringify({ op: 'state' }));
        const st = await waitEvent(p, (e) => e.event === 'state', mark, 2000);
        stalled = st.stalledMs as number;
        if (stalled <= 300) await new Promise((r) => setTimeout(r, 50));
      }
      expect(stalled).toBeGreaterThan(300);
      p.send(JSON.stringify({ op: 'close' }));
      await waitEvent(p, (e) => e.event === 'close', from, 2000);
    } finally {
      process.kill(cs.pid, 'SIGCONT');
      p.send(JSON.stringify({ op: 'exit' }));
    }
  });

  it('joins without blocking JavaScript while corosync is stopped, and completes when it continues', async () => {
    const cs = lab.corosync(n1)!;
    process.kill(cs.pid, 'SIGSTOP');
    let continued = false;
    try {
      // libqb's connection handshake waits for a stopped corosync: the join must wait off the JS thread.
      const p = lab.spawn(n1, [process.execPath, '--input-type=module', '-e', `
        const n = await import(${JSON.stringify(facadeUrl)});
        n.CorosyncGroup.join('vipmta-late').then(
          (g) => { console.log(JSON.stringify({ joined: g.localNodeId })); g.close(); process.exit(0); },
          (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(1); });
        let i = 0;
        setInterval(() => console.log('tick ' + i++), 20);`]);
      await p.waitLine((l) => l === 'tick 5');
      expect(p.lines.filter((l) => l.startsWith('{'))).toEqual([]);
      process.kill(cs.pid, 'SIGCONT');
      continued = true;
      const { line } = await p.waitLine((l) => l.startsWith('{'), { timeoutMs: 15_000 });
      expect(JSON.parse(line)).toEqual({ joined: 1 });
      await p.exited;
    } finally {
      if (!continued) process.kill(cs.pid, 'SIGCONT');
    }
  });
});
