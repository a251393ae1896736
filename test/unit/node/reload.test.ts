// Config reload (src/node/reload.ts) with scripted workers and recording appliers: a bad config
// keeps the running one, a listener the main thread's probe refuses stops it before any worker binds,
// a worker that refuses the new listeners rolls every worker back, and a
// good reload applies in order and reports what waits for a restart.
import { describe, expect, it } from 'vitest';
import { loadConfigText, type Config, type LoadResult } from '../../../src/config/index.js';
import { reloadConfig, restartOnlyChanges, type ReloadHost } from '../../../src/node/reload.js';
import type { Broadcast } from '../../../src/node/worker-settings.js';
import type { ListenerSpec } from '../../../src/listener/spec.js';
import { config, recordingLogger } from './helpers.js';

const RUNNING = `
Worker_Threads = 2
ESMTP_Listener { Listen "127.0.0.1:2525" { } }
`;
const NEXT = `
Worker_Threads = 4
Log_Level = "debug"
ESMTP_Listener {
  Listen "127.0.0.1:2525" { }
  Listen "127.0.0.1:2526" { }
}
`;

interface Rig {
  host: ReloadHost;
  /** Every worker call and main-thread step, in order. */
  steps: string[];
  running: () => Config;
  log: ReturnType<typeof recordingLogger>;
}

/**
 * Two workers; `refuse(workerId, method, params)` makes that worker's call fail (e.g. a port it
 * cannot bind). Broadcast results are in worker order, as WorkerPool.broadcast gives them.
 */
function rig(load: () => LoadResult, refuse: (workerId: number, method: string, params: unknown) => string | null = () => null): Rig {
  let current = config(RUNNING);
  const steps: string[] = [];
  const log = recordingLogger();
  const broadcast = (async (method: string, params: unknown) => {
    const ports = method === 'setListeners' ? (params as { listeners: ListenerSpec[] }).listeners.map((l) => l.port).join(',') : '';
    steps.push(ports === '' ? method : `${method} ${ports}`);
    return [0, 1].map((w): PromiseSettledResult<unknown> => {
      const why = refuse(w, method, params);
      return why === null ? { status: 'fulfilled', value: null } : { status: 'rejected', reason: new Error(why) };
    });
  }) as unknown as Broadcast;
  const host: ReloadHost = {
    load,
    running: () => current,
    broadcast,
    logger: log.logger,
    apply: {
      config: (next) => {
        steps.push('apply config');
        current = next;
      },
      queue: () => void steps.push('apply queue'),
      cluster: () => void steps.push('apply cluster'),
    },
  };
  return { host, steps, running: () => current, log };
}

const text = (t: string) => (): LoadResult => loadConfigText(t, 'vipmta.conf');

