// The service behind keepalived's address in bench/failover.ts: one per node namespace, it accepts on
// 0.0.0.0:PORT and says "220 NODE responder" so the probe knows which node answered, then closes. The
// kernel delivers connections for the address only on the node that has it plumbed. Single thread.
//   node failover-responder.js NODE PORT
import net from 'node:net';

const [node, portArg] = process.argv.slice(2);
if (node === undefined || portArg === undefined) {
  process.stderr.write('usage: failover-responder NODE PORT\n');
  process.exit(2);
}
const server = net.createServer((s) => {
  s.on('error', () => s.destroy());
  s.end(`220 ${node} responder\r\n`);
});
server.listen(Number(portArg), '0.0.0.0', () => process.stdout.write(`listening ${portArg}\n`));
