import {
  ErrorCode,
  RobustMQError,
  type AppendResult,
  type Logger,
  type ReadResult,
  type ShardConfig,
  type ShardInfo,
  type StoredBatch,
} from '@robustmq/core';
import type { AppendRequest } from './append-request.js';
import { isErrno, syncDirectory } from './files.js';
import { FRAME_HEADER_BYTES, sealFrame } from './frame.js';
import type { IndexCache } from './index-cache.js';
import type { JournalMetrics } from './metrics.js';
import {
  offloadedSource,
  type OffloadedSegmentReader,
  type SealedSegment,
  type SegmentSealedListener,
} from './offload.js';
import type { ReadHandleCache } from './read-handles.js';
import { forgetCleanMarker, recoverShard, writeCleanMarker } from './recovery.js';
import type { ReadThreads } from './read-threads.js';
import { ReadMemory } from './read-memory.js';
import { scanFrames, type ScanResult } from './scan.js';
import { Segment, type SegmentIndexes } from './segment.js';
import { SerialQueue } from './serial.js';
import { writeShardMeta } from './shard-meta.js';
import type { WriteHandleBudget } from './write-handles.js';

/** Appends queued behind one write are written together, up to about this many bytes. */
const MAX_GROUP_BYTES = 16 * 1024 * 1024;
/** Durable writes of a shard under way at once. */
const MAX_DURABLE_WRITES = 2;
/** Relative offsets in the indexes are 32-bit. */
const MAX_RELATIVE_OFFSET = 0xffffffff;
/** setTimeout fires at once for longer delays. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * With durability `none`, the active segment is flushed in the background once this many bytes
 * are unflushed, so that sealing it flushes only the rest rather than all of it at once. Measured
 * against 1, 16 and 64 MiB (1 GiB of 16 KiB appends): 4 MiB was as fast as 1 MiB with fewer
 * flushes, and faster than 16 or 64 MiB at 16 appends in flight.
 */
const BACKGROUND_FLUSH_BYTES = 4 * 1024 * 1024;

/** What every shard of one engine shares. */
export interface ShardContext {
  logger: Logger;
  metrics: JournalMetrics;
  indexCache: IndexCache;
  /** Bounds the read handles sealed segments keep open between reads. */
  readHandles: ReadHandleCache;
  /** Bounds the handles active segments keep open for appending. */
  writeHandles: WriteHandleBudget;
  groupCommitMs: number;
  groupCommitBytes: number;
  indexIntervalBytes: number;
  /** Reads offloaded segments; null when the journal was opened without one. */
  offloadedReader: OffloadedSegmentReader | null;
  /** Copy and check long reads into shared memory; null when `readThreads` is 0. */
  readThreads: ReadThreads | null;
  onSegmentSealed: SegmentSealedListener | null;
  /** Wall-clock time in ms, for segment ages. */
  now: () => number;
}

interface SyncWaiter {
  request: AppendRequest;
  endOffset: number;
}

interface DataWaiter {
  offset: number;
  resolve: () => void;
  timer: ReturnType<typeof setTimeout>;
}

function corrupt(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.Corrupt, message);
}

/**
 * One shard: a directory of segments plus its metadata file. Appends are queued and written in
 * order by one writer at a time; reads see only committed batches (those acknowledged by the
 * shard's durability policy).
 */
export class Shard {
  readonly name: string;
  readonly dir: string;
  config: ShardConfig;
  logStartOffset: number;
  /** Oldest first; the last one is the active segment. */
  segments: Segment[];

  readonly #ctx: ShardContext;
  readonly #logger: Logger;
  readonly #lock = new SerialQueue();
  /** The offset the next appended batch gets. */
  #nextOffset: number;
  /** Reads and waiters see offsets below this, in the active segment up to `#committedSize`. */
  #committedOffset: number;
  #committedSize: number;

  #queue: AppendRequest[] = [];
  /** Durable writes under way, oldest first; each settles (never rejects) after those before it. */
  #durableWrites: { finished: Promise<void> }[] = [];
  #draining: Promise<void> | null = null;
  #syncWaiters: SyncWaiter[] = [];
  #syncing: Promise<void> | null = null;
  #syncTimer: ReturnType<typeof setTimeout> | null = null;
  #unsyncedBytes = 0;
  #lastSyncStart = -Infinity;
  #rolling = false;
  /**
   * Wall-clock time of the first append to the active segment, which `segmentMs` counts from: null
   * while it is empty, undefined for one recovered non-empty until it is estimated (on the first
   * append that needs it, see {@link Segment.estimateFirstAppend}).
   */
  #activeSince: number | null | undefined;
  /**
   * Sealed segments whose index files are still being written, and that work: it runs off the
   * append path, one segment at a time in the order sealed.
   */
  #sealing = new Map<Segment, Promise<void>>();
  /** The last sealing started (it never rejects). */
  #lastSealing: Promise<void> = Promise.resolve();
  /** With durability `none`: the background flush of the active segment under way. */
  #flushing: Promise<void> | null = null;
  #unflushedBytes = 0;
  #dataWaiters = new Set<DataWaiter>();
  /** Set after an I/O error that left the log in an unknown state: appends fail until reopened. */
  #failure: Error | null = null;
  #stopped = false;
  /** Why the shard stopped (deleted, or its engine closed): what calls still under way then get. */
  #stopReason: RobustMQError | null = null;

