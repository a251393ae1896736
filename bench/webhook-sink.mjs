// A webhook receiver for benches of the Event_Webhook exporter: answers 200 to every POST once its
// body is in, counts the POSTs and the records (the body is a JSON array of records, docs/events.md
// "The webhook"), and prints the counts when stopped (SIGTERM, SIGINT) or at exit. One process,
// main thread; blocks on nothing (JSON.parse of a batch is its only work).
//   node bench/webhook-sink.mjs [--port 18080] [--host 127.0.0.1]
// Then: --extra-config 'Event_Webhook "bench" { Url = "http://127.0.0.1:18080/events" }'
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '18080' }, host: { type: 'string', default: '127.0.0.1' } } });

let posts = 0;
let records = 0;
let unparsed = 0;

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'POST') {
      posts++;
      try {
        const batch = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        records += Array.isArray(batch) ? batch.length : 1;
      } catch {
        unparsed++; // still acknowledged: a bench measures the sender, not this receiver
      }
    }
    res.writeHead(200, { 'content-length': '0' });
    res.end();
  });
});

let reported = false;
function report() {
  if (reported) return;
  reported = true;
  process.stdout.write(`webhook-sink: ${posts} POSTs, ${records} records${unparsed > 0 ? `, ${unparsed} bodies not JSON` : ''}\n`);
}
process.on('exit', report);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`webhook-sink: listening on ${values.host}:${values.port}\n`);
});
