// The worker side of the protocol's requests: runs the handler a request names and answers with
// its result, or with its error flattened by serializeError (structured clone would drop the
// class and `code`). Worker thread; never blocks (a handler's work is asynchronous).
import type { MessagePort } from 'node:worker_threads';
import { serializeError } from '../errors.js';
import { isProtocolMessage, type MethodName, type Params, type ProtocolMessage, type Result } from './protocol.js';

/** One handler per method of WorkerMethods. */
export type Handlers = { [M in MethodName]: (p: Params<M>) => Promise<Result<M>> | Result<M> };

/** Answers requests arriving on `port`; a method without a handler gets ERR_UNKNOWN_METHOD. */
export function serveRequests(port: MessagePort, handlers: Handlers): void {
  const byName = handlers as unknown as Record<string, ((p: unknown) => unknown) | undefined>;
  port.on('message', (m: unknown) => {
    if (!isProtocolMessage(m) || m.kind !== 'req') return;
    const handler = byName[m.method];
    const reply = (r: ProtocolMessage): void => port.postMessage(r);
    if (handler === undefined) {
      reply({ kind: 'res', id: m.id, ok: false, error: { name: 'Error', message: `unknown method ${m.method}`, code: 'ERR_UNKNOWN_METHOD' } });
      return;
    }
    Promise.resolve()
      .then(() => handler(m.params))
      .then(
        (result) => reply({ kind: 'res', id: m.id, ok: true, result: result ?? null }),
        (err: unknown) => reply({ kind: 'res', id: m.id, ok: false, error: serializeError(err) }),
      );
  });
}