  private constructor(
    ctx: ShardContext,
    dir: string,
    name: string,
    config: ShardConfig,
    logStartOffset: number,
    segments: Segment[],
  ) {
    this.#ctx = ctx;
    this.#logger = ctx.logger.child({ shard: name });
    this.dir = dir;
    this.name = name;
    this.config = config;
    this.segments = segments;
    const active = this.active;
    this.logStartOffset = Math.max(logStartOffset, segments[0]?.baseOffset ?? 0);
    this.#nextOffset = active.endOffset;
    this.#committedOffset = active.endOffset;
    this.#committedSize = active.size;
    this.#activeSince = active.size === 0 ? null : undefined;
  }

  get active(): Segment {
    const last = this.segments[this.segments.length - 1];
    if (last === undefined) throw new Error(`shard ${this.name} has no segment`);
    return last;
  }

  /** Opens a shard directory: checks every segment, recovers the last one, and rebuilds indexes. */
  static async open(dir: string, ctx: ShardContext): Promise<Shard> {
    const { meta, segments } = await recoverShard(dir, ctx);
    await forgetCleanMarker(dir);
    return new Shard(ctx, dir, meta.name, meta.config, meta.logStartOffset, segments);
  }

  info(): ShardInfo {
    let sizeBytes = this.#committedSize;
    for (let i = 0; i < this.segments.length - 1; i++) sizeBytes += this.segments[i]?.size ?? 0;
    return {
      name: this.name,
      config: { ...this.config },
      logStartOffset: this.logStartOffset,
      nextOffset: this.#committedOffset,
      sizeBytes,
    };
  }

