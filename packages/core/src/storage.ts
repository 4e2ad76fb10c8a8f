import type { ConnectionOptions } from 'node:tls';
import { ErrorCode, RobustMQError } from './errors.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { RecordBatch, StoredBatch } from './records.js';
import type { StorageClass } from './topics.js';

/**
 * When an append counts as done.
 * - `fsync`: each append is fsynced before it is acknowledged.
 * - `group-commit`: appends are acknowledged after the fsync that covers them; fsyncs are batched
 *   by time and bytes. The default.
 * - `none`: acknowledged once written to the OS; a machine crash can lose the tail.
 */
export type DurabilityPolicy = 'fsync' | 'group-commit' | 'none';

export interface ShardConfig {
  /** Delete whole segments whose newest record is older than this; null keeps forever. */
  retentionMs: number | null;
  /** Delete the oldest segments while the shard is larger than this; null means no limit. */
  retentionBytes: number | null;
  /** Size at which the engine rolls to a new segment (engines without segments ignore it). */
  segmentBytes: number;
  /**
   * Age at which the engine rolls to a new segment, counted from the segment's first append; null
   * rolls by size only. Engines without segments ignore it.
   */
  segmentMs: number | null;
  durability: DurabilityPolicy;
  /** Largest batch `append` accepts, in bytes of `data`. */
  maxBatchBytes: number;
}

export const DEFAULT_SHARD_CONFIG: Readonly<ShardConfig> = Object.freeze({
  retentionMs: 7 * 24 * 60 * 60 * 1000,
  retentionBytes: null,
  segmentBytes: 128 * 1024 * 1024,
  // As Kafka's log.roll.ms: so that retention by time can delete a quiet shard's old records.
  segmentMs: 7 * 24 * 60 * 60 * 1000,
  durability: 'group-commit',
  maxBatchBytes: 8 * 1024 * 1024,
});

export interface ShardInfo {
  name: string;
  config: ShardConfig;
  /** The first offset still readable. */
  logStartOffset: number;
  /** The offset the next appended record will get (Kafka's high watermark in standalone). */
  nextOffset: number;
  /** Bytes the shard occupies in the engine. */
  sizeBytes: number;
}

export interface AppendResult {
  /** Offset of the first record of the first batch. */
  baseOffset: number;
  /** Offset of the last record of the last batch. */
  lastOffset: number;
  /**
   * The shard's first readable offset when the append was stored (Kafka's log start offset), so a
   * caller that answers with it (Produce v5+) needs no `shardInfo` call of its own. A retention pass
   * or `deleteBefore` running alongside the append may move the log start at any moment: this is
   * its value as of the append's completion, so at least what it was when `append` was called and
   * possibly past the appended offsets. -1 only from a remote engine whose node is too old to
   * report it and that then failed to ask for it separately: the append is stored all the same.
   */
  logStartOffset: number;
}

export interface AppendOptions {
  /**
   * Stores the batches only if the first of them would get exactly this offset: the shard's next
   * offset counting every append called before this one, durable yet or not. Otherwise the call
   * fails with CONFLICT and stores nothing. A writer that has checked the log up to an offset (an
   * idempotent producer's sequences, say) appends this way so that nothing another writer stored
   * meanwhile, or an earlier append of its own that timed out and landed later, goes unseen.
   */
  expectedOffset?: number;
}

export interface ReadOptions {
  /**
   * Soft limit on the bytes of `data` returned. The first batch is returned whole even when it is
   * larger, so a consumer can always make progress.
   */
  maxBytes: number;
  /**
   * A buffer the caller lends for this read, so a consumer that reads again and again (a fetch
   * loop, a replica, a tool copying a shard) need not have fresh memory allocated for every read.
   * The engine MAY read into it and return `data` as views of it; such views are valid only until
   * the caller reuses or changes this buffer (passes it to another read, writes to it), so a
   * caller that keeps a batch past that must copy it first (`new Uint8Array(data)` copies; a
   * Buffer's `slice` does not). The caller must not use the buffer
   * while the read is pending. An engine that cannot use it, or a read
   * whose bytes do not fit in it, returns `data` in buffers of its own as without it. The batches
   * returned are byte for byte the same either way. What the buffer held before does not matter, and
   * the engine may change any of its bytes, also ones no returned `data` covers. A buffer over a
   * `SharedArrayBuffer` lets an engine fill it off the caller's thread (the journal does).
   */
  into?: Uint8Array;
}

export interface ReadResult {
  /** Batches in offset order; the first one contains or follows the requested offset. */
  batches: StoredBatch[];
  logStartOffset: number;
  nextOffset: number;
}

/**
 * Shards: append-only logs of record batches with offsets. Every engine passes the same
 * conformance suite.
 *
 * Errors are {@link RobustMQError}s: `NOT_FOUND` for an unknown shard, `ALREADY_EXISTS`,
 * `OFFSET_OUT_OF_RANGE`, `TOO_LARGE`, `INVALID_ARGUMENT`, `CLOSED`, `CONFLICT` (a conditional append). A failed call changes nothing,
 * except that a write to a remote engine failing with `TIMEOUT` or `UNAVAILABLE` may have been carried
 * out: its effect is unknown.
 */
