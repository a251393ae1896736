// Spool corruption found at start is reported (issue 12, 2): a real vipmta spools a message, stops,
// one byte of the record is flipped on disk, and the restarted node logs the record moved to
// corrupt/ as an ERROR (an acknowledged message is lost), counts it in /metrics and lists it on the
// console (`spool corrupt`) with the queue id the record claims. Real process, loopback only.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, killAll, startVipmta } from '../helpers/node-process.js';
import { SmtpTestClient, wireMessage } from '../helpers/smtp-client.js';

afterEach(killAll);

const MARK = 'corrupt-me-please-0123456789';

describe('spool corruption at start', () => {
  // Damage before another record, and damage in a segment's last record: both were acknowledged
  // (written whole and synced), so both are corruption, not a torn tail (an unacknowledged write).
  for (const last of [false, true]) {
    it(`logs the ${last ? 'last ' : ''}record moved to corrupt/ as an ERROR with its queue id, counts it in a metric and lists it on the console`, async () => {
      const smtp = await freePort();
      const http = await freePort();
      // Nothing is delivered: the message stays in the spool until we corrupt it.
      const config = `Worker_Threads = 1
Nodename = "n1"
Hostname = "mta.vipmta.test"
Resolver_Servers = ( "127.0.0.1:9" )
ESMTP_Listener { Listen "127.0.0.1:${smtp}" { } }
Spool { Directory = "./spool" }
Control_Listener { Listen "./run/control.sock" { } }
Http_Listener { Listen "127.0.0.1:${http}" { } }
Domain "dest.test" { Suspend_Delivery = true }
`;
      const first = startVipmta(config);
      await first.waitStarted();
      const { client } = await SmtpTestClient.connect(smtp);
      const r = await client.send('alice@sender.test', ['bob@dest.test'], wireMessage('corrupt', [MARK]));
      expect(r.code).toBe(250);
      expect(r.id).not.toBeNull();
      if (!last) {
        const r2 = await client.send('alice@sender.test', ['bob@dest.test'], wireMessage('intact', ['fine']));
        expect(r2.code).toBe(250);
      }
      await client.quit();
      const clean = await first.console('spool', 'corrupt');
      expect(clean.stdout).toBe('corrupt: 0 record(s)\n');
      first.signal('SIGTERM');
      await first.exited;

      // Flip one byte of the body inside the segment that holds it.
      const spoolDir = path.join(first.cwd, 'spool');
      let flipped: string | null = null;
      for (const name of fs.readdirSync(spoolDir)) {
        const file = path.join(spoolDir, name);
        if (!fs.statSync(file).isFile()) continue;
        const bytes = fs.readFileSync(file);
        const at = bytes.indexOf(MARK);
        if (at < 0) continue;
        bytes[at] = bytes[at]! ^ 0x20;
        fs.writeFileSync(file, bytes);
        flipped = name;
      }
      expect(flipped).not.toBeNull();

      const again = startVipmta(config, { cwd: first.cwd });
      await again.waitStarted();
      const lost = again.logs.filter((l) => l.msg === 'spool: unreadable record moved to corrupt/');
      expect(lost).toHaveLength(1);
      expect(lost[0]).toMatchObject({ level: 'error', kind: 'corrupt', file: flipped, id: r.id });
      expect(String(lost[0]!.reason)).not.toBe('');
      const recovered = again.logs.find((l) => l.msg === 'spool recovered');
      expect(recovered).toMatchObject({ corrupt: 1, tornTails: 0, messages: last ? 0 : 1 });

      const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
      expect(metrics).toContain('vipmta_spool_recovery_events_total{kind="corrupt"} 1\n');
      expect(metrics).toContain('vipmta_spool_recovery_events_total{kind="torn_tail"} 0\n');

      const listing = await again.console('spool', 'corrupt');
      expect(listing.status, listing.stderr).toBe(0);
      expect(listing.stdout).toContain(String(lost[0]!.savedAs));
      expect(listing.stdout).toContain(String(lost[0]!.reason));
      expect(listing.stdout).toContain(r.id!);
      expect(listing.stdout).toMatch(/corrupt: 1 record\(s\)\n$/);
    });
  }
});
