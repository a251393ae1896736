// Typed wrappers of native/spool.cc, and the one declaration of the spool's data types (options,
// recovered messages, recovery events, body locations, stats); src/spool/index.ts builds the
// spool's API on these. Any thread for the wrappers (see each); open and recover block on the
// recovery scan, commit/markDone/update/close return Promises settled after fdatasync.
import { binding } from './addon.js';

/** An open spool (process-wide native instance); a handle is valid in the thread that made it. */
export type NativeSpoolHandle = { readonly __brand: 'NativeSpoolHandle' };
/** A message being received; owned by the thread that began it until commit or abort. */
export type NativeMessageHandle = { readonly __brand: 'NativeMessageHandle' };

/** What the native spool is opened with (Spool.open adds a logger; see SpoolOptions). */
export interface NativeSpoolOpenOptions {
  /** Created if missing. One process at a time (flock on `<directory>/lock`). */
  directory: string;
  /** This node's name; part of every queue id. Sanitized to [A-Za-z0-9-], at most 32 characters. */
  nodeId: string;
  /** 'fdatasync' (default): a commit settles after its batch is synced. 'none': tests only. */
  sync?: 'fdatasync' | 'none';
  /** Commit_Delay: extra ms a batch waits for more commits. 0 (default): natural batching. */
  commitDelayMs?: number;
  /** Segment_Size in bytes (default 64 MiB). */
  segmentSize?: number;
  /** Copy_Forward_After in ms (default 1 h): live messages in segments sealed longer ago than this
   *  are copied into the current segment so the old one can be reclaimed. 0 disables. */
  copyForwardAfterMs?: number;
  /** How a new segment's space is reserved. 'fallocate' (default): the whole segment at creation,
   *  so a full disk shows up there and not in the middle of a batch. 'zero': zero-filled ahead of
   *  time by a background thread (fdatasync then never allocates, but every byte is written
   *  twice). 'none': the file grows with each batch. Measured within noise of each other
   *  end-to-end on the 2 vCPU VMs (2026-11-22); see bench/spool.bench.ts. */
  preallocate?: 'zero' | 'fallocate' | 'none';
  /** Compact the journal once it grows beyond this many bytes (default 64 MiB). */
  journalLimit?: number;
  /** The event journal (`<directory>/events/`, docs/events.md): size at which a segment is sealed
   *  and the next started (default 16 MiB). */
  eventSegmentSize?: number;
  /** Event_Journal_Max_Size: the most disk the event journal may use (default 1 GiB). */
  eventMaxSize?: number;
  /** Event_Journal_At_Cap: 'refuse' (default): events that do not fit fail their operation
   *  (ERR_SPOOL_FULL, syscall "events"): a commit is not acknowledged without its event.
   *  'drop_oldest': the oldest sealed segments are removed, read by every subscriber or not. */
  eventAtCap?: 'refuse' | 'drop_oldest';
  /** Event_Journal_Retention: history kept even when every subscriber has read it (and all of it
   *  up to this size when there is no subscriber); default 128 MiB. */
  eventRetention?: number;
  /** The share of eventMaxSize (percent) at which stats report the alarm (default 80). */
  eventAlarmPercent?: number;
  /** true (default): the event file's fdatasync runs beside the segment's on a helper thread;
   *  false: one after the other (for the benchmark's comparison). */
  eventSyncOverlap?: boolean;
}

/** One event handed to the spool: an opaque payload (at most 1 MiB) and an optional queue id. */
export interface NativeEventIn {
  id?: string;
  data: Buffer;
}

/** A range of event records removed at the cap (drop_oldest) before these subscribers read it. */
export interface NativeEventDrop {
  fromSeq: number;
  toSeq: number;
  /** ms since the epoch. */
  at: number;
  subscribers: string[];
}

/** The event journal's counters as the addon reports them (EventJournal.stats() builds on them). */
export interface NativeEventStats {
  segments: number;
  /** Bytes of frames on disk (the active segment's preallocated rest not counted). */
  bytes: number;
  /** The first sequence number still on disk and the last durable one (0: none yet). */
  firstSeq: number;
  lastSeq: number;
  appended: number;
  /** Operations refused at the cap; batches undone by an event write failure. */
  refused: number;
  writeErrors: number;
  /** Damaged frames and torn tails found at open. */
  damaged: number;
  tornTails: number;
  droppedRecords: number;
  droppedSegments: number;
  trimmedSegments: number;
  cap: number;
  alarmBytes: number;
  retention: number;
  atCap: 'refuse' | 'drop_oldest';
  drops: NativeEventDrop[];
  segmentList: { no: number; firstSeq: number; lastSeq: number; bytes: number }[];
}

