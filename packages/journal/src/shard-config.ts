import {
  DEFAULT_SHARD_CONFIG,
  ErrorCode,
  RobustMQError,
  type DurabilityPolicy,
  type ShardConfig,
} from '@robustmq/core';

const DURABILITY: readonly DurabilityPolicy[] = ['fsync', 'group-commit', 'none'];

/** Segments stay under 2 GiB so byte positions fit the indexes' 32 bits with room for one batch. */
export const MAX_SEGMENT_BYTES = 2 ** 31;
/** No batch is larger than this, whatever the shard's config says. */
export const MAX_BATCH_BYTES_LIMIT = 2 ** 30;

const KEYS = new Set<string>(Object.keys(DEFAULT_SHARD_CONFIG));

function invalid(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.InvalidArgument, message);
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

/**
 * Checks a partial shard config (from `createShard` or `updateShardConfig`) and merges it over
 * `base`. Unknown keys and out-of-range values are INVALID_ARGUMENT.
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
        if (value !== null) checkInteger('retentionMs', value, 0, Number.MAX_SAFE_INTEGER);
        merged.retentionMs = value as number | null;
        break;
      case 'retentionBytes':
        if (value !== null) checkInteger('retentionBytes', value, 0, Number.MAX_SAFE_INTEGER);
        merged.retentionBytes = value as number | null;
        break;
      case 'segmentBytes':
        checkInteger('segmentBytes', value, 1, MAX_SEGMENT_BYTES);
        merged.segmentBytes = value as number;
        break;
      case 'maxBatchBytes':
        checkInteger('maxBatchBytes', value, 1, MAX_BATCH_BYTES_LIMIT);
        merged.maxBatchBytes = value as number;
        break;
      case 'durability':
        if (!DURABILITY.includes(value as DurabilityPolicy)) {
          throw invalid(`durability must be one of ${DURABILITY.join(', ')}, got ${String(value)}`);
        }
        merged.durability = value as DurabilityPolicy;
        break;
    }
  }
  return merged;
}

export function isDurabilityPolicy(value: unknown): value is DurabilityPolicy {
  return DURABILITY.includes(value as DurabilityPolicy);
}
