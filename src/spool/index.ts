// The spool: durable, group-committed message storage (native/spool*.cc does the work). The main
// thread opens it (Spool.open: locks the directory, recovers, blocks for the scan); any thread,
// listener workers included, writes through attachSpool(). Commits, done-marks and updates return
// Promises that settle after fdatasync; nothing here blocks except open, recover, read. Events
// given with a commit, done-mark or update (or alone, appendEvents) go to the event journal in the
// same group commit (native/spool_events.h); src/spool/events.ts reads them back.
import {
  spoolAbort,
  spoolAppendEvents,
  spoolAppend,
  spoolAttach,
  spoolBegin,
  spoolBodyLocation,
  spoolClose,
  spoolCommit,
  spoolEventsStats,
  spoolMarkDone,
  spoolOpen,
  spoolRead,
  spoolReadInto,
  spoolRecoverBegin,
  spoolRecoverNext,
  spoolStats,
  spoolUpdate,
  type NativeBodyLocation,
  type NativeEventIn,
  type NativeEventStats,
  type NativeMessageHandle,
  type NativeRecovered,
  type NativeRecoveredChunk,
  type NativeSpoolEvent,
  type NativeSpoolHandle,
  type NativeSpoolOpenOptions,
  type NativeSpoolStats,
} from '../native/index.js';
import { ErrorCode, VipError } from '../errors.js';
import fs from 'node:fs/promises';
import path from 'node:path';

