// The batched HTTP webhook exporter (issue 15, docs/events.md "Exporters"): the shared loop of
// loop.ts with a sender that POSTs each batch as one JSON array (http-post.ts) and takes a 2xx as
// the receiver's acknowledgement. Main thread; asynchronous, never blocks (see loop.ts).
import type { Post } from './http-post.js';
import { BatchExporter, type BatchSender, type ExporterOptions, type SendResult } from './loop.js';

export { retryDelay, type ExportClock, type ExporterState, type ExporterStats, type ExportJournal, type ExportLogger } from './loop.js';

export interface WebhookOptions extends ExporterOptions {
  post: Post;
}

/** HTTP statuses that are the receiver's way of saying "later" (RFC 9110 15.5.9, RFC 6585 4). */
const TRANSIENT_4XX = new Set([408, 429]);

/** The webhook's sender: the batch's records as one JSON array body, built once per batch. */
export function webhookSender(post: Post): BatchSender<Buffer> {
  return {
    prepare: (records) => Buffer.from(`[${records.map((r) => r.json).join(',')}]`, 'utf8'),
    send: async (body, signal): Promise<SendResult> => {
      const reply = await post(body, signal);
      const s = reply.status;
      if (s >= 200 && s < 300) return { ok: true };
      // A receiver that refuses (a wrong URL, a bad token) is a misconfiguration: ERROR.
      const fatal = s >= 400 && s < 500 && !TRANSIENT_4XX.has(s);
      const r: SendResult = { ok: false, key: `status ${s}`, level: fatal ? 'error' : 'warn', detail: { status: s, reply: reply.head }, reason: `HTTP ${s}` };
      if (reply.retryAfterMs !== undefined) r.retryAfterMs = reply.retryAfterMs;
      return r;
    },
  };
}

export class WebhookExporter extends BatchExporter<Buffer> {
  constructor(o: WebhookOptions) {
    super(o, { kind: 'webhook', label: 'event webhook' }, webhookSender(o.post));
  }
}
