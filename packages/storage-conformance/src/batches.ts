import type { RecordBatch, StoredBatch } from '@robustmq/core';

let lastSeed = 0;

/**
 * A record batch whose `data` is `bytes` long and recognisable: the first four bytes hold `seed`
 * (big-endian) and the rest follow a pattern derived from it, so two batches made with different
 * seeds never have equal data and a misplaced batch is easy to spot. Without `seed`, each call takes
 * the next number of a process-wide counter.
 */
export function makeBatch(recordCount: number, bytes: number, timestamp: number, seed?: number): RecordBatch {
  const tag = seed ?? ++lastSeed;
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (tag * 131 + i * 7 + (i >>> 8)) & 0xff;
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, tag >>> 0);
  data.set(head.subarray(0, Math.min(4, bytes)));
  return { recordCount, maxTimestamp: timestamp, data };
}

/** Options for {@link makeBatches}. */
export interface MakeBatchesOptions {
  /** Records in each batch; a function of the batch's index for mixed sizes. Default 1. */
  recordCount?: number | ((index: number) => number);
  /** Bytes of `data` in each batch. Default 64. */
  bytes?: number;
  /** Timestamp of the first batch. Default `Date.now()`. */
  firstTimestamp?: number;
  /** How much each batch's timestamp is after the one before. Default 0. */
  timestampStep?: number;
}

/** `count` distinct batches made with {@link makeBatch}. */
export function makeBatches(count: number, options: MakeBatchesOptions = {}): RecordBatch[] {
  const { recordCount = 1, bytes = 64, firstTimestamp = Date.now(), timestampStep = 0 } = options;
  return Array.from({ length: count }, (_, index) =>
    makeBatch(
      typeof recordCount === 'function' ? recordCount(index) : recordCount,
      bytes,
      firstTimestamp + index * timestampStep,
    ),
  );
}

/** Total bytes of `data` over `batches`. */
export function dataBytes(batches: readonly RecordBatch[]): number {
  return batches.reduce((sum, batch) => sum + batch.data.length, 0);
}

/** Total offsets `batches` occupy. */
export function recordCount(batches: readonly RecordBatch[]): number {
  return batches.reduce((sum, batch) => sum + batch.recordCount, 0);
}

/** The offset after the last record of `batch`. */
export function endOffset(batch: StoredBatch): number {
  return batch.baseOffset + batch.recordCount;
}

/**
 * The batches as an engine should store them when appended to an empty shard in this order:
 * each with the base offset it must get.
 */
export function withOffsets(batches: readonly RecordBatch[], firstOffset = 0): StoredBatch[] {
  let offset = firstOffset;
  return batches.map((batch) => {
    const stored = { ...batch, baseOffset: offset };
    offset += batch.recordCount;
    return stored;
  });
}