/** Spool.open's options: the native spool's (documented in src/native/spool.ts) and a logger. */
export interface SpoolOptions extends NativeSpoolOpenOptions {
  /** Recovery events (torn tails, corrupt records) are logged here when given (pino-compatible). */
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

// The spool's data types are declared once, in src/native/spool.ts; these are their names here.
/** A message that was acknowledged (committed) and not marked done before the spool was opened. */
export type RecoveredMessage = NativeRecovered;
/**
 * Recovered messages in one columnar chunk (NativeRecoveredChunk with its ids split): message i
 * is ids[i], its envelope envelopes[envOffsets[i], envOffsets[i + 1]), sizes[i], arrivals[i], and
 * its saved state, if any, states[stateOffsets[k], stateOffsets[k + 1]) where stateIndex[k] === i.
 * A reader takes strings out of the buffers; it keeps no view of them beyond the chunk.
 */
export interface RecoveredChunk extends Omit<NativeRecoveredChunk, 'ids'> {
  ids: string[];
}
/** Messages per chunk: about 1 MiB of envelopes at 250 B each, few enough to stay young in V8. */
export const RECOVER_CHUNK = 4096;
/** What recovery did at open beyond reading good records. Never silent: also logged. */
export type RecoveryEvent = NativeSpoolEvent;
/** One entry of `corrupt/`: the saved bytes and the `.reason` file recovery wrote next to them. */
export interface CorruptEntry {
  /** The saved bytes, relative to the spool directory (corrupt/<segment>[-<offset>].bad). */
  savedAs: string;
  /** The segment or journal file the bytes came from. */
  file: string;
  offset: number | null;
  length: number | null;
  reason: string;
  /** The queue id the damaged record claims ('-' when its header was unreadable). */
  id: string;
  /** When recovery saved them (the .reason file's mtime), ms since the epoch. */
  savedAt: number;
}
/** Where a body lies, for sendfile. The caller owns `fd` (a dup) and must close it. */
export type BodyLocation = NativeBodyLocation;
/** An event for the event journal: an opaque payload (at most 1 MiB) and an optional queue id. */
export type EventInput = NativeEventIn;

/** The native counters, with the latency histogram grouped and the average batch derived. */
export interface SpoolStats extends Omit<NativeSpoolStats, 'latencyBoundsUs' | 'latencyCounts' | 'latencySumUs'> {
  /** commits / batches (0 before the first batch). */
  averageBatch: number;
  /** Commit latency (commit() to durable) histogram: counts[i] are <= boundsUs[i] µs and above
   *  boundsUs[i - 1] (not cumulative; the last bound is Infinity). sumUs: the sum of all of them. */
  latency: { boundsUs: number[]; counts: number[]; sumUs: number };
}

/** Writes messages into the process-wide spool. Usable on the thread that created it only. */
export interface SpoolWriter {
  readonly directory: string;
  /**
   * Starts a message. The envelope may be given here or at commit (the listener only knows the
   * headers policy needs at the end of DATA). `sizeHint` presizes the buffer (e.g. SIZE=).
   */
  begin(envelope?: Buffer, sizeHint?: number): MessageWriter;
  /** Records events (rejections at SMTP time, ...) durably, group-committed with whatever else is
   *  in the batch; resolves after their fdatasync. Rejects like commit (ERR_SPOOL_FULL at the
   *  event journal's cap under Event_Journal_At_Cap refuse). */
  appendEvents(events: EventInput[]): Promise<void>;
}

/** One message being received. Owned by its thread; memory is native, freed at commit/abort. */
export interface MessageWriter {
  /** Hot path: converts one dot-unstuffed DATA chunk to wire form (CRLF line ends, bare LF and
   *  lone CR become CRLF, leading "." doubled) in native memory. The chunk is not retained. */
  append(chunk: Buffer): void;
  /** Resolves after the record is on disk (fdatasync); only then may the caller answer 250.
   *  Rejects with code ERR_SPOOL_FULL (disk or quota full; retry later), ERR_SPOOL_CLOSED, or the
   *  errno name (with `syscall`) of any other I/O error. `size` is the wire-form body size.
   *  `event`, when given, goes to the event journal in the same batch, its frame stamped with the
   *  queue id the commit assigns, and is on disk before this resolves; if it cannot be written
   *  (cap reached under refuse, a write error) the commit rejects and nothing of it is kept. */
  commit(envelope?: Buffer, event?: Buffer): Promise<{ id: string; size: number }>;
  /** Drops the message (client went away mid-DATA): nothing of it is kept. Idempotent. */
  abort(): void;
}

class NativeMessageWriter implements MessageWriter {
  private handle: NativeMessageHandle | null;
  constructor(
    private readonly spool: NativeSpoolHandle,
    private readonly envelope: Buffer | undefined,
    sizeHint: number,
  ) {
    this.handle = spoolBegin(sizeHint);
  }
  append(chunk: Buffer): void {
    if (this.handle === null) throw stateError();
    spoolAppend(this.handle, chunk);
  }
  commit(envelope?: Buffer, event?: Buffer): Promise<{ id: string; size: number }> {
    const h = this.handle;
    if (h === null) return Promise.reject(stateError());
    const env = envelope ?? this.envelope;
    if (env === undefined) return Promise.reject(new TypeError('commit: no envelope given at begin or commit'));
    this.handle = null;
    return spoolCommit(this.spool, h, env, event);
  }
  abort(): void {
    if (this.handle === null) return;
    spoolAbort(this.handle);
    this.handle = null;
  }
}

function stateError(): Error {
  return new VipError(ErrorCode.INVALID_STATE, 'the message was already committed or aborted');
}

class Writer implements SpoolWriter {
  constructor(
    readonly directory: string,
    private readonly handle: NativeSpoolHandle,
  ) {}
  begin(envelope?: Buffer, sizeHint = 0): MessageWriter {
    return new NativeMessageWriter(this.handle, envelope, sizeHint);
  }
  appendEvents(events: EventInput[]): Promise<void> {
    return spoolAppendEvents(this.handle, events);
  }
}

/**
 * A writer for the spool the main thread opened in this process, from any thread (listener
 * workers). Throws ERR_SPOOL_CLOSED when no spool is open at `directory`.
 */
export function attachSpool(directory: string): SpoolWriter {
  const handle = spoolAttach(directory);
  return new Writer(directory, handle);
}

/** Reads bodies of the process-wide spool from any thread (#mmove senders in workers). */
export interface SpoolReader {
  /** The body in wire form, one pread into a new Buffer the caller owns. Throws ENOENT. */
  read(id: string): Buffer;
  /** The body into the start of `buf` (one pread) when it fits; returns the body's length either
   *  way (larger than buf.length: nothing was read). Throws ENOENT. */
  readInto(id: string, buf: Buffer): number;
  /** Where the body lies, for sendfile; the caller owns and must close `fd`. Throws ENOENT. */
  bodyLocation(id: string): BodyLocation;
}

/** A reader on the spool the main thread opened in this process. Throws ERR_SPOOL_CLOSED if none. */
export function attachSpoolReader(directory: string): SpoolReader {
  const handle = spoolAttach(directory);
  return {
    read: (id) => spoolRead(handle, id),
    readInto: (id, buf) => spoolReadInto(handle, id, buf),
    bodyLocation: (id) => spoolBodyLocation(handle, id),
  };
}

export class Spool {
  /** The directory as opened (realpath). */
  readonly directory: string;
  /** The sanitized node id used in queue ids. */
  readonly nodeId: string;
  /** Torn tails cut off and corrupt records moved aside during recovery at open. */
  readonly recoveryEvents: readonly RecoveryEvent[];
  private readonly handle: NativeSpoolHandle;
  private closing: Promise<void> | null = null;
  private writerCache: SpoolWriter | null = null;