/** What recovery did at open beyond reading good records. Never silent: also logged. */
export interface NativeSpoolEvent {
  /** 'torn-tail': an incomplete last write, cut off (never acknowledged). 'corrupt': unreadable
   *  bytes moved aside to `corrupt/<savedAs>` with a `.reason` file next to them (no savedAs: a
   *  segment that could not be opened or mapped, left in place for the next open). 'deferred':
   *  the disk is full, so the journal snapshot was not written (the old journal in `file` is
   *  kept and appended to; the snapshot is retried): the node starts and refuses new mail. */
  kind: 'torn-tail' | 'corrupt' | 'deferred';
  file: string;
  offset: number;
  length: number;
  reason: string;
  savedAs?: string;
  /** The queue id the damaged record claims, when its header was readable that far. */
  id?: string;
}

export interface NativeSpoolOpened {
  handle: NativeSpoolHandle;
  directory: string;
  nodeId: string;
  events: NativeSpoolEvent[];
}

/** A message that was acknowledged (committed) and not marked done before the spool was opened
 *  (one record of a NativeRecoveredChunk; src/spool's recover() makes them for tests and tools). */
export interface NativeRecovered {
  id: string;
  /** The envelope given at commit; a fresh copy owned by the caller. */
  envelope: Buffer;
  /** The latest update() state, or null if there was none; a fresh copy owned by the caller. */
  state: Buffer | null;
  /** Body size in wire form (bytes). */
  size: number;
  /** Milliseconds since the epoch when it was first committed (copy-forward keeps it). */
  arrival: number;
}

/** An opaque cursor of spoolRecoverBegin (freed with it by the GC). */
export type NativeRecoverCursor = { readonly __recoverCursor: unique symbol };

/**
 * Up to `max` recovered messages, columnar (one object per chunk, not per message). Message i:
 * id ids.split('\n')[i] (ids never hold a newline), envelope envelopes[envOffsets[i],
 * envOffsets[i + 1]), size sizes[i], arrival arrivals[i]; its latest update() state, if it has one,
 * is states[stateOffsets[k], stateOffsets[k + 1]) where stateIndex[k] === i (ascending).
 */
export interface NativeRecoveredChunk {
  ids: string;
  envelopes: Buffer;
  envOffsets: Uint32Array;
  /** Body sizes in wire form (bytes). */
  sizes: Float64Array;
  /** Milliseconds since the epoch when each was first committed (copy-forward keeps it). */
  arrivals: Float64Array;
  stateIndex: Uint32Array;
  stateOffsets: Uint32Array;
  states: Buffer;
}

/** Where a body lies, for sendfile. The caller owns `fd` (a dup) and must close it. */
export interface NativeBodyLocation {
  fd: number;
  path: string;
  offset: number;
  length: number;
}

/** The spool's counters as the addon reports them (Spool.stats() derives SpoolStats from them). */
export interface NativeSpoolStats {
  /** Live (committed, not done) messages and their body bytes. */
  messages: number;
  bytes: number;
  segments: number;
  /** Messages committed since open, group-commit batches, fdatasync calls. */
  commits: number;
  batches: number;
  syncs: number;
  journalEntries: number;
  copiedForward: number;
  reclaimed: number;
  /** Commits refused with ERR_SPOOL_FULL / another I/O error since open. */
  fullErrors: number;
  ioErrors: number;
  recovered: number;
  corrupt: number;
  tornTails: number;
  /** Commit latency (commit() to durable) histogram: counts[i] are <= boundsUs[i] µs and above
   *  boundsUs[i - 1] (not cumulative; the last bound is Infinity). */
  latencyBoundsUs: number[];
  latencyCounts: number[];
  /** Sum of every commit latency counted in latencyCounts, µs. */
  latencySumUs: number;
  crc32cHardware: boolean;
}

/**
 * Opens, locks and recovers a spool directory; blocks for the recovery scan. Throws (a VipError)
 * EAGAIN from flock when another process holds it, EBUSY when this process has it open, the errno
 * of open/fstat/mmap naming the file when a journal cannot be read, ERR_SPOOL_FULL when the
 * journal snapshot cannot be written for lack of space.
 */
