// The console client used by `vipmta console`: sends one command to the control socket and returns
// the answer. Any thread; it only waits on the socket, with a timeout.
import net from 'node:net';
import { VipError } from '../errors.js';
import type { ControlRequest, ControlResponse } from './protocol.js';

export async function sendCommand(socketPath: string, argv: string[], timeoutMs = 60_000): Promise<string> {
  return (await sendRequest(socketPath, { argv }, timeoutMs)).output;
}

/** Sends one request; the output and the exit status it asks for (a cluster answer may be 1). */
export async function sendRequest(socketPath: string, req: ControlRequest, timeoutMs = 60_000): Promise<{ output: string; status: number }> {
  const raw = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    sock.setEncoding('utf8');
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      reject(new VipError('ETIMEDOUT', `no answer from ${socketPath} within ${timeoutMs} ms`));
    });
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => (buf += d));
    sock.on('end', () => resolve(buf));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      reject(new VipError(err.code ?? 'ECONNREFUSED', `cannot reach the control socket ${socketPath}: ${err.message}`));
    });
  });
  let res: ControlResponse;
  try {
    res = JSON.parse(raw) as ControlResponse;
  } catch {
    throw new VipError('ERR_CONTROL_BAD_RESPONSE', `unreadable answer from ${socketPath}`);
  }
  if (!res.ok) throw new VipError(res.code, res.error);
  return { output: res.output, status: res.status ?? 0 };
}
