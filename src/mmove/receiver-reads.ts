// The authenticated read verbs of an ECCluster_Listener session: XJOURNAL (journal.ts) and XCONFIG
// (config-fetch.ts). Each shares one preamble (proof given, no transaction open, arguments, a
// source to read) and answers one reply line, perhaps with octets after it. Worker thread; never
// blocks: the reads themselves are the sources' (asynchronous) work.
import type { Logger } from 'pino';
import { REPLIES, type Reply } from '../smtp/replies.js';
import { encodeBatch, parseJournalCommand, type JournalCommand, type JournalSource } from './journal.js';
import { bundleReply, parseConfigCommand, type ConfigBundleSource, type ConfigCommand } from './config-fetch.js';

/** What the read verbs need of a session's settings (SessionOptions extends it). */
export interface ReadSources {
  /** The Listen name ("ip:port"), for logs, stats and AcceptedMessage.listener. */
  name: string;
  logger: Logger;
  /** The node's event journal, read by authenticated peers with XJOURNAL (journal.ts); null or
   *  absent: XJOURNAL is refused with 554 5.3.3. */
  journal?: JournalSource | null;
  /** The node's config repository, fetched by members catching up with XCONFIG (config-fetch.ts);
   *  null or absent: XCONFIG is refused with 554 5.3.3. */
  config?: ConfigBundleSource | null;
}

/** A read's answer: its reply line and the octets that follow it on the wire (none: empty). */
export interface ReadAnswer {
  line: string;
  body: Buffer;
}

export interface ReadVerb<C> {
  parse(args: string): C | null;
  /** The read, or null when this node has no source for it. */
  start(o: ReadSources, cmd: C): (() => Promise<ReadAnswer>) | null;
  /** The 554 line without a source. */
  unavailable: string;
  /** What the log says and the 451 says before the error's text when the read failed. */
  failure(cmd: C): { log: string; reply: string };
}

const NO_BODY = Buffer.alloc(0);

/** XJOURNAL READ / ACK: an aggregator reads this node's event journal; a READ's batch follows its line. */
export const XJOURNAL: ReadVerb<JournalCommand> = {
  parse: parseJournalCommand,
  start(o, cmd) {
    const source = o.journal ?? null;
    if (source === null) return null;
    if (cmd.verb === 'READ') return async () => encodeBatch(await source.read(cmd.from, cmd.max));
    return async () => {
      await source.ack(cmd.subscriber, cmd.seq);
      return { line: `250 2.0.0 Acked ${cmd.subscriber} through ${cmd.seq}`, body: NO_BODY };
    };
  },
  unavailable: '554 5.3.3 XJOURNAL: this node keeps no event journal',
  failure(cmd) {
    const verb = cmd.verb.toLowerCase();
    return { log: `journal ${verb} for a peer failed`, reply: `XJOURNAL: journal ${verb} failed: ` };
  },
};

/** XCONFIG BUNDLE: a member catching up fetches the revisions it misses; the bundle follows its line. */
export const XCONFIG: ReadVerb<ConfigCommand> = {
  parse: parseConfigCommand,
  start(o, cmd) {
    const source = o.config ?? null;
    if (source === null) return null;
    return async () => {
      const { head, bundle } = await source.bundle(cmd.since);
      return { line: bundleReply(head, bundle.length), body: bundle };
    };
  },
  unavailable: '554 5.3.3 XCONFIG: this node runs no config repository',
  failure: () => ({ log: 'config bundle for a peer failed', reply: 'XCONFIG: ' }),
};

/**
 * One read command (XJOURNAL or XCONFIG): the reply line to give now (refused, or no source), or
 * the answer to come, which never rejects (a failed read is logged and answered 451 4.3.0). `peer` is the node
 * that gave the proof (null: none yet); `inTransaction`: a MAIL is open.
 */
export function startRead<C>(v: ReadVerb<C>, args: string, o: ReadSources, peer: string | null, inTransaction: boolean): string | Promise<ReadAnswer> {
  if (peer === null) return text(REPLIES.authRequired);
  if (inTransaction) return text(REPLIES.badSequence);
  const cmd = v.parse(args);
  if (cmd === null) return text(REPLIES.syntaxError);
  const read = v.start(o, cmd);
  if (read === null) return v.unavailable;
  const failed = (err: unknown): ReadAnswer => {
    const f = v.failure(cmd);
    o.logger.warn({ err, listener: o.name, node: peer }, f.log);
    return { line: `451 4.3.0 ${f.reply}${String((err as Error)?.message ?? err).replace(/[\r\n]+/g, ' ')}`, body: NO_BODY };
  };
  return read().catch(failed);
}

function text(r: Reply): string {
  return `${r.code} ${r.text}`;
}