export interface StorageEngine {
  /**
   * Names the data when other nodes can reach the same shards (a journal node's address, as
   * `journal@host:port`): brokers with the same location serve one set of shards. Unset for data
   * only this node has.
   */
  readonly location?: string;
  /**
   * What every shard of this engine is stored in: topics created on it record this class,
   * whatever their creator asked for. Unset when the engine cannot tell (a remote journal node).
   */
  readonly storageClass?: StorageClass;
  /**
   * Creates an empty shard. Names nest (`a` and `a/b` are independent shards). An invalid config
   * (a non-positive `segmentBytes`, `segmentMs` or `maxBatchBytes`, a negative retention, an
   * unknown durability) is INVALID_ARGUMENT.
   */
  createShard(shard: string, config?: Partial<ShardConfig>): Promise<ShardInfo>;
  deleteShard(shard: string): Promise<void>;
  listShards(): Promise<string[]>;
  shardInfo(shard: string): Promise<ShardInfo>;
  updateShardConfig(shard: string, config: Partial<ShardConfig>): Promise<ShardInfo>;

  /**
   * Appends batches in order. Resolves only once they are durable by the shard's policy; the
   * offsets are consecutive, starting at the shard's next offset. An empty `batches` is
   * INVALID_ARGUMENT; a batch over `maxBatchBytes` is TOO_LARGE, and then none of them is stored.
   * The caller must leave each batch's `data` unchanged until the returned promise settles: an
   * engine may write straight from it rather than copy it first. With `expectedOffset` (see
   * {@link AppendOptions}) the append is conditional; one that is not a non-negative safe integer
   * is INVALID_ARGUMENT.
   */
  append(shard: string, batches: readonly RecordBatch[], options?: AppendOptions): Promise<AppendResult>;

  /**
   * Reads from `offset`: the batch containing it (a read may start in the middle of a batch) and
   * as many whole batches after it as fit in `maxBytes`; only the first may exceed it. `offset`
   * equal to the next offset gives no batches; below the log start or above the next offset is
   * OFFSET_OUT_OF_RANGE. With `into`, returned `data` may be views of that buffer (see
   * {@link ReadOptions.into}).
   */
  read(shard: string, offset: number, options: ReadOptions): Promise<ReadResult>;

  /**
   * Resolves once the shard has a record at `offset` or later, or once `timeoutMs` has passed,
   * whichever comes first: long polls (Kafka fetch, AMQP consumers) wait on this. Pending waits
   * also resolve when the shard is deleted or the engine closes.
   */
  waitForData(shard: string, offset: number, timeoutMs: number): Promise<void>;

  /**
   * The offset of the first batch whose max timestamp is at or after `timestamp`, or null when
   * there is none. Never below the log start: inside the first readable batch it is the log start.
   */
  offsetForTimestamp(shard: string, timestamp: number): Promise<number | null>;

  /**
   * Makes `offset` the new log start (exactly, even inside a batch): earlier records become
   * unreadable. An offset at or below the current start changes nothing; above the next offset is
   * OFFSET_OUT_OF_RANGE. Returns the log start afterwards.
   */
  deleteBefore(shard: string, offset: number): Promise<number>;

  /**
   * Applies time and size retention to every shard as of `now` (ms since the epoch). Engines drop
   * whole segments (or batches), so a shard may keep somewhat more than `retentionBytes` but never
   * loses records newer than the retention bounds.
   */
  enforceRetention(now: number): Promise<void>;

  /** Flushes and releases everything; later calls fail with `CLOSED`. */
  close(): Promise<void>;
}

export interface StorageEngineOptions {
  /** A directory the engine owns (engines without local files ignore it). */
  dataDir: string;
  /** The engine's own section of the server config (`[storage]`). */
  config: Readonly<Record<string, unknown>>;
  logger: Logger;
  metrics: Metrics;
  /**
   * How to connect to other nodes of the cluster, for engines that store through one (the server's
   * `[rpc]` TLS settings); unset, such connections are plain TCP.
   */
  clusterTls?: ConnectionOptions;
}

/**
 * What a storage package exports as its default export, so the server can load an engine by
 * package name from config (`storage.engine = "@robustmq/journal"`).
 */
export interface StorageEngineDefinition {
  readonly name: string;
  open(options: StorageEngineOptions): Promise<StorageEngine>;
}

/** Identity helper that gives a storage definition its type. */
export function defineStorageEngine(definition: StorageEngineDefinition): StorageEngineDefinition {
  return definition;
}

const SHARD_NAME = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/**
 * Checks a shard name: segments of `[A-Za-z0-9._-]` joined by `/`, at most 255 characters, no
 * `.` or `..` segment. Engines call this so a name can never escape their directory.
 */
export function validateShardName(shard: string): void {
  const bad =
    typeof shard !== 'string' ||
    shard.length === 0 ||
    shard.length > 255 ||
    !SHARD_NAME.test(shard) ||
    shard.split('/').some((segment) => segment === '.' || segment === '..');
  if (bad) {
    throw new RobustMQError(ErrorCode.InvalidArgument, `invalid shard name ${JSON.stringify(shard)}`);
  }
}
