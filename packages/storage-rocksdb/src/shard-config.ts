import {
  DEFAULT_SHARD_CONFIG,
  ErrorCode,
  RobustMQError,
  type DurabilityPolicy,
  type ShardConfig,
} from '@robustmq/core';

const DURABILITY: readonly DurabilityPolicy[] = ['fsync', 'group-commit', 'none'];
const KEYS = new Set<string>(Object.keys(DEFAULT_SHARD_CONFIG));

/** RocksDB handles large values, but one batch is one value held whole in memory. */
export const MAX_BATCH_BYTES_LIMIT = 2 ** 30;

function invalid(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.InvalidArgument, message);
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`shard config ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

/**
 * `patch` (from `createShard` or `updateShardConfig`) checked and merged over `base`; a setting
 * left out or `undefined` keeps its value. Unknown keys and bad values are INVALID_ARGUMENT.
 */
export function mergeShardConfig(base: Readonly<ShardConfig>, patch: unknown): ShardConfig {
  if (patch === undefined) return { ...base };
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw invalid('shard config must be an object');
  }
  const merged: ShardConfig = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (!KEYS.has(key)) throw invalid(`unknown shard config key ${JSON.stringify(key)}`);
    if (value === undefined) continue;
    switch (key as keyof ShardConfig) {
      case 'retentionMs':
        if (value !== null) checkInteger(key, value, 0, Number.MAX_SAFE_INTEGER);
        merged.retentionMs = value as number | null;
        break;
      case 'retentionBytes':
        if (value !== null) checkInteger(key, value, 0, Number.MAX_SAFE_INTEGER);
        merged.retentionBytes = value as number | null;
        break;
      case 'segmentBytes':
        // Kept and checked so configs move between engines; RocksDB has no segments to roll.
        checkInteger(key, value, 1, Number.MAX_SAFE_INTEGER);
        merged.segmentBytes = value as number;
        break;
      case 'maxBatchBytes':
        checkInteger(key, value, 1, MAX_BATCH_BYTES_LIMIT);
        merged.maxBatchBytes = value as number;
        break;
      case 'durability':
        if (!DURABILITY.includes(value as DurabilityPolicy)) {
          throw invalid(
            `shard config durability must be one of ${DURABILITY.join(', ')}, got ${String(value)}`,
          );
        }
        merged.durability = value as DurabilityPolicy;
        break;
    }
  }
  return merged;
}

export function encodeShardConfig(config: ShardConfig): Buffer {
  return Buffer.from(JSON.stringify(config), 'utf8');
}

export function decodeShardConfig(value: Buffer | undefined): ShardConfig {
  if (value === undefined) throw new RobustMQError(ErrorCode.Corrupt, 'a shard has no stored config');
  try {
    return mergeShardConfig(DEFAULT_SHARD_CONFIG, JSON.parse(value.toString('utf8')));
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
