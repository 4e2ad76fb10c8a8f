import { ErrorCode, RobustMQError } from './errors.js';
import { DEFAULT_SHARD_CONFIG, type DurabilityPolicy, type ShardConfig } from './storage.js';

const DURABILITY: readonly DurabilityPolicy[] = ['fsync', 'group-commit', 'none'];
const KEYS = new Set<string>(Object.keys(DEFAULT_SHARD_CONFIG));

/** Upper bounds an engine imposes on top of the contract (e.g. its index width). */
export interface ShardConfigLimits {
  maxSegmentBytes?: number;
  maxBatchBytes?: number;
}

export function isDurabilityPolicy(value: unknown): value is DurabilityPolicy {
  return DURABILITY.includes(value as DurabilityPolicy);
}

function invalid(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.InvalidArgument, `shard config ${message}`);
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * Checks a partial shard config (from `createShard`, `updateShardConfig` or a stored copy) and
 * merges it over `base`; a setting left out or `undefined` keeps its value. Unknown keys and bad
 * values are INVALID_ARGUMENT naming the setting, so every engine answers alike.
 */
export function mergeShardConfig(
  base: Readonly<ShardConfig>,
  patch: unknown,
  limits: ShardConfigLimits = {},
): ShardConfig {
  if (patch === undefined) return { ...base };
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw invalid('must be an object');
  }
  const merged: ShardConfig = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (!KEYS.has(key)) throw invalid(`has an unknown key ${JSON.stringify(key)}`);
    if (value === undefined) continue;
    switch (key as keyof ShardConfig) {
      case 'retentionMs':
        merged.retentionMs = value === null ? null : checkInteger(key, value, 0, Number.MAX_SAFE_INTEGER);
        break;
      case 'retentionBytes':
        merged.retentionBytes = value === null ? null : checkInteger(key, value, 0, Number.MAX_SAFE_INTEGER);
        break;
      case 'segmentBytes':
        merged.segmentBytes = checkInteger(key, value, 1, limits.maxSegmentBytes ?? Number.MAX_SAFE_INTEGER);
        break;
      case 'segmentMs':
        merged.segmentMs = value === null ? null : checkInteger(key, value, 1, Number.MAX_SAFE_INTEGER);
        break;
      case 'maxBatchBytes':
        merged.maxBatchBytes = checkInteger(key, value, 1, limits.maxBatchBytes ?? Number.MAX_SAFE_INTEGER);
        break;
      case 'durability':
        if (!isDurabilityPolicy(value)) {
          throw invalid(`durability must be one of ${DURABILITY.join(', ')}, got ${String(value)}`);
        }
        merged.durability = value;
        break;
    }
  }
  return merged;
}
