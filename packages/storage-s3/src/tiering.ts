import { ErrorCode, RobustMQError, isRobustMQError, type Logger } from '@robustmq/core';
import type { Journal, SealedSegment } from '@robustmq/journal';
import pLimit, { type LimitFunction } from 'p-limit';
import { failureKind, type SegmentBucket } from './bucket.js';
import type { TieringSettings } from './config.js';
import type { TieringMetrics } from './metrics.js';
import type { PrefixOwnership } from './ownership.js';
import { RepeatLimiter } from './repeats.js';
import { SegmentDigests, copySegment, holds, type SegmentDigest } from './upload.js';

/** A copy in the bucket confirmed in this process: the segment it was made from. */
interface Confirmed {
  size: number;
  endOffset: number;
  digest: SegmentDigest;
}

/** Tiering state of one shard. Passes, shard deletion and adoption of listed objects take turns. */
class ShardTiering {
  readonly turn: LimitFunction = pLimit(1);
  /** Copies confirmed in this process, by base offset. */
  readonly confirmed = new Map<number, Confirmed>();
  /** Base offsets of this shard's objects known to be in the bucket. */
  readonly objects = new Set<number>();
  /** A pass queued and not started yet, which later requests join. */
  queued: { promise: Promise<void>; started: boolean } | null = null;
  failures = 0;
  retry: ReturnType<typeof setTimeout> | null = null;

  isConfirmed(segment: SealedSegment): boolean {
    const copy = this.confirmed.get(segment.baseOffset);
    return copy !== undefined && copy.size === segment.size && copy.endOffset === segment.endOffset;
  }
}

function isGone(error: unknown): boolean {
  return isRobustMQError(error, ErrorCode.NotFound);
}

/**
 * Moves sealed segments of a journal to the bucket: a pass over a shard uploads every sealed
 * segment that has no confirmed copy yet, drops the local log of those past local retention
 * (only once their copy is confirmed), and deletes objects whose segment retention, `deleteBefore`
 * or shard deletion removed. A pass runs when a segment is sealed, on a timer, and again after a
 * failure (with backoff); it is idempotent, so a crash anywhere just means the next pass (after a
 * restart) checks the bucket and carries on. Nothing is written to or deleted from the bucket
 * before the prefix is claimed (when the bucket was down at start, the first pass claims it).
 */
export class Tiering {
  readonly #journal: Journal;
  readonly #bucket: SegmentBucket;
  readonly #ownership: PrefixOwnership;
  readonly #settings: TieringSettings;
  readonly #logger: Logger;
  readonly #metrics: TieringMetrics;
  readonly #uploads: LimitFunction;
  readonly #shards = new Map<string, ShardTiering>();
  readonly #digests = new SegmentDigests();
  readonly #repeats = new RepeatLimiter();
  #timer: ReturnType<typeof setInterval> | null = null;
  #sweeping: Promise<void> | null = null;
  #swept = false;
  #closed = false;

  constructor(
    journal: Journal,
    bucket: SegmentBucket,
    ownership: PrefixOwnership,
    settings: TieringSettings,
    logger: Logger,
    metrics: TieringMetrics,
  ) {
    this.#journal = journal;
    this.#bucket = bucket;
    this.#ownership = ownership;
    this.#settings = settings;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#uploads = pLimit(settings.uploadConcurrency);
  }

  /** Starts the timer and a first pass over every shard (segments left from before a restart). */
  start(): void {
    this.#timer = setInterval(() => this.#tick(), this.#settings.tieringIntervalMs);
    this.#timer.unref();
    this.#tick();
  }