  private constructor(handle: NativeSpoolHandle, directory: string, nodeId: string, events: RecoveryEvent[]) {
    this.handle = handle;
    this.directory = directory;
    this.nodeId = nodeId;
    this.recoveryEvents = events;
  }

  /**
   * Opens (creating if needed), locks and recovers the spool. Main thread; blocks while it scans
   * every segment and journal. Throws EAGAIN (syscall flock) when another process holds it,
   * EBUSY when this process already has it open, the errno (syscall open, fstat or mmap, the file
   * in the message) when a journal cannot be read: opening without it would deliver again what
   * its done-marks say was delivered.
   */
  static open(opts: SpoolOptions): Spool {
    if (typeof opts.directory !== 'string' || opts.directory === '') throw new TypeError('Spool.open: directory is required');
    if (typeof opts.nodeId !== 'string') throw new TypeError('Spool.open: nodeId is required');
    const segmentSize = opts.segmentSize ?? 64 * 1024 * 1024;
    if (!Number.isInteger(segmentSize) || segmentSize < 4096) throw new RangeError('Spool.open: segmentSize must be an integer >= 4096');
    const commitDelayMs = opts.commitDelayMs ?? 0;
    if (!(commitDelayMs >= 0 && commitDelayMs <= 10_000)) throw new RangeError('Spool.open: commitDelayMs must be 0..10000');
    const eventSegmentSize = opts.eventSegmentSize ?? 16 * 1024 * 1024;
    if (!Number.isInteger(eventSegmentSize) || eventSegmentSize < 4096) throw new RangeError('Spool.open: eventSegmentSize must be an integer >= 4096');
    const copyForwardAfterMs = opts.copyForwardAfterMs ?? 3_600_000;
    if (!(copyForwardAfterMs >= 0)) throw new RangeError('Spool.open: copyForwardAfterMs must be >= 0');
    const opened = spoolOpen({
      directory: opts.directory,
      nodeId: opts.nodeId,
      sync: opts.sync ?? 'fdatasync',
      commitDelayMs,
      segmentSize,
      copyForwardAfterMs,
      preallocate: opts.preallocate ?? 'fallocate',
      journalLimit: opts.journalLimit ?? 64 * 1024 * 1024,
      eventSegmentSize,
      eventMaxSize: opts.eventMaxSize ?? 1024 * 1024 * 1024,
      eventAtCap: opts.eventAtCap ?? 'refuse',
      eventRetention: opts.eventRetention ?? 128 * 1024 * 1024,
      eventAlarmPercent: opts.eventAlarmPercent ?? 80,
      eventSyncOverlap: opts.eventSyncOverlap ?? true,
    });
    for (const ev of opened.events) {
      opts.logger?.[ev.kind === 'torn-tail' ? 'warn' : 'error'](
        { spool: opened.directory, ...ev },
        ev.file.startsWith('events/')
          ? ev.kind === 'torn-tail'
            ? 'event journal: torn tail cut off (never acknowledged)'
            : ev.savedAs !== undefined
              ? 'event journal: segment with an unreadable header moved to corrupt/'
              : 'event journal: damaged frame left in place, skipped by readers'
          : ev.kind === 'corrupt'
          ? 'spool: unreadable record moved to corrupt/'
          : ev.kind === 'deferred'
            ? 'spool full at open: journal snapshot deferred, refusing new messages until space returns'
            : 'spool: torn tail cut off (never acknowledged)',
      );
    }
    return new Spool(opened.handle, opened.directory, opened.nodeId, opened.events);
  }