export function spoolOpen(opts: NativeSpoolOpenOptions): NativeSpoolOpened {
  return binding.spoolOpen(opts) as NativeSpoolOpened;
}
/** The process-wide spool another thread opened; throws ERR_SPOOL_CLOSED when there is none. */
export function spoolAttach(directory: string): NativeSpoolHandle {
  return binding.spoolAttach(directory) as NativeSpoolHandle;
}
/** Hot path: a new in-memory message. */
export function spoolBegin(sizeHint: number): NativeMessageHandle {
  return binding.spoolBegin(sizeHint) as NativeMessageHandle;
}
/** Hot path: converts one DATA chunk to wire form into the message; the chunk is not kept. */
export function spoolAppend(m: NativeMessageHandle, chunk: Buffer): void {
  binding.spoolAppend(m, chunk);
}
export function spoolAbort(m: NativeMessageHandle): void {
  binding.spoolAbort(m);
}
/** The event, when given, is written in the same batch, its frame stamped with the new queue id. */
export function spoolCommit(
  h: NativeSpoolHandle,
  m: NativeMessageHandle,
  envelope: Buffer,
  event?: Buffer,
): Promise<{ id: string; size: number }> {
  return binding.spoolCommit(h, m, envelope, event) as Promise<{ id: string; size: number }>;
}
export function spoolMarkDone(h: NativeSpoolHandle, ids: string[], events?: NativeEventIn[]): Promise<void> {
  return binding.spoolMarkDone(h, ids, events) as Promise<void>;
}
/** The event, when given, is written in the same batch, its frame stamped with `id`. */
export function spoolUpdate(h: NativeSpoolHandle, id: string, state: Buffer, event?: Buffer): Promise<void> {
  return binding.spoolUpdate(h, id, state, event) as Promise<void>;
}
export function spoolAppendEvents(h: NativeSpoolHandle, events: NativeEventIn[]): Promise<void> {
  return binding.spoolAppendEvents(h, events) as Promise<void>;
}
/** Removes event segments every subscriber has passed (beyond the retention); resolves with how many. */
export function spoolEventsTrim(h: NativeSpoolHandle): Promise<number> {
  return binding.spoolEventsTrim(h) as Promise<number>;
}
export function spoolEventsStats(h: NativeSpoolHandle): NativeEventStats {
  return binding.spoolEventsStats(h) as NativeEventStats;
}
/** The last durable event sequence number (0: none). */
export function spoolEventsHead(h: NativeSpoolHandle): number {
  return binding.spoolEventsHead(h) as number;
}
/** CRC32C of b[start, end), chained from crc (0 to start). */
export function spoolCrc32c(b: Buffer, start: number, end: number, crc = 0): number {
  return binding.spoolCrc32c(b, start, end, crc) as number;
}
export function spoolRead(h: NativeSpoolHandle, id: string): Buffer {
  return binding.spoolRead(h, id) as Buffer;
}
/** Reads the body into the start of `buf` if it fits; returns its length either way. */
export function spoolReadInto(h: NativeSpoolHandle, id: string, buf: Buffer): number {
  return binding.spoolReadInto(h, id, buf) as number;
}
export function spoolBodyLocation(h: NativeSpoolHandle, id: string): NativeBodyLocation {
  return binding.spoolBodyLocation(h, id) as NativeBodyLocation;
}
/**
 * Lists the messages found at open (all: every live one) and not done since, oldest first, as
 * compact refs; spoolRecoverNext hands them out. Blocks on nothing but the index lock.
 */
export function spoolRecoverBegin(h: NativeSpoolHandle, all = false): NativeRecoverCursor {
  return binding.spoolRecoverBegin(h, all) as NativeRecoverCursor;
}
/** The next chunk of at most `max` messages (one done since Begin is skipped), or null at the end. Blocks on one pread per envelope. */
export function spoolRecoverNext(h: NativeSpoolHandle, cursor: NativeRecoverCursor, max: number): NativeRecoveredChunk | null {
  return binding.spoolRecoverNext(h, cursor, max) as NativeRecoveredChunk | null;
}
export function spoolStats(h: NativeSpoolHandle): NativeSpoolStats {
  return binding.spoolStats(h) as NativeSpoolStats;
}
export function spoolClose(h: NativeSpoolHandle): Promise<void> {
  return binding.spoolClose(h) as Promise<void>;
}