  #tick(): void {
    if (this.#closed) return;
    if (!this.#swept) {
      this.#sweepOnce().catch((error: unknown) => {
        if (this.#closed || isRobustMQError(error, ErrorCode.Closed)) return;
        this.#metrics.failures.inc({ operation: 'list' });
        this.#warn('list', error, {}, 'could not list the bucket; will retry');
      });
    }
    this.#journal.listShards().then(
      (shards) => shards.forEach((shard) => this.schedule(shard)),
      (error: unknown) => {
        if (!isRobustMQError(error, ErrorCode.Closed))
          this.#logger.error({ err: error }, 'listing shards failed');
      },
    );
  }

  #state(shard: string): ShardTiering {
    let state = this.#shards.get(shard);
    if (state === undefined) {
      state = new ShardTiering();
      this.#shards.set(shard, state);
    }
    return state;
  }

  /**
   * Asks for a pass over `shard` soon; failures are logged and retried. While the shard waits out
   * the backoff after a failure, its retry is that pass: sealing segments does not cut it short.
   */
  schedule(shard: string): void {
    const state = this.#shards.get(shard);
    if (state !== undefined && state.retry !== null) return;
    this.pass(shard).catch(() => undefined);
  }

  /**
   * Runs a pass over `shard` (joining one queued and not started yet) and resolves once it ran;
   * rejects when part of it failed (it is retried later all the same).
   */
  pass(shard: string): Promise<void> {
    const state = this.#state(shard);
    if (state.queued !== null && !state.queued.started) return state.queued.promise;
    const ticket = { promise: Promise.resolve(), started: false };
    ticket.promise = state.turn(async () => {
      ticket.started = true;
      if (this.#closed) return;
      try {
        await this.#tier(shard, state);
        state.failures = 0;
        // This pass did what the retry was waiting to do.
        if (state.retry !== null) clearTimeout(state.retry);
        state.retry = null;
      } catch (error) {
        this.#failed(shard, state, error, 'tier');
        throw error;
      }
    });
    state.queued = ticket;
    return ticket.promise;
  }

  /**
   * Passes over every shard (after the first listing of the bucket, when it is still to do);
   * rejects with the first failure once all ran.
   */
  async tierAll(): Promise<void> {
    if (!this.#swept) await this.#sweepOnce();
    const shards = await this.#journal.listShards();
    const results = await Promise.allSettled(shards.map((shard) => this.pass(shard)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** Logs a failure and schedules a pass over the shard, later after each failure in a row. */
  #failed(shard: string, state: ShardTiering, error: unknown, operation: 'tier' | 'delete'): void {
    if (this.#closed || isRobustMQError(error, ErrorCode.Closed)) return;
    state.failures++;
    this.#metrics.failures.inc({ operation });
    const cap = Math.max(this.#settings.tieringIntervalMs, this.#settings.retryBackoffMs);
    const delay = Math.min(this.#settings.retryBackoffMs * 2 ** Math.min(state.failures - 1, 30), cap);
    this.#warn(
      operation,
      error,
      { shard, failures: state.failures, retryInMs: delay },
      operation === 'tier'
        ? 'tiering failed; will retry'
        : 'could not delete removed segments from the bucket; will retry',
    );
    if (state.retry !== null) return;
    state.retry = setTimeout(() => {
      state.retry = null;
      if (!this.#closed) this.schedule(shard);
    }, delay);
    state.retry.unref();
  }

  /**
   * Logs a failure at warn once per kind of failure and minute (with how often it was held back
   * since), at debug otherwise: every pass over every shard fails alike while the bucket refuses.
   */
  #warn(operation: string, error: unknown, fields: Record<string, unknown>, message: string): void {
    const admitted = this.#repeats.admit(`${operation} ${failureKind(error)}`);
    if (!admitted.log) {
      this.#logger.debug({ err: error, operation, ...fields }, message);
      return;
    }
    const repeats = admitted.repeats > 0 ? { repeatsSinceLastWarning: admitted.repeats } : {};
    this.#logger.warn({ err: error, operation, ...fields, ...repeats }, message);
  }

  /** One pass: copy, offload past local retention, delete orphans. */
  async #tier(shard: string, state: ShardTiering): Promise<void> {
    await this.#ownership.claim();
    let sealed: SealedSegment[];
    try {
      sealed = await this.#journal.sealedSegments(shard);
    } catch (error) {
      if (isGone(error)) return;
      throw error;
    }
    const pending = sealed.filter((s) => !s.offloaded && !s.damaged && !state.isConfirmed(s));
    const copies = await Promise.allSettled(pending.map((s) => this.#uploads(() => this.#copy(state, s))));
    await this.#offloadPastRetention(shard, state);
    await this.deleteOrphans(shard);
    const failed = copies.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async #copy(state: ShardTiering, segment: SealedSegment): Promise<void> {
    if (this.#closed) throw new RobustMQError(ErrorCode.Closed, 'the engine is closed');
    const result = await copySegment(this.#bucket, segment, this.#digests);
    if (result === null) return;
    // Held in `confirmed` from now on.
    this.#digests.forget(segment.logPath);
    state.objects.add(segment.baseOffset);
    state.confirmed.set(segment.baseOffset, {
      size: segment.size,
      endOffset: segment.endOffset,
      digest: result.digest,
    });
    if (result.uploaded) {
      this.#metrics.uploadedSegments.inc();
      this.#metrics.uploadedBytes.inc(undefined, segment.size);
    }
    this.#logger.debug(
      {
        shard: segment.shard,
        baseOffset: segment.baseOffset,
        bytes: segment.size,
        uploaded: result.uploaded,
      },
      'segment copy confirmed in the bucket',
    );
  }

  /** Drops local logs of confirmed segments past local retention, oldest first. */
  async #offloadPastRetention(shard: string, state: ShardTiering): Promise<void> {
    const { localRetentionMs, localRetentionBytes } = this.#settings;
    if (localRetentionMs === null && localRetentionBytes === null) return;
    let sealed: SealedSegment[];
    let sizeBytes: number;
    try {
      sealed = await this.#journal.sealedSegments(shard);
      sizeBytes = (await this.#journal.shardInfo(shard)).sizeBytes;
    } catch (error) {
      if (isGone(error)) return;
      throw error;
    }
    let localBytes = sizeBytes - sealed.reduce((sum, s) => sum + (s.offloaded ? s.size : 0), 0);
    const now = Date.now();
    for (const segment of sealed) {
      if (segment.offloaded || !state.isConfirmed(segment)) continue;
      const old = localRetentionMs !== null && segment.maxTimestamp < now - localRetentionMs;
      const over = localRetentionBytes !== null && localBytes > localRetentionBytes;
      if (!old && !over) continue;
      if (!(await this.#stillHeld(state, segment))) continue;
      if (await this.#journal.offloadSegment(shard, segment.baseOffset)) {
        localBytes -= segment.size;
        this.#metrics.offloadedSegments.inc();
        this.#logger.debug({ shard, baseOffset: segment.baseOffset }, 'segment offloaded');
      }
    }
  }

  /**
   * Checks, just before the local log goes, that the bucket still holds the copy confirmed
   * earlier (local retention may come long after the upload, and the bucket is not ours alone);
   * uploads it again when not. False when there is no confirmed copy after all.
   */
  async #stillHeld(state: ShardTiering, segment: SealedSegment): Promise<boolean> {
    const copy = state.confirmed.get(segment.baseOffset);
    if (copy === undefined) return false;
    const key = this.#bucket.keyOf(segment.shard, segment.baseOffset);
    if (holds(await this.#bucket.head(key), segment, copy.digest)) return true;
    this.#logger.warn(
      { shard: segment.shard, baseOffset: segment.baseOffset, key },
      'the uploaded copy of a segment is no longer in the bucket; uploading it again',
    );
    state.confirmed.delete(segment.baseOffset);
    await this.#uploads(() => this.#copy(state, segment));
    return state.isConfirmed(segment);
  }

  /**
   * Deletes the objects of segments the shard no longer has. The known objects are taken before
   * the segments are listed: an object known then belongs to a segment sealed before, so a segment
   * missing from the later list is gone for good (base offsets are never reused), whatever passes
   * run meanwhile.
   */
  async deleteOrphans(shard: string): Promise<void> {
    const state = this.#state(shard);
    if (state.objects.size === 0) return;
    const known = [...state.objects];
    let live: Set<number>;
    try {
      live = new Set((await this.#journal.sealedSegments(shard)).map((s) => s.baseOffset));
    } catch (error) {
      if (isGone(error)) return;
      throw error;
    }
    for (const base of known) {
      if (live.has(base)) continue;
      await this.#bucket.delete(this.#bucket.keyOf(shard, base));
      state.objects.delete(base);
      state.confirmed.delete(base);
      this.#metrics.deletedObjects.inc();
    }
  }

  /**
   * Deletes the objects of segments removed by retention or `deleteBefore`, on every shard. A
   * bucket that cannot be reached leaves them for the next pass, with a warning.
   */
  async cleanUp(shards: readonly string[]): Promise<void> {
    await Promise.all(
      shards.map(async (shard) => {
        try {
          await this.deleteOrphans(shard);
        } catch (error) {
          this.#failed(shard, this.#state(shard), error, 'delete');
        }
      }),
    );
  }

  /**
   * Deletes a shard from the journal, then its objects. Waits for the shard's running pass, so no
   * upload of the old shard can land under a new shard of the same name. Objects that cannot be
   * deleted now (bucket down) are removed by the sweep at the next start.
   */
  deleteShard(shard: string): Promise<void> {
    const state = this.#state(shard);
    return state.turn(async () => {
      await this.#journal.deleteShard(shard);
      state.confirmed.clear();
      const known = [...state.objects];
      state.objects.clear();
      try {
        await this.#purge(shard, known);
      } catch (error) {
        this.#metrics.failures.inc({ operation: 'delete' });
        this.#warn(
          'delete',
          error,
          { shard },
          'could not delete the objects of a deleted shard; they are removed at the next start',
        );
      }
    });
  }

  async #purge(shard: string, known: readonly number[]): Promise<void> {
    await this.#ownership.claim();
    const listed = (await this.#bucket.list(this.#bucket.shardPrefix(shard)))
      .filter((o) => o.shard === shard)
      .map((o) => o.baseOffset);
    for (const base of new Set([...known, ...listed])) {
      await this.#bucket.delete(this.#bucket.keyOf(shard, base));
      this.#metrics.deletedObjects.inc();
    }
  }

  /**
   * Lists the bucket once after start (again after a failure): adopts the objects of existing
   * shards, deletes those of shards that no longer exist.
   */
  #sweepOnce(): Promise<void> {
    this.#sweeping ??= this.#sweep()
      .then(() => {
        this.#swept = true;
      })
      .finally(() => {
        this.#sweeping = null;
      });
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    await this.#ownership.claim();
    const byShard = new Map<string, number[]>();
    for (const object of await this.#bucket.list()) {
      const bases = byShard.get(object.shard) ?? [];
      bases.push(object.baseOffset);
      byShard.set(object.shard, bases);
    }
    await Promise.all(
      [...byShard].map(([shard, bases]) => {
        const state = this.#state(shard);
        // Taking the shard's turn: no upload for a shard of this name runs meanwhile.
        return state.turn(async () => {
          let exists = true;
          try {
            await this.#journal.shardInfo(shard);
          } catch (error) {
            if (!isGone(error)) throw error;
            exists = false;
          }
          if (exists) {
            for (const base of bases) state.objects.add(base);
            await this.deleteOrphans(shard);
          } else {
            for (const base of bases) {
              await this.#bucket.delete(this.#bucket.keyOf(shard, base));
              this.#metrics.deletedObjects.inc();
            }
          }
        });
      }),
    );
  }

  /** Stops starting work and waits for what runs (bucket calls are aborted by the engine). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    const states = [...this.#shards.values()];
    for (const state of states) {
      if (state.retry !== null) clearTimeout(state.retry);
      state.retry = null;
    }
    await Promise.allSettled(states.map((state) => state.turn(() => Promise.resolve())));
    await this.#sweeping?.catch(() => undefined);
  }
}
