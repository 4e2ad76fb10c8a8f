import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DEFAULT_SHARD_CONFIG,
  ErrorCode,
  RobustMQError,
  isRobustMQError,
  silentLogger,
  validateShardName,
  type AppendOptions,
  type AppendResult,
  type Logger,
  type Metrics,
  type ReadOptions,
  type ReadResult,
  type RecordBatch,
  type ShardConfig,
  type ShardInfo,
  type StorageEngine,
  type StoredBatch,
} from '@robustmq/core';
import { createDatabase, type RocksDatabase, type WriteOp } from './binding.js';
import {
  decodeBatch,
  decodeBatchHeader,
  encodeBatch,
  encodeBlock,
  encodeNumber,
  encodeShardId,
  type BlockSummary,
} from './codec.js';
import { CommitQueue, type CommitMetrics } from './commit-queue.js';
import { parseSettings } from './engine-config.js';
import {
  MAX_SHARD_ID,
  NEXT_SHARD_ID_KEY,
  batchKey,
  blockKey,
  configKey,
  firstBatchKey,
  logStartKey,
  nextOffsetKey,
  offsetOfKey,
  registryKey,
  shardRange,
  tombstoneKey,
} from './keys.js';
import { loadState } from './load.js';
import { entries, firstKey } from './scan.js';
import { encodeShardConfig, mergeRocksShardConfig } from './shard-config.js';
import { Shard } from './shard.js';
import type { IndexedBatch } from './time-index.js';

/** Options for {@link RocksDbStorageEngine.open}. */
export interface RocksDbStorageOptions {
  /** A directory the engine owns; the database lives in its `rocksdb` subdirectory. */
  dataDir: string;
  /**
   * How long a group-commit append may wait for others to share its synced write; default 0 (the
   * end of the current event-loop turn).
   */
  groupCommitMs?: number;
  /** Pending group-commit bytes that start the synced write at once; default 4 MiB. */
  groupCommitBytes?: number;
  /** Silent by default. */
  logger?: Logger;
  metrics?: Metrics;
}

/** The largest record count one batch may have (it is stored as a u32). */
const MAX_RECORD_COUNT = 0xffff_ffff;
/** The native iterator's byte limit is an int32. */
const MAX_HIGH_WATER_MARK = 2 ** 31 - 1;

function invalid(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.InvalidArgument, message);
}

function checkOffset(offset: number): void {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw invalid(`offset ${offset} is not an integer >= 0`);
  }
}

/** Array.isArray without its narrowing to any[]. */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}

/**
 * The message of the innermost cause: the binding wraps RocksDB's own error ("IO error: ...",
 * "Corruption: ...") in one that only says the database is not open.
 */
function rootMessage(error: unknown): string {
  let inner = error;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  return inner instanceof Error ? inner.message : String(inner);
}

function internal(action: string, cause: unknown): RobustMQError {
  if (isRobustMQError(cause)) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new RobustMQError(ErrorCode.Internal, `rocksdb ${action} failed: ${message}`, { cause });
}

/** A stored batch as the index sees it. */
interface ScannedBatch extends IndexedBatch {
  endOffset: number;
}

/**
 * A StorageEngine on RocksDB (through `@nxtedition/rocksdb`): all shards in one database, each a
 * key range under its numeric id, with batches keyed by base offset so a range scan reads them in
 * offset order. Appends write each batch with its shard's metadata in one atomic write batch;
 * durability per shard is a synced write (`fsync`), a synced write shared by concurrent appends
 * (`group-commit`) or an unsynced one (`none`).
 *
 * The binding writes on the calling thread, so a synced write holds the event loop for the
 * duration of one WAL fsync; reads and scans run on libuv's pool.
 */
export class RocksDbStorageEngine implements StorageEngine {
  readonly storageClass = 'rocksdb';
  readonly #db: RocksDatabase;
  readonly #queue: CommitQueue;
  readonly #logger: Logger;
  readonly #shards = new Map<string, Shard>();
  readonly #creating = new Set<string>();
  readonly #inflight = new Set<Promise<unknown>>();
  #nextShardId: number;
  #closed = false;

