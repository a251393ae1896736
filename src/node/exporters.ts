// Hosts the event exporters (src/export/) in the node: one WebhookExporter per Event_Webhook and
// one NatsExporter per Event_Nats stanza, each reading this node's event journal through its own
// subscriber, their values for /metrics and the `log exporters` console command. Main thread;
// start is synchronous (a subscriber's checkpoint fsync at its creation), stop waits for requests
// in flight to settle and closes the connections.
import type { Logger } from 'pino';
import type { Config, EventNatsOptions, EventWebhookOptions } from '../config/index.js';
import type { CommandTable } from '../control/commands.js';
import type { ExporterValues } from '../control/metrics.js';
import { table } from '../control/table.js';
import { httpPost } from '../export/http-post.js';
import type { BatchExporter, ExporterOptions, ExporterStats } from '../export/loop.js';
import { NatsExporter, natsSender } from '../export/nats.js';
import { WebhookExporter } from '../export/webhook.js';
import { EVENT_TYPES, isEventType } from '../events/records.js';
import { EventJournal } from '../spool/events.js';

/** The batching, retry and subscription options Event_Webhook and Event_Nats share. */
type SharedOptions = Pick<EventWebhookOptions & EventNatsOptions, 'Types' | 'Batch_Size' | 'Batch_Bytes' | 'Max_Delay' | 'Min_Retry_Delay' | 'Max_Retry_Delay' | 'Subscribe_From'>;

export class Exporters {
  private constructor(
    private readonly list: Array<BatchExporter<unknown>>,
    private readonly closers: Array<() => void | Promise<void>>,
  ) {}

  /** Starts one exporter per Event_Webhook and Event_Nats of `config` on the journal in
   *  `spoolDirectory`. A `webhook-*` or `nats-*` subscriber no stanza names any more is reported:
   *  it holds the journal back. */
  static start(config: Config, spoolDirectory: string, logger: Logger): Exporters {
    const list: Array<BatchExporter<unknown>> = [];
    const closers: Array<() => void | Promise<void>> = [];
    if (config.eventWebhooks.length === 0 && config.eventNats.length === 0) return new Exporters(list, closers);
    const journal = new EventJournal({ directory: spoolDirectory, logger });
    /** What every exporter's loop takes from its stanza (the options both stanzas share). One
     *  reader each: a reader keeps the file position of its last read, which two exporters
     *  reading at different places would take from each other. */
    const loopOptions = (stanza: string, name: string, o: SharedOptions): ExporterOptions => {
      const unknown = o.Types.filter((t) => !isEventType(t));
      if (unknown.length > 0) logger.warn({ exporter: name, unknown, known: EVENT_TYPES }, `${stanza} Types names record types this version does not write; they match nothing`);
      return {
        name,
        node: config.global.Nodename,
        journal: new EventJournal({ directory: spoolDirectory, logger }),
        batchSize: o.Batch_Size,
        batchBytes: o.Batch_Bytes,
        maxDelayMs: o.Max_Delay,
        minRetryMs: o.Min_Retry_Delay,
        maxRetryMs: o.Max_Retry_Delay,
        types: o.Types,
        from: o.Subscribe_From,
        logger,
      };
    };
    for (const w of config.eventWebhooks) {
      const o = w.options;
      const http = httpPost({ url: o.Url, headers: o.Headers, timeoutMs: o.Request_Timeout, tlsVerify: o.TLS_Verify });
      closers.push(http.close);
      const e = new WebhookExporter({ ...loopOptions('Event_Webhook', w.name, o), post: http.post });
      e.start();
      list.push(e as BatchExporter<unknown>);
      // The URL's origin only: its path or query may hold a token, like the headers.
      logger.info({ exporter: w.name, subscriber: e.subscriber, origin: new URL(o.Url).origin, checkpoint: e.stats().checkpoint }, 'event webhook started');
    }
    for (const w of config.eventNats) {
      const o = w.options;
      const sender = natsSender({
        servers: o.Servers, subjectPrefix: o.Subject_Prefix, stream: o.Stream ?? null, token: o.Token ?? null,
        credentials: o.Credentials ?? null, timeoutMs: o.Request_Timeout, connectionName: `vipmta ${config.global.Nodename} ${w.name}`,
      });
      closers.push(sender.close);
      const e = new NatsExporter({ ...loopOptions('Event_Nats', w.name, o), sender });
      e.start();
      list.push(e as BatchExporter<unknown>);
      logger.info({ exporter: w.name, subscriber: e.subscriber, servers: o.Servers, subjectPrefix: o.Subject_Prefix, stream: o.Stream ?? null, checkpoint: e.stats().checkpoint }, 'event nats started');
    }
    const ours = new Set(list.map((e) => e.subscriber));
    for (const name of journal.subscribers().keys()) {
      if ((name.startsWith('webhook-') || name.startsWith('nats-')) && !ours.has(name)) {
        logger.warn(
          { subscriber: name },
          `event journal: subscriber of an Event_Webhook or Event_Nats no longer configured; it holds back the journal's trimming (\`vipmta log unsubscribe ${name}\` if it is gone for good)`,
        );
      }
    }
    return new Exporters(list, closers);
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.list.map((e) => e.stop()));
    await Promise.allSettled(this.closers.map(async (c) => c()));
  }

  stats(): ExporterStats[] {
    return this.list.map((e) => e.stats());
  }

  /** For /metrics. */
  values(): ExporterValues[] {
    return this.stats().map((s) => ({
      name: s.name, kind: s.kind, up: s.failing === 0, lagRecords: s.lagRecords, lagSeconds: s.lagSeconds,
      batchesSent: s.batchesSent, recordsSent: s.recordsSent, retries: s.retries,
    }));
  }

  /** The `log exporters` answer. */
  report(now = Date.now()): string {
    const stats = this.stats();
    if (stats.length === 0) return 'no Event_Webhook or Event_Nats on this node\n';
    const rows = stats.map((s) => [
      s.name, s.kind, s.state, String(s.checkpoint), String(s.lagRecords), s.lagSeconds.toFixed(1),
      String(s.batchesSent), String(s.recordsSent), String(s.retries),
      s.lastError === null ? '-' : `${Math.round((now - s.lastError.at) / 1000)}s ago: ${s.lastError.reason}`,
    ]);
    return table([['EXPORTER', 'KIND', 'STATE', 'CHECKPOINT', 'LAG', 'LAG_S', 'BATCHES', 'RECORDS', 'RETRIES', 'LAST_ERROR'], ...rows]);
  }
}

export function addExporterCommands(t: CommandTable, exporters: () => Exporters | null): void {
  t.add('log exporters', 'the event exporters (Event_Webhook, Event_Nats): state, checkpoint, lag in records and seconds, batches and records sent, retries, last error', () => {
    return exporters()?.report() ?? 'no Event_Webhook or Event_Nats on this node\n';
  });
}
