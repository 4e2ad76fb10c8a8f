import {
  DEFAULT_SHARD_CONFIG,
  ErrorCode,
  RobustMQError,
  silentLogger,
  validateShardName,
  mergeShardConfig,
  type AppendOptions,
  type AppendResult,
  type Logger,
  type ReadOptions,
  type ReadResult,
  type RecordBatch,
  type ShardConfig,
  type ShardInfo,
  type StorageEngine,
} from '@robustmq/core';

import { ShardLog } from './shard-log.js';

/** Options for {@link MemoryStorageEngine}. */
export interface MemoryStorageOptions {
  /** Where shard lifecycle and retention lines go; silent by default. */
  logger?: Logger;
}

/** Runs `body` and hands back its result or its error as a promise, as the contract promises. */
function settle<T>(body: () => T): Promise<T> {
  try {
    return Promise.resolve(body());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

function invalid(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.InvalidArgument, message);
}

function checkOffset(offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalid(`offset ${offset} is not an integer >= 0`);
}

/** The expected offset of a conditional append, if any; see {@link AppendOptions}. */
function expectedOffsetOf(options: AppendOptions | undefined): number | undefined {
  const expected = options?.expectedOffset;
  if (expected === undefined) return undefined;
  if (!Number.isSafeInteger(expected) || expected < 0) {
    throw invalid(`expectedOffset ${expected} is not an integer >= 0`);
  }
  return expected;
}

function checkBatches(shard: ShardLog, batches: readonly RecordBatch[]): void {
  if (batches.length === 0) throw invalid(`append to ${shard.name} needs at least one batch`);
  for (const batch of batches as readonly unknown[]) {
    // A caller in JavaScript can pass anything; what is not a batch is its mistake, not ours.
    if (batch === null || typeof batch !== 'object') throw invalid('each batch must be a record batch');
    checkBatch(shard, batch as RecordBatch);
  }
}

function checkBatch(shard: ShardLog, batch: RecordBatch): void {
  if (!Number.isSafeInteger(batch.recordCount) || batch.recordCount < 1) {
    throw invalid(`recordCount ${batch.recordCount} is not an integer >= 1`);
  }
  if (!Number.isFinite(batch.maxTimestamp))
    throw invalid(`maxTimestamp ${batch.maxTimestamp} is not a number`);
  if (!(batch.data instanceof Uint8Array)) throw invalid('batch data is not a Uint8Array');
  if (batch.data.length > shard.config.maxBatchBytes) {
    throw new RobustMQError(
      ErrorCode.TooLarge,
      `batch of ${batch.data.length} bytes is above maxBatchBytes ${shard.config.maxBatchBytes} of ${shard.name}`,
    );
  }
}

/**
 * A StorageEngine that keeps every shard in memory: the full contract except durability, which it
 * cannot give (every durability policy behaves like `none`, and nothing survives close()). For tests
 * and for hot topics whose data may be lost on restart.
 *
 * Batches read back share their `data` with the engine: readers must not write into it.
 */
export class MemoryStorageEngine implements StorageEngine {
  readonly storageClass = 'memory';
  readonly #shards = new Map<string, ShardLog>();
  readonly #logger: Logger;
  #closed = false;

  constructor(options: MemoryStorageOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
  }

  createShard(shard: string, config: Partial<ShardConfig> = {}): Promise<ShardInfo> {
    return settle(() => {
      this.#checkOpen();
      validateShardName(shard);
      const resolved = mergeShardConfig(DEFAULT_SHARD_CONFIG, config);
      if (this.#shards.has(shard))
        throw new RobustMQError(ErrorCode.AlreadyExists, `shard ${shard} already exists`);
      const log = new ShardLog(shard, resolved);
      this.#shards.set(shard, log);
      this.#logger.debug({ shard }, 'shard created');
      return log.info;
    });
  }

  deleteShard(shard: string): Promise<void> {
    return settle(() => {
      const log = this.#shard(shard);
      this.#shards.delete(shard);
      log.waiters.releaseAll();
      this.#logger.debug({ shard }, 'shard deleted');
    });
  }

  listShards(): Promise<string[]> {
    return settle(() => {
      this.#checkOpen();
      return [...this.#shards.keys()].sort();
    });
  }

  shardInfo(shard: string): Promise<ShardInfo> {
    return settle(() => this.#shard(shard).info);
  }

  updateShardConfig(shard: string, config: Partial<ShardConfig>): Promise<ShardInfo> {
    return settle(() => {
      const log = this.#shard(shard);
      log.config = mergeShardConfig(log.config, config);
      return log.info;
    });
  }

  append(shard: string, batches: readonly RecordBatch[], options?: AppendOptions): Promise<AppendResult> {
    return settle(() => {
      const log = this.#shard(shard);
      checkBatches(log, batches);
      const expected = expectedOffsetOf(options);
      // Appends take their offsets as they are called, so the shard's next offset already counts
      // every append called before this one.
      if (expected !== undefined && expected !== log.nextOffset) {
        throw new RobustMQError(
          ErrorCode.Conflict,
          `append to ${shard} expected offset ${expected}, but the next offset is ${log.nextOffset}`,
        );
      }
      return log.append(batches);
    });
  }

  read(shard: string, offset: number, options: ReadOptions): Promise<ReadResult> {
    return settle(() => {
      const log = this.#shard(shard);
      checkOffset(offset);
      const maxBytes = options?.maxBytes;
      if (typeof maxBytes !== 'number' || Number.isNaN(maxBytes) || maxBytes < 0) {
        throw invalid(`maxBytes ${maxBytes} is not a number >= 0`);
      }
      return log.read(offset, maxBytes);
    });
  }

  waitForData(shard: string, offset: number, timeoutMs: number): Promise<void> {
    return settle(() => {
      const log = this.#shard(shard);
      checkOffset(offset);
      if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
        throw invalid(`timeoutMs ${timeoutMs} is not a number >= 0`);
      }
      return offset < log.nextOffset ? undefined : log.waiters.wait(offset, timeoutMs);
    }).then(() => undefined);
  }

  offsetForTimestamp(shard: string, timestamp: number): Promise<number | null> {
    return settle(() => {
      const log = this.#shard(shard);
      if (typeof timestamp !== 'number' || Number.isNaN(timestamp))
        throw invalid(`timestamp ${timestamp} is not a number`);
      return log.offsetForTimestamp(timestamp);
    });
  }

  deleteBefore(shard: string, offset: number): Promise<number> {
    return settle(() => {
      const log = this.#shard(shard);
      checkOffset(offset);
      return log.deleteBefore(offset);
    });
  }

  enforceRetention(now: number): Promise<void> {
    return settle(() => {
      this.#checkOpen();
      if (!Number.isFinite(now)) throw invalid(`now ${now} is not a number`);
      for (const log of this.#shards.values()) {
        const dropped = log.enforceRetention(now);
        if (dropped > 0) {
          this.#logger.debug(
            { shard: log.name, dropped, logStartOffset: log.info.logStartOffset },
            'retention',
          );
        }
      }
    });
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const log of this.#shards.values()) log.waiters.releaseAll();
      this.#shards.clear();
    }
    return Promise.resolve();
  }

  #checkOpen(): void {
    if (this.#closed) throw new RobustMQError(ErrorCode.Closed, 'the memory storage engine is closed');
  }

  #shard(shard: string): ShardLog {
    this.#checkOpen();
    validateShardName(shard);
    const log = this.#shards.get(shard);
    if (log === undefined) throw new RobustMQError(ErrorCode.NotFound, `shard ${shard} does not exist`);
    return log;
  }
}
