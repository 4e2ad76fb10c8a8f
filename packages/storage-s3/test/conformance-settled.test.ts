import type {
  AppendOptions,
  AppendResult,
  ReadOptions,
  ReadResult,
  RecordBatch,
  ShardConfig,
  ShardInfo,
  StorageEngine,
} from '@robustmq/core';
import { describeStorageEngine } from '@robustmq/storage-conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTieredStorage, type TieredStorage } from '../src/index.js';
import { prefixFor, recordingMetrics } from './helpers.js';
import { LocalS3 } from './local-s3.js';

/**
 * The tiered engine, but every write waits for a tiering pass before it resolves: every sealed
 * segment is in the bucket and gone from local disk before the suite's next call, so every read
 * of a sealed segment is served from the bucket. Only the timing differs from the engine itself.
 */
class SettledTiering implements StorageEngine {
  readonly #engine: TieredStorage;

  constructor(engine: TieredStorage) {
    this.#engine = engine;
  }

  async #settled<T>(result: Promise<T>): Promise<T> {
    const value = await result;
    await this.#engine.tierNow();
    return value;
  }

  createShard(shard: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    return this.#engine.createShard(shard, config);
  }
  deleteShard(shard: string): Promise<void> {
    return this.#engine.deleteShard(shard);
  }
  listShards(): Promise<string[]> {
    return this.#engine.listShards();
  }
  shardInfo(shard: string): Promise<ShardInfo> {
    return this.#engine.shardInfo(shard);
  }
  updateShardConfig(shard: string, config: Partial<ShardConfig>): Promise<ShardInfo> {
    return this.#engine.updateShardConfig(shard, config);
  }
  append(shard: string, batches: readonly RecordBatch[], options?: AppendOptions): Promise<AppendResult> {
    return this.#settled(this.#engine.append(shard, batches, options));
  }
  read(shard: string, offset: number, options: ReadOptions): Promise<ReadResult> {
    return this.#engine.read(shard, offset, options);
  }
  waitForData(shard: string, offset: number, timeoutMs: number): Promise<void> {
    return this.#engine.waitForData(shard, offset, timeoutMs);
  }
  offsetForTimestamp(shard: string, timestamp: number): Promise<number | null> {
    return this.#engine.offsetForTimestamp(shard, timestamp);
  }
  deleteBefore(shard: string, offset: number): Promise<number> {
    return this.#settled(this.#engine.deleteBefore(shard, offset));
  }
  enforceRetention(now: number): Promise<void> {
    return this.#settled(this.#engine.enforceRetention(now));
  }
  close(): Promise<void> {
    return this.#engine.close();
  }
}

let s3: LocalS3;
const metrics = recordingMetrics();
beforeAll(async () => {
  s3 = await LocalS3.start();
});
afterAll(async () => {
  await s3.stop();
});

describeStorageEngine('tiered (settled before each next call)', {
  open: async (dir) =>
    new SettledTiering(
      await openTieredStorage({
        ...s3.settings(prefixFor(dir)),
        dir,
        localRetentionMs: 0,
        localRetentionBytes: 0,
        metrics,
      }),
    ),
  persistent: true,
});

describe('the settled run above', () => {
  it('uploaded and offloaded segments, and read them back from the bucket', () => {
    expect(metrics.count('robustmq_tiering_uploaded_segments_total')).toBeGreaterThan(50);
    expect(metrics.count('robustmq_tiering_offloaded_segments_total')).toBeGreaterThan(50);
    expect(metrics.count('robustmq_tiering_remote_read_bytes_total')).toBeGreaterThan(0);
  });
});