  private constructor(db: RocksDatabase, queue: CommitQueue, logger: Logger, nextShardId: number) {
    this.#db = db;
    this.#queue = queue;
    this.#logger = logger;
    this.#nextShardId = nextShardId;
  }

  /**
   * Opens (creating when missing) the database under `options.dataDir` and loads every shard's
   * metadata and time index. Throws a ConfigError for a bad setting and UNAVAILABLE when the
   * database cannot be opened (for instance another process holds it).
   */
  static async open(options: RocksDbStorageOptions): Promise<RocksDbStorageEngine> {
    const settings = parseSettings({
      group_commit_ms: options.groupCommitMs,
      group_commit_bytes: options.groupCommitBytes,
    });
    const logger = options.logger ?? silentLogger;
    const location = join(options.dataDir, 'rocksdb');
    await mkdir(location, { recursive: true });
    const db = createDatabase(location);
    try {
      await db.open({ createIfMissing: true });
    } catch (cause) {
      const message = `cannot open rocksdb at ${location}: ${rootMessage(cause)}`;
      throw new RobustMQError(ErrorCode.Unavailable, message, { cause });
    }
    try {
      const state = await loadState(db, logger);
      const metrics: CommitMetrics | undefined = options.metrics && {
        writes: options.metrics.counter({
          name: 'robustmq_storage_rocksdb_writes_total',
          help: 'RocksDB write batches carrying appends, by whether they were synced',
          labelNames: ['sync'],
        }),
        batches: options.metrics.counter({
          name: 'robustmq_storage_rocksdb_appended_batches_total',
          help: 'Record batches appended to the RocksDB engine',
        }),
      };
      const engine = new RocksDbStorageEngine(
        db,
        new CommitQueue(db, settings, logger, metrics),
        logger,
        state.nextShardId,
      );
      for (const stored of state.shards) engine.#shards.set(stored.name, engine.#newShard(stored));
      logger.info({ location, shards: state.shards.length }, 'rocksdb storage open');
      return engine;
    } catch (error) {
      await db.close();
      throw internal('open', error);
    }
  }

