// The mail sink of the cluster lab: a real smtp-server, run inside the lab's client namespace (it
// must be reachable at a lab address, so it cannot live in the test process). It prints one JSON
// line per event on stdout, which the test reads through LabProcess.lines:
//   {"ev":"listening","port":2525}
//   {"ev":"tx","remote":"198.51.100.201","from":"...","rcpt":["..."],"size":1234}
// Usage: node lab-sink.mjs ADDRESS PORT. Plain JavaScript so it runs without the TypeScript build.
import { SMTPServer } from 'smtp-server';

const [host, port] = [process.argv[2] ?? '198.51.100.100', Number(process.argv[3] ?? 2525)];
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const server = new SMTPServer({
  logger: false,
  disableReverseLookup: true,
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  size: 10 * 1024 * 1024,
  onData(stream, session, cb) {
    let size = 0;
    stream.on('data', (d) => (size += d.length));
    stream.on('end', () => {
      // Printed before the 250: a message the sender counts as delivered is always in the log.
      out({ ev: 'tx', remote: session.remoteAddress, from: session.envelope.mailFrom?.address ?? '', rcpt: session.envelope.rcptTo.map((r) => r.address), size });
      cb(null, 'Ok');
    });
  },
});
server.on('error', (err) => out({ ev: 'error', message: String(err?.message ?? err) }));
server.listen(port, host, () => out({ ev: 'listening', port }));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
