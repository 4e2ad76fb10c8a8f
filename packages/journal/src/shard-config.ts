import { mergeShardConfig, type ShardConfig } from '@robustmq/core';

/** Segments stay under 2 GiB so byte positions fit the indexes' 32 bits with room for one batch. */
export const MAX_SEGMENT_BYTES = 2 ** 31;
/** No batch is larger than this, whatever the shard's config says. */
export const MAX_BATCH_BYTES_LIMIT = 2 ** 30;

/** Core's shard config check with the journal's own limits. */
export function mergeJournalShardConfig(base: Readonly<ShardConfig>, patch: unknown): ShardConfig {
  return mergeShardConfig(base, patch, {
    maxSegmentBytes: MAX_SEGMENT_BYTES,
    maxBatchBytes: MAX_BATCH_BYTES_LIMIT,
  });
}
