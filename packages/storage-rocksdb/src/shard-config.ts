import {
  DEFAULT_SHARD_CONFIG,
  ErrorCode,
  mergeShardConfig,
  RobustMQError,
  type ShardConfig,
} from '@robustmq/core';

/** RocksDB handles large values, but one batch is one value held whole in memory. */
export const MAX_BATCH_BYTES_LIMIT = 2 ** 30;

/** Core's shard config check with this engine's batch limit. */
export function mergeRocksShardConfig(base: Readonly<ShardConfig>, patch: unknown): ShardConfig {
  return mergeShardConfig(base, patch, { maxBatchBytes: MAX_BATCH_BYTES_LIMIT });
}

export function encodeShardConfig(config: ShardConfig): Buffer {
  return Buffer.from(JSON.stringify(config), 'utf8');
}

export function decodeShardConfig(value: Buffer | undefined): ShardConfig {
  if (value === undefined) throw new RobustMQError(ErrorCode.Corrupt, 'a shard has no stored config');
  try {
    return mergeRocksShardConfig(DEFAULT_SHARD_CONFIG, JSON.parse(value.toString('utf8')));
  } catch (error) {
    throw new RobustMQError(
      ErrorCode.Corrupt,
      `stored shard config is malformed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}
