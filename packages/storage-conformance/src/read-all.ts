import { ErrorCode, RobustMQError, type StorageEngine, type StoredBatch } from '@robustmq/core';

/** Options for {@link readAll}. */
export interface ReadAllOptions {
  /** Where to start; default the shard's log start offset. */
  from?: number;
  /** `maxBytes` of each read; default 1 MiB. */
  maxBytes?: number;
}

/**
 * Reads a shard from `from` up to its next offset, one `read` after another, and returns every
 * batch in offset order. Fails if a read makes no progress, so a broken engine cannot loop forever.
 */
export async function readAll(
  engine: StorageEngine,
  shard: string,
  options: ReadAllOptions = {},
): Promise<StoredBatch[]> {
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  let offset = options.from ?? (await engine.shardInfo(shard)).logStartOffset;
  const batches: StoredBatch[] = [];
  for (;;) {
    const result = await engine.read(shard, offset, { maxBytes });
    if (result.batches.length === 0) return batches;
    const last = result.batches[result.batches.length - 1]!;
    const end = last.baseOffset + last.recordCount;
    if (end <= offset) {
      throw new RobustMQError(ErrorCode.Internal, `read of ${shard} at ${offset} made no progress`);
    }
    batches.push(...result.batches);
    offset = end;
    if (offset >= result.nextOffset) return batches;
  }
}