describe('config reload', () => {
  it('logs what the new config exposes at WARN and tells the console', async () => {
    const r = rig(text('ESMTP_Listener {\n  Relay_Hosts = ( "::/0" )\n  Listen "127.0.0.1:2525" { }\n}\n'));
    const res = await reloadConfig(r.host);
    expect(res.ok).toBe(true);
    expect(res.message).toMatch(/\nvipmta\.conf:2:3: warning: Relay_Hosts .*"::\/0": an open relay/);
    expect(r.log.records.some((x) => x.level === 40 && /^vipmta\.conf:2:3: warning: .*open relay/.test(String(x.msg)))).toBe(true);
  });

  it('keeps the running config on a config error and says why', async () => {
    const r = rig(text('Worker_Threadz = 4\n'));
    const before = r.running();
    const res = await reloadConfig(r.host);
    expect(res.ok).toBe(false);
    expect(res.message).toMatch(/^config reload failed; keeping the running config:\nvipmta\.conf:1:1: .*Worker_Threadz/);
    expect(r.steps).toEqual([]);
    expect(r.running()).toBe(before);
    expect(r.log.records.some((x) => x.level === 50 && x.msg === 'config reload failed; keeping the running config')).toBe(true);
  });

  it('rolls every worker back when one refuses the new listeners', async () => {
    const r = rig(text(NEXT), (w, method, params) =>
      w === 1 && method === 'setListeners' && (params as { listeners: ListenerSpec[] }).listeners.some((l) => l.port === 2526) ? 'listen 127.0.0.1:2526: EADDRINUSE' : null);
    const before = r.running();
    const res = await reloadConfig(r.host);
    expect(res).toEqual({ ok: false, message: 'config reload failed; keeping the running config:\nlisten 127.0.0.1:2526: EADDRINUSE' });
    // Both workers were offered the new sockets, then both went back to the running ones.
    expect(r.steps).toEqual(['setListeners 2525,2526', 'setMmove', 'setListeners 2525', 'setMmove']);
    expect(r.running()).toBe(before);
    expect(r.log.logger.level).toBe('info');
  });

  it('refuses a listener the main thread cannot listen on before any worker is asked, and logs why', async () => {
    const r = rig(text(NEXT));
    const seen: [number[], number[]][] = [];
    r.host.claimListeners = (prev, next) => {
      seen.push([prev.esmtpListeners.map((l) => l.port), next.esmtpListeners.map((l) => l.port)]);
      return { refused: [new Error('ESMTP_Listener "127.0.0.1:2526" cannot listen on 127.0.0.1:2526: the port is in use by another program (pid 7)')], release: () => undefined };
    };
    const before = r.running();
    const res = await reloadConfig(r.host);
    expect(res).toEqual({
      ok: false,
      message: 'config reload failed; keeping the running config:\nESMTP_Listener "127.0.0.1:2526" cannot listen on 127.0.0.1:2526: the port is in use by another program (pid 7)',
    });
    expect(seen).toEqual([[[2525], [2525, 2526]]]);
    expect(r.steps).toEqual([]);
    expect(r.running()).toBe(before);
    const logged = r.log.records.find((x) => x.level === 50);
    expect(logged).toMatchObject({ msg: 'config reload failed; keeping the running config', errors: [expect.stringContaining('127.0.0.1:2526: the port is in use')] });
  });

  it('holds the new addresses until every worker was offered them, whatever the workers answer', async () => {
    for (const refuse of [false, true]) {
      const r = rig(text(NEXT), (w, method) => (refuse && w === 1 && method === 'setMmove' ? 'EACCES' : null));
      r.host.claimListeners = () => {
        r.steps.push('claim');
        return { refused: [], release: () => void r.steps.push('release') };
      };
      const res = await reloadConfig(r.host);
      expect(res.ok).toBe(!refuse);
      expect(r.steps.slice(0, 4)).toEqual(['claim', 'setListeners 2525,2526', 'setMmove', 'release']);
    }
  });

  it('rolls back when a worker refuses the #mmove listeners too', async () => {
    const r = rig(text(NEXT), (w, method) => (w === 0 && method === 'setMmove' ? 'ECCluster_Listener: EACCES' : null));
    const res = await reloadConfig(r.host);
    expect(res.ok).toBe(false);
    expect(res.message).toContain('ECCluster_Listener: EACCES');
    expect(r.steps).toEqual(['setListeners 2525,2526', 'setMmove', 'setListeners 2525', 'setMmove']);
  });

  it('applies a good config in order and reports what waits for a restart', async () => {
    const r = rig(text(NEXT));
    const res = await reloadConfig(r.host);
    expect(res).toEqual({ ok: true, message: 'config reloaded\nWorker_Threads changed: takes effect at the next restart' });
    expect(r.steps).toEqual(['setListeners 2525,2526', 'setMmove', 'apply config', 'setDelivery', 'apply queue', 'setLogLevel', 'apply cluster']);
    expect(r.running().esmtpListeners.map((l) => l.port)).toEqual([2525, 2526]);
    expect(r.log.logger.level).toBe('debug');
    expect(r.log.warnings().map((w) => w.msg)).toEqual(['Worker_Threads changed: takes effect at the next restart']);
  });

  it('names every setting that only a restart changes', () => {
    const prev = config(RUNNING);
    const next = config(`
Worker_Threads = 2
Nodename = "other"
ESMTP_Listener { Listen "127.0.0.1:2525" { } }
Spool { Directory = "/var/spool/other" }
Control_Listener { Listen "/run/other.sock" { } }
Http_Listener { Listen "127.0.0.1:2082" { } }
Log_Aggregator { Directory = "/var/log/vipmta" Members = ( "n1" ) }
Event_Webhook "billing" { Url = "http://127.0.0.1:8080/events" }
Event_Nats "bus" { Servers = ( "nats://127.0.0.1:4222" ) }
`);
    expect(restartOnlyChanges(prev, next)).toEqual([
      'Spool Directory changed: takes effect at the next restart',
      'Nodename changed: takes effect at the next restart',
      'Control_Listener changed: takes effect at the next restart',
      'Http_Listener changed: takes effect at the next restart',
      'Log_Aggregator changed: takes effect at the next restart',
      'Event_Webhook changed: takes effect at the next restart',
      'Event_Nats changed: takes effect at the next restart',
    ]);
    expect(restartOnlyChanges(prev, config(RUNNING))).toEqual([]);
  });
});
