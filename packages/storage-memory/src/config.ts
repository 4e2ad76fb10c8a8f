import { ErrorCode, RobustMQError, type DurabilityPolicy, type ShardConfig } from '@robustmq/core';

const DURABILITY: ReadonlySet<DurabilityPolicy> = new Set(['fsync', 'group-commit', 'none']);

function invalid(setting: string, value: unknown, rule: string): RobustMQError {
  return new RobustMQError(
    ErrorCode.InvalidArgument,
    `shard config ${setting} ${JSON.stringify(value)}: ${rule}`,
  );
}

function positiveInteger(setting: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw invalid(setting, value, 'must be a positive integer');
  return value;
}

function limitOrNull(setting: string, value: number | null): number | null {
  if (value === null) return null;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw invalid(setting, value, 'must be null or a number >= 0');
  }
  return value;
}

/**
 * `base` with `changes` applied, every setting checked; a setting left out or `undefined` keeps its
 * value from `base`. Throws INVALID_ARGUMENT naming the first bad setting.
 */
export function resolveShardConfig(
  base: Readonly<ShardConfig>,
  changes: Partial<ShardConfig> = {},
): ShardConfig {
  const pick = <K extends keyof ShardConfig>(key: K): ShardConfig[K] =>
    changes[key] === undefined ? base[key] : changes[key];
  const durability = pick('durability');
  if (!DURABILITY.has(durability))
    throw invalid('durability', durability, 'must be fsync, group-commit or none');
  return {
    retentionMs: limitOrNull('retentionMs', pick('retentionMs')),
    retentionBytes: limitOrNull('retentionBytes', pick('retentionBytes')),
    segmentBytes: positiveInteger('segmentBytes', pick('segmentBytes')),
    durability,
    maxBatchBytes: positiveInteger('maxBatchBytes', pick('maxBatchBytes')),
  };
}
