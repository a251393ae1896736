// A real ESMTP listener engine on a loopback port for the listener unit tests: the options every
// test starts from, the sink it writes to, and closing every listener after each test.
import { pino } from 'pino';
import { afterEach } from 'vitest';
import { EsmtpListener, type EsmtpListenerOptions, type MessageSink } from '../../../src/listener/esmtp.js';
import type { InboundSpec } from '../../../src/listener/spec.js';
import { listenTcp, socketLocalAddress } from '../../../src/native/index.js';

const listeners: EsmtpListener[] = [];
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close(1)));
});

/** Listener options (ESMTP_Listener merged under Listen) the tests start from. */
export const BASE_OPTIONS = {
  Max_Message_Size: 1 << 20, Max_Recipients: 10, Concurrency: 10, Timeout: 60_000, Pipelining: true,
  Enable_8bitmime: true, Smtputf8: true, Relay_Hosts: ['127.0.0.0/8'],
};

/** A sink for tests that expect no message. */
export const NO_MESSAGES: MessageSink = { begin: () => { throw new Error('no message expected'); } };

export interface StartListener {
  /** Merged over BASE_OPTIONS. */
  options?: Record<string, unknown>;
  sink?: MessageSink;
  /** Anything else of EsmtpListenerOptions (a clock, a shared session count, ...). */
  extra?: Partial<EsmtpListenerOptions>;
  /** Set on the spec (the shared Concurrency count). */
  sessions?: SharedArrayBuffer;
  /** Set on the spec (the shared body-memory budget). */
  bodies?: SharedArrayBuffer;
  /** Set on the spec (Inbound_Cidr networks and their shared counters). */
  inbound?: InboundSpec[];
  /** Set on the spec (the node's drained word). */
  drained?: SharedArrayBuffer;
}

/** Starts a listener on 127.0.0.1 with a port of the kernel's choosing; closed after the test. */
export async function startListener(o: StartListener = {}): Promise<{ l: EsmtpListener; port: number }> {
  const options = { ...BASE_OPTIONS, ...o.options };
  const l = new EsmtpListener({
    spec: { name: 'test', host: '127.0.0.1', port: 0, options, ...(o.sessions !== undefined ? { sessions: o.sessions } : {}), ...(o.bodies !== undefined ? { bodies: o.bodies } : {}), ...(o.inbound !== undefined ? { inbound: o.inbound } : {}), ...(o.drained !== undefined ? { drained: o.drained } : {}) },
    hostname: 'mx.test',
    logger: pino({ level: 'silent' }),
    sink: o.sink ?? NO_MESSAGES,
    onAccept: () => undefined,
    onMessage: () => undefined,
    onError: () => undefined,
    ...o.extra,
  });
  const fd = listenTcp({ host: '127.0.0.1', port: 0 });
  const { port } = socketLocalAddress(fd);
  await l.listenFd(fd);
  listeners.push(l);
  return { l, port };
}