  async updateConfig(config: ShardConfig): Promise<ShardInfo> {
    return this.#lock.run(async () => {
      await writeShardMeta(this.dir, { name: this.name, config, logStartOffset: this.logStartOffset });
      this.config = config;
      return this.info();
    });
  }

  // ---- appends -------------------------------------------------------------------------------

  /** Queues an append; it resolves once durable by the shard's policy. */
  append(request: AppendRequest): Promise<AppendResult> {
    if (this.#failure !== null) return Promise.reject(this.#failedError());
    const result = new Promise<AppendResult>((resolve, reject) => {
      request.resolve = resolve;
      request.reject = reject;
    });
    this.#queue.push(request);
    this.#draining ??= this.#drain();
    return result;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        // The group is taken inside the task, a tick later, so appends made together go together,
        // and once a durable write may start, so appends arriving meanwhile join it.
        await this.#lock.run(async () => {
          await this.#durableWriteSlot();
          await this.#writeGroup(this.#takeGroup());
        });
      }
    } finally {
      this.#draining = null;
    }
  }

  /**
   * The appends to write next: all those queued, up to about {@link MAX_GROUP_BYTES}. A queue is
   * not shared out among several durable writes: producers that all wait on one write answer
   * together, and one larger write syncs sooner than two smaller ones started together (measured:
   * splitting 16 appends of 16 KiB into two writes of 8 was 3-10% slower). A second durable write
   * still starts at once for appends that arrive while one is under way.
   */
  #takeGroup(): AppendRequest[] {
    let bytes = 0;
    let count = 0;
    while (count < this.#queue.length && (count === 0 || bytes < MAX_GROUP_BYTES)) {
      bytes += this.#queue[count]?.bytes ?? 0;
      count++;
    }
    return this.#queue.splice(0, count);
  }

  /**
   * Whether appends are acknowledged once their own write returns, that write making them and
   * everything before them durable (rather than by a separate group fsync, or without one).
   */
  #writesDurably(): boolean {
    return (
      this.config.durability === 'fsync' ||
      (this.config.durability === 'group-commit' && this.#ctx.groupCommitMs === 0)
    );
  }

  /** Waits until fewer than {@link MAX_DURABLE_WRITES} durable writes are under way. */
  async #durableWriteSlot(): Promise<void> {
    while (this.#durableWrites.length >= MAX_DURABLE_WRITES) await this.#durableWrites[0]?.finished;
  }

  /** Waits until no durable write is under way. */
  async #settleDurableWrites(): Promise<void> {
    while (this.#durableWrites.length > 0)
      await this.#durableWrites[this.#durableWrites.length - 1]?.finished;
  }

  /**
   * Writes queued appends, rolling segments between them as needed. Never throws. A conditional
   * append is checked against `#nextOffset`, which counts every append before it, written durably
   * yet or not; one that would not get its expected offset ends the run before it and is refused
   * once the run has taken its offsets.
   */
  async #writeGroup(group: AppendRequest[]): Promise<void> {
    let i = 0;
    try {
      while (i < group.length) {
        if (this.#failure !== null) throw this.#failedError();
        if (this.#stopped) throw new RobustMQError(ErrorCode.NotFound, `shard ${this.name} was deleted`);
        const first = group[i] as AppendRequest;
        if (first.expectedOffset !== undefined && first.expectedOffset !== this.#nextOffset) {
          first.reject(this.#conflict(first.expectedOffset));
          i++;
          continue;
        }
        if (this.#activeSince === undefined && this.config.segmentMs !== null) {
          this.#activeSince = await this.#estimateFirstAppend();
        }
        if (this.#wouldOverflow(0, first) || this.#activeTooOld()) await this.#roll();
        if (this.active.size === 0) this.#activeSince = this.#ctx.now();
        let runBytes = first.bytes;
        let runRecords = first.records;
        let end = i + 1;
        for (; end < group.length; end++) {
          const next = group[end] as AppendRequest;
          if (next.expectedOffset !== undefined && next.expectedOffset !== this.#nextOffset + runRecords)
            break;
          if (this.#wouldOverflow(runBytes, next, runRecords)) break;
          runBytes += next.bytes;
          runRecords += next.records;
        }
        const run = group.slice(i, end);
        i = end;
        if (this.#writesDurably()) {
          await this.#durableWriteSlot();
          if (this.#failure !== null) {
            i -= run.length;
            throw this.#failedError();
          }
          this.#startDurableWrite(run, runBytes);
        } else {
          await this.#settleDurableWrites();
          await this.#writeRun(run, runBytes);
        }
      }
    } catch (error) {
      const failure = toRobustMQError(error);
      for (const request of group.slice(i)) request.reject(failure);
    }
  }

  #conflict(expectedOffset: number): RobustMQError {
    return new RobustMQError(
      ErrorCode.Conflict,
      `append to shard ${this.name} expected offset ${expectedOffset}, but the next offset is ${this.#nextOffset}`,
    );
  }

  /** Whether `request`, after `pendingBytes` more bytes, would not fit the active segment. */
  #wouldOverflow(pendingBytes: number, request: AppendRequest, pendingRecords = 0): boolean {
    const active = this.active;
    const used = active.size + pendingBytes;
    if (used === 0) return false;
    return (
      used + request.bytes > this.config.segmentBytes ||
      this.#nextOffset + pendingRecords + request.records - active.baseOffset > MAX_RELATIVE_OFFSET
    );
  }

  /**
   * Whether the active segment holds appends and the first of them was at least `segmentMs` ago,
   * so that it is sealed and retention can delete it once its records expire.
   */
  #activeTooOld(): boolean {
    const { segmentMs } = this.config;
    if (segmentMs === null || this.active.size === 0 || this.#activeSince == null) return false;
    return this.#ctx.now() - this.#activeSince >= segmentMs;
  }

  /**
   * When the first append to an active segment recovered non-empty happened, so that a restart
   * does not make the segment young again (see {@link Segment.estimateFirstAppend}). If that
   * cannot be read, the segment's age counts from now.
   */
  async #estimateFirstAppend(): Promise<number> {
    const active = this.active;
    try {
      return await active.estimateFirstAppend();
    } catch (error) {
      this.#logger.warn(
        { err: error, segment: active.logPath },
        'could not tell when the active segment was first appended to; its age counts from now',
      );
      return this.#ctx.now();
    }
  }

  /** Gives each append of a run its offsets and seals its frames; returns the offset after them. */
  #assignOffsets(run: AppendRequest[]): number {
    let offset = this.#nextOffset;
    for (const request of run) {
      request.baseOffset = offset;
      for (const batch of request.batches) {
        sealFrame(batch.frame, 0, offset, batch.data ?? undefined);
        offset += batch.recordCount;
      }
      request.endOffset = offset;
    }
    return offset;
  }

  /** Adds a run just written at `start` to the segment's indexes and the metrics. */
  #noteRun(segment: Segment, run: AppendRequest[], start: number, bytes: number): void {
    let position = start;
    for (const request of run) {
      for (const batch of request.batches) {
        segment.noteBatch(
          {
            baseOffset: request.baseOffset + batch.relative,
            recordCount: batch.recordCount,
            maxTimestamp: batch.maxTimestamp,
          },
          position,
          batch.bytes,
          this.#ctx.indexIntervalBytes,
        );
        position += batch.bytes;
      }
    }
    this.#ctx.metrics.appendedBytes.inc(undefined, bytes);
    this.#ctx.metrics.appendedBatches.inc(
      undefined,
      run.reduce((n, r) => n + r.batches.length, 0),
    );
  }

  /**
   * Starts a durable write of a run to the active segment, after the ones under way. Each is
   * finished in the order started: its appends are acknowledged only once it and every write
   * before it returned, so each acknowledgement follows the sync of everything before it.
   */
  #startDurableWrite(run: AppendRequest[], bytes: number): void {
    const segment = this.active;
    const start = segment.size;
    const end = this.#assignOffsets(run);
    this.#nextOffset = end;
    const started = performance.now();
    const writing = segment.writeDurably(piecesOf(run), bytes);
    const previous = this.#durableWrites[this.#durableWrites.length - 1]?.finished;
    const finished = (async () => {
      let error: unknown = null;
      try {
        await writing;
      } catch (writeError) {
        error = writeError;
      }
      if (previous !== undefined) await previous;
      // This write is the oldest under way now: take it off the list.
      this.#durableWrites.shift();
      if (error !== null) {
        // A failed sync leaves unknown what reached the disk: the shard fails, as after a failed
        // fsync, and the log is cut back to what was acknowledged.
        this.#fail(error);
        for (const request of run) request.reject(toRobustMQError(error));
        return;
      }
      if (this.#failure !== null) {
        for (const request of run) request.reject(this.#failedError());
        return;
      }
      this.#observeSync(started);
      this.#noteRun(segment, run, start, bytes);
      this.#commit(end, start + bytes, true);
      for (const request of run) resolveRequest(request, this.logStartOffset);
    })();
    this.#durableWrites.push({ finished });
  }

  /** Writes appends that all go to the active segment, with one vectored write, without syncing. */
  async #writeRun(run: AppendRequest[], bytes: number): Promise<void> {
    const segment = this.active;
    const start = segment.size;
    const offset = this.#assignOffsets(run);
    try {
      await segment.write(piecesOf(run), bytes);
    } catch (error) {
      // Put the file back as it was, so the failed appends change nothing.
      try {
        await segment.truncate(start);
      } catch (truncateError) {
        this.#fail(truncateError);
      }
      for (const request of run) request.reject(toRobustMQError(error));
      return;
    }
    this.#noteRun(segment, run, start, bytes);
    this.#nextOffset = offset;
    if (this.config.durability === 'group-commit') {
      for (const request of run) this.#syncWaiters.push({ request, endOffset: request.endOffset });
      this.#unsyncedBytes += bytes;
      this.#scheduleSync();
    } else {
      this.#commit(offset, segment.size, false);
      for (const request of run) resolveRequest(request, this.logStartOffset);
      this.#unflushedBytes += bytes;
      if (this.#unflushedBytes >= BACKGROUND_FLUSH_BYTES) this.#startFlush();
    }
  }

  /**
   * Durability `none`: flushes the active segment in the background, one flush at a time. It
   * acknowledges nothing (the appends were acknowledged on write) and holds no append: it only
   * leaves less for the roll to flush.
   */
  #startFlush(): void {
    if (this.#flushing !== null || this.#rolling || this.#failure !== null) return;
    const segment = this.active;
    this.#unflushedBytes = 0;
    this.#flushing = (async () => {
      try {
        await this.#datasync(segment);
      } catch (error) {
        // As a failed flush at a roll: what reached the disk is unknown.
        this.#fail(error);
      } finally {
        this.#flushing = null;
      }
    })();
  }

  /**
   * Group commit: one fsync at a time per shard covers everything written before it started, and
   * appends written while it runs share the next one. Syncs start at least `groupCommitMs` apart
   * (0: as soon as the previous one ends), sooner only once `groupCommitBytes` are waiting.
   */
  #scheduleSync(): void {
    if (this.#syncing !== null || this.#rolling || this.#syncWaiters.length === 0) return;
    const wait = this.#lastSyncStart + this.#ctx.groupCommitMs - performance.now();
    if (wait <= 0 || this.#unsyncedBytes >= this.#ctx.groupCommitBytes) {
      this.#startGroupSync();
    } else {
      this.#syncTimer ??= setTimeout(() => {
        this.#syncTimer = null;
        this.#startGroupSync();
      }, wait);
    }
  }

  #startGroupSync(): void {
    if (this.#syncTimer !== null) clearTimeout(this.#syncTimer);
    this.#syncTimer = null;
    if (this.#syncing !== null || this.#rolling || this.#failure !== null) return;
    const segment = this.active;
    const targetOffset = this.#nextOffset;
    const targetSize = segment.size;
    this.#unsyncedBytes = 0;
    this.#lastSyncStart = performance.now();
    this.#syncing = (async () => {
      try {
        await this.#datasync(segment);
        this.#commit(targetOffset, targetSize, true);
      } catch (error) {
        this.#fail(error);
      } finally {
        this.#syncing = null;
      }
      this.#scheduleSync();
    })();
  }

  async #datasync(segment: Segment): Promise<void> {
    const started = performance.now();
    await segment.datasync();
    this.#observeSync(started);
  }

  /** Counts a sync (an fdatasync, or a write that syncs itself) that began at `started`. */
  #observeSync(started: number): void {
    this.#ctx.metrics.fsyncs.inc();
    this.#ctx.metrics.fsyncSeconds.observe(undefined, (performance.now() - started) / 1000);
  }

  /** Makes batches below `offset` visible; with `synced`, acknowledges the appends they cover. */
  #commit(offset: number, size: number, synced: boolean): void {
    if (offset > this.#committedOffset) {
      this.#committedOffset = offset;
      this.#committedSize = size;
      for (const waiter of this.#dataWaiters) {
        if (waiter.offset < offset) {
          clearTimeout(waiter.timer);
          this.#dataWaiters.delete(waiter);
          waiter.resolve();
        }
      }
    }
    if (synced) {
      let covered = 0;
      while (
        covered < this.#syncWaiters.length &&
        (this.#syncWaiters[covered]?.endOffset ?? Infinity) <= offset
      )
        covered++;
      for (const waiter of this.#syncWaiters.splice(0, covered))
        resolveRequest(waiter.request, this.logStartOffset);
    }
  }

  /**
   * Seals the active segment and starts a new one at the next offset. Everything written so far is
   * committed first, and the old log is flushed before the new one exists: recovery takes a sealed
   * segment that stops short of the next one as damaged, not as a torn tail. Its index files are
   * written afterwards, off the append path (see {@link #seal}). Runs under the lock.
   */
  async #roll(): Promise<void> {
    const old = this.active;
    this.#rolling = true;
    try {
      // One segment is sealed at a time: each holds its appending handle and its indexes in memory
      // until done, so a backlog is not left to grow when segments fill faster than that.
      await this.#lastSealing;
      await this.#settleDurableWrites();
      if (this.#syncTimer !== null) clearTimeout(this.#syncTimer);
      this.#syncTimer = null;
      if (this.#syncing !== null) await this.#syncing;
      if (this.#flushing !== null) await this.#flushing;
      if (this.#failure !== null) throw this.#failedError();
      try {
        await this.#datasync(old);
      } catch (error) {
        this.#fail(error);
        throw this.#failedError();
      }
      this.#unflushedBytes = 0;
      this.#commit(this.#nextOffset, old.size, true);
      const next = new Segment(this.dir, this.#nextOffset, this.#ctx.readHandles, this.#ctx.writeHandles);
      await next.create();
      await syncDirectory(this.dir);
      this.segments.push(next);
      this.#committedSize = 0;
      this.#activeSince = null;
    } finally {
      this.#rolling = false;
      this.#scheduleSync();
    }
    this.#seal(old);
    // Told now, as before index files were written off the append path, so that listeners see
    // segments when their appends are acknowledged; what they may call on it waits for the sealing.
    this.#notifySealed(old);
  }

  /**
   * Finishes sealing a segment while appends go on to the next one: writes its index files, closes
   * its appending handle and hands its indexes to the index cache. Until then reads use its
   * indexes in memory, and listing, offloading or removing it waits. A crash before the files are
   * written leaves the sealed segment without them, or with stale ones from an earlier clean close
   * (each is replaced atomically, never torn): recovery finds that and rebuilds them from its log,
   * which was flushed before the next segment was started.
   */
  #seal(segment: Segment): void {
    const previous = this.#lastSealing;
    const sealing = (async () => {
      await previous;
      try {
        await segment.writeIndexes();
      } catch (error) {
        // Reads keep the indexes in memory; once the cache drops them, a load rebuilds the files.
        this.#logger.error(
          { err: error, segment: segment.logPath },
          'could not write the index files of a sealed segment; they are rebuilt from the log when needed',
        );
      }
      try {
        await segment.closeWriter();
      } catch (error) {
        this.#logger.error({ err: error, segment: segment.logPath }, 'could not close a sealed segment');
      }
      this.#sealing.delete(segment);
      this.#ctx.indexCache.touch(segment);
    })();
    this.#sealing.set(segment, sealing);
    this.#lastSealing = sealing;
  }

  /** Waits until `segment` is sealed, if it is being sealed. */
  async #sealed(segment: Segment): Promise<void> {
    await this.#sealing.get(segment);
  }

  #notifySealed(segment: Segment): void {
    const listener = this.#ctx.onSegmentSealed;
    if (listener === null) return;
    try {
      listener(segment.describe(this.name));
    } catch (error) {
      this.#logger.error({ err: error, segment: segment.logPath }, 'segment-sealed listener failed');
    }
  }

  /**
   * After an fsync failure nothing unsynced can be trusted: fail every waiting append, cut the log
   * back to what was committed, and refuse appends until the engine is reopened.
   */
  #fail(error: unknown): void {
    if (this.#failure !== null) return;
    this.#failure = error instanceof Error ? error : new Error(String(error));
    this.#logger.error(
      { err: error },
      'journal I/O failed; appends to this shard fail until the engine is reopened',
    );
    const failed = this.#failedError();
    for (const waiter of this.#syncWaiters.splice(0)) waiter.request.reject(failed);
    for (const request of this.#queue.splice(0)) request.reject(failed);
    const segment = this.active;
    const committedSize = this.#committedSize;
    void this.#lock.run(async () => {
      try {
        // Writes still under way land first, so none lands after the cut.
        await this.#settleDurableWrites();
        await segment.truncate(committedSize);
      } catch (truncateError) {
        this.#logger.error(
          { err: truncateError },
          'could not cut back unsynced appends; recovery will check them on reopen',
        );
      }
    });
  }

  #failedError(): RobustMQError {
    return new RobustMQError(
      ErrorCode.Internal,
      `shard ${this.name} failed after an I/O error: ${this.#failure?.message ?? 'unknown'}`,
      {
        cause: this.#failure,
      },
    );
  }

  // ---- reads ---------------------------------------------------------------------------------

  /** Index of the segment holding `offset`: the last one whose base is at or below it. */
  #segmentFor(segments: readonly Segment[], offset: number): number {
    let lo = 0;
    let hi = segments.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((segments[mid]?.baseOffset ?? Infinity) <= offset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /**
   * The segment's indexes, loaded if need be. Callers use what this returns, not the segment's
   * own: the index cache may unload those while a read is still using them.
   */
  async #loadIndexes(segment: Segment): Promise<SegmentIndexes> {
    // A segment being sealed keeps its indexes in memory; the cache takes them once written.
    if (segment === this.active || this.#sealing.has(segment))
      return { index: segment.index, timeIndex: segment.timeIndex };
    const loaded = await segment.loadIndexes(this.#ctx.indexIntervalBytes);
    this.#ctx.indexCache.touch(segment);
    return loaded;
  }

  /** Reads from `offset`; with `into`, the batches returned may be views of it. */
  async read(offset: number, maxBytes: number, into?: Uint8Array): Promise<ReadResult> {
    const committed = this.#committedOffset;
    const committedSize = this.#committedSize;
    const logStart = this.logStartOffset;
    if (offset < logStart || offset > committed) {
      throw new RobustMQError(
        ErrorCode.OffsetOutOfRange,
        `offset ${offset} is outside ${logStart}..${committed} of shard ${this.name}`,
      );
    }
    const batches: StoredBatch[] = [];
    if (offset === committed) return { batches, logStartOffset: logStart, nextOffset: committed };

    const segments = this.segments.slice();
    const active = this.active;
    const memory = new ReadMemory(into);
    let total = 0;
    for (let i = this.#segmentFor(segments, offset); i < segments.length; i++) {
      const segment = segments[i] as Segment;
      if (segment.baseOffset >= committed) break;
      const to = segment === active ? committedSize : (segment.damagedAt ?? segment.size);
      let result: ScanResult;
      let start = 0;
      try {
        result = await segment.withHandle(async (handle) => {
          const { index } = await this.#loadIndexes(segment);
          const target = Math.max(offset - segment.baseOffset, 0);
          const { position, relativeOffset } = index.positionFor(target);
          start = position;
          return scanFrames(
            handle,
            {
              from: position,
              to,
              expectedBase: segment.baseOffset + relativeOffset,
              // Sized afresh for each span from what the budget still allows, so the span after
              // a full one does not read megabytes only to find the next frame does not fit.
              readAhead: () =>
                Math.min(
                  Math.max(
                    maxBytes -
                      total +
                      (batches.length === 0 ? 2 * this.#ctx.indexIntervalBytes : FRAME_HEADER_BYTES),
                    64 * 1024,
                  ),
                  8 * 1024 * 1024,
                ),
              verifyAll: false,
              memory,
              ...(this.#ctx.readThreads === null
                ? {}
                : {
                    threads: {
                      threads: this.#ctx.readThreads,
                      frameStartAtOrBefore: (at: number) => index.frameStartAtOrBefore(at),
                    },
                  }),
              // Once the budget is spent, the next frame cannot be taken: do not read on for it.
              more: () => batches.length === 0 || total < maxBytes,
            },
            (header) => {
              if (header.baseOffset + header.recordCount <= offset) return 'skip';
              if (header.baseOffset >= committed) return 'stop';
              if (batches.length > 0 && total + header.dataLength > maxBytes) return 'stop';
              return 'take';
            },
            (header, _position, bytes, at) => {
              const dataAt = at + FRAME_HEADER_BYTES;
              batches.push({
                baseOffset: header.baseOffset,
                recordCount: header.recordCount,
                maxTimestamp: header.maxTimestamp,
                data: bytes.subarray(dataAt, dataAt + header.dataLength),
              });
              total += header.dataLength;
            },
          );
        });
      } catch (error) {
        // The shard's files went with it.
        if (this.#stopReason !== null) throw this.#stopReason;
        // Retention removed the segment (or its offloaded copy) while this read was in it.
        if ((isErrno(error, 'ENOENT') || segment.offloaded) && offset < this.logStartOffset) {
          throw new RobustMQError(
            ErrorCode.OffsetOutOfRange,
            `offset ${offset} was deleted from shard ${this.name} while reading`,
          );
        }
        throw error;
      }
      if (this.#indexMissedFrame(result, start, segment)) {
        await this.#repairIndexes(segment);
        i--;
        continue;
      }
      if (result.kind === 'stopped') break;
      const damaged =
        result.kind === 'bad' || (segment.damagedAt !== null && result.nextOffset < segment.endOffset);
      if (damaged) {
        this.#reportCorrupt(segment, result);
        if (batches.length === 0) {
          throw corrupt(
            `shard ${this.name}: batch at offset ${result.nextOffset} in ${segment.logPath} is corrupt (${result.reason ?? 'unreadable'})`,
          );
        }
        break;
      }
    }
    return { batches, logStartOffset: logStart, nextOffset: committed };
  }

  /**
   * Whether a scan that started where the segment's offset index pointed found no frame right
   * there, while the index may be damaged: the frame at an index entry was whole when the entry was
   * made. The first frame of a segment is never indexed, so a scan from 0 does not count, and
   * indexes rebuilt from the log already are not rebuilt again (the log is damaged there).
   */
  #indexMissedFrame(result: ScanResult, start: number, segment: Segment): boolean {
    return result.kind === 'bad' && start > 0 && result.position === start && !segment.indexesRebuilt;
  }

  /**
   * Rebuilds the indexes of a segment from its log after one pointed at no frame, so that reads of
   * the whole batches there are served rather than refused as CORRUPT. The active segment's are
   * rebuilt with appends held off, as appends add to them.
   */
  async #repairIndexes(segment: Segment): Promise<void> {
    this.#logger.error(
      { segment: segment.logPath },
      'segment index points at no frame; rebuilding the indexes from the log',
    );
    if (segment !== this.active) {
      await this.#sealed(segment);
      await segment.rebuildIndexes(this.#ctx.indexIntervalBytes);
      this.#ctx.indexCache.touch(segment);
      return;
    }
    await this.#lock.run(async () => {
      await this.#settleDurableWrites();
      await segment.rebuildIndexes(this.#ctx.indexIntervalBytes);
    });
  }

  #reportCorrupt(segment: Segment, result: ScanResult): void {
    this.#ctx.metrics.corruptFrames.inc({ found: 'read' });
    this.#logger.error(
      {
        segment: segment.logPath,
        position: result.position,
        offset: result.nextOffset,
        reason: result.reason,
      },
      'corrupt batch not served',
    );
  }

  async offsetForTimestamp(timestamp: number): Promise<number | null> {
    for (;;) {
      const found = await this.#findTimestamp(timestamp);
      // Deletion moved the log start past what was found meanwhile: look again from there.
      if (found === null || found >= this.logStartOffset) return found;
    }
  }

  /** The first offset at or after the log start whose batch reaches `timestamp`, or null. */
  async #findTimestamp(timestamp: number): Promise<number | null> {
    const committed = this.#committedOffset;
    const committedSize = this.#committedSize;
    const logStart = this.logStartOffset;
    const segments = this.segments.slice();
    const active = this.active;
    for (let i = this.#segmentFor(segments, logStart); i < segments.length; i++) {
      const segment = segments[i] as Segment;
      if (segment.baseOffset >= committed) break;
      if (segment.maxTimestamp < timestamp) continue;
      const to = segment === active ? committedSize : (segment.damagedAt ?? segment.size);
      let found: number | null = null;
      let start = 0;
      let result: ScanResult;
      try {
        result = await segment.withHandle(async (handle) => {
          const { index, timeIndex } = await this.#loadIndexes(segment);
          const from = Math.max(timeIndex.scanStartFor(timestamp), logStart - segment.baseOffset, 0);
          const { position, relativeOffset } = index.positionFor(from);
          start = position;
          return scanFrames(
            handle,
            {
              from: position,
              to,
              expectedBase: segment.baseOffset + relativeOffset,
              readAhead: 64 * 1024,
              verifyAll: false,
            },
            (header) => {
              if (found !== null || header.baseOffset >= committed) return 'stop';
              if (header.baseOffset + header.recordCount <= logStart || header.maxTimestamp < timestamp)
                return 'skip';
              return 'take';
            },
            (header) => {
              found = Math.max(header.baseOffset, logStart);
            },
          );
        });
      } catch (error) {
        if (this.#stopReason !== null) throw this.#stopReason;
        // Retention removed the segment (or its offloaded copy) while this call went through the
        // ones before it: its records are below the log start now, so the answer lies further on.
        if ((isErrno(error, 'ENOENT') || segment.offloaded) && !this.segments.includes(segment)) continue;
        throw error;
      }
      if (found !== null) return found;
      if (this.#indexMissedFrame(result, start, segment)) {
        await this.#repairIndexes(segment);
        i--;
        continue;
      }
      if (result.kind === 'bad') {
        this.#reportCorrupt(segment, result);
        throw corrupt(
          `shard ${this.name}: batch at offset ${result.nextOffset} in ${segment.logPath} is corrupt (${result.reason ?? 'unreadable'})`,
        );
      }
      if (result.kind === 'stopped') break;
    }
    return null;
  }

  /** Resolves once an offset at or after `offset` is committed, or after `timeoutMs`. */
  waitForData(offset: number, timeoutMs: number): Promise<void> {
    if (this.#committedOffset > offset || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: DataWaiter = {
        offset,
        resolve,
        timer: setTimeout(
          () => {
            this.#dataWaiters.delete(waiter);
            resolve();
          },
          Math.min(timeoutMs, MAX_TIMER_MS),
        ),
      };
      this.#dataWaiters.add(waiter);
    });
  }

  // ---- tiering -------------------------------------------------------------------------------

  /**
   * Every segment but the active one, oldest first, once sealed: those sealed before this call are
   * waited for, and any sealed meanwhile are left for the next call (the listener hears of them).
   */
  async sealedSegments(): Promise<SealedSegment[]> {
    await this.#lastSealing;
    return this.segments
      .slice(0, -1)
      .filter((segment) => !this.#sealing.has(segment))
      .map((segment) => segment.describe(this.name));
  }

  /**
   * Drops the local log of the sealed segment at `baseOffset`, whose copy the offloaded-segment
   * reader serves from now on; its index files and extent stay, so reads still find it. False when
   * there is no such sealed segment any more (retention removed it), it is offloaded already, or it
   * is damaged.
   */
  async offloadSegment(baseOffset: number): Promise<boolean> {
    return this.#lock.run(async () => {
      const segment = this.segments.slice(0, -1).find((s) => s.baseOffset === baseOffset);
      if (segment !== undefined) await this.#sealed(segment);
      if (segment === undefined || segment.offloaded || segment.damagedAt !== null) return false;
      const described = segment.describe(this.name);
      await segment.offload(offloadedSource(this.#ctx.offloadedReader, { ...described, offloaded: true }));
      await syncDirectory(this.dir);
      return true;
    });
  }

  // ---- deletion and retention ----------------------------------------------------------------

  async deleteBefore(offset: number): Promise<number> {
    return this.#lock.run(async () => {
      if (offset > this.#committedOffset) {
        throw new RobustMQError(
          ErrorCode.OffsetOutOfRange,
          `offset ${offset} is beyond the next offset ${this.#committedOffset} of shard ${this.name}`,
        );
      }
      if (offset <= this.logStartOffset) return this.logStartOffset;
      await writeShardMeta(this.dir, { name: this.name, config: this.config, logStartOffset: offset });
      this.logStartOffset = offset;
      await this.#dropSegments((segment, next) => (next?.baseOffset ?? this.#nextOffset) <= offset);
      return this.logStartOffset;
    });
  }

  async enforceRetention(now: number): Promise<void> {
    await this.#lock.run(async () => {
      const { retentionMs, retentionBytes } = this.config;
      if (retentionMs !== null) {
        const cutoff = now - retentionMs;
        await this.#dropSegments((segment) => !segment.isEmpty && segment.maxTimestamp < cutoff);
      }
      if (retentionBytes !== null) {
        // As Kafka does: the oldest segment goes only if what stays is still `retentionBytes`, so
        // the newest `retentionBytes` are always kept.
        let size = this.info().sizeBytes;
        let removed = false;
        while (this.segments.length > 1 && size - (this.segments[0] as Segment).size >= retentionBytes) {
          size -= (this.segments[0] as Segment).size;
          await this.#removeOldest();
          removed = true;
        }
        if (removed) await syncDirectory(this.dir);
      }
    });
  }

  /**
   * Deletes the oldest segments while `expired` holds for them. The active segment goes too when
   * everything in it is committed and expired: a new empty one is rolled first. Under the lock.
   */
  async #dropSegments(expired: (segment: Segment, next: Segment | undefined) => boolean): Promise<void> {
    let removed = false;
    while (this.segments.length > 1 && expired(this.segments[0] as Segment, this.segments[1])) {
      await this.#removeOldest();
      removed = true;
    }
    const active = this.active;
    if (
      this.segments.length === 1 &&
      !active.isEmpty &&
      this.#nextOffset === this.#committedOffset &&
      expired(active, undefined)
    ) {
      await this.#roll();
      await this.#removeOldest();
      removed = true;
    }
    if (removed) await syncDirectory(this.dir);
  }

  async #removeOldest(): Promise<void> {
    const first = this.segments[0];
    if (first !== undefined) await this.#sealed(first);
    const oldest = this.segments.shift();
    if (oldest === undefined) return;
    this.logStartOffset = Math.max(this.logStartOffset, this.segments[0]?.baseOffset ?? this.#nextOffset);
    this.#ctx.indexCache.forget(oldest);
    await oldest.remove();
  }

  // ---- shutdown ------------------------------------------------------------------------------

  /** Waits for queued appends, fsyncs, writes the active segment's indexes and a clean marker. */
  async close(): Promise<void> {
    if (this.#draining !== null) await this.#draining;
    await this.#lock.run(async () => {
      await this.#settleDurableWrites();
      if (this.#syncTimer !== null) clearTimeout(this.#syncTimer);
      this.#syncTimer = null;
      if (this.#syncing !== null) await this.#syncing;
      if (this.#flushing !== null) await this.#flushing;
      await this.#lastSealing;
      const active = this.active;
      if (this.#failure === null) {
        await this.#datasync(active);
        this.#commit(this.#nextOffset, active.size, true);
        await active.writeIndexes();
        await writeCleanMarker(this.dir, active);
      }
      this.#stop(new RobustMQError(ErrorCode.Closed, 'the journal is closed'));
      await active.closeWriter();
      for (const segment of this.segments) await segment.retireReader();
    });
  }

  /** Stops the shard for deletion: pending appends fail with NOT_FOUND, handles are closed. */
  async destroy(): Promise<void> {
    const gone = new RobustMQError(ErrorCode.NotFound, `shard ${this.name} was deleted`);
    this.#stopped = true;
    this.#stopReason = gone;
    for (const request of this.#queue.splice(0)) request.reject(gone);
    if (this.#draining !== null) await this.#draining;
    await this.#lock.run(async () => {
      await this.#settleDurableWrites();
      if (this.#syncTimer !== null) clearTimeout(this.#syncTimer);
      this.#syncTimer = null;
      if (this.#syncing !== null) await this.#syncing;
      if (this.#flushing !== null) await this.#flushing;
      await this.#lastSealing;
      this.#stop(gone);
      for (const segment of this.segments) {
        this.#ctx.indexCache.forget(segment);
        await segment.closeWriter();
        await segment.retireReader();
      }
    });
  }

  #stop(error: RobustMQError): void {
    this.#stopped = true;
    this.#stopReason ??= error;
    for (const waiter of this.#syncWaiters.splice(0)) waiter.request.reject(error);
    for (const waiter of this.#dataWaiters) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
    this.#dataWaiters.clear();
  }
}

/** The pieces of a run's frames, in order, for one vectored write. */
function piecesOf(run: AppendRequest[]): Uint8Array[] {
  if (run.length === 1) return (run[0] as AppendRequest).pieces;
  const pieces: Uint8Array[] = [];
  for (const request of run) for (const piece of request.pieces) pieces.push(piece);
  return pieces;
}

/** Resolves an append once it is durable, with the shard's log start as of then. */
function resolveRequest(request: AppendRequest, logStartOffset: number): void {
  request.resolve({ baseOffset: request.baseOffset, lastOffset: request.endOffset - 1, logStartOffset });
}

export function toRobustMQError(error: unknown): RobustMQError {
  if (error instanceof RobustMQError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RobustMQError(ErrorCode.Internal, `journal I/O failed: ${message}`, { cause: error });
}
