// Writes a bounce (a DSN) into the spool, where the body is: reads the original message's header
// section, builds the RFC 3464 report (dsn.ts), encodes its envelope (null sender, dsnFor) and
// commits it. Runs in a worker ('spoolBounce'), so the main thread never reads a body. Blocks on
// one pread of the original (a DSN is rare); the commit is asynchronous (group commit).
import type { Logger } from 'pino';
import { encodeEnvelope } from '../message/envelope.js';
import type { BounceClass } from '../policy/bounce-class.js';
import type { SpoolReader, SpoolWriter } from '../spool/index.js';
import { buildDsn, headerSection, type DsnRecipient } from './dsn.js';

/** One recipient a DSN reports as failed. */
export interface BounceRecipient {
  rcpt: string;
  /** RFC 3463 status, e.g. "5.1.1"; "4.4.7" for an expired message. */
  status: string;
  /** The remote server's reply, or null when the failure was ours (no reply). */
  remoteReply: string | null;
  remoteMta: string | null;
  /** Momentum's bounce class (the DSN's X-Vipmta-Bounce-Class); absent: none reported. */
  bounceClass?: BounceClass;
}

/** What a worker needs to write a DSN: plain data, structured-clone safe. */
export interface BounceRequest {
  /** Queue id of the message that failed; its body is read for the headers. */
  originalId: string;
  /** The original envelope sender (never the null sender): the DSN goes there. */
  to: string;
  /** Milliseconds since the epoch: the original's arrival, and now (the DSN's date and arrival). */
  arrival: number;
  now: number;
  recipients: BounceRecipient[];
  /** This node's host name (Reporting-MTA). */
  reportingMta: string;
}

/** Builds the DSN of `req` and commits it to the spool; resolves with its queue id and size. */
export async function spoolBounce(
  req: BounceRequest,
  spool: { reader: Pick<SpoolReader, 'read'>; writer: SpoolWriter },
  logger: Pick<Logger, 'warn'>,
): Promise<{ id: string; size: number }> {
  let headers = '';
  try {
    headers = headerSection(spool.reader.read(req.originalId));
  } catch (err) {
    logger.warn({ err, id: req.originalId }, 'DSN without the original headers: the body could not be read');
  }
  const lastAttempt = new Date(req.now);
  const recipients: DsnRecipient[] = req.recipients.map((r) => ({
    rcpt: r.rcpt, action: 'failed', status: r.status, remoteReply: r.remoteReply, remoteMta: r.remoteMta, lastAttempt,
    ...(r.bounceClass !== undefined ? { bounceClass: r.bounceClass } : {}),
  }));
  const dsn = buildDsn({
    reportingMta: req.reportingMta, queueId: req.originalId, to: req.to, arrival: new Date(req.arrival), recipients, originalHeaders: headers, now: lastAttempt,
  });
  const w = spool.writer.begin();
  w.append(Buffer.from(dsn.message, 'utf8'));
  return w.commit(encodeEnvelope({
    v: 1, from: '', rcpt: [req.to], arrival: req.now, client: '', helo: '', user: null, tls: false, listener: null, headers: {}, dsnFor: req.originalId,
  }));
}
