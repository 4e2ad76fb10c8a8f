import {
  ErrorCode,
  isRobustMQError,
  silentLogger,
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
} from '@robustmq/core';
import {
  openJournal,
  type Journal,
  type JournalSettings,
  type OffloadedSegmentReader,
} from '@robustmq/journal';
import { SegmentBucket } from './bucket.js';
import { DEFAULT_TIERING_SETTINGS, checkedPrefix, type TieringSettings } from './config.js';
import { tieringMetrics, type TieringMetrics } from './metrics.js';
import { PrefixOwnership, engineIdentity } from './ownership.js';
import { Tiering } from './tiering.js';

/** How to open the tiered engine directly (the server goes through the default export). */
export interface TieredStorageOptions extends Partial<Omit<TieringSettings, 'bucket'>> {
  /** The directory the local journal owns. */
  dir: string;
  bucket: string;
  /** Settings of the journal underneath. */
  journal?: Partial<JournalSettings>;
  logger?: Logger;
  metrics?: Metrics;
}

const noop = { inc() {}, set() {}, dec() {}, observe() {} };
const noMetrics: Metrics = { counter: () => noop, gauge: () => noop, histogram: () => noop };

/**
 * The tiered storage engine: the segment-log journal on local disk, whose sealed segments are
 * uploaded to an S3-compatible bucket and dropped locally past local retention. Reads of dropped
 * segments go to the bucket (UNAVAILABLE while it cannot be reached); retention, `deleteBefore`
 * and `deleteShard` delete the objects as well as the local files. Shard retention applies to the
 * whole shard, local and uploaded; local retention only bounds what stays on disk.
 */
export class TieredStorage implements StorageEngine {
  readonly storageClass = 'tiered';
  /** The journal underneath (its `sealedSegments` show what is local and what is offloaded). */
  readonly journal: Journal;
  readonly bucket: SegmentBucket;
  readonly #tiering: Tiering;
  readonly #abort: AbortController;
  #closing: Promise<void> | null = null;

  private constructor(journal: Journal, bucket: SegmentBucket, tiering: Tiering, abort: AbortController) {
    this.journal = journal;
    this.bucket = bucket;
    this.#tiering = tiering;
    this.#abort = abort;
  }

  /** Opens the journal in `options.dir` and starts tiering its shards to the bucket. */
  static async open(options: TieredStorageOptions): Promise<TieredStorage> {
    const { dir, journal: journalSettings, logger: givenLogger, metrics, ...given } = options;
    const settings: TieringSettings = { ...DEFAULT_TIERING_SETTINGS, bucket: options.bucket };
    for (const [key, value] of Object.entries(given)) {
      if (value !== undefined) (settings as unknown as Record<string, unknown>)[key] = value;
    }
    settings.prefix = checkedPrefix(settings.prefix);
    const logger = (givenLogger ?? silentLogger).child({ engine: 'tiered' });
    const measured: TieringMetrics = tieringMetrics(metrics ?? noMetrics);
    const abort = new AbortController();
    const client = SegmentBucket.client(settings, logger);
    const bucket = new SegmentBucket(client, settings.bucket, settings.prefix, abort.signal, logger);
    let ownership: PrefixOwnership;
    try {
      ownership = new PrefixOwnership(bucket, await engineIdentity(dir), dir, logger);
      await ownership.claim().catch((error: unknown) => {
        // A bucket outage should not keep the broker down: tiering claims the prefix before it
        // writes or deletes anything, and retries until it can.
        if (!isRobustMQError(error, ErrorCode.Unavailable)) throw error;
        logger.warn(
          { err: error, bucket: settings.bucket, prefix: settings.prefix },
          'could not claim the prefix in the bucket now; tiering waits until it can',
        );
      });
    } catch (error) {
      client.destroy();
      throw error;
    }
    const reader: OffloadedSegmentReader = {
      async read(segment, position, length) {
        const bytes = await bucket.read(segment, position, length);
        measured.remoteReadBytes.inc(undefined, bytes.length);
        return bytes;
      },
    };
    // Segments are sealed only by appends, which start after open: the listener finds tiering set.
    const started: { tiering?: Tiering } = {};
    let journal: Journal;
    try {
      journal = await openJournal({
        ...journalSettings,
        dir,
        logger: givenLogger,
        metrics,
        offloadedReader: reader,
        onSegmentSealed: (segment) => started.tiering?.schedule(segment.shard),
      });
    } catch (error) {
      client.destroy();
      throw error;
    }
    const tiering = new Tiering(journal, bucket, ownership, settings, logger, measured);
    started.tiering = tiering;
    tiering.start();
    logger.info(
      { bucket: settings.bucket, prefix: settings.prefix, endpoint: settings.endpoint ?? 'aws' },
      'tiered storage opened',
    );
    return new TieredStorage(journal, bucket, tiering, abort);
  }

  createShard(shard: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    return this.journal.createShard(shard, config);
  }

  deleteShard(shard: string): Promise<void> {
    return this.#tiering.deleteShard(shard);
  }

  listShards(): Promise<string[]> {
    return this.journal.listShards();
  }

  shardInfo(shard: string): Promise<ShardInfo> {
    return this.journal.shardInfo(shard);
  }

  updateShardConfig(shard: string, config: Partial<ShardConfig>): Promise<ShardInfo> {
    return this.journal.updateShardConfig(shard, config);
  }

  append(shard: string, batches: readonly RecordBatch[], options?: AppendOptions): Promise<AppendResult> {
    return this.journal.append(shard, batches, options);
  }

  read(shard: string, offset: number, options: ReadOptions): Promise<ReadResult> {
    return this.journal.read(shard, offset, options);
  }

  waitForData(shard: string, offset: number, timeoutMs: number): Promise<void> {
    return this.journal.waitForData(shard, offset, timeoutMs);
  }

  offsetForTimestamp(shard: string, timestamp: number): Promise<number | null> {
    return this.journal.offsetForTimestamp(shard, timestamp);
  }

  /** Moves the log start like the journal does, then deletes the objects of dropped segments. */
  async deleteBefore(shard: string, offset: number): Promise<number> {
    const start = await this.journal.deleteBefore(shard, offset);
    await this.#tiering.cleanUp([shard]);
    return start;
  }

  /**
   * Applies each shard's retention to the whole shard, local and uploaded, then deletes the
   * objects of dropped segments. Objects the bucket cannot delete now are retried later.
   */
  async enforceRetention(now: number): Promise<void> {
    await this.journal.enforceRetention(now);
    await this.#tiering.cleanUp(await this.journal.listShards());
  }

  /**
   * Runs a tiering pass over every shard now and waits for it: uploads what is sealed, drops
   * local copies past local retention. Rejects with the first failure (UNAVAILABLE while the
   * bucket cannot be reached); tiering retries on its own all the same.
   */
  tierNow(): Promise<void> {
    return this.#tiering.tierAll();
  }

  /** Stops tiering (aborting bucket calls in flight) and closes the journal. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#abort.abort();
      try {
        await this.#tiering.close();
        await this.journal.close();
      } finally {
        this.bucket.client.destroy();
      }
    })();
    return this.#closing;
  }
}

/** Opens the tiered engine directly, without the server's config section. */
export function openTieredStorage(options: TieredStorageOptions): Promise<TieredStorage> {
  return TieredStorage.open(options);
}
