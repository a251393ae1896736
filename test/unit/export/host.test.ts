// The node's exporter host on a real journal directory: one subscriber per Event_Webhook made at
// start (from the end by default, from the start when asked), a webhook-* subscriber no stanza
// names reported at WARN, and the `log exporters` table.
import path from 'node:path';
import type { Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/config/index.js';
import { Exporters } from '../../../src/node/exporters.js';
import { EventJournal } from '../../../src/spool/events.js';
import { Spool } from '../../../src/spool/index.js';
import { freePort } from '../../helpers/node-process.js';
import { tempDir } from '../../helpers/tmp.js';

const running: Exporters[] = [];
afterEach(async () => {
  for (const e of running.splice(0)) await e.stop();
});

function logger(lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }>): Logger {
  const at = (level: string) => (obj: object, msg: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: () => undefined } as unknown as Logger;
}

describe('exporter host', () => {
  it('subscribes each webhook at start, reports a stale webhook subscriber, and shows them in log exporters', async () => {
    const spool = path.join(tempDir('exporters-'), 'spool');
    // History before the stanzas exist: 5 records.
    const sp = Spool.open({ directory: spool, nodeId: 'n1' });
    await sp.appendEvents(Array.from({ length: 5 }, (_, i) => ({ data: Buffer.from(JSON.stringify({ v: 1, type: 'address_taken', address: `192.0.2.${i}` })) })));
    await sp.close();
    new EventJournal({ directory: spool }).subscribe('webhook-old');
    const port = await freePort(); // nothing listens: the exporters retry, which is what the table shows
    const r = loadConfigText(`Nodename = "n1"
Event_Webhook "a" { Url = "http://127.0.0.1:${port}/" Types = ( "delivery" "deliverd" ) }
Event_Webhook "b" { Url = "http://127.0.0.1:${port}/" Subscribe_From = start }
`, 'test.conf', { cwd: '/' });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
    const ex = Exporters.start(r.config, spool, logger(lines));
    running.push(ex);
    // "a" starts after the history (Subscribe_From = end), "b" before it (start).
    expect([...new EventJournal({ directory: spool }).subscribers()].sort()).toEqual([['webhook-a', 5], ['webhook-b', 0], ['webhook-old', 5]]);
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.obj.subscriber ?? l.obj.unknown)).toEqual([['deliverd'], 'webhook-old']);
    expect(ex.report()).toMatch(/^EXPORTER +KIND +STATE +CHECKPOINT +LAG +LAG_S +BATCHES +RECORDS +RETRIES +LAST_ERROR\na +webhook +\S+ +5 +0 +0\.0 +0 +0 +0 +-\nb +webhook +\S+ +0 +5 /);
    expect(ex.values().map((v) => v.name)).toEqual(['a', 'b']);
  });

  it('says so when there is no Event_Webhook or Event_Nats', () => {
    const r = loadConfigText('Nodename = "n1"\n', 'test.conf', { cwd: '/' });
    if (!r.ok) throw new Error('config');
    expect(Exporters.start(r.config, '/nonexistent', logger([])).report()).toBe('no Event_Webhook or Event_Nats on this node\n');
  });
});