  /**
   * Every message acknowledged and not marked done when the spool was opened, once each, oldest
   * first, with its envelope and latest state, `max` at a time (a million messages are never a
   * million objects: docs/performance.md "recovery in chunks"). The list is taken at the first
   * chunk; a message marked done after that is skipped. Envelopes close together are read in one pread.
   */
  *recoverChunks(max = RECOVER_CHUNK): Generator<RecoveredChunk> {
    yield* chunks(this.handle, false, max);
  }

  /**
   * Every message not yet done, including those committed since open, oldest first, in chunks. The
   * main thread uses it to find messages a worker committed but died before reporting.
   */
  *liveChunks(max = RECOVER_CHUNK): Generator<RecoveredChunk> {
    yield* chunks(this.handle, true, max);
  }

  /** recoverChunks() as one record per message (tests, tools; each envelope and state a copy). */
  recover(): RecoveredMessage[] {
    return messagesOf(this.recoverChunks());
  }

  /** liveChunks() as one record per message (tests, tools). */
  live(): RecoveredMessage[] {
    return messagesOf(this.liveChunks());
  }

  /** A writer on this thread (the main thread usually only writes for tests and #mmove). */
  writer(): SpoolWriter {
    this.writerCache ??= new Writer(this.directory, this.handle);
    return this.writerCache;
  }

  /** Marks messages delivered (or bounced); durable when it resolves. Unknown ids are ignored.
   *  `events` (delivery records) go to the event journal in the same batch and are on disk before
   *  it resolves; if they cannot be written the done-marks are not kept either (it rejects). */
  markDone(ids: string[], events?: EventInput[]): Promise<void> {
    return spoolMarkDone(this.handle, ids, events);
  }

  /** Replaces a message's small state (attempts, next attempt, binding); durable when it
   *  resolves; recover() returns the latest. Rejects ENOENT for an unknown or done id (and then
   *  records no event). `event` goes to the event journal in the same batch, stamped with `id`. */
  update(id: string, state: Buffer, event?: Buffer): Promise<void> {
    return spoolUpdate(this.handle, id, state, event);
  }

  /** Records events alone, group-committed with whatever else is in the batch; durable when it
   *  resolves. Rejects ERR_SPOOL_FULL at the cap (refuse) or with the write's errno. */
  appendEvents(events: EventInput[]): Promise<void> {
    return spoolAppendEvents(this.handle, events);
  }

  /** The body in wire form, read with one pread into a new Buffer the caller owns. Throws ENOENT. */
  read(id: string): Buffer {
    return spoolRead(this.handle, id);
  }

  /** The body into the start of `buf` (one pread) when it fits; returns the body's length either
   *  way (larger than buf.length: nothing was read). Throws ENOENT. */
  readInto(id: string, buf: Buffer): number {
    return spoolReadInto(this.handle, id, buf);
  }

  /** Where the body lies, for sendfile; the caller owns and must close `fd`. Throws ENOENT. */
  bodyLocation(id: string): BodyLocation {
    return spoolBodyLocation(this.handle, id);
  }

  /** The event journal's counters, segments and recent drops (EventJournal.stats() adds the
   *  subscribers). Any thread that has the spool open. */
  eventStats(): NativeEventStats {
    return spoolEventsStats(this.handle);
  }

  stats(): SpoolStats {
    const s = spoolStats(this.handle);
    return {
      messages: s.messages,
      bytes: s.bytes,
      segments: s.segments,
      commits: s.commits,
      batches: s.batches,
      syncs: s.syncs,
      averageBatch: s.batches === 0 ? 0 : s.commits / s.batches,
      journalEntries: s.journalEntries,
      copiedForward: s.copiedForward,
      reclaimed: s.reclaimed,
      fullErrors: s.fullErrors,
      ioErrors: s.ioErrors,
      recovered: s.recovered,
      corrupt: s.corrupt,
      tornTails: s.tornTails,
      latency: { boundsUs: s.latencyBoundsUs, counts: s.latencyCounts, sumUs: s.latencySumUs },
      crc32cHardware: s.crc32cHardware,
    };
  }