  createShard(shard: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    return this.#call('create shard', async () => {
      validateShardName(shard);
      const resolved = mergeRocksShardConfig(DEFAULT_SHARD_CONFIG, config);
      if (this.#shards.has(shard) || this.#creating.has(shard)) {
        throw new RobustMQError(ErrorCode.AlreadyExists, `shard ${shard} already exists`);
      }
      if (this.#nextShardId > MAX_SHARD_ID) {
        throw new RobustMQError(ErrorCode.Unavailable, 'no shard ids left');
      }
      const id = this.#nextShardId++;
      this.#creating.add(shard);
      try {
        await this.#db.batch(
          [
            { type: 'put', key: registryKey(shard), value: encodeShardId(id) },
            { type: 'put', key: configKey(id), value: encodeShardConfig(resolved) },
            { type: 'put', key: logStartKey(id), value: encodeNumber(0) },
            { type: 'put', key: nextOffsetKey(id), value: encodeNumber(0) },
            { type: 'put', key: NEXT_SHARD_ID_KEY, value: encodeNumber(this.#nextShardId) },
          ],
          { sync: true },
        );
        const created = this.#newShard({
          name: shard,
          id,
          config: resolved,
          logStartOffset: 0,
          nextOffset: 0,
          blocks: [],
        });
        this.#shards.set(shard, created);
        this.#logger.debug({ shard, id }, 'shard created');
        return created.info();
      } finally {
        this.#creating.delete(shard);
      }
    });
  }

  deleteShard(shard: string): Promise<void> {
    return this.#call('delete shard', async () => {
      const found = this.#shard(shard);
      await this.#exclusive(found, async () => {
        // The tombstone makes the next open finish the range delete if we stop before it.
        await this.#db.batch(
          [
            { type: 'del', key: registryKey(shard) },
            { type: 'put', key: tombstoneKey(found.id), value: Buffer.alloc(0) },
          ],
          { sync: true },
        );
        found.deleted = true;
        this.#shards.delete(shard);
        found.waiters.wakeAll();
      });
      try {
        await this.#db.clear(shardRange(found.id));
        await this.#db.batch([{ type: 'del', key: tombstoneKey(found.id) }], { sync: false });
      } catch (error) {
        this.#logger.warn({ err: error, shard }, 'deleted shard not cleared yet; the next open finishes it');
      }
      this.#logger.debug({ shard, id: found.id }, 'shard deleted');
    });
  }

  listShards(): Promise<string[]> {
    return this.#call('list shards', () => [...this.#shards.keys()]);
  }

  shardInfo(shard: string): Promise<ShardInfo> {
    return this.#call('shard info', () => this.#shard(shard).info());
  }

  updateShardConfig(shard: string, config: Partial<ShardConfig>): Promise<ShardInfo> {
    return this.#call('update shard config', async () => {
      const found = this.#shard(shard);
      mergeRocksShardConfig(found.config, config);
      return this.#exclusive(found, async () => {
        const merged = mergeRocksShardConfig(found.config, config);
        await this.#db.batch([{ type: 'put', key: configKey(found.id), value: encodeShardConfig(merged) }], {
          sync: true,
        });
        found.config = merged;
        return found.info();
      });
    });
  }

  append(shard: string, batches: readonly RecordBatch[], options?: AppendOptions): Promise<AppendResult> {
    return this.#call('append', () => {
      const found = this.#shard(shard);
      const expectedOffset = options?.expectedOffset;
      if (expectedOffset !== undefined && !(Number.isSafeInteger(expectedOffset) && expectedOffset >= 0)) {
        throw invalid(`expectedOffset ${expectedOffset} is not an integer >= 0`);
      }
      if (!isList(batches) || batches.length === 0) {
        throw invalid(`append to ${shard} needs at least one batch`);
      }
      for (const batch of batches as readonly unknown[]) {
        if (batch === null || typeof batch !== 'object') throw invalid('each batch must be a record batch');
        const { recordCount, maxTimestamp, data } = batch as RecordBatch;
        if (!Number.isSafeInteger(recordCount) || recordCount < 1 || recordCount > MAX_RECORD_COUNT) {
          throw invalid(`recordCount ${recordCount} is not an integer from 1 to ${MAX_RECORD_COUNT}`);
        }
        if (typeof maxTimestamp !== 'number' || !Number.isFinite(maxTimestamp)) {
          throw invalid(`maxTimestamp ${maxTimestamp} is not a finite number`);
        }
        if (!(data instanceof Uint8Array)) throw invalid('batch data is not a Uint8Array');
        if (data.length > found.config.maxBatchBytes) {
          throw new RobustMQError(
            ErrorCode.TooLarge,
            `batch of ${data.length} bytes is above maxBatchBytes ${found.config.maxBatchBytes} of ${shard}`,
          );
        }
      }
      const { durability } = found.config;
      return new Promise<AppendResult>((resolve, reject) =>
        this.#queue.enqueue({
          shard: found,
          values: batches.map(encodeBatch),
          headers: batches.map(({ recordCount, maxTimestamp }) => ({ recordCount, maxTimestamp })),
          sync: durability !== 'none',
          immediate: durability !== 'group-commit',
          expectedOffset,
          resolve,
          reject,
        }),
      );
    });
  }

  read(shard: string, offset: number, options: ReadOptions): Promise<ReadResult> {
    return this.#call('read', async () => {
      const found = this.#shard(shard);
      checkOffset(offset);
      const maxBytes = options?.maxBytes;
      if (typeof maxBytes !== 'number' || Number.isNaN(maxBytes) || maxBytes < 0) {
        throw invalid(`maxBytes ${maxBytes} is not a number >= 0`);
      }
      // Reads see what was durable when they started, never a batch past this next offset.
      const { logStartOffset, nextOffset } = found;
      if (offset < logStartOffset || offset > nextOffset) {
        throw new RobustMQError(
          ErrorCode.OffsetOutOfRange,
          `offset ${offset} of ${shard} is outside ${logStartOffset}..${nextOffset}`,
        );
      }
      const batches: StoredBatch[] = [];
      if (offset === nextOffset) return { batches, logStartOffset, nextOffset };
      const start = await this.#batchAtOrBefore(found, offset);
      let bytes = 0;
      const range = {
        gte: batchKey(found.id, start),
        lt: batchKey(found.id, nextOffset),
        highWaterMarkBytes: Math.min(Math.max(maxBytes, 1), MAX_HIGH_WATER_MARK),
      };
      for await (const [key, value] of entries(this.#db, range)) {
        const batch = decodeBatch(value);
        if (batches.length > 0 && bytes + batch.data.length > maxBytes) break;
        batches.push({ ...batch, baseOffset: offsetOfKey(key) });
        bytes += batch.data.length;
      }
      return { batches, logStartOffset, nextOffset };
    });
  }

  waitForData(shard: string, offset: number, timeoutMs: number): Promise<void> {
    return this.#call('wait for data', () => {
      const found = this.#shard(shard);
      checkOffset(offset);
      if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
        throw invalid(`timeoutMs ${timeoutMs} is not a number >= 0`);
      }
      if (found.nextOffset > offset) return undefined;
      return found.waiters.wait(offset, timeoutMs);
    });
  }

  offsetForTimestamp(shard: string, timestamp: number): Promise<number | null> {
    return this.#call('offset for timestamp', async () => {
      const found = this.#shard(shard);
      if (typeof timestamp !== 'number' || Number.isNaN(timestamp)) {
        throw invalid(`timestamp ${timestamp} is not a number`);
      }
      for (;;) {
        const generation = found.generation;
        const index = found.index.firstBlockReaching(timestamp);
        if (index < 0) return null;
        const block = found.index.blocks[index]!;
        const hit = await this.#firstBatchReaching(found, block, timestamp);
        // A trim of the front that ran meanwhile may have moved the block or the log start.
        if (found.generation !== generation) continue;
        if (hit === undefined) {
          throw new RobustMQError(
            ErrorCode.Corrupt,
            `time index of ${shard} promises a batch that is not stored`,
          );
        }
        return Math.max(hit, found.logStartOffset);
      }
    });
  }

  deleteBefore(shard: string, offset: number): Promise<number> {
    return this.#call('delete before', async () => {
      const found = this.#shard(shard);
      checkOffset(offset);
      return this.#exclusive(found, async () => {
        if (offset > found.nextOffset) {
          throw new RobustMQError(
            ErrorCode.OffsetOutOfRange,
            `cannot delete ${shard} before ${offset}: its next offset is ${found.nextOffset}`,
          );
        }
        if (offset <= found.logStartOffset) return found.logStartOffset;
        // The batch holding `offset` stays, so a read at the new log start finds it.
        const keepFrom = offset === found.nextOffset ? offset : await this.#batchAtOrBefore(found, offset);
        await this.#trim(found, keepFrom, offset);
        return offset;
      });
    });
  }

  enforceRetention(now: number): Promise<void> {
    return this.#call('enforce retention', async () => {
      if (typeof now !== 'number' || !Number.isFinite(now)) {
        throw invalid(`now ${now} is not a finite number`);
      }
      for (const shard of [...this.#shards.values()]) {
        const { retentionMs, retentionBytes } = shard.config;
        if (retentionMs === null && retentionBytes === null) continue;
        try {
          await this.#exclusive(shard, () => this.#applyRetention(shard, now));
        } catch (error) {
          // A shard deleted while we got to it has nothing left to retain.
          if (!isRobustMQError(error, ErrorCode.NotFound)) throw error;
        }
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const shards = [...this.#shards.values()];
    for (const shard of shards) shard.waiters.wakeAll();
    await Promise.all(shards.map((shard) => shard.lock.idle()));
    await this.#queue.drain();
    await Promise.allSettled([...this.#inflight]);
    await this.#db.close();
    this.#logger.info('rocksdb storage closed');
  }

  /**
   * Runs an API call: CLOSED once closed, a sync throw turned into a rejection, and any error that
   * is not already a RobustMQError wrapped as INTERNAL. Tracked so close() waits for it.
   */
  #call<T>(action: string, body: () => T | Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new RobustMQError(ErrorCode.Closed, 'the rocksdb storage engine is closed'));
    }
    const call = (async () => {
      try {
        return await body();
      } catch (error) {
        throw internal(action, error);
      }
    })();
    this.#inflight.add(call);
    const forget = () => this.#inflight.delete(call);
    call.then(forget, forget);
    return call;
  }

  #shard(shard: string): Shard {
    validateShardName(shard);
    const found = this.#shards.get(shard);
    if (found === undefined) throw new RobustMQError(ErrorCode.NotFound, `shard ${shard} does not exist`);
    return found;
  }

  #newShard(stored: Omit<ConstructorParameters<typeof Shard>[0], 'onIdle'>): Shard {
    return new Shard({ ...stored, onIdle: () => this.#queue.kick() });
  }

  /**
   * Runs a change of `shard` other than an append, after the changes before it and after the
   * write in flight, with the shard's appends held back meanwhile.
   */
  #exclusive<T>(shard: Shard, body: () => Promise<T>): Promise<T> {
    return shard.lock.run(async () => {
      await this.#queue.settled();
      if (shard.deleted) throw new RobustMQError(ErrorCode.NotFound, `shard ${shard.name} does not exist`);
      return body();
    });
  }

  /** The base offset of the batch holding `offset`: the greatest batch key at or below it. */
  async #batchAtOrBefore(shard: Shard, offset: number): Promise<number> {
    const key = await firstKey(this.#db, {
      gte: firstBatchKey(shard.id),
      lte: batchKey(shard.id, offset),
      reverse: true,
    });
    return key === undefined ? offset : offsetOfKey(key);
  }

  /** The batches stored from `from` to `to`, headers only as far as the caller is concerned. */
  async *#scan(shard: Shard, from: number, to: number): AsyncGenerator<ScannedBatch> {
    for await (const [key, value] of entries(this.#db, {
      gte: batchKey(shard.id, from),
      lt: batchKey(shard.id, to),
    })) {
      const { recordCount, maxTimestamp } = decodeBatchHeader(value);
      const baseOffset = offsetOfKey(key);
      yield {
        baseOffset,
        recordCount,
        maxTimestamp,
        bytes: key.length + value.length,
        endOffset: baseOffset + recordCount,
      };
    }
  }

  async #firstBatchReaching(
    shard: Shard,
    block: BlockSummary,
    timestamp: number,
  ): Promise<number | undefined> {
    for await (const batch of this.#scan(shard, block.firstOffset, block.endOffset)) {
      if (batch.maxTimestamp >= timestamp) return batch.baseOffset;
    }
    return undefined;
  }

  /** Under the shard's lock: drops the leading batches that time or size retention lets go. */
  async #applyRetention(shard: Shard, now: number): Promise<void> {
    const { retentionMs, retentionBytes } = shard.config;
    let keepFrom = shard.firstStoredOffset;
    if (retentionMs !== null) {
      keepFrom = Math.max(keepFrom, await this.#keepAfterTime(shard, now - retentionMs));
    }
    if (retentionBytes !== null && shard.index.bytes > retentionBytes) {
      keepFrom = Math.max(keepFrom, await this.#keepWithinSize(shard, retentionBytes));
    }
    if (keepFrom <= shard.logStartOffset) return;
    this.#logger.debug({ shard: shard.name, logStartOffset: keepFrom }, 'retention moves the log start');
    await this.#trim(shard, keepFrom, keepFrom);
  }

  /** The first batch from the front whose max timestamp is not before `cutoff`. */
  async #keepAfterTime(shard: Shard, cutoff: number): Promise<number> {
    const { blocks } = shard.index;
    const block = blocks.find((candidate) => candidate.maxTimestamp >= cutoff);
    if (block === undefined) return shard.nextOffset;
    for await (const batch of this.#scan(shard, block.firstOffset, block.endOffset)) {
      if (batch.maxTimestamp >= cutoff) return batch.baseOffset;
    }
    return block.endOffset;
  }

  /**
   * The first batch to keep: leading batches go only while what stays is still `limit` bytes, so
   * the newest `limit` bytes are always kept (as Kafka's `retention.bytes`).
   */
  async #keepWithinSize(shard: Shard, limit: number): Promise<number> {
    let droppable = shard.index.bytes - limit;
    for (const block of shard.index.blocks) {
      if (block.bytes <= droppable) {
        droppable -= block.bytes;
        continue;
      }
      for await (const batch of this.#scan(shard, block.firstOffset, block.endOffset)) {
        if (batch.bytes > droppable) return batch.baseOffset;
        droppable -= batch.bytes;
      }
      return block.endOffset;
    }
    return shard.nextOffset;
  }

  /**
   * Under the shard's lock: makes `logStart` the log start and drops every batch before
   * `keepFrom` (a batch boundary at or below it). The log start and the time index change in one
   * synced write; the batches then go with one range delete, which the next open redoes if a crash
   * comes first.
   */
  async #trim(shard: Shard, keepFrom: number, logStart: number): Promise<void> {
    const { blocks } = shard.index;
    let dropped = 0;
    while (dropped < blocks.length && blocks[dropped]!.endOffset <= keepFrom) dropped++;
    const ops: WriteOp[] = [{ type: 'put', key: logStartKey(shard.id), value: encodeNumber(logStart) }];
    for (const block of blocks.slice(0, dropped))
      ops.push({ type: 'del', key: blockKey(shard.id, block.firstOffset) });
    let head: BlockSummary | undefined;
    const cut = blocks[dropped];
    if (cut !== undefined && cut.firstOffset < keepFrom) {
      head = await this.#summarize(shard, keepFrom, cut.endOffset);
      ops.push({ type: 'del', key: blockKey(shard.id, cut.firstOffset) });
      ops.push({ type: 'put', key: blockKey(shard.id, keepFrom), value: encodeBlock(head) });
    }
    const firstStored = shard.firstStoredOffset;
    await this.#db.batch(ops, { sync: true });
    shard.index.trimFront(dropped, head);
    shard.logStartOffset = logStart;
    shard.generation++;
    if (keepFrom > firstStored) {
      try {
        await this.#db.clear({ gte: firstBatchKey(shard.id), lt: batchKey(shard.id, keepFrom) });
      } catch (error) {
        this.#logger.warn({ err: error, shard: shard.name }, 'range delete failed; the next open retries it');
      }
    }
  }

  /** The time-index block of the batches stored from `from` to `to`. */
  async #summarize(shard: Shard, from: number, to: number): Promise<BlockSummary> {
    const block: BlockSummary = {
      firstOffset: from,
      endOffset: from,
      batches: 0,
      bytes: 0,
      maxTimestamp: Number.NEGATIVE_INFINITY,
    };
    for await (const batch of this.#scan(shard, from, to)) {
      if (batch.baseOffset !== block.endOffset) {
        throw new RobustMQError(
          ErrorCode.Corrupt,
          `shard ${shard.name} has a gap at offset ${block.endOffset}`,
        );
      }
      block.endOffset = batch.endOffset;
      block.batches += 1;
      block.bytes += batch.bytes;
      block.maxTimestamp = Math.max(block.maxTimestamp, batch.maxTimestamp);
    }
    if (block.endOffset !== to) {
      throw new RobustMQError(
        ErrorCode.Corrupt,
        `shard ${shard.name} has a gap at offset ${block.endOffset}`,
      );
    }
    return block;
  }
}
