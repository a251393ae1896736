// The control socket's cluster requests: `cluster`/`node` go to the cluster handler with the
// timeout, its exit status travels back to the console, and malformed scopes are refused.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { sendRequest } from '../../../src/control/client.js';
import { CommandTable } from '../../../src/control/commands.js';
import type { ControlRequest } from '../../../src/control/protocol.js';
import { ControlServer } from '../../../src/control/server.js';

const servers: ControlServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function serve(handler: ((req: ControlRequest & { timeoutMs: number }) => Promise<{ output: string; status: number }>) | null): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctl-'));
  dirs.push(dir);
  const t = new CommandTable();
  t.add('version', 'version', () => 'v1\n');
  const s = new ControlServer(path.join(dir, 'ctl.sock'), t, pino({ level: 'silent' }), handler);
  await s.start();
  servers.push(s);
  return s.socketPath;
}

describe('cluster requests on the control socket', () => {
  it('hands them to the cluster handler with the timeout, and returns its exit status', async () => {
    const seen: unknown[] = [];
    const sock = await serve(async (req) => {
      seen.push(req);
      return { output: 'n3: no answer within 2 s\n', status: 1 };
    });
    expect(await sendRequest(sock, { argv: ['version'], node: 'n3', timeoutMs: 2000 })).toEqual({ output: 'n3: no answer within 2 s\n', status: 1 });
    expect(await sendRequest(sock, { argv: ['version'], cluster: true })).toEqual({ output: 'n3: no answer within 2 s\n', status: 1 });
    expect(seen).toEqual([{ argv: ['version'], node: 'n3', timeoutMs: 2000 }, { argv: ['version'], cluster: true, timeoutMs: 10_000 }]);
    expect(await sendRequest(sock, { argv: ['version'] })).toEqual({ output: 'v1\n', status: 0 });
  });

  it('refuses malformed scopes, and cluster requests without a handler', async () => {
    const sock = await serve(async () => ({ output: '', status: 0 }));
    await expect(sendRequest(sock, { argv: ['version'], cluster: true, node: 'n2' })).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST', message: expect.stringMatching(/not both/) });
    await expect(sendRequest(sock, { argv: ['version'], cluster: true, timeoutMs: 0 })).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST' });
    const none = await serve(null);
    await expect(sendRequest(none, { argv: ['version'], cluster: true })).rejects.toMatchObject({ code: 'ERR_CLUSTER_DISABLED' });
  });
});