  /** Finishes every commit queued so far (later ones reject ERR_SPOOL_CLOSED), closes the files
   *  and releases the lock. Idempotent. */
  close(): Promise<void> {
    this.closing ??= spoolClose(this.handle);
    return this.closing;
  }
}

/**
 * What `corrupt/` of the spool in `directory` holds, oldest first, from the `.reason` files
 * recovery writes (native/spool_recovery.cc: "file: ...\noffset: ...\nlength: ...\nreason: ...").
 * Reads a few small files; any thread, never while a commit waits on it.
 */
export async function listCorrupt(directory: string): Promise<CorruptEntry[]> {
  const dir = path.join(directory, 'corrupt');
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: CorruptEntry[] = [];
  for (const name of names) {
    if (!name.endsWith('.reason')) continue;
    const full = path.join(dir, name);
    const [text, st] = await Promise.all([fs.readFile(full, 'utf8'), fs.stat(full)]);
    const field = (k: string): string | undefined => new RegExp(`^${k}: (.*)$`, 'm').exec(text)?.[1];
    const num = (k: string): number | null => {
      const v = field(k);
      return v === undefined ? null : Number(v);
    };
    out.push({
      savedAs: `corrupt/${name.slice(0, -'.reason'.length)}.bad`,
      file: field('file') ?? '?',
      offset: num('offset'),
      length: num('length'),
      reason: field('reason') ?? '?',
      id: field('id') ?? '-',
      savedAt: st.mtimeMs,
    });
  }
  return out.sort((a, b) => a.savedAt - b.savedAt || a.savedAs.localeCompare(b.savedAs));
}

export { EventJournal } from './events.js';
export type { EventJournalOptions, EventJournalStats, EventReadResult, EventRecord, SubscriberStats } from './events.js';

function* chunks(h: NativeSpoolHandle, all: boolean, max: number): Generator<RecoveredChunk> {
  const cursor = spoolRecoverBegin(h, all);
  for (;;) {
    const c = spoolRecoverNext(h, cursor, max);
    if (c === null) return;
    yield { ...c, ids: c.ids.split('\n') };
  }
}

/** One record per message of the chunks, envelope and state copied out of the chunk's buffers. */
export function messagesOf(chunks: Iterable<RecoveredChunk>): RecoveredMessage[] {
  const out: RecoveredMessage[] = [];
  for (const c of chunks) {
    let k = 0;
    for (let i = 0; i < c.ids.length; i++) {
      let state: Buffer | null = null;
      if (k < c.stateIndex.length && c.stateIndex[k] === i) {
        state = Buffer.from(c.states.subarray(c.stateOffsets[k], c.stateOffsets[k + 1]));
        k++;
      }
      out.push({ id: c.ids[i]!, envelope: Buffer.from(c.envelopes.subarray(c.envOffsets[i], c.envOffsets[i + 1])), state, size: c.sizes[i]!, arrival: c.arrivals[i]! });
    }
  }
  return out;
}

/** The chunk of these records (the inverse of messagesOf): for callers that hold records, such as tests. */
export function chunkOf(records: readonly RecoveredMessage[]): RecoveredChunk {
  const n = records.length;
  const envOffsets = new Uint32Array(n + 1);
  const withState = records.filter((r) => r.state !== null);
  const stateIndex = new Uint32Array(withState.length);
  const stateOffsets = new Uint32Array(withState.length + 1);
  let e = 0;
  let s = 0;
  let k = 0;
  records.forEach((r, i) => {
    envOffsets[i] = e;
    e += r.envelope.length;
    if (r.state !== null) {
      stateIndex[k] = i;
      stateOffsets[k++] = s;
      s += r.state.length;
    }
  });
  envOffsets[n] = e;
  stateOffsets[k] = s;
  return {
    ids: records.map((r) => r.id),
    envelopes: Buffer.concat(records.map((r) => r.envelope)),
    envOffsets,
    sizes: Float64Array.from(records, (r) => r.size),
    arrivals: Float64Array.from(records, (r) => r.arrival),
    stateIndex,
    stateOffsets,
    states: Buffer.concat(withState.map((r) => r.state!)),
  };
}
